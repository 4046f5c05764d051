"""The whole corpus of broken, hostile and honest-but-unusual chapter 1 submissions, graded in one batch by
autograder/course.py (its trusted step included: the answer rule and the re-run of the answer cell,
autograder/answer_rules), once as root and once as an ordinary user.

Oracle: tests/corpus/make_corpus.py states, for each submission, the points its code earns honestly (the exercise's
test cells are worth 2 each; a correct conv2d earns 8, one right only for padding="valid" earns 4) and a phrase its
feedback line must contain. Grading runs with two workers (--jobs 2), so the merge of the per-worker gradebooks is
exercised too: every submission must be in the gradebook and the CSV export, with exactly its expected score. The
hostile cells of issue 32 print "ESCAPED ..." for every step that worked; the graded notebooks must hold none, and no
file they tried to plant (make_corpus.PLANTED) may exist anywhere afterwards.
"""

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import sandbox
from coursetools.course import load_script

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"
NOBODY = 65534
HOSTILE = ("umountheldout", "remountroot", "newuserns", "mountproc", "writeseverywhere", "readsothers",
           "signalsgrader", "writesgradebook", "heldoutcomputedpath", "heldoutcomputedname")
HONEST = ("rebindsbuiltins", "display", "reloadshelper", "gccollect", "alarm", "magics", "piplist", "helpers",
          "helperinanswer", "markdowncells", "printsarrays", "writesplot", "outoforder")
# Both accounts grade every case, hostile and honest (issue 32: "every corpus case ... as root and as an ordinary
# user"): whether an escape works, or an honest kernel reaches what it needs, can depend on the grader's uid.

corpus = load_script("tests/corpus/make_corpus.py")


def ordinary_user_prefix(uid: int = NOBODY) -> list[str]:
    """A command prefix that runs the rest as an ordinary user; /root (mode 700 here, and the interpreter lives in
    /root/.pyenv) is shown to it, in a mount namespace of its own, as a folder that holds only .pyenv."""
    script = ("set -e; if [ -d /root/.pyenv ]; then stage=$(mktemp -d); mount --bind /root/.pyenv $stage; "
              "mount -t tmpfs -o mode=755 tmpfs /root; mkdir /root/.pyenv; mount --move $stage /root/.pyenv; "
              f'rmdir $stage; fi; exec setpriv --reuid={uid} --regid={uid} --clear-groups --inh-caps=-all "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]


def run_batch(tmp: Path, prefix: list[str] = (), twins: bool = True) -> dict:
    """Grade the corpus in a process of its own (make_corpus.py --grade); its result with the export's rows."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    os.chown(home, *(os.stat(tmp).st_uid, os.stat(tmp).st_gid))
    cmd = [*prefix, sys.executable, str(REPO / "tests" / "corpus" / "make_corpus.py"), "--grade", str(tmp),
           *([] if twins else ["--no-twins"])]   # it leaves out corpus.NEEDS_ISOLATION where there is no sandbox
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(home))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = json.loads((tmp / "result.json").read_text())
    out["root"], out["log"] = tmp / "course", proc.stderr
    out["grades"] = {r["student_id"]: r for r in csv.DictReader(open(tmp / "grades.csv"))
                     if r["assignment"] == ASSIGNMENT}   # the export has a row per student and assignment
    return out


@pytest.fixture(scope="module")
def as_root(tmp_path_factory):
    """The corpus, plus copies under other names: the same code must get the same score, whatever its place in the
    batch (a perfect one first, and the half-right one graded five times in all, spread over both workers)."""
    return run_batch(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def as_user():
    """The corpus again (no copies), graded by an ordinary account (uid 65534) in a course folder and HOME it owns."""
    if os.getuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("becoming an ordinary user needs root, setpriv and unshare")
    prefix = ordinary_user_prefix()
    can = subprocess.run(prefix + [sys.executable, "-c", "import autograder.course, nbgrader"], cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    if can.returncode != 0:
        pytest.skip(f"an ordinary user cannot run the grader from this checkout: {can.stderr.strip()[-300:]}")
    line = subprocess.run(prefix + [sys.executable, str(REPO / "autograder" / "sandbox.py"), "--describe"],
                          capture_output=True, text=True).stdout.strip()
    if sandbox.namespaces_available() and line.startswith("resource limits only"):
        pytest.skip(f"unprivileged user namespaces are not available to an ordinary user here: {line}")
    tmp = Path(tempfile.mkdtemp(prefix="corpus-user-"))
    os.chown(tmp, NOBODY, NOBODY)
    try:
        yield run_batch(tmp, prefix, twins=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module", params=["root", "user"])
def graded(request):
    return request.getfixturevalue("as_root" if request.param == "root" else "as_user")


def outputs(root: Path, student: str) -> str:
    """Everything the graded notebook's code cells printed."""
    cells = json.loads((root / "autograded" / student / ASSIGNMENT / NOTEBOOK).read_text())["cells"]
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))


def wrong_scores(graded, students) -> dict:
    expected, results, grades = graded["expected"], graded["results"], graded["grades"]
    return {s: (float(grades[s]["score"]), expected[s][0], results[s]["notes"][:2], results[s]["flags"][:2])
            for s in students if float(grades[s]["score"]) != expected[s][0]}


@pytest.mark.slow
def test_every_submission_gets_its_deterministic_score(graded):
    expected, grades = graded["expected"], graded["grades"]
    assert wrong_scores(graded, [s for s in expected if s not in corpus.KNOWN_WRONG]) == {}
    assert {float(grades[s]["max_score"]) for s in expected} == {8.0}


@pytest.mark.slow
def test_every_bad_submission_gets_a_feedback_line_that_says_what_went_wrong(graded):
    root, expected, results = graded["root"], graded["expected"], graded["results"]
    missing = {s: results[s]["notes"] for s, (_, phrase) in expected.items()
               if s not in corpus.KNOWN_WRONG and not any(phrase in line for line in results[s]["notes"])}
    assert missing == {}
    for student in expected:   # and the student can read it next to the feedback HTML
        notes = root / "feedback" / student / ASSIGNMENT / "grader_notes.txt"
        assert notes.read_text().startswith(f"{ASSIGNMENT}: {results[student]['score']:g} of 8 points")


@pytest.mark.slow
def test_honest_but_unusual_submissions_earn_full_marks(graded):
    results = graded["results"]
    honest = [s for s in HONEST if s not in corpus.KNOWN_WRONG and s in graded["expected"]]
    assert honest == list(HONEST)   # every honest case graded, by both accounts
    assert {s: results[s]["score"] for s in honest} == {s: 8.0 for s in honest}, \
        {s: (results[s]["notes"], results[s]["flags"]) for s in honest if results[s]["score"] != 8}
    printed = outputs(graded["root"], "piplist")
    assert "done" in printed and "Package" in printed   # `!` commands ran (on the sandbox's own pseudo-terminal)


@pytest.mark.slow
def test_changing_the_grader_from_the_kernel_scores_the_trusted_verdict_and_is_flagged(graded):
    results = graded["results"]
    for student in ("patchhelpers", "patchassert", "patchimport"):
        # the scan's finding, for the instructor ("…: cell conv2d, line 3 `…`: rebinds `expect_array`, …")
        assert any(f.startswith(f"{NOTEBOOK}: cell ") for f in results[student]["flags"]), results[student]
    with open(graded["root"] / "reports" / f"{ASSIGNMENT}.csv") as f:
        flagged = {r["student_id"]: r["flags"] for r in csv.DictReader(f)}
    assert all(flagged[s] for s in ("patchhelpers", "patchassert", "patchimport"))


@pytest.mark.slow
def test_no_grade_is_lost_in_the_parallel_merge(graded):
    root, expected = graded["root"], graded["expected"]
    db = sqlite3.connect(root / "gradebook.db")
    rows = db.execute("SELECT s.student_id, COUNT(g.id) FROM submitted_assignment s "
                      "JOIN submitted_notebook n ON n.assignment_id = s.id JOIN grade g ON g.notebook_id = n.id "
                      "GROUP BY s.student_id").fetchall()
    assert dict(rows) == {s: 4 for s in expected}   # 4 graded cells each, no student missing or twice
    with open(root / "reports" / f"{ASSIGNMENT}.csv") as f:
        assert sorted(r["student_id"] for r in csv.DictReader(f)) == sorted(expected)


@pytest.mark.slow
def test_the_grader_says_what_isolation_it_got(graded):
    assert f"course: student kernels get: {graded['isolation']}" in graded["log"]
    if sandbox.namespaces_available():
        assert "no capabilities" in graded["isolation"] and "no new user namespaces" in graded["isolation"]


@pytest.mark.slow
def test_a_kernel_that_is_root_of_its_namespace_cannot_undo_the_sandbox(graded):
    """umount of a hidden folder, remount of / read-write, a new user namespace, a fresh /proc, writes to the
    gradebook, the repository, /dev/shm, /tmp, /sys/fs/cgroup, other students' files, signals: every step fails."""
    root, expected = graded["root"], graded["expected"]
    hostile = [s for s in HOSTILE if s in expected]
    printed = {s: outputs(root, s) for s in hostile}
    escaped = {s: [line for line in text.splitlines() if "ESCAPED" in line or line.startswith("read ")]
               for s, text in printed.items()}
    assert escaped == {s: [] for s in hostile}
    if not sandbox.namespaces_available():
        return
    for student in ("umountheldout", "remountroot", "newuserns", "mountproc", "writeseverywhere"):
        assert printed[student].count("blocked:") >= 3, (student, printed[student])   # the cell did run
    assert "others visible: 0" in printed["readsothers"], printed["readsothers"]
    assert "processes visible: 0 parent: 0" in printed["signalsgrader"], printed["signalsgrader"]
    assert "a process answers" not in printed["signalsgrader"]


@pytest.mark.slow
def test_a_submission_cannot_write_outside_its_own_folder(graded):
    root = graded["root"]
    name = corpus.PLANTED
    places = [REPO, REPO / "autograder", REPO / "autograder" / "data", REPO / "tests", root.parent, Path("/dev/shm"),
              Path(tempfile.gettempdir()), Path("/tmp"), Path("/"), Path("/run"), Path.home(),
              *Path("/sys/fs/cgroup").glob("*/")]
    planted = [str(p / name) for p in places if (p / name).exists()]
    planted += [str(p) for p in root.rglob(f"*{name}*")]
    planted += [str(p) for p in root.rglob("planted.txt")] + [str(p) for p in (REPO / "planted.txt",) if p.exists()]
    assert planted == []
    assert sqlite3.connect(root / "gradebook.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    printed = outputs(root, "writesgradebook")
    if sandbox.namespaces_available():
        # the 5 writes fail: the batch's folder is hidden, the scratch copy's gradebook with it
        assert printed.count("blocked: ") == 5, printed


@pytest.mark.slow
def test_same_code_same_score_whatever_the_name_or_order(as_root):
    results = as_root["results"]
    assert results["aaa-perfect"]["score"] == results["perfect"]["score"] == 8
    assert results["zzz-validonly"]["score"] == results["validonly"]["score"] == 4
    repeats = {s: r["score"] for s, r in results.items() if s.endswith("validonly")}
    assert len(repeats) == 5 and set(repeats.values()) == {4}, repeats


@pytest.mark.slow
def test_a_50_mb_printout_is_cut_before_it_reaches_the_gradebook_or_the_feedback(graded):
    root, results = graded["root"], graded["results"]
    assert results["printsflood"]["score"] == 8
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
    expected, grades = graded["expected"], graded["grades"]
    for student in ("aliaspatchnumpy", "aliaspatchkeras", "runtimename", "callsreference", "callsautograder",
                    "heldoutcomputedpath", "heldoutcomputedname", "outliveskernel"):
        assert float(grades[student]["score"]) == expected[student][0], (student, graded["results"][student])
