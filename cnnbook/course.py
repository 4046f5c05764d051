"""Where the course lives: one place for the repository address, branch and the Colab pin."""

from pathlib import Path

#: GitHub repository of the course (also ``repository.url`` in ``_config.yml``; a test keeps them equal).
REPOSITORY_URL = "https://github.com/deep-cv-keras/course"
#: Branch the book's launch buttons point at (``repository.branch`` in ``_config.yml``).
BRANCH = "main"
#: Git ref that the Colab setup cell installs ``cnnbook`` from: a release tag, never a moving branch.
COLAB_REF = "v0.1.0"
#: The two profiles every notebook understands (see :mod:`cnnbook.profiles`).
PROFILES = ("sample", "full")


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
    import importlib.util
    import sys

    path = repo_root() / relative_path
    name = path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
