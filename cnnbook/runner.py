"""Execute the course's notebooks with papermill in one profile and report wall times (README, "Main job").

``python -m cnnbook.runner --profile sample`` runs every lesson (``book/``), every exercise source
(``solutions/``) and every released student notebook (``notebooks/``). Lessons and sources must run without
error; a student notebook must stop only at its stubs' ``NotImplementedError``. Executed copies go to
``_build/executed/``, the timing report to ``_build/reports/timings.json``; the exit status is 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cnnbook.course import PROFILES, repo_root

KINDS = {"book": "lesson", "solutions": "source", "notebooks": "student"}
STUB_ERROR = "NotImplementedError"


class RunnerError(Exception):
    """A problem with the runner's input, reported as one line."""


@dataclass
class Result:
    """One executed notebook: what it was, how it ended, how long and how much memory it took."""

    notebook: str
    kind: str
    profile: str
    status: str
    seconds: float
    peak_rss_mb: float
    message: str = ""


def kind_of(path: Path, root: Path) -> str:
    """Return 'lesson', 'source' or 'student' from the notebook's top folder."""
    try:
        top = path.resolve().relative_to(root).parts[0]
    except ValueError:
        top = ""
    if top not in KINDS:
        raise RunnerError(f"{path}: not a course notebook (it must live under book/, solutions/ or notebooks/)")
    return KINDS[top]


def discover(root: Path) -> list[Path]:
    """Return every notebook of the course, lessons first, then sources, then student notebooks."""
    found = []
    for folder in KINDS:
        found += sorted(p for p in (root / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found


def check_notebook(path: Path) -> None:
    """Raise RunnerError unless ``path`` is a readable notebook with a ``parameters`` cell."""
    import nbformat

    if not path.exists():
        raise RunnerError(f"{path}: no such file")
    if path.suffix != ".ipynb":
        raise RunnerError(f"{path}: not a notebook (expected a .ipynb file)")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several types for unreadable JSON
        raise RunnerError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from None
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise RunnerError(f"{path}: no cell tagged 'parameters' (add one with PROFILE = \"sample\")")


def student_errors(nb) -> list[tuple[int, str, str]]:
    """Return (cell index, error name, message) of every error output in an executed notebook."""
    errors = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append((i, out.get("ename", "?"), out.get("evalue", "")))
    return errors


def judge_student(nb) -> str:
    """Return '' if a released notebook failed only at stubs, else a one-line reason (README, "Main job")."""
    errors = student_errors(nb)
    if not errors:
        return "ran without any NotImplementedError: a stub is missing or leaks its solution"
    first = errors[0]
    if first[1] != STUB_ERROR:
        return f"cell {first[0]} raised {first[1]}: {first[2]} (before any stub)"
    for index, name, value in errors[1:]:
        # After a stub failed, a later cell may miss a name that cell defined; anything else is a bug.
        if name not in (STUB_ERROR, "NameError"):
            return f"cell {index} raised {name}: {value}"
    return ""


def _execute(src: Path, dst: Path, profile: str, kind: str, cell_timeout: int) -> str:
    """Execute one notebook in this process; return '' on success or a one-line failure (worker side)."""
    import nbformat
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    if kind == "student":
        # A released notebook is meant to fail at its stubs: run every cell and judge the errors.
        import nbclient
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook

        nb = parameterize_notebook(load_notebook_node(str(src)), {"PROFILE": profile}, kernel_name="python3")
        nbclient.NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(src.parent)}}).execute()
        nbformat.write(nb, dst)
        return judge_student(nb)
    try:
        pm.execute_notebook(str(src), str(dst), parameters={"PROFILE": profile}, cwd=str(src.parent),
                            kernel_name="python3", execution_timeout=cell_timeout, progress_bar=False,
                            log_output=False, request_save_on_cell_execute=False)
    except pm.PapermillExecutionError as exc:
        return f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    return ""


def run_one(src: Path, root: Path, out_dir: Path, profile: str, cell_timeout: int) -> Result:
    """Execute one notebook in a child process and measure its wall time and peak memory."""
    kind = kind_of(src, root)
    rel = src.resolve().relative_to(root)
    dst = out_dir / rel
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "cnnbook.runner", "--worker", str(src), str(dst), profile, kind, str(cell_timeout)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        _, wait_status, rusage = os.wait4(proc.pid, 0)  # wait4, not wait(): it gives the child tree's rusage
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        out.seek(0), err.seek(0)
        lines, err_lines = out.read().strip().splitlines(), err.read().strip().splitlines()
    message = lines[-1] if lines else ""
    if proc.returncode != 0:
        message = f"runner worker exited with {proc.returncode}: " + (err_lines[-1] if err_lines else "no message")
    status = "ok" if message == "" else "FAILED"
    peak_mb = rusage.ru_maxrss / 1024  # Linux reports KiB; the largest process of the tree (the kernel)
    return Result(str(rel), kind, profile, status, round(seconds, 1), round(peak_mb, 1), message)


def format_table(results: list[Result]) -> str:
    """Return the per-notebook table printed at the end of a run."""
    width = max([len(r.notebook) for r in results] + [8])
    lines = [f"{'notebook':<{width}}  {'kind':<7}  {'status':<6}  {'seconds':>7}  {'peak MB':>7}"]
    for r in results:
        lines.append(f"{r.notebook:<{width}}  {r.kind:<7}  {r.status:<6}  {r.seconds:>7.1f}  {r.peak_rss_mb:>7.0f}")
        if r.message:
            lines.append(f"    -> {r.message}")
    total = sum(r.seconds for r in results)
    failed = sum(r.status != "ok" for r in results)
    lines.append(f"{len(results)} notebooks, {failed} failed, {total:.1f} s in all")
    return "\n".join(lines)


def run(paths: list[Path], profile: str, out_dir: Path, report: Path, cell_timeout: int,
        root: Path | None = None) -> list[Result]:
    """Validate every input first, then execute them one by one and write the JSON report."""
    root = root or repo_root()
    if profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    for p in paths:
        kind_of(p, root)
        check_notebook(p)
    results = []
    for p in paths:
        result = run_one(p, root, out_dir, profile, cell_timeout)
        print(f"{result.status:<6} {result.seconds:7.1f} s  {result.notebook}", flush=True)
        results.append(result)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"profile": profile, "results": [asdict(r) for r in results]}, indent=1) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line of the runner; see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        src, dst, profile, kind, timeout = argv[1:6]
        print(_execute(Path(src), Path(dst), profile, kind, int(timeout)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m cnnbook.runner", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all of the course)")
    parser.add_argument("--profile", default="sample", help="sample (offline, CI) or full (downloads)")
    parser.add_argument("--out", type=Path, default=None, help="folder for executed copies (_build/executed)")
    parser.add_argument("--report", type=Path, default=None, help="JSON timing report (_build/reports/timings.json)")
    parser.add_argument("--cell-timeout", type=int, default=1200, help="seconds a single cell may take")
    args = parser.parse_args(argv)
    try:
        root = repo_root()
        paths = args.notebooks or discover(root)
        results = run(paths, args.profile, args.out or root / "_build" / "executed",
                      args.report or root / "_build" / "reports" / "timings.json", args.cell_timeout, root)
    except (RunnerError, FileNotFoundError) as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 1 if any(r.status != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
