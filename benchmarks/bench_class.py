"""Grade a synthetic class end to end and print the throughput (issue 38): progress, resume, and a Dask cluster.

    nice -n 10 .venv/bin/python benchmarks/bench_class.py [--students 200] [--jobs 2] [--cluster local:2]
                                                          [--kill-after 20] [--compare]

The class is chapter 1's exercise, handed in as an LMS would (one file per student): honest variants (the
solution with renamed variables, comments, extra cells, helper functions; half-right answers) and, every fifth
student, one of the hostile submissions of tests/corpus/make_corpus.py (escapes, patches, floods), without the
two that only burn time by design (an infinite loop and a 50 MB file). It prints the wall time and submissions a
minute; with ``--kill-after K`` it kills the batch after K submissions and resumes it, and prints how many the
second run graded; with ``--compare`` it grades the same class again on ``--cluster`` (default local:2) and says
whether the two gradebooks are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursetools.course import load_script
from coursetools.release import fill_answers, solution_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"
SLOW_BY_DESIGN = {"infiniteloop", "hugeoutput", "printsflood"}


def honest_variants(perfect: str, valid_only: str) -> list[dict]:
    """Answers an honest class hands in: the same code written differently, extra cells, half-right answers."""
    renamed = perfect.replace("window", "patch").replace("out[", "result[").replace("out =", "result =") \
        .replace("out +=", "result +=").replace("return out", "return result")
    return [{"conv2d": perfect}, {"conv2d": "# my answer\n" + perfect}, {"conv2d": renamed},
            {"conv2d": perfect, "EXTRA": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nsum = 0\n"},
            {"conv2d": valid_only}, {}]


def write_class(root: Path, inbox: Path, students: int) -> int:
    corpus = load_script("tests/corpus/make_corpus.py")
    released = json.loads((root / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    perfect = solution_answers(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)["conv2d"]
    hostile = [spec for name, (_, _, spec) in corpus.cases(root).items() if name not in SLOW_BY_DESIGN]
    honest = honest_variants(perfect, corpus.VALID_ONLY)
    inbox.mkdir(parents=True)
    for i in range(students):
        spec = hostile[(i // 5) % len(hostile)] if i % 5 == 4 else honest[i % len(honest)]
        if "EXTRA" in spec and set(spec) <= {"conv2d", "EXTRA"} and "import matplotlib" in spec["EXTRA"]:
            nb = fill_answers(json.loads(json.dumps(released)), {"conv2d": spec["conv2d"]})
            nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "extra", "metadata": {},
                                "outputs": [], "source": spec["EXTRA"]})
            data = json.dumps(nb).encode()
        else:
            data = corpus.make(released, spec, root)
        (inbox / f"s{i:04d}_{NOTEBOOK}").write_bytes(data)
    return students


def grade(root: Path, jobs: int, cluster: str | None = None, kill_after: int = 0) -> tuple[float, int]:
    """Run `autograde` as an instructor would; return (seconds, submissions it graded)."""
    cmd = [sys.executable, "-m", "autograder.course", "autograde", str(root), ASSIGNMENT, "--jobs", str(jobs)]
    if cluster:
        cmd += ["--cluster", cluster]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    graded = 0
    for line in proc.stderr:
        if " graded (" in line:
            graded += 1
            print("   ", line.rstrip()[len("course: "):], flush=True)
            if kill_after and graded >= kill_after:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        elif line.startswith("course:"):
            print("   ", line.rstrip(), flush=True)
    proc.wait()
    return time.monotonic() - start, graded


def gradebook(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(ASSIGNMENT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--cluster", default="local:2")
    args = parser.parse_args()
    from autograder import course

    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        root = Path(tmp) / "course"
        course.init(root)
        course.release(root)
        n = write_class(root, Path(tmp) / "lms", args.students)
        course.collect(root, ASSIGNMENT, Path(tmp) / "lms")
        pristine = Path(tmp) / "pristine"
        shutil.copytree(root, pristine)
        seconds, graded = grade(root, args.jobs, kill_after=args.kill_after)
        if args.kill_after:
            print(f"killed after {graded} submissions ({seconds:.0f} s); resuming")
            more, regraded = grade(root, args.jobs)
            print(f"the resumed batch graded {regraded} of {n} (the other {n - regraded} kept their grades)")
            seconds += more
        print(f"{n} submissions at --jobs {args.jobs}: {seconds:.0f} s, {n / seconds * 60:.1f} a minute")
        if args.compare:
            spread = Path(tmp) / "spread"
            shutil.copytree(pristine, spread)
            seconds, _ = grade(spread, args.jobs, cluster=args.cluster)
            same = gradebook(spread) == gradebook(root)
            print(f"on --cluster {args.cluster}: {seconds:.0f} s, {n / seconds * 60:.1f} a minute; "
                  f"the same gradebook as one machine: {same}")


if __name__ == "__main__":
    main()
