"""Writes the corpus of broken and hostile submissions of chapter 1's exercise (tests/test_autograder_corpus.py).

    python tests/corpus/make_corpus.py COURSE_DIR OUT_DIR

Each submission is made from the notebook released in COURSE_DIR, as a student would hand it in (LMS layout:
OUT_DIR/STUDENT_ch01_convolution_exercises.ipynb). CASES says, for each, the score it must get (the oracle: the
points of the source notebook — 2 a test cell — and what the code earns honestly) and a phrase its feedback must
contain. Generated, not committed: one case is a 50 MB file.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from coursetools.release import solution_answers

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "ch01_convolution"
ORPHAN = "corpus-orphan-marker"   # in the command line of the process the `outliveskernel` case starts
NOTEBOOK = "ch01_convolution_exercises.ipynb"

# Right for padding="valid", wrong for "same": earns the two "valid" test cells, 2 + 2 points.
VALID_ONLY = '''def conv2d(x, w, b=None, stride=1, padding="valid"):
    kh, kw, _, c_out = w.shape
    h_out, w_out = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((h_out, w_out, c_out))
    for i in range(h_out):
        for j in range(w_out):
            out[i, j] = np.tensordot(x[i * stride:i * stride + kh, j * stride:j * stride + kw], w, axes=3)
    return out if b is None else out + b
'''


def edit(code: str, old: str, new: str) -> str:
    """code with old replaced by new; an error if old is not there (the case would silently be the perfect one)."""
    if old not in code:
        raise ValueError(f"the corpus edits {old!r}, which the solution's answer no longer contains: update the case")
    return code.replace(old, new)


def cases(course: Path) -> dict:
    """{student: (expected score, feedback phrase, what to do to the released notebook)}."""
    # the answer as the source holds it, ended by a newline so that code can be appended after it
    perfect = solution_answers(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)["conv2d"].rstrip("\n") + "\n"
    gradebook = course / "gradebook.db"
    source_nb = course / "source" / ASSIGNMENT / NOTEBOOK
    return {
        "perfect": (8, "all tests passed", {"conv2d": perfect}),
        "validonly": (4, "test_same_padding (0 of 2 points)", {"conv2d": VALID_ONLY}),
        "syntaxerror": (0, "SyntaxError", {"conv2d": "def conv2d(x, w:\n    return x\n"}),
        # the answer cell never ends: in the kernel it is stopped, and its trusted re-run alone is stopped too
        "infiniteloop": (0, "took longer than", {"conv2d": VALID_ONLY + "while True:\n    pass\n"}),
        # NumPy is allowed in the answer: the kernel and the trusted re-run both hit the memory limit
        "memoryhog": (0, "MemoryError", {"conv2d": edit(perfect,
            "    x, w = np.asarray", "    hog = np.ones(64 * 2**30, dtype=np.uint8)\n    x, w = np.asarray")}),
        # a cell of the student's own that raises SystemExit (the kernel goes on: the answer earns its points) or ends
        # the kernel (the notebook does not run to the end, which scores 0 whatever the answer)
        "sysexit": (8, "SystemExit", {"conv2d": perfect, "EXTRA": "import sys\nsys.exit(0)\n"}),
        "osexit": (0, "kernel died", {"conv2d": perfect, "EXTRA": "import os\nos._exit(0)\n"}),
        "deletedcell": (6, "'test_same_padding' (2 points) is missing", {"conv2d": perfect, "DELETE": "test_same_padding"}),
        "changedcellid": (8, "all tests passed", {"conv2d": perfect, "CELL_IDS": True}),
        "changedgradeid": (6, "unknown grader id 'my_test'", {"conv2d": perfect,
                                                              "RENAME": ("test_channels_and_bias", "my_test")}),
        "editedtests": (4, "you changed the locked cell", {"conv2d": VALID_ONLY, "TAMPER_TESTS": True}),
        "patchhelpers": (0, "changes how the grader works", {"conv2d": VALID_ONLY + (
            "import cnnbook.grading\n"
            "cnnbook.grading.check_conv2d_against_tf = lambda *a, **k: None\n"
            "expect_array = lambda *a, **k: None\n")}),
        "patchassert": (0, "changes how the grader works", {"conv2d": (
            "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n")}),
        "patchimport": (0, "changes how the grader works", {"conv2d": VALID_ONLY + (
            "m = __import__('import' + 'lib')\nm.reload = lambda module: module\n")}),
        "writesgradebook": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "for target in ['../../../gradebook.db', '../../../planted.txt', "
            f"{str(gradebook)!r}, {str(course / 'planted.txt')!r}, {str(REPO / 'planted.txt')!r}]:\n"
            "    try:\n"
            "        open(target, 'w').write('planted')\n"
            "    except OSError as exc:\n"
            "        print('blocked:', type(exc).__name__)\n")}),
        "hugeoutput": (8, "because of saved outputs", {"conv2d": perfect, "HUGE": 50 * 2**20}),
        "printsflood": (8, "all tests passed", {"conv2d": perfect + "print('x' * 50 * 2**20)\n"}),  # 50 MB, one line
        "notjson": (0, "is not a notebook file", {"RAW": b"PK\x03\x04 this is a zip file, not a notebook" * 100}),
        "wrongassignment": (0, "not the notebook of this assignment", {"OTHER": True}),
        "wrongtype": (0, "expected a NumPy array", {"conv2d": edit(perfect, "    return out\n",
                                                                            "    return [str(out)]\n")}),
        "wrongshape": (0, "shape", {"conv2d": edit(perfect, "    return out\n",
                                                            "    return np.moveaxis(out, -1, 0)\n")}),
        "readssolutions": (0, "FileNotFoundError", {"conv2d": (
            f"import json, pathlib\nsrc = json.loads(pathlib.Path({str(source_nb)!r}).read_text())\n"
            "pathlib.Path('stolen.py').write_text(''.join(c['source'] for c in src['cells']))\n")}),
        "readsheldout": (0, "held-out data", {"conv2d": perfect + (
            f"labels = np.load({str(REPO / 'autograder' / 'data' / 'mnist_heldout.npz')!r})['y']\n")}),
        # --- attack classes of issue 13; each scores what its honest code earns
        "aliaspatchnumpy": (4, "test_same_padding (0 of 2 points)", {"conv2d": VALID_ONLY, "EXTRA": (
            "import numpy as numeric\n"
            "numeric.abs = lambda a, *args, **kw: numeric.zeros_like(a)   # every expect_array difference is 0\n"
            "numeric.allclose = lambda *a, **k: True\n")}),
        "aliaspatchkeras": (4, "test_same_padding (0 of 2 points)", {"conv2d": VALID_ONLY, "EXTRA": (
            "import tensorflow as tensors, keras as k3, cnnbook.submit as handin\n"
            "_save = handin.save_outputs\n"
            "def _honest_looking(name, **arrays):   # hand in TensorFlow's answers instead of conv2d's\n"
            "    return _save(name, **arrays)\n"
            "handin.save_outputs = _honest_looking\n"
            "k3.ops.conv = tensors.nn.conv2d\n")}),
        "runtimename": (0, "breaks the exercise's rule", {"conv2d": (
            "import operator\nimport tensorflow as tf\n"
            "def conv2d(x, w, b=None, stride=1, padding='valid'):\n"
            "    conv = operator.attrgetter('nn.' + 'conv2d')(tf)\n"
            "    out = conv(x[None], w, strides=stride, padding=padding.upper()).numpy()[0]\n"
            "    return out if b is None else out + b\n")}),
        "callsreference": (0, "breaks the exercise's rule", {"conv2d": (
            "from cnnbook import grading as course\n"
            "def conv2d(x, w, b=None, stride=1, padding='valid'):\n"
            "    return course.reference_conv2d(x, w, b, stride, padding)\n")}),
        "callsautograder": (0, "breaks the exercise's rule", {"conv2d": (
            "import runpy\n"
            f"conv2d = runpy.run_path({str(REPO / 'autograder' / 'checks' / 'ch01_convolution.py')!r})"
            "['reference_conv2d']\n")}),
        "heldoutcomputedpath": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import os\n"
            "parts = ['auto' + 'grader', 'da' + 'ta', 'mnist_he' + 'ld' + 'out.npz']\n"
            f"for root in ['..', '../..', '../../..', {str(REPO)!r}]:\n"
            "    try:\n"
            "        labels = np.load(os.path.join(root, *parts))['y']\n"
            "        print('read', len(labels))\n"
            "    except OSError as exc:\n"
            "        print('blocked:', type(exc).__name__)\n")}),
        # the grader's own reader of the held-out split, reached by a computed module and attribute name
        "heldoutcomputedname": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import runpy\n"
            "try:\n"
            f"    grader = runpy.run_path({str(REPO / 'autograder' / 'tru')!r} + 'sted.py')\n"
            "    x_h, y_h = grader['held' + 'out']('mnist')\n"
            "    print('read', len(y_h))\n"
            "except Exception as exc:\n"
            "    print('blocked:', type(exc).__name__)\n")}),
        "outliveskernel": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import subprocess\n"
            f"subprocess.Popen(['python3', '-c', 'import time; time.sleep(600)', {ORPHAN!r}], "
            "start_new_session=True)\n")}),
    }


def other_notebook(course: Path) -> dict:
    """A notebook of another assignment: another released exercise if there is one, else the chapter 1 lesson."""
    for path in sorted((course / "release").glob("*/*.ipynb")):
        if path.parent.name != ASSIGNMENT:
            return json.loads(path.read_text())
    return json.loads((REPO / "book" / "ch01_convolution.ipynb").read_text())


def make(released: dict, spec: dict, course: Path) -> bytes:
    """Apply one case's changes to a copy of the released notebook; return the file's bytes."""
    if "RAW" in spec:
        return spec["RAW"]
    nb = other_notebook(course) if spec.get("OTHER") else copy.deepcopy(released)
    cells = []
    for i, cell in enumerate(nb["cells"]):
        meta = cell["metadata"].get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid == spec.get("DELETE"):
            continue
        if gid in spec and gid != "DELETE":
            cell["source"] = spec[gid]
        if spec.get("RENAME") and gid == spec["RENAME"][0]:
            meta["grade_id"] = spec["RENAME"][1]
        if spec.get("CELL_IDS"):
            cell["id"] = f"student-renamed-{i}" if i % 2 else "not a valid id!"
        if spec.get("TAMPER_TESTS") and meta.get("grade"):
            cell["source"] = "pass  # the tests were deleted\n"
            meta["checksum"] = "0" * 32
            meta["points"] = 100
        if spec.get("HUGE") and gid == "conv2d":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * spec["HUGE"]}]
        cells.append(cell)
        if spec.get("EXTRA") and gid == "conv2d":   # a cell of the student's own after the answer
            cells.append({"cell_type": "code", "execution_count": None, "id": f"extra-{i}", "metadata": {},
                          "outputs": [], "source": spec["EXTRA"]})
    nb["cells"] = cells
    return json.dumps(nb).encode()


def write(course: Path, out: Path) -> dict:
    """Write every case to OUT as STUDENT_NOTEBOOK; return {student: (score, phrase)}."""
    released = json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for student, (score, phrase, spec) in cases(course).items():
        (out / f"{student}_{NOTEBOOK}").write_bytes(make(released, spec, course))
        expected[student] = (score, phrase)
    return expected


if __name__ == "__main__":
    for name, (score, phrase) in write(Path(sys.argv[1]).resolve(), Path(sys.argv[2])).items():
        print(f"{name}: {score} points, feedback mentions {phrase!r}")
