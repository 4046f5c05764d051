"""Grading at class scale (issue 38): a progress line, a batch that resumes where it stopped, and a Dask cluster.

Oracle: the gradebook of a plain one-machine batch of the same submissions (nbgrader's own scores), and the points
each chapter 1 submission's code earns (2 a test cell: the perfect answer 8, one right only for padding="valid" 4,
the untouched stub 0).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import course
from coursetools.course import load_script
from coursetools.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"
LIMITS = dict(cell_timeout=60, notebook_timeout=300, memory_mb=3072)


def test_the_progress_line_counts_and_estimates_the_time_left():
    out = io.StringIO()
    progress = course.Progress(4, stream=out)
    progress.started -= 60                     # one minute ago
    progress.step("alice")
    line = out.getvalue().strip()
    assert "1/4 graded (alice)" in line and "1.0 a minute" in line and "about 3 min left" in line, line
    assert "[#####..............." in line
    progress.step("bob"), progress.step("carol"), progress.step("dave")
    assert out.getvalue().strip().splitlines()[-1].endswith("done")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    root = tmp / "course"
    course.init(root)
    course.release(root)
    return root


def submissions(root: Path, inbox: Path) -> dict[str, float]:
    """Four students: two perfect, one right for padding="valid" only, one untouched; their expected points."""
    rel = json.loads((root / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    perfect = solution_answers(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)["conv2d"]
    valid_only = load_script("tests/corpus/make_corpus.py").VALID_ONLY   # the corpus's half-right answer
    answers = {"ann": perfect, "ben": perfect, "cat": valid_only, "dan": None}
    inbox.mkdir(parents=True, exist_ok=True)
    for student, answer in answers.items():
        nb = fill_answers(json.loads(json.dumps(rel)), {"conv2d": answer} if answer else {})
        (inbox / f"{student}_{NOTEBOOK}").write_text(json.dumps(nb))
    return {"ann": 8.0, "ben": 8.0, "cat": 4.0, "dan": 0.0}


def scores(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(ASSIGNMENT)}


def fresh_course(released: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(released, dest)
    return dest


@pytest.mark.slow
def test_a_batch_resumes_after_it_is_killed_and_regrades_only_what_changed(released, tmp_path):
    root = fresh_course(released, tmp_path / "course")
    expected = submissions(root, tmp_path / "lms")
    assert sorted(course.collect(root, ASSIGNMENT, tmp_path / "lms")) == sorted(expected)
    # grade in a process of its own and kill it once the first submission is merged (its progress line is out)
    cmd = [sys.executable, "-m", "autograder.course", "autograde", str(root), ASSIGNMENT, "--jobs", "1",
           "--cell-timeout", "60", "--notebook-timeout", "300"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "1/4 graded" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert any("1/4 graded" in line for line in lines), "".join(lines)
    first = [s for s, v in scores(root).items() if v == expected[s]]
    assert len(first) == 1, scores(root)         # one merged before the kill, and scored right

    # resume: only the three that were not merged are graded
    err = io.StringIO()
    results = run_quietly(root, err)
    assert "1 of 4 submissions are unchanged" in err.getvalue() and "3/3 graded" in err.getvalue(), err.getvalue()
    assert {r.student: r.score for r in results} == expected == scores(root)
    report = {r["student_id"]: r for r in csv.DictReader(open(root / "reports" / f"{ASSIGNMENT}.csv"))}
    assert set(report) == set(expected)           # the report covers the kept submission too

    # a new file from one student: that one alone is graded again
    time.sleep(0.01)
    (root / "submitted" / "dan" / ASSIGNMENT / NOTEBOOK).write_text(
        (root / "submitted" / "ann" / ASSIGNMENT / NOTEBOOK).read_text())
    err = io.StringIO()
    results = run_quietly(root, err)
    assert "3 of 4 submissions are unchanged" in err.getvalue() and "1/1 graded (dan)" in err.getvalue()
    assert {r.student: r.score for r in results} == {**expected, "dan": 8.0}

    # --force regrades all
    err = io.StringIO()
    run_quietly(root, err, force=True)
    assert "unchanged" not in err.getvalue() and "4/4 graded" in err.getvalue()


def run_quietly(root: Path, err: io.StringIO, **kwargs):
    real, sys.stderr = sys.stderr, err
    try:
        return course.autograde(root, ASSIGNMENT, jobs=2, **kwargs, **LIMITS)
    finally:
        sys.stderr = real


@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_gradebook_of_one_machine(released, tmp_path):
    pytest.importorskip("distributed")
    alone = fresh_course(released, tmp_path / "alone")
    spread = fresh_course(released, tmp_path / "spread")
    expected = submissions(alone, tmp_path / "lms")
    course.collect(alone, ASSIGNMENT, tmp_path / "lms")
    course.collect(spread, ASSIGNMENT, tmp_path / "lms")
    course.autograde(alone, ASSIGNMENT, jobs=2, show_progress=False, **LIMITS)
    results = course.autograde(spread, ASSIGNMENT, cluster="local:2", show_progress=False, **LIMITS)
    assert scores(spread) == scores(alone) == expected
    assert {r.student: r.score for r in results} == expected
    for student in expected:   # the head wrote every autograded notebook the workers made
        assert (spread / "autograded" / student / ASSIGNMENT / NOTEBOOK).is_file()


@pytest.mark.slow
def test_every_grading_of_a_batch_is_handed_the_socket_its_scorer_binds(released, tmp_path, monkeypatch):
    """Oracle: the file system — what each grading is told to ask must be a Unix socket once the batch's scorer
    (python -m autograder.scorer) has imported Keras. (It once was the scorer's cache folder: every nbgrader process
    then found no scorer and imported TensorFlow itself, about 5 CPU-s a submission, and nothing failed.)"""
    import stat

    root = fresh_course(released, tmp_path / "course")
    inbox = tmp_path / "lms"
    expected = submissions(root, inbox)
    for student in ("ben", "cat", "dan"):
        (inbox / f"{student}_{NOTEBOOK}").unlink()
        expected.pop(student)
    course.collect(root, ASSIGNMENT, inbox)
    monkeypatch.setattr(course.preprocessors, "needs_keras", lambda checks: True)   # chapter 1 needs no scorer
    real, handed = course._grade_one, []

    def grade_one(*args):
        path = args[6]
        deadline = time.monotonic() + 180
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.2)
        handed.append((path, os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode)))
        return real(*args)

    monkeypatch.setattr(course, "_grade_one", grade_one)
    results = course.autograde(root, ASSIGNMENT, jobs=1, show_progress=False, **LIMITS)
    assert handed and all(is_socket for _, is_socket in handed), handed
    assert {r.student: r.score for r in results} == expected
