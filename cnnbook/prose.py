"""Numbers in a lesson's prose come from code: :func:`glue` records them for the book (CONTRIBUTING.md)."""

from __future__ import annotations


def glue(name: str, value, display: bool = False):
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in markdown, and return it (every chapter).

    Jupyter Book (myst-nb) reads the recorded value from the executed notebook; where myst-nb is not installed
    (a student's Colab or laptop), nothing is recorded and the value is simply returned.
    """
    if not name.isidentifier():
        raise ValueError(f"glue name {name!r} must be a Python identifier, e.g. 'vgg16_params'")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value
