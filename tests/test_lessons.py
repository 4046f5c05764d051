"""Regression test of the lessons: the runner's executed copy of each lesson must reproduce its committed outputs.

Oracle: the outputs committed in book/*.ipynb (made by `make regen-lessons` and reviewed). The lessons are executed
once, by the runner (`coursetools.runner`, through its cache: `make test` runs `make notebooks` first), never a
second time here; a session fixture runs the runner on the lessons, which takes the cached copy when the lesson, the
cnnbook sources, the profile and the stack are unchanged, so the copy compared is always one of the current sources.
Numbers and tables are compared exactly; pictures, stderr, counters and timings are masked
(coursetools.regression.DIFF_IGNORE).
"""

from pathlib import Path

import nbformat
import pytest

from coursetools import regression, runner

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "book").glob("*.ipynb"))


def executed_lesson(lesson: Path, tmp: Path):
    """Execute one lesson with the runner (sample profile, through its cache); return its result and executed copy."""
    [result] = runner.run([lesson], "sample", tmp / "executed", tmp / "timings.json", 900, ROOT,
                          cache=ROOT / "_build" / "cache")
    return result, tmp / "executed" / result.notebook


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_reproduces_its_committed_outputs(lesson, tmp_path, pytestconfig):
    result, executed = executed_lesson(lesson, tmp_path)
    assert result.status == "ok", f"{lesson.name} failed in the runner: {result.message}"
    committed = nbformat.read(lesson, as_version=4)
    ran = nbformat.read(executed, as_version=4)
    if pytestconfig.getoption("nb_force_regen"):
        if regression.regenerate(committed, ran):
            nbformat.write(committed, lesson)
        return
    problems = regression.compare(committed, ran)
    assert not problems, f"{lesson.name}: the executed lesson differs from its committed outputs " \
                         f"(after a reviewed change: make regen-lessons)\n{problems}"


def _lesson(*outputs_per_cell):
    cells = []
    for outputs in outputs_per_cell:
        cell = nbformat.v4.new_code_cell("print(x)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in outputs]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def test_a_tampered_number_fails_the_comparison():
    committed = _lesson(["params: 1,204,234\n"], ["ok\n"])
    assert regression.compare(committed, _lesson(["params: 1,204,234\n"], ["ok\n"])) == ""
    assert "1,204,235" in regression.compare(committed, _lesson(["params: 1,204,235\n"], ["ok\n"]))


def test_masked_parts_and_papermill_injection_are_not_regressions():
    committed = _lesson(["a\n"], ["b\n"])
    ran = _lesson(["a\n"], ["b\n"])
    ran.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="TensorFlow notes\n"))
    ran.cells[1].execution_count = 7
    injected = nbformat.v4.new_code_cell('PROFILE = "sample"', metadata={"tags": ["injected-parameters"]})
    ran.cells.insert(1, injected)
    assert regression.compare(committed, ran) == ""
    ignored = _lesson(["a\n"], ["loss 0.31\n"])
    other = _lesson(["a\n"], ["loss 0.29\n"])
    for nb in (ignored, other):
        nb.cells[1].metadata["nbreg"] = {"diff_ignore": ["/outputs"]}
    assert regression.compare(ignored, other) == ""
    assert "loss 0.29" not in regression.compare(ignored, _lesson(["b\n"], ["loss 0.29\n"]))


def test_regenerate_takes_the_executed_outputs():
    committed, ran = _lesson(["1\n"]), _lesson(["2\n"])
    assert regression.regenerate(committed, ran) and regression.compare(committed, ran) == ""


@pytest.mark.parametrize("lesson", sorted(p.name for p in (ROOT / "book").glob("ch*.ipynb")))
def test_every_lesson_ends_with_a_self_check_of_5_to_10_hidden_answers_and_a_going_further_list(lesson):
    # Oracle: issue 17's rule, read by hand (5-10 questions, answers collapsed until clicked, then "going further")
    import json
    import re

    cells = json.loads((ROOT / "book" / lesson).read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "## Self-check" in text and "## Going further" in text, lesson
    check = text[text.index("## Self-check"):text.index("## Going further")]
    questions = re.findall(r"^\d+\. ", check, re.M)
    assert 5 <= len(questions) <= 10 and check.count("<details><summary>Answer") == len(questions), lesson
