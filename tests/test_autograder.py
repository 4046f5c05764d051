"""End to end: the real nbgrader CLI grades chapter 1 through autograder/course.py in a temporary course folder.

Oracle: the points written in the exercise source (8 for chapter 1); a correct submission earns all of them, the
untouched student notebook none, and a conv2d that ignores padding exactly the two "valid" test cells (2 + 2).
"""

import csv
import json
from pathlib import Path

import pytest

from cnnbook.course import load_script
from cnnbook.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"

course = load_script("autograder/course.py")
corpus = load_script("tests/corpus/make_corpus.py")


def submit(released: Path, dest: Path, answers: dict) -> None:
    """Write a copy of the released notebook with the given cells' sources replaced, as a student would."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(fill_answers(json.loads(released.read_text()), answers)))


@pytest.mark.slow
def test_nbgrader_grades_right_wrong_and_half_right_submissions(tmp_path):
    root = tmp_path / "course"
    course.init(root)
    assert ASSIGNMENT in course.release(root)
    released = root / "release" / ASSIGNMENT / NOTEBOOK
    perfect = solution_answers(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)["conv2d"]

    inbox = tmp_path / "lms"  # an LMS download: one file per student, STUDENT_NOTEBOOK
    submit(released, inbox / f"alice_{NOTEBOOK}", {"conv2d": perfect})
    submit(released, inbox / f"bob_{NOTEBOOK}", {})
    submit(released, inbox / f"carol_{NOTEBOOK}", {"conv2d": corpus.VALID_ONLY})
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
