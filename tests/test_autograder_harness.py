"""Fast checks of the autograder's parts that need no kernel: the shared nbgrader settings and the submission scan.

Oracles: nbgrader's own IgnorePattern preprocessor fed the course's configuration file (the real TensorFlow log
lines of a CPU machine must go, any other stderr must stay), and hand-written cells whose verdict is obvious.
"""

import json
from pathlib import Path

import nbformat
from nbgrader.preprocessors import IgnorePattern
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parent.parent
from autograder import submission  # noqa: E402

TF_LOG = (  # what TensorFlow 2.21 prints on first use on a CPU machine (the numbers vary)
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795433064.174592   21096 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors.\n"
    "I0000 00:00:1795433064.174915   21096 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.\n"
    "I0000 00:00:1795433064.440965   21096 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.\n")


def course_config():
    loader = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "autograder"))
    return loader.load_config()


def test_ignore_pattern_is_switched_on_and_drops_only_tensorflow_log_lines():
    config = course_config()
    assert config.IgnorePattern.enabled is True   # nbgrader ships it switched off
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=TF_LOG),
                    nbformat.v4.new_output("stream", name="stderr", text="Traceback: your code failed\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = IgnorePattern(config=config)(nb, {})
    assert [o.text for o in nb.cells[0].outputs] == ["Traceback: your code failed\n"]


def released():
    return json.loads((REPO / "notebooks" / "ch01_convolution" / "ch01_convolution_exercises.ipynb").read_text())


def test_a_fair_answer_is_not_flagged():
    src = "def conv2d(x, w, b=None, stride=1, padding='valid'):\n    out = np.zeros(3)\n    out[np.newaxis] = 1\n" \
          "    x, w = np.asarray(x), np.asarray(w)\n    return out\n"
    assert submission.scan(src, {"np", "tf", "expect_array"}) == []


def test_the_known_ways_of_changing_the_grader_are_flagged_with_their_line():
    protected = {"np", "tf", "expect_array"}
    for src in ("import importlib\n", "get_ipython().set_custom_exc((Exception,), print)\n",
                "%config Application.log_level = 0\n", "np.abs = lambda v: 0 * v\n", "expect_array = print\n",
                "def expect_array(*a):\n    pass\n", "AssertionError = Warning\n", "import sys\nsys.modules['x'] = 1\n",
                "__import__('builtins').print = id\n", "f.__code__ = g.__code__\n"):
        found = submission.scan(src, protected)
        assert found and found[0].startswith("line "), src


def test_a_file_that_is_not_a_notebook_is_refused_with_what_to_do():
    verdict = submission.inspect(b"\x89PNG not json", released(), "ch01_convolution_exercises.ipynb")
    assert verdict.notebook is None and "File > Download" in verdict.notes[0]


def test_the_untouched_release_passes_the_checks_unchanged():
    nb = released()
    verdict = submission.inspect(json.dumps(nb).encode(), nb, "ch01_convolution_exercises.ipynb")
    assert verdict.notes == [] and verdict.flags == []
    assert [c["source"] for c in verdict.notebook["cells"]] == ["".join(c["source"]) for c in nb["cells"]]


def test_what_the_scan_finds_is_a_flag_for_the_instructor_never_a_note_that_costs_points():
    # issue 32: ordinary lines (`sum = 0`, IPython.display, importlib.reload) trip the scan; the submission is kept
    # whole for grading, the student is told nothing about it, and the instructor gets the cell and the line
    nb = released()
    answer = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "conv2d")
    answer["source"] = "sum = 0\nfrom IPython.display import display\nimport importlib\n"
    verdict = submission.inspect(json.dumps(nb).encode(), released(), "ch01_convolution_exercises.ipynb")
    assert verdict.notebook is not None and verdict.notes == []
    assert len(verdict.flags) == 3 and all(f.startswith("cell conv2d, line ") for f in verdict.flags), verdict.flags
    assert "`sum = 0`" in verdict.flags[0] or any("`sum = 0`" in f for f in verdict.flags)
