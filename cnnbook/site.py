"""Build the static book site from the executed lessons and the student notebooks (README, "Main job").

``python -m cnnbook.site build`` stages ``_config.yml``, ``_toc.yml``, ``book/`` (each lesson replaced by its
executed copy from ``_build/executed/``) and ``notebooks/`` into ``_build/site_src``, then runs Jupyter Book 1 there
with warnings as errors. Solutions are never staged, so the site cannot show one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from cnnbook.course import repo_root

STAGED = ("_config.yml", "_toc.yml", "book", "notebooks")


class SiteError(Exception):
    """A problem that stops the site build, reported as one line."""


def stage(root: Path, executed: Path, dest: Path) -> list[Path]:
    """Copy the book's sources to ``dest``, lessons replaced by their executed copies; return the lessons."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in STAGED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(src, dest / name)
    lessons = sorted((root / "book").rglob("*.ipynb"))
    for lesson in lessons:
        rel = lesson.relative_to(root)
        run = executed / rel
        if not run.exists():
            raise SiteError(f"{rel} has not been executed ({run} is missing): run `make notebooks` first")
        nb = nbformat.read(run, as_version=4)
        for cell in nb.cells:  # papermill's injected parameters: keep them visible but folded
            tags = cell.metadata.setdefault("tags", [])
            if "injected-parameters" in tags and "hide-cell" not in tags:
                tags.append("hide-cell")
        nbformat.write(nb, dest / rel)
    return lessons


def build(root: Path, executed: Path, staging: Path, output: Path) -> Path:
    """Stage the sources and run ``jupyter-book build -W``; return the path of ``index.html``."""
    stage(root, executed, staging)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(output),
           "-W", "-n", "--keep-going", "--builder", "html"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise SiteError(f"jupyter-book build failed (warnings count as errors):\n{tail}")
    index = output / "_build" / "html" / "index.html"
    if not index.exists():
        raise SiteError(f"jupyter-book exited 0 but wrote no {index} (is jupyter-book 2.x installed? pin <2)")
    return index


def main(argv: list[str] | None = None) -> int:
    """Command line: ``build`` the site (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m cnnbook.site", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--executed", type=Path, default=None, help="executed notebooks (_build/executed)")
    parser.add_argument("--output", type=Path, default=None, help="where the site goes (_build/site)")
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        index = build(root, args.executed or root / "_build" / "executed", root / "_build" / "site_src",
                      args.output or root / "_build" / "site")
    except SiteError as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    print(f"site built: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
