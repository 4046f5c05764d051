"""Build the static book site from the executed lessons and the student notebooks (README, "Main job").

``python -m coursetools.site build`` stages ``_config.yml``, ``_toc.yml``, ``book/`` (each lesson replaced by its
executed copy from ``_build/executed/``) and ``notebooks/`` into ``_build/site_src``, writes the timing page
``book/timings.md`` there from the runner's ``_build/reports/timings.json``, then runs Jupyter Book 1 there with
warnings as errors. Solutions are never staged, so the site cannot show one. Last, it writes the rendered copy of
every notebook page (``coursetools.colab``: glue values pasted, no raw MyST) into the site's ``colab/`` folder and
over its ``_sources/`` notebooks, which the Colab and download buttons open.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from coursetools import colab
from coursetools.course import repo_root

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
        nbformat.write(fold_setup_cells(nbformat.read(run, as_version=4)), dest / rel)
    for exercise in sorted((dest / "notebooks").rglob("*.ipynb")):
        nbformat.write(fold_setup_cells(nbformat.read(exercise, as_version=4)), exercise)
    return lessons


def fold_setup_cells(nb):
    """Fold (keep, but collapse) the Colab setup cell and papermill's injected parameters on a book page."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("colab-setup" in tags or "injected-parameters" in tags) and "hide-cell" not in tags:
            tags.append("hide-cell")
    return nb


TIMINGS_PAGE = "book/timings.md"


def write_timings_page(report: Path, dest: Path) -> Path:
    """Write the book's page of the runner's timing report (notebook, profile, wall time, peak memory) into ``dest``.

    Without a report the page says how to make one. Only the staging folder gets the page, never ``book/``.
    """
    lines = ["# Timings", "", "How long each notebook of the course took to run from top to bottom with papermill, "
             "and the most memory it used (peak resident set of the kernel), as measured by "
             "`python -m coursetools.runner` (`make notebooks`).", ""]
    if not report.exists():
        lines += ["No timing report was found when this site was built: run `make notebooks` (or "
                  "`make notebooks PROFILE=full`) before `make site` to fill this page.", ""]
    else:
        try:
            data = json.loads(report.read_text())
            rows = data["results"]
            table = [(r["notebook"], r["kind"], r["profile"], r["status"], float(r["seconds"]),
                      float(r["peak_rss_mb"])) for r in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise SiteError(f"{report} is not a timing report of coursetools.runner ({type(exc).__name__}: {exc}); "
                            "delete it or run `make notebooks` again") from None
        total = sum(row[4] for row in table)
        failed = sum(row[3] != "ok" for row in table)
        noun = "notebook" if len(table) == 1 else "notebooks"
        lines += [f"Profile `{data.get('profile', '?')}`: {len(table)} {noun}, {failed} failed, "
                  f"{total:.1f} s in all.", "",
                  "| notebook | kind | profile | status | wall time (s) | peak memory (MB) |",
                  "|---|---|---|---|---:|---:|"]
        for notebook, kind, profile, status, seconds, peak in table:
            name = notebook.replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {profile} | {status} | {seconds:.1f} | {peak:.0f} |")
        lines.append("")
    page = dest / TIMINGS_PAGE
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines))
    return page


def build(root: Path, executed: Path, staging: Path, output: Path, report: Path | None = None) -> Path:
    """Stage the sources and the timing page and run ``jupyter-book build -W``; return the path of ``index.html``.

    ``report`` defaults to ``reports/timings.json`` beside ``executed`` (the runner writes both under ``_build``).
    """
    stage(root, executed, staging)
    write_timings_page(report or executed.parent / "reports" / "timings.json", staging)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(output),
           "-W", "-n", "--keep-going", "--builder", "html"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise SiteError(f"jupyter-book build failed (warnings count as errors):\n{tail}")
    index = output / "_build" / "html" / "index.html"
    if not index.exists():
        raise SiteError(f"jupyter-book exited 0 but wrote no {index} (is jupyter-book 2.x installed? pin <2)")
    write_rendered_copies(root, staging, index.parent)
    return index


def notebook_pages(staging: Path) -> list[str]:
    """Return the staged notebooks that are pages of the site (lessons and student exercises), as relative paths."""
    return sorted(str(p.relative_to(staging)) for folder in ("book", "notebooks")
                  for p in (staging / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def write_rendered_copies(root: Path, staging: Path, html: Path) -> list[Path]:
    """Write the Colab and download copies of every notebook page (coursetools.colab) into the built site."""
    citations = colab.load_citations(root / "book" / "references.bib")
    try:
        return colab.write_copies(staging, html, notebook_pages(staging), citations)
    except colab.RenderError as exc:
        raise SiteError(f"rendered copies for Colab: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Command line: ``build`` the site (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.site", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--executed", type=Path, default=None, help="executed notebooks (_build/executed)")
    parser.add_argument("--output", type=Path, default=None, help="where the site goes (_build/site)")
    parser.add_argument("--report", type=Path, default=None,
                        help="timing report shown on the Timings page (_build/reports/timings.json)")
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        index = build(root, args.executed or root / "_build" / "executed", root / "_build" / "site_src",
                      args.output or root / "_build" / "site", args.report)
    except SiteError as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    copies = index.parent / colab.FOLDER
    print(f"rendered notebooks (what the Colab and download buttons open): {copies}")
    print(f"site built: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
