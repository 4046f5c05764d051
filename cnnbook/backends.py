"""Which Keras backend runs, and cells that need TensorFlow: ``%%tensorflow_only`` (README, "Keras backends").

Importing this module in IPython registers the cell magic. A cell that starts with
``%%tensorflow_only REASON`` runs as usual on the TensorFlow backend and, on JAX or PyTorch, prints one line that
says it was skipped and why, so a notebook still runs top to bottom on every backend.
"""

from __future__ import annotations

import os

#: The Keras backends the course supports.
BACKENDS = ("tensorflow", "jax", "torch")


def current() -> str:
    """Return the name of the Keras backend in use (``keras.backend.backend()``), e.g. ``"jax"``."""
    import keras

    return keras.backend.backend()


def check_backend(name: str) -> str:
    """Return ``name`` if it is a supported Keras backend, else raise ValueError naming the choices."""
    if name not in BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}: choose one of {', '.join(BACKENDS)} "
                         "(set KERAS_BACKEND before Keras is imported)")
    return name


def skip_message(reason: str, backend: str | None = None) -> str:
    """Return the line a skipped TensorFlow-only cell prints on another backend."""
    backend = backend or current()
    why = reason.strip() or "TensorFlow-only code"
    return f"skipped on the {backend} backend: this cell needs TensorFlow ({why}); run with KERAS_BACKEND=tensorflow"


def tensorflow_only(line: str, cell: str):
    """Cell magic body: run ``cell`` on TensorFlow, else print :func:`skip_message` (README, "Keras backends")."""
    if current() != "tensorflow":
        print(skip_message(line))
        return None
    from IPython import get_ipython

    result = get_ipython().run_cell(cell)
    if result.error_in_exec is not None:  # let the error stop the notebook as it would without the magic
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return None


def _register() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and os.environ.get("CNNBOOK_NO_MAGIC") != "1":
        shell.register_magic_function(tensorflow_only, magic_kind="cell", magic_name="tensorflow_only")


_register()
