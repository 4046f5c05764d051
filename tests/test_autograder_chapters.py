"""Every chapter's exercise, graded by the real harness (sandboxed kernels, nbgrader autograde): a submission with
the author's solutions earns every point, the untouched student notebook earns none.

Oracle: the points written in each source notebook's test cells (nbgrader's own max_score).
"""

import json
from pathlib import Path

import pytest

from coursetools.course import load_script
from coursetools.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
course = load_script("autograder/course.py")

ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if any(p.glob("*.ipynb")))


def points(source: Path) -> float:
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in json.loads(source.read_text())["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_earn_every_point_and_the_untouched_notebook_none(assignment, tmp_path):
    root = tmp_path / "course"
    course.init(root)
    course.release(root)
    inbox = tmp_path / "inbox"
    for source in sorted((REPO / "solutions" / assignment).glob("*.ipynb")):
        released = root / "release" / assignment / source.name
        for student, filled in (("perfect", solution_answers(source)), ("untouched", {})):
            nb = fill_answers(json.loads(released.read_text()), filled)
            dest = inbox / student / assignment / source.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(nb))
    course.collect(root, assignment, inbox)
    results = {r.student: r for r in course.autograde(root, assignment, jobs=2)}
    expected = sum(points(s) for s in (REPO / "solutions" / assignment).glob("*.ipynb"))
    assert results["perfect"].max_score == expected
    assert results["perfect"].score == expected, results["perfect"].notes
    assert results["untouched"].score == 0, results["untouched"].notes
