"""End to end: the real nbgrader CLI grades chapter 1 through autograder/course.py in a temporary course folder.

Oracle: the points written in the exercise source (8 for chapter 1); a correct submission earns all of them, the
untouched student notebook none, and a conv2d that ignores padding exactly the two "valid" test cells (2 + 2).
"""

import csv
import json
import re
from pathlib import Path

import pytest

from coursetools.course import load_script
from coursetools.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"

from autograder import course  # noqa: E402
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


CH05 = "ch05_architectures"
CH05_NB = "ch05_architectures_exercises.ipynb"
BAND_CELLS = ("test_quality_band1", "test_quality_band2", "test_quality_band3")


def band_scores(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(CH05_NB[:-6], CH05, student)
        return {g.name: float(g.score) for g in nb.grades if g.name in BAND_CELLS}


# A kernel that tries to reach the batch's scorer (python -m autograder.scorer) to have it score something, and to
# make it look dead to the other submissions' graders by writing a pid that no process has beside its socket. The
# kernel is not told where the socket is (it is a setting of the grader's step, not of the kernel's environment) and
# the batch's folder is hidden from the sandbox (a private /tmp), so it looks where the grader puts it. (Were it not
# hidden, a dead-looking scorer would only make each grader score in its own process: the same verdicts, slower.)
SCORER_PROBE = """import errno, glob, os, socket
found = sorted(glob.glob("/tmp/ag-*/scorer/s")) + [p for p in [os.environ.get("AUTOGRADER_SCORER")] if p]
print(f"scorer socket found: {bool(found)}")
for path in found[:1]:
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path)
        print("scorer reached")
    except OSError as exc:
        print(f"scorer not reached: {type(exc).__name__}")
    try:
        with open(os.path.join(os.path.dirname(path), "pid"), "w") as f:
            f.write("999999999")
        print("scorer's pid file written")
    except OSError as exc:
        print(f"scorer's pid file not written: {errno.errorcode.get(exc.errno, exc.errno)}")
"""


@pytest.mark.slow
def test_ch05_best_model_is_scored_by_the_trusted_step_from_the_saved_model(tmp_path):
    """Oracle: the solution's calibrated model clears every band (autograder/calibration.json); the untouched
    release has no model; a model with a Lambda layer is refused by the trusted loader whatever its kernel says."""
    root = tmp_path / "course"
    course.init(root)
    course.release(root)
    released = root / "release" / CH05 / CH05_NB
    answers = solution_answers(REPO / "solutions" / CH05 / CH05_NB)
    inbox = tmp_path / "lms"
    submit(released, inbox / f"alice_{CH05_NB}", answers)
    submit(released, inbox / f"bob_{CH05_NB}", {"best_model": SCORER_PROBE})   # no model; probes the scorer
    lambda_model = answers["best_model"].replace("layers.Rescaling(1 / 255)", "layers.Lambda(lambda t: t / 255.0)")
    assert lambda_model != answers["best_model"]   # the reference model, scaled by a Lambda layer: refused
    submit(released, inbox / f"carol_{CH05_NB}", {**answers, "best_model": lambda_model})
    course.collect(root, CH05, inbox)
    results = {r.student: r for r in course.autograde(root, CH05, jobs=2)}

    points = {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])  # the source's
              for c in json.loads((REPO / "solutions" / CH05 / CH05_NB).read_text())["cells"]
              if c["metadata"].get("nbgrader", {}).get("grade_id") in BAND_CELLS}
    assert band_scores(root, "alice") == points and set(points) == set(BAND_CELLS)
    assert results["alice"].score == results["alice"].max_score and results["alice"].flags == []
    assert band_scores(root, "bob") == dict.fromkeys(BAND_CELLS, 0.0) and results["bob"].score == 0
    # the batch's scorer (python -m autograder.scorer) scored this batch; its socket is hidden from the kernels
    bob = json.loads((root / "autograded" / "bob" / CH05 / CH05_NB).read_text())
    probe = ["".join(o.get("text", "")) for c in bob["cells"] for o in c.get("outputs", [])
             if "scorer" in "".join(o.get("text", ""))]
    hidden = course.sandbox.namespaces_available()   # without namespaces the sandbox hides nothing (instructors.md)
    expected = ("scorer socket found: False\n" if hidden   # a private /tmp: the batch's folder is not there
                else "scorer socket found: True\nscorer reached\nscorer's pid file written\n")
    assert re.fullmatch(expected, "".join(probe)), probe
    assert band_scores(root, "carol") == dict.fromkeys(BAND_CELLS, 0.0)
    assert any("Lambda" in line and "Rescaling" in line for line in results["carol"].notes), results["carol"].notes
    assert results["carol"].flags, "the kernel passed a band the trusted check refused: that must be flagged"
    report = {row["student_id"]: row for row in csv.DictReader(open(root / "reports" / f"{CH05}.csv"))}
    assert report["carol"]["flags"] and not report["alice"]["flags"]
