"""The whole corpus of broken and hostile chapter 1 submissions, graded in one batch by autograder/course.py (its
trusted step included: the answer rule and the re-run of the answer cell, autograder/answer_rules).

Oracle: tests/corpus/make_corpus.py states, for each submission, the points its code earns honestly (the exercise's
test cells are worth 2 each; a correct conv2d earns 8, one right only for padding="valid" earns 4) and a phrase its
feedback line must contain. Grading runs with two workers (--jobs 2), so the merge of the per-worker gradebooks is
exercised too: every submission must be in the gradebook and the CSV export, with exactly its expected score.
"""

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from coursetools.course import load_script

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"


course = load_script("autograder/course.py")
corpus = load_script("tests/corpus/make_corpus.py")
# 45 s a cell: enough for the ungraded cell that imports TensorFlow on a loaded 2-core machine (17 s unloaded)
LIMITS = dict(cell_timeout=45, notebook_timeout=300, memory_mb=3072)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The corpus, plus copies under other names: the same code must get the same score, whatever its place in the
    batch (a perfect one first, and the half-right one graded five times in all, spread over both workers)."""
    tmp = tmp_path_factory.mktemp("corpus")
    root = tmp / "course"
    course.init(root)
    course.release(root)
    inbox = tmp / "lms"
    expected = corpus.write(root, inbox)
    twins = [("aaa-perfect", "perfect"), ("zzz-validonly", "validonly")]
    twins += [(f"repeat{i}-validonly", "validonly") for i in range(1, 4)]  # validonly graded 5 times in all
    for twin, original in twins:
        (inbox / f"{twin}_{NOTEBOOK}").write_bytes((inbox / f"{original}_{NOTEBOOK}").read_bytes())
        expected[twin] = expected[original]
    assert sorted(course.collect(root, ASSIGNMENT, inbox)) == sorted(expected)
    results = course.autograde(root, ASSIGNMENT, jobs=2, **LIMITS)
    course.feedback(root, ASSIGNMENT)
    grades = {r["student_id"]: r for r in csv.DictReader(open(course.export(root, tmp / "grades.csv")))
              if r["assignment"] == ASSIGNMENT}  # the export has a row per student and assignment
    return root, expected, {r.student: r for r in results}, grades, None


@pytest.mark.slow
def test_every_bad_submission_gets_its_deterministic_score(graded):
    root, expected, results, grades, _ = graded
    got = {s: float(grades[s]["score"]) for s in expected}
    wrong = {s: (got[s], expected[s][0], results[s].notes) for s in expected if got[s] != expected[s][0]}
    assert wrong == {}
    assert {float(grades[s]["max_score"]) for s in expected} == {8.0}


@pytest.mark.slow
def test_every_bad_submission_gets_a_feedback_line_that_says_what_went_wrong(graded):
    root, expected, results, grades, _ = graded
    missing = {s: results[s].notes for s, (_, phrase) in expected.items()
               if not any(phrase in line for line in results[s].notes)}
    assert missing == {}
    for student in expected:   # and the student can read it next to the feedback HTML
        notes = root / "feedback" / student / ASSIGNMENT / "grader_notes.txt"
        assert notes.read_text().startswith(f"{ASSIGNMENT}: {results[student].score:g} of 8 points")


@pytest.mark.slow
def test_no_grade_is_lost_in_the_parallel_merge(graded):
    root, expected, results, grades, _ = graded
    db = sqlite3.connect(root / "gradebook.db")
    rows = db.execute("SELECT s.student_id, COUNT(g.id) FROM submitted_assignment s "
                      "JOIN submitted_notebook n ON n.assignment_id = s.id JOIN grade g ON g.notebook_id = n.id "
                      "GROUP BY s.student_id").fetchall()
    assert dict(rows) == {s: 4 for s in expected}   # 4 graded cells each, no student missing or twice
    with open(root / "reports" / f"{ASSIGNMENT}.csv") as f:
        assert sorted(r["student_id"] for r in csv.DictReader(f)) == sorted(expected)


@pytest.mark.slow
def test_a_submission_cannot_write_outside_its_own_folder(graded):
    root, *_ = graded
    assert not (root / "planted.txt").exists() and not (REPO / "planted.txt").exists()
    assert sqlite3.connect(root / "gradebook.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    cells = json.loads((root / "autograded" / "writesgradebook" / ASSIGNMENT / NOTEBOOK).read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))
    if course.sandbox.namespaces_available():
        # 4 of the 5 writes fail; the fifth, to the scratch copy's gradebook, lands in /dev/null, bound over it
        assert printed.count("blocked: OSError") == 4


@pytest.mark.slow
def test_same_code_same_score_whatever_the_name_or_order(graded):
    _, _, results, _, _ = graded
    assert results["aaa-perfect"].score == results["perfect"].score == 8
    assert results["zzz-validonly"].score == results["validonly"].score == 4
    repeats = {s: r.score for s, r in results.items() if s.endswith("validonly")}
    assert len(repeats) == 5 and set(repeats.values()) == {4}, repeats


@pytest.mark.slow
def test_a_50_mb_printout_is_cut_before_it_reaches_the_gradebook_or_the_feedback(graded):
    root, _, results, _, _ = graded
    assert results["printsflood"].score == 8
    graded_nb = root / "autograded" / "printsflood" / ASSIGNMENT / NOTEBOOK
    feedback = root / "feedback" / "printsflood" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
    assert graded_nb.stat().st_size < 2 * 2**20 and feedback.stat().st_size < 3 * 2**20
    assert "output cut at 100,000 characters" in graded_nb.read_text()


@pytest.mark.slow
def test_no_process_a_submission_started_outlives_its_grading(graded):
    # Oracle: the process table; `outliveskernel` started a sleeper in a session of its own, marked by corpus.ORPHAN.
    alive = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if corpus.ORPHAN.encode() in cmdline.read_bytes():
                alive.append(cmdline.parent.name)
        except OSError:
            pass
    assert alive == [], f"processes started by a submission are still running: {alive}"


@pytest.mark.slow
def test_patches_under_other_aliases_and_names_computed_at_run_time_gain_nothing(graded):
    # Oracle: make_corpus.py's honest scores (the valid-only conv2d earns 4; a conv2d that calls TensorFlow, by a
    # computed name or not, or the course's or the grader's reference, earns 0 under the exercise's rule).
    _, expected, results, grades, _ = graded
    for student in ("aliaspatchnumpy", "aliaspatchkeras", "runtimename", "callsreference", "callsautograder",
                    "heldoutcomputedpath", "heldoutcomputedname", "outliveskernel"):
        assert float(grades[student]["score"]) == expected[student][0], (student, results[student].notes)
