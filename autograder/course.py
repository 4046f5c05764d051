"""The instructor's grading workflow, one command a step, wrapping the standard nbgrader CLI (autograder/README.md).

    python -m autograder.course init     COURSE_DIR            # course folder outside the repo, sources from solutions/
    python -m autograder.course release  COURSE_DIR            # nbgrader generate_assignment, for every assignment
    python -m autograder.course collect  COURSE_DIR ASSIGNMENT SUBMISSIONS [--lms auto|canvas|moodle|blackboard|
                                                                             brightspace|nbgrader]  # an LMS export
    python -m autograder.course autograde COURSE_DIR ASSIGNMENT [--jobs N] [--cell-timeout S] [--memory-mb M]
                                                               [--profile sample|full]
    python -m autograder.course feedback COURSE_DIR ASSIGNMENT
    python -m autograder.course export   COURSE_DIR grades.csv [--lms canvas|moodle --assignment A [--column C]
                                                               [--points P]]   # nbgrader's CSV, or the LMS's import

(``python autograder/course.py …`` works too where the checkout is importable, as `make setup` arranges.)

Nothing nbgrader does is re-implemented here: this file only lays out the course folder and calls nbgrader.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from autograder import cluster as cluster_mod
from autograder import preprocessors, sandbox, submission, trusted

REPO = Path(__file__).resolve().parent.parent
SHARED_CONFIG = REPO / "autograder" / "nbgrader_config.py"
STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# `python -m nbgrader`, without jsonschema's optional IRI format checker: that package (rfc3987-syntax, an extra of
# jupyter-events) builds three Earley parsers when imported, about 1.9 CPU-s in every nbgrader process
# (benchmarks/bench_imports.py). No notebook schema uses an IRI format, so blocking the import (the ImportError
# jsonschema expects when the package is absent) changes no validation.
NBGRADER = [sys.executable, "-c", "import sys; sys.modules.setdefault('rfc3987_syntax', None); "
            "from nbgrader.apps.nbgraderapp import main; main()"]


class CourseError(Exception):
    """A problem with the instructor's input, reported as one line."""


def config_text(course: Path) -> str:
    """Return the course folder's nbgrader_config.py: the repository's settings, pointed at this folder."""
    return (
        "# Written by autograder/course.py init. Settings shared with the repository, then this course's folders.\n"
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({SHARED_CONFIG.name!r}, path={str(SHARED_CONFIG.parent)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.source_directory = 'source'\n"
        "c.CourseDirectory.release_directory = 'release'\n"
        f"c.CourseDirectory.db_url = {('sqlite:///' + str(course / 'gradebook.db'))!r}\n"
    )


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course folder; raise CourseError with its output if it fails."""
    cmd = [*NBGRADER, *args]
    env = dict(os.environ)  # nbgrader runs `alembic` and kernels from PATH: use this environment's
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CourseError(f"`nbgrader {' '.join(args)}` failed:\n{proc.stdout}{proc.stderr}")
    return proc


def assignments(course: Path) -> list[str]:
    """Return the course's assignment names (the folders of source/ that hold a notebook)."""
    return sorted(p.name for p in (course / "source").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def init(course: Path, solutions: Path = REPO / "solutions") -> None:
    """Create a course folder outside the repository with the exercise sources and nbgrader's configuration."""
    course = course.resolve()
    if course == REPO or REPO in course.parents:
        raise CourseError(f"{course} is inside the repository; put the course folder outside it (e.g. ~/cnn-course)")
    if (course / "nbgrader_config.py").exists():
        raise CourseError(f"{course} already holds a course (nbgrader_config.py exists); use another folder")
    course.mkdir(parents=True, exist_ok=True)
    shutil.copytree(solutions, course / "source", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (course / "nbgrader_config.py").write_text(config_text(course))


#: The course folder's cache of what the trusted checks prepare once (chapter 7's base): hidden from every kernel.
TRUSTED_CACHE = "trusted-cache"


def release(course: Path, prepare: bool = False) -> list[str]:
    """Generate the student version of every assignment (nbgrader generate_assignment) and record it; with
    ``prepare`` (the command line's `release`), also make once what an assignment's trusted checks need before any
    submission (a check module's ``prepare(cache, profile)``: chapter 7 trains its exercise's base), so that grading
    does not pay for it."""
    names = assignments(course)
    for name in names:
        nbgrader(course, "generate_assignment", name, "--force")
        module = trusted.load_checks(name) if prepare else None
        if module is not None and hasattr(module, "prepare"):
            module.prepare(course / TRUSTED_CACHE, "sample")
    return names


def collect(course: Path, assignment: str, submissions: Path, lms: str = "auto") -> list[str]:
    """Copy a folder or zip of submissions into submitted/STUDENT/ASSIGNMENT/; return the students.

    `lms`: the export's layout, canvas, moodle, blackboard, brightspace or nbgrader (exchange or STUDENT_NOTEBOOK),
    or auto (autograder/lms.py). A file that fits no student or notebook is skipped and reported, never stops the
    batch; of two files of one student and notebook the newest is kept. Every file has its line in
    reports/collect_ASSIGNMENT.txt, and LMS students are recorded in lms_students.csv for `export --lms`."""
    from autograder import lms as lms_io

    if assignment not in assignments(course):
        raise CourseError(f"unknown assignment {assignment!r}: this course has {', '.join(assignments(course))}")
    notebooks = sorted(p.name for p in (course / "source" / assignment).glob("*.ipynb"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder, mtimes = lms_io.unpack(submissions, Path(tmp))
            batch = lms_io.gather(folder, assignment, notebooks, lms, mtimes)
            for pick in batch.picks:
                dest = course / "submitted" / pick.student / assignment / pick.notebook
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pick.path, dest)
                if pick.timestamp is not None:   # the LMS's submission time, which nbgrader reads for lateness
                    (dest.parent / "timestamp.txt").write_text(pick.timestamp.isoformat(" "))
    except lms_io.LMSError as exc:
        raise CourseError(str(exc)) from exc
    lms_io.record(course, assignment, batch, str(submissions))
    return sorted({pick.student for pick in batch.picks})


#: threads: a kernel's TensorFlow/OpenMP threads; 0 shares the machine's cores among the `jobs` kernels.
LIMITS = {"cell_timeout": 300, "notebook_timeout": 900, "memory_mb": 4096, "jobs": 1, "threads": 0}
MAX_PROCS = 512   # processes and threads of one kernel (TensorFlow alone starts about a hundred threads)


def heldout_folders() -> list[Path]:
    """The folders of held-out data, which no kernel may read: autograder/data and $AUTOGRADER_HELDOUT_DIR."""
    folders = [REPO / "autograder" / "data"]
    if os.environ.get("AUTOGRADER_HELDOUT_DIR"):
        folders.append(Path(os.environ["AUTOGRADER_HELDOUT_DIR"]).resolve())
    return folders


@dataclass
class Result:
    """One student's outcome: what the gradebook holds after `autograde`, and the feedback lines."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    notes: list[str] = field(default_factory=list)
    zeroed: bool = False  # scored 0 by the harness (not gradable, or the grader could not finish)
    flags: list[str] = field(default_factory=list)  # for the instructor only: the scan's findings, and cells where
                                                    # the kernel's and the trusted verdicts disagree; no score change


def _start_scorer(work: Path, assignment: str, cache: Path | None = None) -> subprocess.Popen | None:
    """Start the batch's scorer (``python -m autograder.scorer``), which imports Keras once for every submission's
    trusted step; None for an assignment whose checks load no model (``KERAS = False``) or have none."""
    if not preprocessors.needs_keras(trusted.load_checks(assignment)):
        return None
    folder = work / "scorer"   # hidden from the kernels, like the held-out data
    folder.mkdir()
    with (work / "scorer.log").open("w") as log:
        scorer = subprocess.Popen([sys.executable, "-m", "autograder.scorer", str(folder / "s"),
                                   str(cache or folder / "cache")], cwd=REPO,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                  start_new_session=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    (folder / "pid").write_text(str(scorer.pid))   # score_remote stops waiting for a scorer that has exited
    scorer.socket = str(folder / "s")   # what each grading asks (its last argument is the cache, not the socket)
    return scorer


def _scorer_warning(scorer: subprocess.Popen, log: Path) -> str | None:
    """The warning for a scorer that exited before the end of its batch (the last lines of its log), else None."""
    if scorer.poll() is None:
        return None
    tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
    return (f"course: warning: the batch's scorer (python -m autograder.scorer) exited with {scorer.returncode} "
            "before the batch ended; the submissions it did not score were scored in their own nbgrader processes "
            "(the same verdicts, about 5 CPU-s slower each). Its log ended with:\n    "
            + ("\n    ".join(tail) or "(nothing)"))


def _grade_one(course: Path, assignment: str, student: str, work: Path, limits: dict, isolate: bool,
               scorer: str | None = None, profile: str = "sample") -> dict:
    """Grade one submission in a course copy of its own (own gradebook, own kernel sandbox); return its outcome.

    Runs in a worker thread; writes nothing in `course`. The caller merges the copy's gradebook afterwards."""
    scratch = work
    (scratch / "source").mkdir(parents=True)
    shutil.copytree(course / "source" / assignment, scratch / "source" / assignment)
    shutil.copyfile(course / "gradebook.db", scratch / "gradebook.db")
    released = {p.name: json.loads(p.read_text()) for p in (course / "release" / assignment).glob("*.ipynb")}
    out = {"student": student, "notes": [], "flags": [], "graded": False, "zero": False, "trusted": {}}
    sub_dir = scratch / "submitted" / student / assignment
    sub_dir.mkdir(parents=True)
    for name, rel in sorted(released.items()):
        path = course / "submitted" / student / assignment / name
        if not path.exists():
            out["notes"].append(f"{name} was not submitted, so it scores 0")
            continue
        verdict = submission.inspect(path.read_bytes(), rel, name)
        out["notes"] += verdict.notes
        out["flags"] += [f"{name}: {flag}" for flag in verdict.flags]
        if verdict.notebook is not None:
            (sub_dir / name).write_text(json.dumps(verdict.notebook))
    if not any(sub_dir.glob("*.ipynb")):
        out["zero"] = True
        return out
    timestamp = course / "submitted" / student / assignment / "timestamp.txt"
    if timestamp.exists():
        shutil.copyfile(timestamp, sub_dir / "timestamp.txt")

    # The kernel: its own working folder, home, temp and runtime folders, under the sandbox launcher.
    kernel_cwd = scratch / "autograded" / student / assignment
    box = scratch / "box"
    for d in ("home", "tmp", "rt", "ipython", "share/jupyter/kernels/python3", "artifacts"):
        (box / d).mkdir(parents=True, exist_ok=True)
    kernel_cwd.mkdir(parents=True)
    artifacts, inputs = box / "artifacts", scratch / "inputs"   # the kernel writes the first, only reads the second
    inputs.mkdir()
    cgroup = f"{os.getpid()}-{scratch.parent.name}-{scratch.name}"   # unique while several autogrades run at once
    launcher = [sys.executable, str(REPO / "autograder" / "sandbox.py"),
                "--memory-mb", str(limits["memory_mb"]), "--cpu-s", str(limits["notebook_timeout"] * 2),
                "--max-procs", str(MAX_PROCS), "--pids-cgroup", cgroup, "--pidfile", str(box / "kernel.pid")]
    if isolate:
        for d in (kernel_cwd, box / "home", box / "tmp", box / "rt", box / "ipython", artifacts):
            launcher += ["--writable", str(d)]
        launcher += ["--readable", str(inputs)]   # all the kernel sees of the batch's folder, with the folders above
        # Hidden from the kernel: the held-out splits (autograder/data and an instructor's private folder), the course
        # folder, the solutions, the batch's folder (the other submissions' copies, the scorer), and this copy's
        # sources and submissions. Only the trusted step reads the held-out data.
        hidden = heldout_folders() + [course, REPO / "solutions", scratch.parent, scratch / "source",
                                      scratch / "submitted"]
        for d in hidden + ([Path(scorer).parent] if scorer else []):   # the scorer's socket too
            launcher += ["--hide", str(d)]
        launcher += ["--hide-file", str(scratch / "gradebook.db"), "--hide-file", str(scratch / "nbgrader_config.py")]
    else:
        launcher += ["--no-namespaces"]
    threads = str(limits["threads"] or max(1, (os.cpu_count() or 1) // limits["jobs"]))
    kernelspec = {
        "argv": launcher + ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (autograder sandbox)", "language": "python",
        "interrupt_mode": "message",   # a signal would reach `unshare`, not the kernel it forked
        "env": {"CNNBOOK_ARTIFACTS": str(artifacts), "CNNBOOK_INPUTS": str(inputs),"HOME": str(box / "home"), "TMPDIR": str(box / "tmp"), "IPYTHONDIR": str(box / "ipython"),
                "MPLCONFIGDIR": str(box / "tmp"), "PYTHONHASHSEED": "0", "TF_DETERMINISTIC_OPS": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
                "TF_NUM_INTEROP_THREADS": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"},
    }
    (box / "share/jupyter/kernels/python3/kernel.json").write_text(json.dumps(kernelspec))
    (scratch / "nbgrader_config.py").write_text(
        config_text(scratch)
        + f"c.Execute.timeout = {int(limits['cell_timeout'])}\n"
        + "c.Execute.startup_timeout = 300  # a loaded machine can take minutes to start a kernel\n"
        + "c.KernelManager.transport = 'ipc'  # the kernel has no network, not even loopback: unix sockets\n"
        + f"c.KernelManager.ip = {str(box / 'rt' / 'k')!r}\n"
        + trusted_config(artifacts, inputs, scratch / "trusted.json", scorer, profile, limits["memory_mb"])
        + f"c.TrustedChecks.cache_dir = {str(course / TRUSTED_CACHE)!r}\n"
        + f"c.TrustedInputs.cache_dir = {str(course / TRUSTED_CACHE)!r}\nc.TrustedInputs.profile = {profile!r}\n")
    env = dict(os.environ, JUPYTER_PATH=str(box / "share/jupyter"), JUPYTER_RUNTIME_DIR=str(box / "rt"),
               JUPYTER_CONFIG_DIR=str(box / "jupyter-config"), PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [*NBGRADER, "autograde", assignment, f"--student={student}", "--force", "--create"]
    proc = subprocess.Popen(cmd, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=limits["notebook_timeout"])
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        out["notes"].append(f"grading your notebook took longer than the {limits['notebook_timeout']} s allowed "
                            "for a whole notebook, so it was stopped and scores 0: make it run faster")
        out["zero"] = True
    finally:
        _stop_kernel(box / "kernel.pid")
        sandbox.remove_pids_cgroup(cgroup)
    if (scratch / "trusted.json").exists():
        out["trusted"] = json.loads((scratch / "trusted.json").read_text())
    (scratch / "nbgrader.log").write_text(log or "")
    if proc.returncode not in (0, None) and not out["zero"]:
        out["notes"].append("the grader could not finish grading your notebook (see the instructor's grading log), "
                            "so it scores 0: make sure Restart & Run All works from top to bottom")
        out["zero"] = True
    died = re.search(r"ExecuteKeepingPoints: the kernel died in cell (\d+): (.*)", log or "")
    if died and not out["zero"]:
        out["notes"].insert(0, f"your notebook's kernel died in cell {died.group(1)} ({died.group(2).strip()}); the "
                               "cells that ran before it keep their points, the cells after it never ran and score 0: "
                               "make sure Restart & Run All works from top to bottom")
    out["graded"] = (scratch / "autograded" / student / assignment).exists() and not out["zero"]
    return out


def trusted_config(artifacts: Path, inputs: Path, report: Path, scorer: str | None, profile: str,
                   memory_mb: int) -> str:
    """The lines of a submission's nbgrader configuration that set the course's steps (autograder/preprocessors.py).

    The instructor's private held-out folder is $AUTOGRADER_HELDOUT_DIR (book/instructors.md), read where it is
    needed; everything else travels as these traitlets."""
    return (f"c.TrustedInputs.inputs_dir = {str(inputs)!r}\n"
            f"c.TrustedInputs.scorer = {scorer or ''!r}\n"
            f"c.TrustedChecks.artifacts_dir = {str(artifacts)!r}\n"
            f"c.TrustedChecks.report = {str(report)!r}\n"
            f"c.TrustedChecks.scorer = {scorer or ''!r}\n"
            f"c.TrustedChecks.profile = {profile!r}\n"
            f"c.ExecuteKeepingPoints.memory_mb = {int(memory_mb)}\n")


def _stop_kernel(pidfile: Path) -> None:
    """Kill a sandboxed kernel that outlived its nbgrader run (its launcher wrote its process id)."""
    try:
        pid = int(pidfile.read_text())
        os.killpg(pid, signal.SIGKILL)   # jupyter_client starts kernels in a session of their own
    except (OSError, ValueError):
        pass


def _merge(course: Path, scratch_db: Path, assignment: str, student: str) -> None:
    """Copy one student's graded submission from a worker's gradebook into the course gradebook (one writer).

    Through nbgrader's ``Gradebook`` API on both sides, so it depends on no table layout: the submission is created
    in the course gradebook as nbgrader creates it (one grade and comment per cell of the released notebooks), then
    each grade's and comment's values are copied from the worker's."""
    with Gradebook(f"sqlite:///{scratch_db}") as worker:
        sub = worker.find_submission(assignment, student)
        grades = {(nb.name, g.name): (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                  for nb in sub.notebooks for g in nb.grades}
        comments = {(nb.name, c.name): (c.auto_comment, c.manual_comment)
                    for nb in sub.notebooks for c in nb.comments}
        flagged = {nb.name: nb.flagged for nb in sub.notebooks}
        timestamp, extension = sub.timestamp, sub.extension
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
        new = gb.add_submission(assignment, student, timestamp=timestamp, extension=extension)
        for nb in new.notebooks:
            nb.flagged = flagged.get(nb.name, False)
            for g in nb.grades:
                if (nb.name, g.name) in grades:
                    g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade = grades[(nb.name, g.name)]
            for c in nb.comments:
                if (nb.name, c.name) in comments:
                    c.auto_comment, c.manual_comment = comments[(nb.name, c.name)]
        gb.db.commit()


def _zero(course: Path, assignment: str, student: str) -> None:
    """Give a submission 0 on every graded cell (nbgrader's manual score overrides the automatic one)."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_student(student)
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            sub = gb.add_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.manual_score = 0.0
                grade.needs_manual_grade = False
        gb.db.commit()


def _cell_feedback(notebook: Path, scores: dict, limits: dict) -> list[str]:
    """One line per graded cell that lost points: the cell, its points and the first line of its error."""
    lines = []
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError):
        return lines
    own_error_told = False
    for n, cell in enumerate(cells, 1):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if gid not in scores and errors and not own_error_told and cell.get("cell_type") == "code":
            own_error_told = True   # the first error in the student's own cells often explains the rest
            gid, scores = gid or f"cell {n}", {**scores, gid or f"cell {n}": None}
        elif gid not in scores or scores[gid][0] >= scores[gid][1] or not errors:
            continue
        ename, evalue = errors[-1].get("ename", ""), str(errors[-1].get("evalue", "")).strip().splitlines()
        evalue = evalue[0] if evalue else ""
        if ename == "CellTimeoutError":
            why = f"stopped after {limits['cell_timeout']} s — does a loop never end?"
        elif ename == "MemoryError":
            why = f"ran out of memory (the limit is {limits['memory_mb']} MB) — is an array far too large?"
        elif ename == "NameError":
            why = f"{evalue} — run your answer cell, and keep the names the exercise asks for"
        else:
            why = f"{ename}: {evalue}"
        where = f"{gid} ({scores[gid][0]:g} of {scores[gid][1]:g} points)" if scores[gid] else f"your code, {gid}"
        lines.append(f"{where}: {why[:300]}")
    return lines


def autograde(course: Path, assignment: str, jobs: int = 1, profile: str = "sample", *, force: bool = False,
              cluster: str | None = None, show_progress: bool = True, **limits) -> list[Result]:
    """Grade every collected submission of an assignment; return one Result a student, sorted by student.

    ``profile`` is the profile the submissions were made in, whose calibrated bands and held-out splits grade them
    (``full`` also needs $AUTOGRADER_HELDOUT_DIR; book/instructors.md).

    Each submission runs `nbgrader autograde --student` in a course copy of its own (own gradebook, sandboxed
    kernel); `jobs` of them at a time, or one task each on a Dask cluster (``cluster``: ``local:N`` or a scheduler's
    address; autograder/cluster.py). Each one's gradebook is merged into the course gradebook as soon as it is
    done, by this process alone (sqlite takes one writer), with a progress line and an estimate of the time left.
    A submission graded before, whose files, exercise, checks and bands have not changed since (its fingerprint in
    reports/state/), keeps its grade unless ``force``: a batch that was stopped resumes where it was. A report of
    scores, feedback lines and flags is written to reports/ASSIGNMENT.csv."""
    course = course.resolve()
    limits = {**LIMITS, **{k: v for k, v in limits.items() if v is not None}, "jobs": max(1, int(jobs))}
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise CourseError(f"unknown limits {sorted(unknown)}; use {sorted(LIMITS)}")
    if assignment not in assignments(course):
        raise CourseError(f"unknown assignment {assignment!r}: this course has {', '.join(assignments(course))}")
    if not (course / "release" / assignment).is_dir():
        raise CourseError(f"{assignment} is not released yet: run `python -m autograder.course release {course}`")
    if profile not in ("sample", "full"):
        raise CourseError(f"unknown profile {profile!r}: use sample or full")
    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir())
    isolate = sandbox.namespaces_available()
    print(f"course: student kernels get: {sandbox.describe()}", file=sys.stderr)
    if not isolate:
        print("course: warning: this machine does not let the sandbox isolate student kernels, so they run with "
              "resource limits only (no network or file-system isolation); see book/instructors.md", file=sys.stderr)
    fingerprints = {s: _fingerprint(course, assignment, s, profile) for s in students}
    kept = {} if force else _unchanged(course, assignment, students, fingerprints)
    todo = [s for s in students if s not in kept]
    if kept:
        print(f"course: {len(kept)} of {len(students)} submissions are unchanged since they were graded and keep their "
              "grades (--force regrades them)", file=sys.stderr)
    outcomes = dict(kept)
    work = Path(tempfile.mkdtemp(prefix="ag-"))   # short path: unix socket names are limited to 108 characters
    engine = cluster_mod.Cluster(cluster) if cluster and todo else None
    scorer = _start_scorer(work, assignment, course / TRUSTED_CACHE) if todo and engine is None else None
    progress = Progress(len(todo), enabled=show_progress)
    try:
        index = {s: i for i, s in enumerate(todo)}
        if engine is not None:
            futures = {engine.submit(str(course), assignment, s, limits, profile): s for s in todo}
            finished = engine.as_completed(list(futures))
        else:
            pool = ThreadPoolExecutor(max_workers=limits["jobs"])
            futures = {pool.submit(_grade_one, course, assignment, s, work / str(index[s]), limits, isolate,
                                   scorer and scorer.socket, profile): s for s in todo}
            finished = as_completed(futures)
        try:
            for future in finished:   # merged as each ends, by this thread alone: the only writer of the gradebook
                s = futures[future]
                scratch = work / str(index[s])
                o = future.result()
                if engine is not None:
                    o = cluster_mod.unpack(o, scratch, assignment, s)
                if o["graded"]:
                    _merge(course, scratch / "gradebook.db", assignment, s)
                    dest = course / "autograded" / s / assignment
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(scratch / "autograded" / s / assignment, dest)
                if o["zero"] or not o["graded"]:
                    _zero(course, assignment, s)
                outcomes[s] = o
                _save_state(course, assignment, s, fingerprints[s], o)
                shutil.rmtree(scratch, ignore_errors=True)
                progress.step(s)
        finally:
            if engine is None:
                pool.shutdown(wait=True, cancel_futures=True)
        results = _results(course, assignment, students, outcomes, limits)
    finally:
        if engine is not None:
            engine.close()
        if scorer is not None:
            if warning := _scorer_warning(scorer, work / "scorer.log"):
                print(warning, file=sys.stderr)
            try:
                os.killpg(scorer.pid, signal.SIGKILL)   # the scorer and any child still scoring
            except ProcessLookupError:
                pass
            scorer.wait()
        shutil.rmtree(work, ignore_errors=True)
    _write_report(course, assignment, results)
    return results


class Progress:
    """One line on stderr per graded submission: how many, the rate, and about how long is left."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def line(self, student: str) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed * 60 if elapsed > 0 else 0.0
        left = (self.total - self.done) * elapsed / self.done if self.done else 0.0
        width = 20
        bar = "#" * round(width * self.done / self.total) + "." * (width - round(width * self.done / self.total))
        eta = f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left"
        return (f"course: [{bar}] {self.done}/{self.total} graded ({student}), {rate:.1f} a minute, "
                + ("done" if self.done == self.total else eta))

    def step(self, student: str) -> None:
        self.done += 1
        if self.enabled:
            print(self.line(student), file=self.stream, flush=True)


def _fingerprint(course: Path, assignment: str, student: str, profile: str) -> str:
    """What a grade depends on: the submitted files, the exercise's source, its checks and bands, and the profile."""
    digest = hashlib.sha256(f"{assignment}\0{profile}\0".encode())
    folder = course / "submitted" / student / assignment
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        digest.update(path.read_bytes())
    checks = REPO / "autograder" / "checks" / f"{assignment}.py"
    if checks.is_file():
        digest.update(checks.read_bytes())
    digest.update(json.dumps(trusted.calibration().get(assignment, {}), sort_keys=True).encode())
    return digest.hexdigest()


def _state_file(course: Path, assignment: str, student: str) -> Path:
    return course / "reports" / "state" / assignment / f"{student}.json"


def _save_state(course: Path, assignment: str, student: str, fingerprint: str, outcome: dict) -> None:
    path = _state_file(course, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "outcome": outcome}))
    tmp.replace(path)   # whole or not at all, if the batch is killed here


def _unchanged(course: Path, assignment: str, students: list[str], fingerprints: dict) -> dict:
    """{student: outcome} of the submissions graded before with the same fingerprint and still in the gradebook."""
    kept = {}
    for s in students:
        try:
            state = json.loads(_state_file(course, assignment, s).read_text())
        except (OSError, ValueError):
            continue
        if state.get("fingerprint") == fingerprints[s] and isinstance(state.get("outcome"), dict):
            kept[s] = state["outcome"]
    if kept:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for s in list(kept):
                try:
                    gb.find_submission(assignment, s)
                except MissingEntry:
                    del kept[s]
    return kept


def _results(course: Path, assignment: str, students: list[str], outcomes: dict, limits: dict) -> list[Result]:
    results = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for s in students:
            o = outcomes[s]
            sub = gb.find_submission(assignment, s)
            r = Result(s, float(sub.score), float(sub.max_score), list(o["notes"]),
                       bool(o["zero"] or not o["graded"]), list(o["flags"]))
            if not r.zeroed:
                for nb in sub.notebooks:
                    scores = {g.name: (float(g.score), float(g.max_score)) for g in nb.grades}
                    r.notes += _cell_feedback(course / "autograded" / s / assignment / f"{nb.name}.ipynb",
                                              scores, limits)
            for nb_name, records in sorted(o.get("trusted", {}).items()):
                for gid, rec in sorted(records.items()):
                    r.flags += [f"{nb_name}/{gid}: {note}" for note in rec.get("notes", [])]
                    if rec.get("disagree"):
                        r.flags.append(f"{nb_name}/{gid}: the kernel's test {rec['kernel']}ed, the trusted check "
                                       f"{rec['trusted']}" + (f" ({rec['message'][:200]})" if rec["trusted"] == "error"
                                                              else ""))
            if not r.notes:
                r.notes.append("all tests passed" if r.score == r.max_score else "some tests failed")
            results.append(r)
    return results


def _write_report(course: Path, assignment: str, results: list[Result]) -> Path:
    """reports/ASSIGNMENT.csv: student, score, max_score, feedback (the lines joined with ' | ')."""
    path = course / "reports" / f"{assignment}.csv"
    path.parent.mkdir(exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "score", "max_score", "feedback", "flags"])
        for r in results:
            writer.writerow([r.student, f"{r.score:g}", f"{r.max_score:g}", " | ".join(r.notes), " | ".join(r.flags)])
    return path


def feedback(course: Path, assignment: str) -> None:
    """Write each student's feedback HTML under feedback/ (nbgrader generate_feedback), plus the grader's notes."""
    nbgrader(course, "generate_feedback", assignment, "--force")
    report = course / "reports" / f"{assignment}.csv"
    if report.exists():
        for row in csv.DictReader(open(report)):
            dest = course / "feedback" / row["student_id"] / assignment
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "grader_notes.txt").write_text(
                f"{assignment}: {row['score']} of {row['max_score']} points\n"
                + "".join(f"- {line}\n" for line in row["feedback"].split(" | ")))


def export(course: Path, csv_path: Path, lms: str | None = None, assignment: str | None = None,
           column: str | None = None, points: float | None = None) -> Path:
    """Write the gradebook as a CSV file (nbgrader export), or, with `lms` (canvas, moodle), one assignment's grades
    in that LMS's import format under its user ids (autograder/lms.py; lms_students.csv written by `collect`)."""
    if lms is None:
        nbgrader(course, "export", f"--to={csv_path.resolve()}")
        return csv_path
    from autograder import lms as lms_io

    if not assignment:
        raise CourseError(f"--lms {lms} exports one assignment: add --assignment ASSIGNMENT")
    try:
        for line in lms_io.export_grades(course, assignment, lms, csv_path, column, points):
            print(line)
    except lms_io.LMSError as exc:
        raise CourseError(str(exc)) from exc
    return csv_path


def main(argv: list[str] | None = None) -> int:
    """Command line of the workflow; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m autograder.course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for step in ("init", "release", "collect", "autograde", "feedback", "export"):
        p = sub.add_parser(step)
        p.add_argument("course", type=Path)
        if step in ("collect", "autograde", "feedback"):
            p.add_argument("assignment")
        if step == "collect":
            p.add_argument("submissions", type=Path)
            p.add_argument("--lms", default="auto",
                           choices=("auto", "canvas", "moodle", "blackboard", "brightspace", "nbgrader"),
                           help="the layout of the LMS's export (default auto: detected from the file names)")
        if step == "export":
            p.add_argument("csv", type=Path)
            p.add_argument("--lms", choices=("canvas", "moodle"),
                           help="write one assignment's grades in this LMS's import format (default: nbgrader's CSV)")
            p.add_argument("--assignment", help="the assignment whose grades --lms writes")
            p.add_argument("--column", help="Canvas: the assignment's column heading, 'Name (id)' as in its export")
            p.add_argument("--points", type=float, help="rescale the scores to this maximum (the LMS's points)")
        if step == "autograde":
            p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
            p.add_argument("--cell-timeout", type=int, help=f"seconds a cell may run (default {LIMITS['cell_timeout']})")
            p.add_argument("--notebook-timeout", type=int,
                           help=f"seconds a whole notebook may run (default {LIMITS['notebook_timeout']})")
            p.add_argument("--memory-mb", type=int, help=f"memory limit of a kernel (default {LIMITS['memory_mb']})")
            p.add_argument("--threads", type=int, help="TensorFlow threads of a kernel (default: cores / jobs)")
            p.add_argument("--profile", default="sample", choices=("sample", "full"),
                           help="the profile the students worked in, whose bands grade (default sample)")
            p.add_argument("--force", action="store_true",
                           help="regrade every submission (default: only those new or changed since graded)")
            p.add_argument("--cluster", help="grade on Dask workers: local:N (N processes here) or a scheduler's "
                                             "address, tcp://HOST:8786 (autograder/cluster.py)")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    try:
        if args.step != "init" and not (course / "nbgrader_config.py").exists():
            raise CourseError(f"{course} is not a course folder: run `python -m autograder.course init {course}`")
        if args.step == "init":
            init(course)
        elif args.step == "release":
            print("released:", ", ".join(release(course, prepare=True)))
        elif args.step == "collect":
            students = collect(course, args.assignment, args.submissions, args.lms)
            print((course / "reports" / f"collect_{args.assignment}.txt").read_text(encoding="utf-8"), end="")
            print("collected:", ", ".join(students))
        elif args.step == "autograde":
            results = autograde(course, args.assignment, args.jobs, args.profile, force=args.force,
                                cluster=args.cluster, cell_timeout=args.cell_timeout,
                                notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb, threads=args.threads)
            for r in results:
                print(f"{r.student}: {r.score:g}/{r.max_score:g}  {r.notes[0]}"
                      + (f"  [FLAGGED: {len(r.flags)} line(s) for you to read in the report; no score changed]"
                         if r.flags else ""))
            print("report:", course / "reports" / f"{args.assignment}.csv")
        elif args.step == "feedback":
            feedback(course, args.assignment)
        elif args.step == "export":
            print("grades written to", export(course, args.csv, args.lms, args.assignment, args.column, args.points))
    except CourseError as exc:
        print(f"course: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
