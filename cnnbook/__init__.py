"""Helper package of the course "Deep Computer Vision with Keras".

Modules are named by role: ``profiles`` (sample/full), ``filters`` and ``viz`` (chapter 1),
``arithmetic`` (chapter 2), ``counting`` (chapter 3), ``models`` (chapter 4), ``data``,
``grading`` (hidden tests), and the course tooling ``runner``, ``release`` and ``setupcell``.
"""

__version__ = "0.1.0"
