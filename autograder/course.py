"""The instructor's grading workflow, one command a step, wrapping the standard nbgrader CLI (autograder/README.md).

    python autograder/course.py init     COURSE_DIR            # course folder outside the repo, sources from solutions/
    python autograder/course.py release  COURSE_DIR            # nbgrader generate_assignment, for every assignment
    python autograder/course.py collect  COURSE_DIR ASSIGNMENT SUBMISSIONS  # an LMS folder/zip or nbgrader exchange layout
    python autograder/course.py autograde COURSE_DIR ASSIGNMENT [--jobs N] [--cell-timeout S] [--memory-mb M]
    python autograder/course.py feedback COURSE_DIR ASSIGNMENT
    python autograder/course.py export   COURSE_DIR grades.csv

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
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (autograder/sandbox.py)
import submission  # noqa: E402  (autograder/submission.py)
import trusted  # noqa: E402  (autograder/trusted.py)

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


def release(course: Path) -> list[str]:
    """Generate the student version of every assignment (nbgrader generate_assignment) and record it."""
    names = assignments(course)
    for name in names:
        nbgrader(course, "generate_assignment", name, "--force")
    return names


def _student_notebooks(folder: Path, assignment: str, notebooks: list[str]):
    """Yield (student, notebook name, path) from an exchange layout or an LMS flat layout."""
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).parts
        if len(rel) == 3 and rel[1] == assignment:            # exchange: student/assignment/notebook.ipynb
            yield rel[0], path.name, path
        elif len(rel) == 2:                                    # student/notebook.ipynb
            yield rel[0], path.name, path
        elif len(rel) == 1:                                    # LMS: student_notebook.ipynb (or student_..._notebook)
            for nb in notebooks:
                if path.name.endswith("_" + nb):
                    yield path.name[: -len(nb) - 1].split("_")[0], nb, path
                    break
            else:
                raise CourseError(f"{path.name}: cannot tell the student and notebook apart; expected "
                                  f"STUDENT_{notebooks[0]} or STUDENT/{assignment}/{notebooks[0]}")


def collect(course: Path, assignment: str, submissions: Path) -> list[str]:
    """Copy a folder or zip of submissions into submitted/STUDENT/ASSIGNMENT/; return the students."""
    if assignment not in assignments(course):
        raise CourseError(f"unknown assignment {assignment!r}: this course has {', '.join(assignments(course))}")
    notebooks = sorted(p.name for p in (course / "source" / assignment).glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = submissions
        if submissions.suffix == ".zip":
            with zipfile.ZipFile(submissions) as archive:
                archive.extractall(tmp)
            folder = Path(tmp)
        if not folder.is_dir():
            raise CourseError(f"{submissions}: not a folder or a .zip of submissions")
        students = []
        for student, name, path in _student_notebooks(folder, assignment, notebooks):
            if not STUDENT_ID.match(student):
                raise CourseError(f"{path}: student id {student!r} must be letters, digits, '.', '_' or '-'")
            dest = course / "submitted" / student / assignment / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            students.append(student)
    return sorted(set(students))


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
    zeroed: bool = False  # scored 0 by the harness (not gradable, tampering, grader could not finish)
    flags: list[str] = field(default_factory=list)  # for the instructor: kernel and trusted verdicts disagree


def _start_scorer(work: Path, assignment: str) -> subprocess.Popen | None:
    """Start the batch's scorer (``autograder/trusted.py --serve``), which imports Keras once for every submission's
    trusted step; None for an assignment whose checks load no model (``KERAS = False``) or have none."""
    if not trusted.needs_keras(trusted.load_checks(assignment)):
        return None
    folder = work / "scorer"   # hidden from the kernels, like the held-out data
    folder.mkdir()
    with (work / "scorer.log").open("w") as log:
        scorer = subprocess.Popen([sys.executable, str(REPO / "autograder" / "trusted.py"), "--serve",
                                   str(folder / "s")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=log, start_new_session=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    (folder / "pid").write_text(str(scorer.pid))   # score_remote stops waiting for a scorer that has exited
    return scorer


def _scorer_warning(scorer: subprocess.Popen, log: Path) -> str | None:
    """The warning for a scorer that exited before the end of its batch (the last lines of its log), else None."""
    if scorer.poll() is None:
        return None
    tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
    return (f"course: warning: the batch's scorer (autograder/trusted.py --serve) exited with {scorer.returncode} "
            "before the batch ended; the submissions it did not score were scored in their own nbgrader processes "
            "(the same verdicts, about 5 CPU-s slower each). Its log ended with:\n    "
            + ("\n    ".join(tail) or "(nothing)"))


def _grade_one(course: Path, assignment: str, student: str, work: Path, limits: dict, isolate: bool,
               scorer: str | None = None) -> dict:
    """Grade one submission in a course copy of its own (own gradebook, own kernel sandbox); return its outcome.

    Runs in a worker thread; writes nothing in `course`. The caller merges the copy's gradebook afterwards."""
    scratch = work
    (scratch / "source").mkdir(parents=True)
    shutil.copytree(course / "source" / assignment, scratch / "source" / assignment)
    shutil.copyfile(course / "gradebook.db", scratch / "gradebook.db")
    released = {p.name: json.loads(p.read_text()) for p in (course / "release" / assignment).glob("*.ipynb")}
    out = {"student": student, "notes": [], "tampering": [], "graded": False, "zero": False, "trusted": {}}
    sub_dir = scratch / "submitted" / student / assignment
    sub_dir.mkdir(parents=True)
    for name, rel in sorted(released.items()):
        path = course / "submitted" / student / assignment / name
        if not path.exists():
            out["notes"].append(f"{name} was not submitted, so it scores 0")
            continue
        verdict = submission.inspect(path.read_bytes(), rel, name)
        out["notes"] += verdict.notes
        out["tampering"] += verdict.tampering
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
        # Hidden from the kernel: the held-out splits (autograder/data and an instructor's private folder), the course
        # folder, the solutions, and this copy's sources and submissions. Only the trusted step reads the held-out data.
        hidden = heldout_folders() + [course, REPO / "solutions", scratch / "source", scratch / "submitted"]
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
        + f"c.KernelManager.ip = {str(box / 'rt' / 'k')!r}\n")
    env = dict(os.environ, JUPYTER_PATH=str(box / "share/jupyter"), JUPYTER_RUNTIME_DIR=str(box / "rt"),
               JUPYTER_CONFIG_DIR=str(box / "jupyter-config"), PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2",
               CNNBOOK_ARTIFACTS=str(artifacts), CNNBOOK_INPUTS=str(inputs),
               AUTOGRADER_TRUSTED_REPORT=str(scratch / "trusted.json"))   # the trusted step (autograder/trusted.py)
    if scorer:
        env[trusted.SCORER_ENV] = scorer
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
        reason = "the kernel died (a call to os._exit, a crash, or the memory limit)" \
            if "DeadKernel" in (log or "") or "Kernel died" in (log or "") else "see the instructor's grading log"
        out["notes"].append(f"the grader could not finish running your notebook ({reason}), so it scores 0: "
                            "make sure Restart & Run All works from top to bottom")
        out["zero"] = True
    out["graded"] = (scratch / "autograded" / student / assignment).exists() and not out["zero"]
    return out


def _stop_kernel(pidfile: Path) -> None:
    """Kill a sandboxed kernel that outlived its nbgrader run (its launcher wrote its process id)."""
    try:
        pid = int(pidfile.read_text())
        os.killpg(pid, signal.SIGKILL)   # jupyter_client starts kernels in a session of their own
    except (OSError, ValueError):
        pass


MERGED_TABLES = ("submitted_assignment", "submitted_notebook", "grade", "comment")


def _merge(course: Path, scratch_db: Path, assignment: str, student: str) -> None:
    """Copy one student's submission rows from a worker's gradebook into the course gradebook (one writer)."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
    db = sqlite3.connect(course / "gradebook.db")
    try:
        db.execute("ATTACH DATABASE ? AS w", (str(scratch_db),))
        sa = "SELECT sa.id FROM w.submitted_assignment sa JOIN w.assignment a ON sa.assignment_id = a.id " \
             "WHERE sa.student_id = ? AND a.name = ?"
        sn = f"SELECT id FROM w.submitted_notebook WHERE assignment_id IN ({sa})"
        with db:
            db.execute(f"INSERT INTO submitted_assignment SELECT * FROM w.submitted_assignment WHERE id IN ({sa})",
                       (student, assignment))
            db.execute(f"INSERT INTO submitted_notebook SELECT * FROM w.submitted_notebook WHERE id IN ({sn})",
                       (student, assignment))
            for table in ("grade", "comment"):
                db.execute(f"INSERT INTO {table} SELECT * FROM w.{table} WHERE notebook_id IN ({sn})",
                           (student, assignment))
    finally:
        db.close()


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


def autograde(course: Path, assignment: str, jobs: int = 1, **limits) -> list[Result]:
    """Grade every collected submission of an assignment; return one Result a student, sorted by student.

    Each submission runs `nbgrader autograde --student` in a course copy of its own (own gradebook, sandboxed
    kernel); `jobs` of them at a time. Their gradebooks are merged one by one into the course gradebook afterwards
    (sqlite takes one writer), and a report of scores and feedback lines is written to reports/ASSIGNMENT.csv."""
    course = course.resolve()
    limits = {**LIMITS, **{k: v for k, v in limits.items() if v is not None}, "jobs": max(1, int(jobs))}
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise CourseError(f"unknown limits {sorted(unknown)}; use {sorted(LIMITS)}")
    if assignment not in assignments(course):
        raise CourseError(f"unknown assignment {assignment!r}: this course has {', '.join(assignments(course))}")
    if not (course / "release" / assignment).is_dir():
        raise CourseError(f"{assignment} is not released yet: run `python autograder/course.py release {course}`")
    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir())
    isolate = sandbox.namespaces_available()
    if not isolate:
        print("course: warning: this machine does not allow user namespaces, so student kernels run with resource "
              "limits only (no network or file-system isolation); see book/instructors.md", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="ag-"))   # short path: unix socket names are limited to 108 characters
    scorer = _start_scorer(work, assignment) if students else None
    try:
        with ThreadPoolExecutor(max_workers=limits["jobs"]) as pool:
            futures = {s: pool.submit(_grade_one, course, assignment, s, work / str(i), limits, isolate,
                                      scorer and scorer.args[-1])
                       for i, s in enumerate(students)}
            outcomes = {s: f.result() for s, f in futures.items()}
        for i, s in enumerate(students):  # merged one at a time, in a fixed order: the only writer of the gradebook
            o, scratch = outcomes[s], work / str(i)
            if o["graded"]:
                _merge(course, scratch / "gradebook.db", assignment, s)
                dest = course / "autograded" / s / assignment
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(scratch / "autograded" / s / assignment, dest)
            if o["zero"] or o["tampering"] or not o["graded"]:
                _zero(course, assignment, s)
        results = _results(course, assignment, students, outcomes, limits)
    finally:
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


def _results(course: Path, assignment: str, students: list[str], outcomes: dict, limits: dict) -> list[Result]:
    results = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for s in students:
            o = outcomes[s]
            sub = gb.find_submission(assignment, s)
            r = Result(s, float(sub.score), float(sub.max_score), list(o["notes"]),
                       bool(o["zero"] or o["tampering"] or not o["graded"]))
            if not r.zeroed:
                for nb in sub.notebooks:
                    scores = {g.name: (float(g.score), float(g.max_score)) for g in nb.grades}
                    r.notes += _cell_feedback(course / "autograded" / s / assignment / f"{nb.name}.ipynb",
                                              scores, limits)
            for nb_name, records in sorted(o.get("trusted", {}).items()):
                for gid, rec in sorted(records.items()):
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


def export(course: Path, csv_path: Path) -> Path:
    """Write the gradebook as a CSV file (nbgrader export)."""
    nbgrader(course, "export", f"--to={csv_path.resolve()}")
    return csv_path


def main(argv: list[str] | None = None) -> int:
    """Command line of the workflow; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python autograder/course.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for step in ("init", "release", "collect", "autograde", "feedback", "export"):
        p = sub.add_parser(step)
        p.add_argument("course", type=Path)
        if step in ("collect", "autograde", "feedback"):
            p.add_argument("assignment")
        if step == "collect":
            p.add_argument("submissions", type=Path)
        if step == "export":
            p.add_argument("csv", type=Path)
        if step == "autograde":
            p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
            p.add_argument("--cell-timeout", type=int, help=f"seconds a cell may run (default {LIMITS['cell_timeout']})")
            p.add_argument("--notebook-timeout", type=int,
                           help=f"seconds a whole notebook may run (default {LIMITS['notebook_timeout']})")
            p.add_argument("--memory-mb", type=int, help=f"memory limit of a kernel (default {LIMITS['memory_mb']})")
            p.add_argument("--threads", type=int, help="TensorFlow threads of a kernel (default: cores / jobs)")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    try:
        if args.step != "init" and not (course / "nbgrader_config.py").exists():
            raise CourseError(f"{course} is not a course folder: run `python autograder/course.py init {course}`")
        if args.step == "init":
            init(course)
        elif args.step == "release":
            print("released:", ", ".join(release(course)))
        elif args.step == "collect":
            print("collected:", ", ".join(collect(course, args.assignment, args.submissions)))
        elif args.step == "autograde":
            results = autograde(course, args.assignment, args.jobs, cell_timeout=args.cell_timeout,
                                notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb, threads=args.threads)
            for r in results:
                print(f"{r.student}: {r.score:g}/{r.max_score:g}  {r.notes[0]}"
                      + (f"  [FLAGGED: {len(r.flags)} disagreement(s), see the report]" if r.flags else ""))
            print("report:", course / "reports" / f"{args.assignment}.csv")
        elif args.step == "feedback":
            feedback(course, args.assignment)
        elif args.step == "export":
            print("grades written to", export(course, args.csv))
    except CourseError as exc:
        print(f"course: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
