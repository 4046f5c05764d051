"""Hand work in for grading: save a trained model or a function's outputs as files the grader scores (autograder/README.md).

The grader never trusts a verdict computed in the student's kernel: hidden test cells call these functions, and a
trusted process outside the kernel reads the files they write.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

#: Environment variable naming the folder that artifacts go to (the grader sets it; default ``./artifacts``).
ARTIFACTS_ENV = "CNNBOOK_ARTIFACTS"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def artifacts_dir() -> Path:
    """Return the folder artifacts are written to, created if missing (autograder/README.md)."""
    folder = Path(os.environ.get(ARTIFACTS_ENV, "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(name: str, suffix: str) -> Path:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"artifact name {name!r} must be letters, digits and _ (starting with a letter), "
                         "at most 64 characters, e.g. 'best_model'")
    return artifacts_dir() / f"{name}{suffix}"


def save_model(model, name: str) -> Path:
    """Save a Keras model as ``<name>.keras`` for the grader, which loads it with ``safe_mode=True`` (autograder)."""
    if not hasattr(model, "save") or not hasattr(model, "count_params"):
        raise TypeError(f"save_model expects a Keras model, got {type(model).__name__}: build it with "
                        "keras.Model(inputs, outputs) or keras.Sequential([...])")
    path = _path(name, ".keras")
    model.save(path)
    return path


def save_outputs(name: str, **arrays) -> Path:
    """Save named arrays (your function's outputs on the grader's inputs) as ``<name>.npz`` (autograder)."""
    if not arrays:
        raise ValueError("save_outputs needs at least one array, e.g. save_outputs('conv2d', case_0=out)")
    converted = {}
    for key, value in arrays.items():
        try:
            converted[key] = np.asarray(value)
        except Exception as exc:  # a student's object that is no array
            raise TypeError(f"output {key!r} is not an array ({type(value).__name__}): {exc}") from None
        if converted[key].dtype == object:
            raise TypeError(f"output {key!r} is not a numeric array (dtype object): return a NumPy array")
    path = _path(name, ".npz")
    np.savez(path, **converted)
    return path


#: Environment variable naming the folder the grader writes its inputs for function tests to.
INPUTS_ENV = "CNNBOOK_INPUTS"


def load_inputs(name: str) -> dict:
    """Return the grader's inputs ``<name>.npz`` for a function test, as a dict of arrays (autograder/PROTOCOL.md)."""
    folder = os.environ.get(INPUTS_ENV)
    path = Path(folder or "inputs") / f"{name}.npz"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"input name {name!r} must be letters, digits and _ (starting with a letter)")
    if not path.is_file():
        raise FileNotFoundError(f"no grader inputs {path}: these are written by the autograder when it grades "
                                "(hidden tests only run there)")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
