"""Helper package of the course "Deep Computer Vision with Keras".

Modules are named by role, each pointing to the chapter that explains it:
``profiles`` (the sample/full profiles), ``data`` (datasets and input pipelines), ``filters`` and ``viz``
(chapter 1 and plots), ``arithmetic`` and ``animations`` (chapter 2), ``counting`` (chapter 3), ``models``
(chapter 5), ``augment`` (chapter 6), ``transfer`` (chapter 7), ``grading`` (checks used by the exercises' tests),
and the course tooling: ``runner`` (papermill), ``release`` (nbgrader), ``setupcell`` (Colab cell), ``site``
(Jupyter Book), ``regression`` (lesson regression settings), ``course`` (where the course lives).
"""

__version__ = "0.1.0"
