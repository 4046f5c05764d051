"""The course's nbgrader steps of issue 32 (autograder/preprocessors.py): sanitised outputs, a dead kernel that costs
only the cells that did not run, and messages that name the real cause.

Oracles: nbgrader's own ``determine_grade`` for what a cell scores; the literal markup a browser would run
(``<script``, ``onerror=``, ``<iframe``, ``javascript:``) for the sanitiser; the gradebook for end-to-end scores
(the exercise's test cells are worth 2 points each, 8 in all).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import determine_grade

from autograder import artifacts, course, preprocessors
from coursetools.release import solution_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"
HOSTILE_HTML = ('<p>plot</p><script>fetch("/api/contents")</script><img src="x" onerror="alert(1)">'
                '<iframe src="https://example.invalid"></iframe><a href="javascript:alert(2)">link</a>'
                '<a href="data:text/html,<script>alert(3)</script>">data link</a>')
TABLE_HTML = ('<div><table border="1" class="dataframe"><thead><tr><th>epoch</th><th>loss</th></tr></thead>'
              '<tbody><tr><td>1</td><td>0.52</td></tr></tbody></table></div>')
LIVE = ("<script", "onerror", "<iframe", "javascript:", "data:text/html")


def _live(text: str) -> list[str]:
    return [m for m in LIVE if m in text.lower()]


def live_elements(page: str) -> list[str]:
    """The elements of an HTML page that would run something in a browser, found by parsing it (html.parser):
    iframes, objects, embeds, on* attributes, javascript:/data:text links, and scripts other than the feedback
    template's MathJax."""
    from html.parser import HTMLParser

    found = []

    class Finder(HTMLParser):
        script = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag in ("iframe", "object", "embed", "frame"):
                found.append(tag)
            found.extend(f"{tag} {k}" for k in attrs if k.lower().startswith("on"))
            found.extend(f"{tag} {k}={v[:30]}" for k, v in attrs.items()
                         if k in ("href", "src", "action") and v and v.strip().lower().startswith(("javascript:",
                                                                                                  "data:text")))
            if tag == "script":
                self.script = attrs.get("src") or ""

        def handle_data(self, data):
            if self.script is not None and not (self.script.startswith("https://cdnjs.cloudflare.com/ajax/libs/mathjax/")
                                                or "MathJax" in data or not data.strip()):
                found.append(f"script {data.strip()[:40]}")

        def handle_endtag(self, tag):
            if tag == "script":
                self.script = None

    Finder().feed(page)
    return found


def test_outputs_keep_tables_and_images_and_lose_scripts_handlers_iframes_and_javascript():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": HOSTILE_HTML, "text/plain": "<plot>"}),
               nbformat.v4.new_output("execute_result", data={"text/html": TABLE_HTML, "text/plain": "table"},
                                      execution_count=1),
               nbformat.v4.new_output("display_data", data={"application/javascript": "alert(4)",
                                                            "image/svg+xml": "<svg onload='alert(5)'/>",
                                                            "image/png": png}),
               nbformat.v4.new_output("stream", name="stdout", text="<script>shown as text</script>\n")]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("display(HTML(...))", outputs=outputs),
        nbformat.v4.new_markdown_cell("My answer <script>alert(6)</script> is **bold** > 3"),
        nbformat.v4.new_markdown_cell("> a quote, and a < b")])
    nb, _ = preprocessors.SanitizeOutputs()(nb, {})
    hostile, table, mixed, stream = nb.cells[0].outputs
    assert _live(hostile.data["text/html"]) == [] and "<p>plot</p>" in hostile.data["text/html"]
    assert hostile.data["text/plain"] == "<plot>"                       # plain text is never HTML
    assert "<table" in table.data["text/html"] and "<td>0.52</td>" in table.data["text/html"]
    assert set(mixed.data) == {"image/png"} and mixed.data["image/png"] == png
    assert stream.text == "<script>shown as text</script>\n"            # streams are escaped when rendered
    assert _live(nb.cells[1].source) == [] and "**bold**" in nb.cells[1].source
    assert nb.cells[2].source == "> a quote, and a < b"                 # markdown without HTML is left alone


def test_the_page_oracle_finds_live_markup_and_passes_escaped_text():
    assert len(live_elements(HOSTILE_HTML)) == 5, live_elements(HOSTILE_HTML)   # script, onerror, iframe, 2 links
    assert live_elements("<pre>&lt;img onerror=&quot;alert(1)&quot;&gt;&lt;script&gt;x&lt;/script&gt;</pre>") == []


def test_a_model_file_cut_by_the_file_size_limit_says_so(tmp_path):
    # Oracle: the size of the file is the sandbox's file-size limit (a write the kernel's SIGXFSZ stopped there);
    # before, the message told a student who had used save_model to use save_model.
    folder = tmp_path / "artifacts"
    folder.mkdir()
    with open(folder / "best_model.keras", "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(artifacts.FILE_LIMIT_BYTES)          # sparse: no disk used
    art = artifacts.Artifacts(folder, "ch05_architectures")
    with pytest.raises(AssertionError, match="file-size limit, so it was cut short"):
        art.model("best_model")
    with open(folder / "small.keras", "wb") as f:
        f.write(b"not a zip")
    with pytest.raises(AssertionError, match="is not a Keras model file"):   # a file under the limit: as before
        art.model("small")


def _cell(source: str, gid: str | None = None, points: int = 0):
    cell = nbformat.v4.new_code_cell(source)
    if gid:
        cell.metadata["nbgrader"] = {"grade": bool(points), "grade_id": gid, "points": points, "locked": True,
                                     "solution": False, "schema_version": 3}
    return cell


def test_a_kernel_that_dies_costs_only_the_cells_that_did_not_run(tmp_path):
    # Oracle: nbgrader's determine_grade on each cell after execution: the cells that passed before the kernel died
    # keep their points, the cell it died in and every later one score 0, and the message names the cell
    nb = nbformat.v4.new_notebook(cells=[
        _cell("x = 1", "answer"), _cell("assert x == 1", "test_a", 2), _cell("print('ok')", "test_b", 3),
        _cell("import os\nos._exit(7)"), _cell("assert x == 1", "test_c", 2), nbformat.v4.new_markdown_cell("end"),
        _cell("assert True", "test_d", 1)])
    step = preprocessors.ExecuteKeepingPoints(timeout=120, memory_mb=3072)
    nb, _ = step(nb, {"metadata": {"path": str(tmp_path)}})
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [determine_grade(c)[0] for c in graded] == [2, 3, 0, 0]
    died = nb.cells[3].outputs[-1]
    assert died.ename == preprocessors.DIED and "cell 4" in died.evalue and "status 7" in died.evalue, died.evalue
    assert nb.cells[4].outputs[0].ename == preprocessors.NOT_RUN and "died in cell 4" in nb.cells[4].outputs[0].evalue


def test_a_signal_that_ends_the_kernel_is_named(tmp_path):
    # (Python ignores SIGXFSZ: a write past the file-size limit raises OSError and leaves the file cut, which the
    # test above covers; the CPU-time limit's SIGXCPU ends the kernel)
    nb = nbformat.v4.new_notebook(cells=[_cell("import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)")])
    nb, _ = preprocessors.ExecuteKeepingPoints(timeout=120)(nb, {"metadata": {"path": str(tmp_path)}})
    assert "CPU-time limit (SIGXCPU)" in nb.cells[0].outputs[-1].evalue


@pytest.mark.slow
def test_a_graded_batch_keeps_the_points_before_a_dead_kernel_and_sanitises_what_the_instructor_sees(tmp_path):
    """End to end with the real workflow (chapter 1): one submission displays hostile HTML beside an honest table,
    another's kernel dies after two of the four test cells. Neither the autograded notebook (what formgrader shows)
    nor the feedback page holds live markup, and the dead kernel costs only the two tests that never ran."""
    root = tmp_path / "course"
    course.init(root)
    course.release(root)
    released = json.loads((root / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    perfect = solution_answers(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)["conv2d"]
    inbox = tmp_path / "lms"
    inbox.mkdir()

    def write(student: str, extra_after: dict[str, str]) -> None:
        nb = json.loads(json.dumps(released))
        cells = []
        for cell in nb["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if gid == "conv2d":
                cell["source"] = perfect
            cells.append(cell)
            if gid in extra_after:
                cells.append(nbformat.v4.new_code_cell(extra_after[gid], id=f"extra-{len(cells)}"))
        nb["cells"] = cells
        (inbox / f"{student}_{NOTEBOOK}").write_text(json.dumps(nb))

    write("html", {"conv2d": "from IPython.display import HTML, display\n"
                             f"display(HTML({HOSTILE_HTML!r}))\ndisplay(HTML({TABLE_HTML!r}))\n"})
    write("dies", {"test_valid_strides": "import os\nos._exit(1)\n"})
    assert course.collect(root, ASSIGNMENT, inbox) == ["dies", "html"]
    results = {r.student: r for r in course.autograde(root, ASSIGNMENT, jobs=2, cell_timeout=60,
                                                      notebook_timeout=300, memory_mb=3072)}
    course.feedback(root, ASSIGNMENT)
    grades = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(course.export(root, tmp_path / "g.csv")))
              if r["assignment"] == ASSIGNMENT}
    assert grades == {"html": 8.0, "dies": 4.0}, {s: r.notes for s, r in results.items()}
    assert "kernel died in cell" in results["dies"].notes[0] and "keep their points" in results["dies"].notes[0]
    autograded = nbformat.read(root / "autograded" / "html" / ASSIGNMENT / NOTEBOOK, as_version=4)
    shown = json.dumps([o.get("data", {}) for c in autograded.cells if c.cell_type == "code" for o in c.outputs])
    assert "dataframe" in shown and "0.52" in shown                   # the honest table is kept, as HTML
    assert _live(shown) == [], shown[:2000]                            # what formgrader renders holds no live markup
    feedback = (root / "feedback" / "html" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "<td>0.52</td>" in feedback                                 # rendered as a table
    # the code cell's source shows the student's string as text (highlighted code); parsed as a browser would, the
    # page has no iframe, no event handler, no javascript:/data: link, and no script but the template's MathJax
    assert live_elements(feedback) == []
    assert os.path.exists(root / "reports" / f"{ASSIGNMENT}.csv")
