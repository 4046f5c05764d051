"""Helper package of the course "Deep Computer Vision with Keras".

Modules are named by role, each pointing to the chapter that explains it:
``profiles`` (the sample/full profiles), ``data`` (datasets and input pipelines), ``filters`` and ``viz`` (chapter 1
and plots), ``arithmetic`` and ``animations`` (chapter 2), ``counting`` (chapter 3), ``models`` (chapter 5),
``augment`` and ``files`` (chapter 6), ``transfer`` and ``pretrained`` (chapter 7), ``inside`` (chapter 8),
``detection`` and ``canvases`` (chapter 9), ``training`` (chapter 4), ``compare`` (the verdict of an experiment over
seeds, every chapter that compares), ``prose`` (numbers glued into the text), ``submit`` and ``grading`` (what the
exercises' tests use), ``course`` (the two profiles). The build tooling is the separate ``coursetools`` folder of
the repository.
"""

__version__ = "0.1.0"
