"""The instructor's grading workflow, one command a step, wrapping the standard nbgrader CLI (autograder/README.md).

    python autograder/course.py init     COURSE_DIR            # course folder outside the repo, sources from solutions/
    python autograder/course.py release  COURSE_DIR            # nbgrader generate_assignment, for every assignment
    python autograder/course.py collect  COURSE_DIR ASSIGNMENT SUBMISSIONS  # an LMS folder/zip or nbgrader exchange layout
    python autograder/course.py autograde COURSE_DIR ASSIGNMENT
    python autograder/course.py feedback COURSE_DIR ASSIGNMENT
    python autograder/course.py export   COURSE_DIR grades.csv

Nothing nbgrader does is re-implemented here: this file only lays out the course folder and calls nbgrader.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_CONFIG = REPO / "autograder" / "nbgrader_config.py"
STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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
    cmd = [sys.executable, "-m", "nbgrader", *args]
    env = dict(os.environ)  # nbgrader runs `alembic` and kernels from PATH: use this environment's
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CourseError(f"`nbgrader {' '.join(args)}` failed:\n{proc.stdout}{proc.stderr}")
    return proc


def assignments(course: Path) -> list[str]:
    """Return the course's assignment names (the folders of source/)."""
    return sorted(p.name for p in (course / "source").iterdir() if p.is_dir())


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


def autograde(course: Path, assignment: str) -> None:
    """Grade every collected submission of an assignment (nbgrader autograde)."""
    nbgrader(course, "autograde", assignment, "--force", "--create")


def feedback(course: Path, assignment: str) -> None:
    """Write each student's feedback HTML under feedback/ (nbgrader generate_feedback)."""
    nbgrader(course, "generate_feedback", assignment, "--force")


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
            autograde(course, args.assignment)
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
