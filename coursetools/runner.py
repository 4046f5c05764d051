"""Execute the course's notebooks with papermill in one profile and report wall times (README, "Main job").

``python -m coursetools.runner --profile sample`` runs every lesson (``book/``), every exercise source
(``solutions/``) and every released student notebook (``notebooks/``). Lessons and sources must run without
error; a student notebook must stop only at its stubs' ``NotImplementedError``. Executed copies go to
``_build/executed/``, the timing report to ``_build/reports/timings.json``; the exit status is 1 if anything failed.

Cache: a notebook that ran cleanly is not run again while the key of its run is unchanged: the hash of the notebook,
of every file of the ``cnnbook`` package and of ``autograder/data`` (what the notebooks import and read), the
profile, the backend and the Keras/TensorFlow versions (``_build/cache/``; ``--no-cache`` runs everything).

``--backend tensorflow|jax|torch`` sets ``KERAS_BACKEND`` for the kernel; a notebook whose metadata says
``"cnnbook": {"backends": ["tensorflow"]}`` is skipped on the others with its ``backends_why``
(README, "Supported stacks and backends"). ``--jobs N`` runs N notebooks at a time,
the longest first (the seconds of the last report, else ``coursetools/runtimes.json``), so that the workers end
together: in discovery order the longest lesson (chapter 9) started last and one worker idled at the end.

Test mirror (issue 39): ``--profile full --mirror`` runs the ``full`` profile without the network, against a test
mirror of every ``full`` download (``coursetools/mirror.py``) built in a temporary folder and served on 127.0.0.1,
with the smoke knob ``CNNBOOK_SMOKE=1`` (``cnnbook.profiles``: ``full`` code paths at no more than the ``sample``
sizes, accuracy thresholds reported rather than asserted) and a temporary download cache. Nothing is cached.

Threads: each kernel computes on ``--threads`` threads (default 1: TensorFlow's intra-op pool and OpenMP), whatever
``--jobs`` is. Two kernels with TensorFlow's default pools (one thread a core each) on a 2-core machine fight for the
cores; and a seeded run's numbers depend on the thread count, so the executed lessons (and the outputs committed from
them) are the same at any ``--jobs``. The thread count is part of the cache key.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from coursetools.course import PROFILES, repo_root

# papermill and nbformat validate notebooks with jsonschema, whose optional IRI format checker (rfc3987-syntax, an
# extra of jupyter-events) builds three Earley parsers when it is imported: 1.7 of the 2.3 CPU-s that importing
# papermill costs each worker (benchmarks/bench_imports.py). No notebook schema uses an IRI format, so blocking that
# import (the ImportError jsonschema expects when the package is absent) changes no validation.
sys.modules.setdefault("rfc3987_syntax", None)

KINDS = {"book": "lesson", "solutions": "source", "notebooks": "student"}
STUB_ERROR = "NotImplementedError"
BACKENDS = ("tensorflow", "jax", "torch")
#: What a notebook's run depends on besides the notebook itself (folders relative to the checkout).
CACHE_INPUTS = ("cnnbook", "autograder/data")   # the grader's code is never run by a notebook
#: Seconds of each notebook in a cold `make all` (only the order of the work depends on them; refresh them from
#: _build/reports/timings.json after a lesson gets much longer or shorter).
RUNTIMES = Path(__file__).with_name("runtimes.json")


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
    backend: str = "tensorflow"
    cached: bool = False
    threads: int = 1


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


def expected_seconds(report: Path) -> dict[str, float]:
    """Return {notebook: seconds} of earlier runs: ``coursetools/runtimes.json``, updated by the last report's."""
    known = json.loads(RUNTIMES.read_text())
    try:
        known.update({r["notebook"]: r["seconds"] for r in json.loads(report.read_text())["results"]
                      if r["status"] == "ok"})   # a cache hit keeps the seconds of the run that filled it
    except (OSError, ValueError, KeyError):  # no report yet (a fresh clone), or one of another format
        pass
    return known


def longest_first(paths: list[Path], root: Path, seconds: dict[str, float]) -> list[Path]:
    """Order notebooks (under ``root``: ``run`` checked) by their expected run time, longest first; unknown ones
    first, since they may be long."""
    return sorted(paths, key=lambda p: -seconds.get(str(p.resolve().relative_to(root.resolve())), float("inf")))


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
    # A visible test that reports a stub ("... still raises NotImplementedError ...") counts as the stub's failure.
    errors = [(i, STUB_ERROR if name == "AssertionError" and STUB_ERROR in value else name, value)
              for i, name, value in errors]
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
    if kind == "source":
        _grader_folders(src)
    try:
        pm.execute_notebook(str(src), str(dst), parameters={"PROFILE": profile}, cwd=str(src.parent),
                            kernel_name="python3", execution_timeout=cell_timeout, progress_bar=False,
                            log_output=False, request_save_on_cell_execute=False)
    except pm.PapermillExecutionError as exc:
        return f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a cell over --cell-timeout, a dead kernel: one line, not the traceback's last
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first}"
    return ""


def _grader_folders(src: Path) -> None:
    """Give an exercise source what its hidden cells read and write under the grader (autograder/PROTOCOL.md §5).

    The grader's inputs for function tests are written to a temporary folder, and artifacts go to another one, so
    that nothing lands in ``solutions/`` (nbgrader copies every file there into the release). Worker side only.
    """
    import tempfile

    from autograder import trusted
    scratch = Path(tempfile.mkdtemp(prefix="runner-grader-"))
    module = trusted.load_checks(src.parent.name)
    if module is not None:
        trusted.write_inputs(module, scratch / "inputs")
    os.environ["CNNBOOK_INPUTS"] = str(scratch / "inputs")
    os.environ["CNNBOOK_ARTIFACTS"] = str(scratch / "artifacts")


def backends_of(path: Path) -> tuple[list[str], str]:
    """Return the backends a notebook runs on (metadata ``cnnbook.backends``, default all) and why."""
    meta = json.loads(path.read_text()).get("metadata", {}).get("cnnbook", {})
    return list(meta.get("backends", BACKENDS)), meta.get("backends_why", "")


def _files_digest(root: Path, folders=CACHE_INPUTS) -> str:
    """Return a hash of every file under ``folders`` of the checkout (names and contents)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stack() -> str:
    """Return the versions of Python, Keras and TensorFlow of this environment (without importing them)."""
    from importlib import metadata

    versions = [sys.version.split()[0]]
    for name in ("keras", "tensorflow", "jax", "torch"):
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return " ".join(versions)


def cache_key(src: Path, root: Path, profile: str, backend: str, inputs_digest: str | None = None,
              threads: int = 1) -> str:
    """Return the key of one run: notebook, package sources and data, profile, backend, stack and thread count."""
    digest = hashlib.sha256(src.read_bytes())
    for part in (inputs_digest or _files_digest(root), profile, backend, _stack(), f"threads={threads}"):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


def run_one(src: Path, root: Path, out_dir: Path, profile: str, cell_timeout: int, backend: str = "tensorflow",
            cache: Path | None = None, inputs_digest: str | None = None, threads: int = 1) -> Result:
    """Execute one notebook in a child process (or take it from the cache); measure wall time and peak memory."""
    kind = kind_of(src, root)
    rel = src.resolve().relative_to(root)
    dst = out_dir / rel
    allowed, why = backends_of(src)
    if backend not in allowed:
        return Result(str(rel), kind, profile, "skipped", 0.0, 0.0,
                      f"needs {', '.join(allowed)}: {why or 'no reason given in backends_why'}", backend,
                      threads=threads)
    key = cache_key(src, root, profile, backend, inputs_digest, threads) if cache else ""
    if cache and (cache / f"{key}.json").exists() and (cache / f"{key}.ipynb").exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache / f"{key}.ipynb", dst)
        kept = json.loads((cache / f"{key}.json").read_text())
        return Result(**{**kept, "cached": True})
    result = _run_child(src, dst, rel, kind, profile, cell_timeout, backend, threads)
    if cache and result.status == "ok":
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dst, cache / f"{key}.ipynb")
        (cache / f"{key}.json").write_text(json.dumps(asdict(result)))
    return result


def _run_child(src: Path, dst: Path, rel: Path, kind: str, profile: str, cell_timeout: int, backend: str,
               threads: int = 1) -> Result:
    """Execute one notebook in a child process on ``threads`` threads; measure its wall time and peak memory."""
    env = dict(os.environ)
    env.update({"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)})
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = backend
    cmd = [sys.executable, "-m", "coursetools.runner", "--worker", str(src), str(dst), profile, kind, str(cell_timeout)]
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
    return Result(str(rel), kind, profile, status, round(seconds, 1), round(peak_mb, 1), message, backend,
                  threads=threads)


def format_table(results: list[Result]) -> str:
    """Return the per-notebook table printed at the end of a run."""
    width = max([len(r.notebook) for r in results] + [8])
    lines = [f"{'notebook':<{width}}  {'kind':<7}  {'status':<7}  {'seconds':>7}  {'peak MB':>7}"]
    for r in results:
        lines.append(f"{r.notebook:<{width}}  {r.kind:<7}  {r.status:<7}  {r.seconds:>7.1f}  {r.peak_rss_mb:>7.0f}"
                     + ("  (cached)" if r.cached else ""))
        if r.message:
            lines.append(f"    -> {r.message}")
    ran = sum(r.seconds for r in results if not r.cached)
    passed = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    failed = sum(r.status == "FAILED" for r in results)
    cached = sum(r.cached for r in results)
    backend = results[0].backend if results else "tensorflow"
    threads = results[0].threads if results else 1
    lines.append(f"{len(results)} notebooks on {backend}, {threads} thread{'s' * (threads > 1)} each: {passed} passed, "
                 f"{skipped} skipped, {failed} failed; {cached} from the cache; {ran:.1f} s of execution")
    return "\n".join(lines)


def run(paths: list[Path], profile: str, out_dir: Path, report: Path, cell_timeout: int,
        root: Path | None = None, backend: str = "tensorflow", cache: Path | None = None,
        jobs: int = 1, threads: int = 1) -> list[Result]:
    """Validate every input first, then execute them (``jobs`` at a time, ``threads`` each) and write the report."""
    root = root or repo_root()
    if profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    if backend not in BACKENDS:
        raise RunnerError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    threads = int(threads)
    if threads < 1:
        raise RunnerError(f"--threads {threads}: a kernel needs at least 1 thread (the default is 1)")
    for p in paths:
        kind_of(p, root)
        check_notebook(p)
    inputs_digest = _files_digest(root) if cache else None

    def one(p: Path) -> Result:
        result = run_one(p, root, out_dir, profile, cell_timeout, backend, cache, inputs_digest, threads)
        print(f"{result.status:<7} {result.seconds:7.1f} s  {result.notebook}" + ("  (cached)" if result.cached else ""),
              flush=True)
        return result

    order = longest_first(paths, root, expected_seconds(report)) if jobs > 1 else paths
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = dict(zip(order, pool.map(one, order)))
    results = [done[p] for p in paths]   # the report and the table keep the order of the input
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"profile": profile, "backend": backend,
                                  "results": [asdict(r) for r in results]}, indent=1) + "\n")
    return results


#: Images per class of the test mirror that ``--mirror`` builds (``coursetools.mirror.build``): enough for each
#: notebook's largest fixed draws (chapter 7's exercise takes 100 labelled images a class), few enough to train on.
MIRROR_PER_CLASS = 80


@contextlib.contextmanager
def test_mirror(per_class: int = MIRROR_PER_CLASS):
    """Build the test mirror in a temporary folder, serve it on 127.0.0.1 and set, for this process and the kernels
    it starts, the variables that point the course at it, the smoke knob and a temporary download cache."""
    from unittest import mock

    from cnnbook.profiles import SMOKE_ENV
    from coursetools import mirror

    with tempfile.TemporaryDirectory(prefix=f"{mirror.FOLDER_NAME}-") as tmp:
        folder = Path(tmp) / mirror.FOLDER_NAME
        mirror.build(folder, per_class=per_class)
        with mirror.serve(folder) as address:
            env = {**mirror.environment(address, folder), SMOKE_ENV: "1", "CNNBOOK_CACHE": str(Path(tmp) / "cache")}
            with mock.patch.dict(os.environ, env):   # restored as it was on the way out
                yield env


def main(argv: list[str] | None = None) -> int:
    """Command line of the runner; see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        src, dst, profile, kind, timeout = argv[1:6]
        print(_execute(Path(src), Path(dst), profile, kind, int(timeout)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m coursetools.runner", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all of the course)")
    parser.add_argument("--profile", default="sample", help="sample (offline, CI) or full (downloads)")
    parser.add_argument("--out", type=Path, default=None, help="folder for executed copies (_build/executed)")
    parser.add_argument("--report", type=Path, default=None, help="JSON timing report (_build/reports/timings.json)")
    parser.add_argument("--cell-timeout", type=int, default=1200, help="seconds a single cell may take")
    parser.add_argument("--backend", default="tensorflow", help="Keras backend of the kernels: tensorflow, jax, torch")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at the same time")
    parser.add_argument("--threads", type=int, default=1,
                        help="compute threads of each kernel (default 1; part of the cache key, changes the numbers)")
    parser.add_argument("--no-cache", action="store_true", help="execute every notebook, even unchanged ones")
    parser.add_argument("--kinds", default="lesson,source,student",
                        help="which notebooks of the course to run by default (comma-separated)")
    parser.add_argument("--mirror", action="store_true",
                        help="with --profile full: download from a local test mirror, at smoke-test sizes (CI)")
    args = parser.parse_args(argv)
    if args.mirror:
        if args.profile != "full":
            print("runner: --mirror runs the full profile: add --profile full", file=sys.stderr)
            return 2
        with test_mirror():
            return _main(args)
    return _main(args)


def _main(args) -> int:
    """Run what the parsed command line ``args`` asks for; the exit status."""
    try:
        root = repo_root()
        kinds = set(args.kinds.split(","))
        paths = args.notebooks or [p for p in discover(root) if kind_of(p, root) in kinds]
        suffix = "" if args.backend == "tensorflow" else f"-{args.backend}"
        suffix += "-full-mirror" if args.mirror else ""   # never over the sample run's copies, never cached
        results = run(paths, args.profile, args.out or root / "_build" / f"executed{suffix}",
                      args.report or root / "_build" / "reports" / f"timings{suffix}.json", args.cell_timeout, root,
                      args.backend, None if args.no_cache or args.mirror else root / "_build" / "cache", args.jobs,
                      args.threads)
    except (RunnerError, FileNotFoundError) as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 1 if any(r.status == "FAILED" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
