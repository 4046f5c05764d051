"""End to end: the real nbgrader CLI grades chapter 1 through autograder/course.py in a temporary course folder.

Oracle: the points written in the exercise source (8 for chapter 1); a correct submission earns all of them, the
untouched student notebook none, and a conv2d that ignores padding exactly the two "valid" test cells (2 + 2).
"""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"

spec = importlib.util.spec_from_file_location("course", REPO / "autograder" / "course.py")
course = importlib.util.module_from_spec(spec)
sys.modules["course"] = course  # dataclasses look their module up there
spec.loader.exec_module(course)

VALID_ONLY = '''
def conv2d(x, w, b=None, stride=1, padding="valid"):
    # Ignores padding: right for "valid", wrong for "same".
    kh, kw, _, c_out = w.shape
    h_out, w_out = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((h_out, w_out, c_out))
    for i in range(h_out):
        for j in range(w_out):
            out[i, j] = np.tensordot(x[i * stride:i * stride + kh, j * stride:j * stride + kw], w, axes=3)
    return out if b is None else out + b
'''


def solution_code(source: Path, grade_id: str) -> str:
    """The code between the solution markers of a source cell (what a perfect student writes)."""
    cell = next(c for c in json.loads(source.read_text())["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    lines = "".join(cell["source"]).splitlines()
    start = next(i for i, line in enumerate(lines) if "BEGIN SOLUTION" in line)
    end = next(i for i, line in enumerate(lines) if "END SOLUTION" in line)
    return "\n".join(lines[:start] + lines[start + 1:end] + lines[end + 1:])


def submit(released: Path, dest: Path, answers: dict) -> None:
    """Write a copy of the released notebook with the given cells' sources replaced, as a student would."""
    nb = json.loads(released.read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb))


@pytest.mark.slow
def test_nbgrader_grades_right_wrong_and_half_right_submissions(tmp_path):
    root = tmp_path / "course"
    course.init(root)
    assert ASSIGNMENT in course.release(root)
    released = root / "release" / ASSIGNMENT / NOTEBOOK
    perfect = solution_code(REPO / "solutions" / ASSIGNMENT / NOTEBOOK, "conv2d")

    inbox = tmp_path / "lms"  # an LMS download: one file per student, STUDENT_NOTEBOOK
    submit(released, inbox / f"alice_{NOTEBOOK}", {"conv2d": perfect})
    submit(released, inbox / f"bob_{NOTEBOOK}", {})
    submit(released, inbox / f"carol_{NOTEBOOK}", {"conv2d": VALID_ONLY})
    assert course.collect(root, ASSIGNMENT, inbox) == ["alice", "bob", "carol"]

    course.autograde(root, ASSIGNMENT)
    course.feedback(root, ASSIGNMENT)
    grades = {row["student_id"]: row for row in csv.DictReader(open(course.export(root, tmp_path / "grades.csv")))
              if row["assignment"] == ASSIGNMENT}  # the export has a row per student and assignment

    assert {s: float(r["score"]) for s, r in grades.items()} == {"alice": 8.0, "bob": 0.0, "carol": 4.0}
    assert {float(r["max_score"]) for r in grades.values()} == {8.0}
    for student in grades:
        assert (root / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).exists()


def test_course_folder_must_be_outside_the_repository():
    with pytest.raises(course.CourseError, match="inside the repository"):
        course.init(REPO / "my-course")


def test_collect_names_the_expected_layout_when_a_file_does_not_fit(tmp_path):
    root = tmp_path / "course"
    course.init(root)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "random.ipynb").write_text("{}")
    with pytest.raises(course.CourseError, match="STUDENT_"):
        course.collect(root, ASSIGNMENT, tmp_path / "in")
