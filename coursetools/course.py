"""Where the checkout is, and importing its scripts by path (tooling and tests; students never need this)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from cnnbook.course import BRANCH, COLAB_REF, PROFILES, REPOSITORY_URL  # noqa: F401  (one place for these)


def repo_root() -> Path:
    """Return the root of a source checkout of the course (the folder holding ``_toc.yml``)."""
    here = Path(__file__).resolve().parent.parent
    if not (here / "_toc.yml").exists():
        raise FileNotFoundError(
            f"{here} is not a checkout of the course (no _toc.yml there); "
            "course tooling must run from a git clone: git clone "
            f"{REPOSITORY_URL} && cd course && make setup"
        )
    return here


def load_script(relative_path: str):
    """Import a script of the checkout by path, e.g. ``autograder/course.py`` (autograder/README.md), once."""
    path = repo_root() / relative_path
    name = path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
