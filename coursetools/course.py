"""Where the course lives and which release Colab installs, read from one place each (tooling and tests).

A fork changes one line: ``repository.url`` in ``_config.yml``. Everything that names the repository is derived
from it: the Colab setup cell (``make setup-cells``), the site's Colab buttons (Jupyter Book reads the same setting)
and the rendered copies' branch. The setup cell's ref is ``"v" + cnnbook.__version__``, the tag that
``make release-tag`` checks and tells you to push (CONTRIBUTING.md, "Releases and forks").
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

import cnnbook
from cnnbook.course import PROFILES  # noqa: F401  (the two profiles, one place)

CONFIG = "_config.yml"


def repo_root() -> Path:
    """Return the root of a source checkout of the course (the folder holding ``_toc.yml``)."""
    here = Path(__file__).resolve().parent.parent
    if not (here / "_toc.yml").exists():
        raise FileNotFoundError(
            f"{here} is not a checkout of the course (no _toc.yml there); "
            "course tooling must run from a git clone of the course's repository, then `make setup`"
        )
    return here


def repository_settings(root: Path | None = None) -> dict:
    """Return ``_config.yml``'s ``repository`` block: ``url`` (the GitHub repository) and ``branch``."""
    path = (root or repo_root()) / CONFIG
    repository = (yaml.safe_load(path.read_text()) or {}).get("repository") or {}
    url = str(repository.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/") or url.count("/") != 4:
        raise ValueError(f"{path}: repository.url must be https://github.com/OWNER/NAME, got {url!r}")
    return {"url": url, "branch": str(repository.get("branch", "main"))}


_SETTINGS = repository_settings()
#: GitHub repository of the course (``repository.url`` in ``_config.yml``: the one line a fork changes).
REPOSITORY_URL = _SETTINGS["url"]
#: Branch the site's Colab buttons open (``repository.branch``): the generated branch of rendered copies that the
#: Pages workflow pushes (``coursetools.colab``), never a branch that people edit.
COLAB_BRANCH = _SETTINGS["branch"]
#: Git ref that the Colab setup cell installs ``cnnbook`` from: the release tag of the package's version.
COLAB_REF = f"v{cnnbook.__version__}"


def github_path(url: str = REPOSITORY_URL) -> str:
    """Return ``OWNER/NAME`` of a GitHub repository URL."""
    return url.removeprefix("https://github.com/")


def colab_url(path: str, url: str = REPOSITORY_URL, branch: str = COLAB_BRANCH) -> str:
    """Return the address that opens the rendered copy of the notebook ``path`` (``book/ch01_x.ipynb``) in Colab."""
    return f"https://colab.research.google.com/github/{github_path(url)}/blob/{branch}/{path}"


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
