"""Writes the corpus of broken and hostile submissions of chapter 1's exercise (tests/test_autograder_corpus.py).

    python tests/corpus/make_corpus.py COURSE_DIR OUT_DIR
    python tests/corpus/make_corpus.py --grade TMP [--no-twins] [--skip STUDENT]...   # write, grade, TMP/result.json

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


# Every hostile cell below starts with this: `attempt` prints "ESCAPED <what>" when a step that the sandbox must
# refuse succeeds, "blocked: <what> <error>" otherwise. tests/test_autograder_corpus.py reads the graded notebooks and
# fails on any "ESCAPED". Each file such a cell tries to plant is named with PLANTED.
PLANTED = "corpus-planted"
ATTEMPT = """import ctypes, errno, glob, os, signal, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
def attempt(what, step):
    try:
        result = step()
        print('ESCAPED', what, repr(result)[:100])
    except BaseException as exc:
        print('blocked:', what, type(exc).__name__, str(exc)[:80].replace(chr(10), ' '))
def libc_call(ret):
    if ret != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
def command(*args):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise OSError(proc.returncode, (proc.stderr or proc.stdout).strip())
    return proc.stdout
def plant(path):
    with open(path, 'a') as f:
        f.write('planted')
    return path
"""
# a child that unshares a user and a mount namespace (the kernel itself has threads, which CLONE_NEWUSER refuses),
# then tries to uncover the held-out split; Python 3.11 has no os.unshare
UNSHARE_CHILD = """import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000 | 0x20000) != 0:
    sys.exit('unshare: ' + os.strerror(ctypes.get_errno()))
if libc.umount2(sys.argv[1].encode(), 2) != 0:
    sys.exit('umount: ' + os.strerror(ctypes.get_errno()))
print('read', len(open(os.path.join(sys.argv[1], 'mnist_heldout.npz'), 'rb').read()))
"""

# The honest helper cell before the answer (the `helpers` case) and an answer that uses it.
HELPER_CELL = """import itertools

def patches(x, kh, kw, stride):
    \"\"\"Every (i, j, window) of x, for a kernel kh x kw.\"\"\"
    h_out, w_out = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    for i, j in itertools.product(range(h_out), range(w_out)):
        yield i, j, x[i * stride:i * stride + kh, j * stride:j * stride + kw]
"""
HELPER_ANSWER = """def conv2d(x, w, b=None, stride=1, padding="valid"):
    x, w = np.asarray(x, dtype="float64"), np.asarray(w, dtype="float64")
    kh, kw, _, c_out = w.shape
    if padding == "same":
        ph = max((-(-x.shape[0] // stride) - 1) * stride + kh - x.shape[0], 0)
        pw = max((-(-x.shape[1] // stride) - 1) * stride + kw - x.shape[1], 0)
        x = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    h_out, w_out = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((h_out, w_out, c_out))
    for i, j, window in patches(x, kh, kw, stride):
        out[i, j] = np.tensordot(window, w, axes=3)
    return out if b is None else out + b
"""


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
    heldout = REPO / "autograder" / "data"
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
        # changing the grader from the kernel: scored by the trusted step (the answer cell re-run alone, under the
        # exercise's rule: importing cnnbook.grading or calling __import__ in the answer breaks it), and flagged
        "patchhelpers": (0, "breaks the exercise's rule", {"conv2d": VALID_ONLY + (
            "import cnnbook.grading\n"
            "cnnbook.grading.check_conv2d_against_tf = lambda *a, **k: None\n"
            "expect_array = lambda *a, **k: None\n")}),
        "patchassert": (0, "breaks the exercise's rule", {"conv2d": (
            "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n")}),
        "patchimport": (0, "breaks the exercise's rule", {"conv2d": VALID_ONLY + (
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
        "readsheldout": (0, "FileNotFoundError", {"conv2d": perfect + (
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
        # --- issue 32: a kernel that is root of its user namespace tries to undo the sandbox. Each one's answer is
        # perfect (8 points); the attack is in a cell of its own after it, prints what happened, and must change
        # nothing outside the kernel (tests/test_autograder_corpus.py looks for PLANTED everywhere afterwards).
        "umountheldout": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            f"data = {str(heldout)!r}\n"
            "attempt('umount2 of the hidden folder', lambda: libc_call(libc.umount2(data.encode(), 2)))\n"
            "attempt('umount -l of the hidden folder', lambda: command('umount', '-l', data))\n"
            "attempt('read the held-out split', lambda: 'read %d' % len(np.load(os.path.join(data, "
            "'mnist_heldout.npz'))['y']))\n")}),
        "remountroot": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            "attempt('mount -o remount,bind,rw /', lambda: command('mount', '-o', 'remount,bind,rw', '/'))\n"
            "attempt('remount / rw by the system call', lambda: libc_call(libc.mount(None, b'/', None, 32 | 4096, "
            "None)))\n"
            f"for target in [{str(REPO / PLANTED)!r}, {str(REPO / 'autograder' / PLANTED)!r}, "
            f"{str(course / PLANTED)!r}, {str(course / 'submitted' / PLANTED)!r}, '../../../' + {PLANTED!r}]:\n"
            "    attempt('write ' + target, lambda: plant(target))\n"
            f"attempt('open the gradebook for writing', lambda: open({str(gradebook)!r}, 'r+b').close())\n"
            "attempt('open the scratch gradebook for writing', lambda: open('../../../gradebook.db', 'r+b'))\n")}),
        "newuserns": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            f"data = {str(heldout)!r}\n"
            "attempt('unshare -r, then umount', lambda: command('unshare', '-rm', 'sh', '-c', "
            "'umount -l ' + data + ' && wc -c ' + data + '/mnist_heldout.npz'))\n"
            "attempt('unshare(CLONE_NEWUSER) in a child', lambda: command(sys.executable, '-c', "
            f"{UNSHARE_CHILD!r}, data))\n"
            "attempt('unshare(CLONE_NEWUSER) in the kernel', lambda: libc_call(libc.unshare(0x10000000)))\n")}),
        "mountproc": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            "os.makedirs('p', exist_ok=True)\n"
            "attempt('mount -t proc', lambda: command('mount', '-t', 'proc', 'proc', 'p'))\n"
            "attempt('mount a fresh /proc', lambda: libc_call(libc.mount(b'proc', b'/proc', b'proc', 0, None)))\n"
            "attempt('mount tmpfs', lambda: libc_call(libc.mount(b'tmpfs', b'p', b'tmpfs', 0, None)))\n"
            "attempt('write /proc/sys', lambda: plant('/proc/sys/user/max_user_namespaces'))\n"
            f"attempt('read through /proc/1/root', lambda: 'read %d' % len(open('/proc/1/root' + {str(heldout)!r} "
            "+ '/mnist_heldout.npz', 'rb').read()))\n")}),
        "writeseverywhere": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            f"targets = [{str(gradebook.parent / PLANTED)!r}, {str(REPO / PLANTED)!r}, "
            f"'/tmp/' + {PLANTED!r}, '/' + {PLANTED!r}, '/root/' + {PLANTED!r}, '/run/' + {PLANTED!r}]\n"
            "for target in targets:\n"
            "    attempt('write ' + target, lambda: plant(target))\n"
            "try:   # the kernel's own /dev/shm: writable, and thrown away with the kernel (the test looks outside)\n"
            f"    print('wrote its own', plant('/dev/shm/' + {PLANTED!r}))\n"
            "except OSError as exc:\n"
            "    print('blocked: /dev/shm', type(exc).__name__)\n"
            "for root in glob.glob('/sys/fs/cgroup/*/') + ['/sys/fs/cgroup/']:\n"
            f"    attempt('mkdir ' + root, lambda: os.mkdir(root + {PLANTED!r}))\n"
            "attempt('write /sys', lambda: plant('/sys/kernel/' + " + repr(PLANTED) + "))\n")}),
        # another student's files: the batch's folder is a sibling of this kernel's scratch copy
        "readsothers": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            "patterns = ['/tmp/ag-*/*/submitted/*/*/*.ipynb', '/tmp/ag-*/*/autograded/*/*/*.ipynb', "
            "'/tmp/ag-*/*/box/rt/*.json', '../../../../*/submitted/*/*/*.ipynb', "
            f"'../../../../*/autograded/*/*/*.ipynb', {str(course / 'submitted' / '*' / '*' / '*.ipynb')!r}]\n"
            "mine = os.path.realpath('.')\n"
            "found = [f for p in patterns for f in glob.glob(p) if not os.path.realpath(f).startswith(mine)]\n"
            "print('others visible:', len(found))\n"
            "for f in found[:5]:\n"
            "    attempt('read ' + f, lambda: 'read %d' % len(open(f, 'rb').read()))\n")}),
        "signalsgrader": (8, "all tests passed", {"conv2d": perfect, "EXTRA": ATTEMPT + (
            "pids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
            "print('processes visible:', len(pids), 'parent:', os.getppid())\n"
            "for pid in pids + [os.getppid()] * (os.getppid() > 1):\n"
            "    attempt('kill %d' % pid, lambda: os.kill(pid, signal.SIGKILL))\n"
            "mine = {int(t) for t in os.listdir('/proc/self/task')}   # its own threads answer too\n"
            "for pid in set(range(2, 4096)) - mine:\n"
            "    try:\n"
            "        os.kill(pid, 0)\n"
            "        print('a process answers', pid)\n"
            "    except OSError:\n"
            "        pass\n")}),
        # --- honest but unusual submissions: each earns full marks
        "rebindsbuiltins": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "sum = 0\nmax = 3\nmin = 'small'\nlen = lambda *a: 0\nabs = None\nlist = tuple\n")}),
        "display": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "from IPython.display import display, Markdown\n"
            "display(np.arange(6).reshape(2, 3))\ndisplay(Markdown('**my** result'))\ndisplay({'a': 1})\n")}),
        "reloadshelper": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import importlib, pathlib, sys\n"
            "pathlib.Path('my_helper.py').write_text('def twice(x):\\n    return 2 * x\\n')\n"
            "sys.path.insert(0, '.')\n"
            "import my_helper\nmy_helper = importlib.reload(my_helper)\nprint(my_helper.twice(21))\n")}),
        "gccollect": (8, "all tests passed", {"conv2d": perfect, "EXTRA": "import gc\nprint(gc.collect() >= 0)\n"}),
        "alarm": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import signal\n"
            "def too_slow(signum, frame):\n    raise TimeoutError('conv2d took too long')\n"
            "signal.signal(signal.SIGALRM, too_slow)\nsignal.alarm(20)\n"
            "try:\n    out = conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)))\nfinally:\n    signal.alarm(0)\n"
            "print(out.shape)\n")}),
        "magics": (8, "all tests passed", {"conv2d": perfect, "EXTRA": [
            "%matplotlib inline\n%time out = conv2d(np.ones((6, 6, 1)), np.ones((3, 3, 1, 1)))\n%who_ls\n",
            "%%capture captured\nprint('not shown')\n",
            "%%time\nprint(captured.stdout.strip())\n"]}),
        "piplist": (8, "all tests passed", {"conv2d": perfect,
                                            "EXTRA": "!pip list 2>/dev/null | head -3\n!echo done\n"}),
        "helpers": (8, "all tests passed", {"conv2d": perfect,
                                            "BEFORE": [HELPER_CELL, "import math\nimport numpy as np\n"],
                                            "EXTRA": "from collections import Counter\nprint(Counter('conv2d'))\n"}),
        # the answer calls a helper of the student's own, defined in a cell before it: the grader re-runs both
        "helperinanswer": (8, "all tests passed", {"BEFORE": [HELPER_CELL], "conv2d": HELPER_ANSWER}),
        "markdowncells": (8, "all tests passed", {"conv2d": perfect, "MARKDOWN": True}),
        "printsarrays": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "np.set_printoptions(threshold=10**6)\nprint(np.arange(200_000))\n"
            "print(conv2d(np.ones((40, 40, 1)), np.ones((3, 3, 1, 1)))[:, :, 0])\n")}),
        "writesplot": (8, "all tests passed", {"conv2d": perfect, "EXTRA": (
            "import matplotlib.pyplot as plt\n"
            "plt.imshow(conv2d(np.eye(8)[:, :, None], np.ones((3, 3, 1, 1)))[:, :, 0])\n"
            "plt.savefig('my_plot.png')\nprint(len(open('my_plot.png', 'rb').read()) > 0)\n")}),
        "outoforder": (8, "all tests passed", {"conv2d": perfect, "STALE": True}),
    }


# Cases the grader does not yet score as their honest code earns, and why (tests/test_autograder_corpus.py expects
# them to fail, strictly: when the grader is fixed, remove the entry).
#: Honest code the grader still scores wrong (none now: issue 32 made the scan a flag, let the answer's own helper
#: cells run with it, and flag, never score, a cell that binds the answer again).
KNOWN_WRONG: dict[str, str] = {}

# Cases that only a sandboxed kernel may run: outside the sandbox, as root, they would unmount, mount and write on the
# grading machine itself, and signal every process they can see. `grade` leaves them out where the sandbox cannot
# isolate (its own probe, the one `course.autograde` uses in the same process).
NEEDS_ISOLATION = ("umountheldout", "remountroot", "newuserns", "mountproc", "writeseverywhere", "readsothers",
                   "signalsgrader")


def other_notebook(course: Path) -> dict:
    """A notebook of another assignment: another released exercise if there is one, else the chapter 1 lesson."""
    for path in sorted((course / "release").glob("*/*.ipynb")):
        if path.parent.name != ASSIGNMENT:
            return json.loads(path.read_text())
    return json.loads((REPO / "book" / "ch01_convolution.ipynb").read_text())


def code_cell(cell_id: str, source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {}, "outputs": [],
            "source": source}


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
        if spec.get("MARKDOWN"):   # a note of the student's own before every cell
            cells.append({"cell_type": "markdown", "id": f"note-{i}", "metadata": {},
                          "source": f"## My note {i}\n\n*Thinking* about $x_{{{i}}}$ and `code`.\n"})
        if gid == "conv2d":   # cells of the student's own before the answer
            cells += [code_cell(f"before-{i}-{k}", src) for k, src in enumerate(spec.get("BEFORE", []))]
        cells.append(cell)
        if spec.get("EXTRA") and gid == "conv2d":   # cells of the student's own after the answer
            extra = [spec["EXTRA"]] if isinstance(spec["EXTRA"], str) else spec["EXTRA"]
            cells += [code_cell(f"extra-{i}-{k}", src) for k, src in enumerate(extra)]
    if spec.get("STALE"):   # saved after running cells out of order: counts shuffled, outputs of an older run
        code = [c for c in cells if c["cell_type"] == "code"]
        for n, c in enumerate(code):
            c["execution_count"] = (len(code) - n) * 3 + 7
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"an old output of run {n}\n"},
                            {"output_type": "error", "ename": "NameError", "evalue": "name 'conv2d' is not defined",
                             "traceback": ["NameError: name 'conv2d' is not defined"]}]
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


TWINS = [("aaa-perfect", "perfect"), ("zzz-validonly", "validonly")] + \
    [(f"repeat{i}-validonly", "validonly") for i in range(1, 4)]   # validonly graded 5 times in all
LIMITS = dict(cell_timeout=45, notebook_timeout=300, memory_mb=3072)   # 45 s: TensorFlow's import on a loaded machine


def grade(tmp: Path, twins: bool = True, skip: tuple = ()) -> dict:
    """The whole batch, as tests/test_autograder_corpus.py runs it (in a process of its own, as root or as an ordinary
    user): a course in TMP/course, the corpus (and its twins: the same code under other names and places in the
    batch) collected and graded with two workers, feedback and the export; returns, and writes to TMP/result.json,
    {"expected": {student: [score, phrase]}, "results": {student: {score, max_score, notes, flags, zeroed}},
     "isolation": the sandbox's line}."""
    from autograder import course, sandbox

    root, inbox = tmp / "course", tmp / "lms"
    if not sandbox.namespaces_available():
        skip = tuple(skip) + NEEDS_ISOLATION
    course.init(root)
    course.release(root)
    expected = write(root, inbox)
    for student in skip:
        (inbox / f"{student}_{NOTEBOOK}").unlink()
        del expected[student]
    for twin, original in TWINS if twins else []:
        (inbox / f"{twin}_{NOTEBOOK}").write_bytes((inbox / f"{original}_{NOTEBOOK}").read_bytes())
        expected[twin] = expected[original]
    collected = course.collect(root, ASSIGNMENT, inbox)
    assert sorted(collected) == sorted(expected), (collected, sorted(expected))
    results = course.autograde(root, ASSIGNMENT, jobs=2, **LIMITS)
    course.feedback(root, ASSIGNMENT)
    course.export(root, tmp / "grades.csv")
    out = {"expected": expected, "isolation": sandbox.describe(),
           "results": {r.student: {"score": r.score, "max_score": r.max_score, "notes": r.notes, "flags": r.flags,
                                   "zeroed": r.zeroed} for r in results}}
    (tmp / "result.json").write_text(json.dumps(out))
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--grade":   # make_corpus.py --grade TMP [--no-twins] [--skip STUDENT]...
        sys.path.insert(0, str(REPO))
        skip = tuple(sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--skip")
        grade(Path(sys.argv[2]).resolve(), twins="--no-twins" not in sys.argv, skip=skip)
    else:
        for name, (score, phrase) in write(Path(sys.argv[1]).resolve(), Path(sys.argv[2])).items():
            print(f"{name}: {score} points, feedback mentions {phrase!r}")
