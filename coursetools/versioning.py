"""Cut a release that Colab can install: ``python -m coursetools.versioning`` (``make release-tag``).

The Colab setup cell installs ``cnnbook @ git+REPOSITORY@vX.Y.Z``, so a release is a git tag ``vX.Y.Z`` on a commit
whose package version is ``X.Y.Z``. This checks that ``pyproject.toml``, ``cnnbook.__version__``, the setup cell of
every notebook and ``CHANGELOG.md`` agree on that version, then prints the two commands that tag and push it.
It never tags or pushes anything itself (CONTRIBUTING.md, "Releases and forks").
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

from coursetools import setupcell
from coursetools.course import REPOSITORY_URL, repo_root

CHANGELOG = "CHANGELOG.md"


def package_version(root: Path) -> str:
    """Return ``__version__`` as written in ``cnnbook/__init__.py`` of the checkout (read, not imported)."""
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', (root / "cnnbook" / "__init__.py").read_text(), re.M)
    if not m:
        raise ValueError("cnnbook/__init__.py has no __version__ = \"X.Y.Z\" line")
    return m.group(1)


def project_version(root: Path) -> str:
    """Return ``[project].version`` of ``pyproject.toml``."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def changelog_versions(root: Path) -> list[str]:
    """Return the versions that ``CHANGELOG.md`` has a section for (headings ``## X.Y.Z ...``), newest first."""
    path = root / CHANGELOG
    if not path.exists():
        return []
    return re.findall(r"^##\s+\[?v?(\d+\.\d+\.\d+[\w.+-]*)\]?", path.read_text(), re.M)


def setup_cell_refs(root: Path) -> dict[str, str]:
    """Return ``{notebook: ref}`` that each notebook's Colab setup cell installs ``cnnbook`` from (``?`` if none)."""
    paths = setupcell.course_notebooks(root) + sorted((root / "notebooks").rglob("*.ipynb"))
    refs = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        index = setupcell.find_setup_cell(nb)
        m = re.search(r"cnnbook @ git\+\S+?@([\w.+-]+)\"", nb.cells[index].source) if index is not None else None
        refs[str(path.relative_to(root))] = m.group(1) if m else "?"
    return refs


def check(root: Path) -> tuple[str, list[str]]:
    """Return the version and the disagreements between the package, pyproject, setup cells and changelog."""
    version = package_version(root)
    tag = f"v{version}"
    problems = []
    if project_version(root) != version:
        problems.append(f"pyproject.toml says version {project_version(root)}, cnnbook/__init__.py says {version}: "
                        "make them equal")
    stale = sorted(nb for nb, ref in setup_cell_refs(root).items() if ref != tag)
    if stale:
        problems.append(f"{len(stale)} notebooks' Colab setup cell does not install {tag} (e.g. {stale[0]}): run "
                        "`make setup-cells` and `make release`, then commit")
    versions = changelog_versions(root)
    if version not in versions:
        problems.append(f"{CHANGELOG} has no section `## {version}`: add one that says what changed")
    elif versions[0] != version:
        problems.append(f"{CHANGELOG}'s newest section is {versions[0]}, the package is {version}")
    return version, problems


def git(root: Path, *args: str) -> str:
    """Return the output of a read-only git command in ``root`` ("" when git or the repository is missing)."""
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def main(argv: list[str] | None = None) -> int:
    """Command line: check the release and print how to tag it."""
    root = repo_root()
    version, problems = check(root)
    tag = f"v{version}"
    if problems:
        print(f"release {tag} is not ready:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"release {tag}: cnnbook/__init__.py, pyproject.toml, every notebook's Colab setup cell and "
          f"{CHANGELOG} agree.")
    if git(root, "tag", "--list", tag):
        where = git(root, "rev-list", "-n", "1", tag)
        head = git(root, "rev-parse", "HEAD")
        print(f"The tag {tag} exists already ({'at HEAD' if where == head else f'at {where[:7]}, not HEAD'}); to "
              f"publish it: git push origin {tag}")
        return 0
    if git(root, "status", "--porcelain", "--untracked-files=no"):
        print("Note: the working tree has uncommitted changes; the tag names the last commit, so commit first.")
    print(f"To release it (nothing has been tagged or pushed), from the commit to release on main:\n"
          f"  git tag -a {tag} -m \"cnnbook {version}\"\n"
          f"  git push origin {tag}\n"
          f"Colab then installs it with: pip install \"cnnbook @ git+{REPOSITORY_URL}@{tag}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
