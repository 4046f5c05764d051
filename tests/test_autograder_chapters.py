"""Every chapter's exercise, graded by the real harness (sandboxed kernels, nbgrader autograde): a submission with
the author's solutions earns every point, the untouched student notebook earns none.

Oracle: the points written in each source notebook's test cells (nbgrader's own max_score).

Cost: each chapter has a course folder of its own, and two chapters are graded at a time, each kernel on one thread
(what a kernel gets at `--jobs 2` on this 2-core machine), the longest first. Graded one chapter after the other, the
second worker sat idle while the first trained a solution's models.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coursetools.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
from autograder import course  # noqa: E402

ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if any(p.glob("*.ipynb")))
#: the longest gradings first (the solutions' run times in the runner's report), so that two workers end together
LONGEST_FIRST = ["ch09_detection", "ch03_counting", "ch05_architectures", "ch04_training", "ch07_transfer"]


def points(source: Path) -> float:
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in json.loads(source.read_text())["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))


def grade_chapter(assignment: str, tmp: Path):
    """Grade the perfect and the untouched submission of one assignment in a course folder of its own."""
    root = tmp / assignment / "course"
    course.init(root)
    course.release(root)
    inbox = tmp / assignment / "inbox"
    for source in sorted((REPO / "solutions" / assignment).glob("*.ipynb")):
        released = root / "release" / assignment / source.name
        for student, filled in (("perfect", solution_answers(source)), ("untouched", {})):
            nb = fill_answers(json.loads(released.read_text()), filled)
            dest = inbox / student / assignment / source.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(nb))
    course.collect(root, assignment, inbox)
    # generous time limits: this test is about scores (the corpus tests the limits), and CI machines can be 3x slower
    return {r.student: r for r in course.autograde(root, assignment, jobs=1, threads=1, cell_timeout=900,
                                                   notebook_timeout=2700)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{assignment: {student: Result} or the exception its grading raised}."""
    tmp = tmp_path_factory.mktemp("chapters")
    order = sorted(ASSIGNMENTS, key=lambda a: LONGEST_FIRST.index(a) if a in LONGEST_FIRST else len(LONGEST_FIRST))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {a: pool.submit(grade_chapter, a, tmp) for a in order}
    outcomes = {}
    for assignment, future in futures.items():
        try:
            outcomes[assignment] = future.result()
        except Exception as exc:  # reported by that chapter's test, not by all of them
            outcomes[assignment] = exc
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_earn_every_point_and_the_untouched_notebook_none(assignment, graded):
    results = graded[assignment]
    if isinstance(results, Exception):
        raise results
    expected = sum(points(s) for s in (REPO / "solutions" / assignment).glob("*.ipynb"))
    assert results["perfect"].max_score == expected
    assert results["perfect"].score == expected, results["perfect"].notes
    assert results["untouched"].score == 0, results["untouched"].notes
