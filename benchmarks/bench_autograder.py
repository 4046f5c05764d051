"""Autograder throughput: seconds per submission of the heaviest exercise, and submissions a minute for a batch.

    nice -n 10 .venv/bin/python benchmarks/bench_autograder.py [--batch 4] [--jobs 2] [--assignment ch05_architectures]

Builds a course in a temporary folder, releases it, makes BATCH submissions of ASSIGNMENT from its solution (every
one correct, so every cell runs in full; each answer cell starts with a comment naming its student, so that no two
are the same program), times one submission alone (--jobs 1), then the whole batch with --jobs, and prints both
figures with the machine's core count and load, and the share of the trusted step (the TrustedChecks preprocessor,
read from nbgrader's log), and the CPU seconds each took (``cpu_seconds``: what other work on a shared machine
cannot inflate; the warm re-run interpreters are stopped at the end of each phase, so that their imports and the
re-runs they served count in it, and the batch starts with none warm). Targets (issues 13 and 32): one submission
alone at most 30 s on a 2-core machine; a batch at least 4 submissions a minute. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that the CPU time of a process that
    outlives its parent (a warm re-run interpreter, autograder/answer_rules/rerun.py, and the jobs it ran) counts in
    ``cpu_seconds`` once it ends and ``reap_orphans`` collects it."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def stop_descendants() -> int:
    """SIGKILL every process still running under this one once a phase has ended: only the warm re-run interpreters
    (autograder/answer_rules/rerun.py ``Warm``) outlive a grading, adopted here (``adopt_orphans``). Their CPU time,
    the re-runs they served included, counts in ``cpu_seconds`` only once they end and ``reap_orphans`` collects
    them: left idle, they would carry one phase's re-runs into the next, or out of the measure altogether. The
    batch then starts with none warm, as a batch does. Returns how many were stopped."""
    import signal

    me, parents = os.getpid(), {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    ours = []
    for pid in parents:
        seen, up = set(), parents.get(pid)
        while up and up not in seen and up != me:
            seen.add(up)
            up = parents.get(up)
        if up == me and pid != me:
            ours.append(pid)
    for pid in ours:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(ours)


def reap_orphans(seconds: float = 3.0) -> None:
    """Collect the descendants that ended after their parents (called when no grading process is left running)."""
    stop_descendants()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.1)


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of every descendant that has ended: the grading's own work,
    whatever else loads the machine (``reap_orphans`` ends the warm re-run interpreters first, so theirs is in it)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def perfect_submission(course_dir: Path, assignment: str, student: str = "") -> dict[str, bytes]:
    """Each released notebook of the assignment with its solution cells filled in from the source; with ``student``,
    each answer starts with a comment that names it, so that no two submissions of a batch are the same program
    (as real ones are not: the grader may share the work of identical answer cells, chapter 7's re-run)."""
    from coursetools.release import fill_answers, solution_answers

    def answers(path: Path) -> dict[str, str]:
        found = solution_answers(path)
        return {gid: (f"# {student}\n" + source) if student else source for gid, source in found.items()}

    return {rel.name: json.dumps(fill_answers(json.loads(rel.read_text()),
                                              answers(course_dir / "source" / assignment / rel.name))).encode()
            for rel in sorted((course_dir / "release" / assignment).glob("*.ipynb"))}


def cell_seconds(folder: Path) -> list[tuple[str, float]]:
    """(cell name, seconds) of every executed code cell of the autograded notebooks, from nbclient's timing."""
    from datetime import datetime

    out = []
    for path in sorted(folder.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            timing = cell.get("metadata", {}).get("execution", {})
            start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if start and end:
                name = cell["metadata"].get("nbgrader", {}).get("grade_id") or f"cell {i}"
                out.append((name, (datetime.fromisoformat(end.rstrip("Z")) -
                                   datetime.fromisoformat(start.rstrip("Z"))).total_seconds()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignment", default="ch05_architectures")
    args = parser.parse_args()
    from autograder import course
    adopt_orphans()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "course"
        course.init(root)
        course.release(root, prepare=True)   # as `python -m autograder.course release` does
        inbox = Path(tmp) / "lms"
        for i in range(args.batch):
            for name, data in perfect_submission(root, args.assignment, f"s{i:03d}").items():
                (inbox / f"s{i:03d}" / args.assignment).mkdir(parents=True, exist_ok=True)
                (inbox / f"s{i:03d}" / args.assignment / name).write_bytes(data)
        course.collect(root, args.assignment, inbox)
        single = root / "submitted"
        others = sorted(p for p in single.iterdir() if p.name != "s000")
        parked = Path(tmp) / "parked"
        parked.mkdir()
        for p in others:                       # time one submission alone first
            p.rename(parked / p.name)
        t0, c0 = time.perf_counter(), cpu_seconds()
        one = course.autograde(root, args.assignment, jobs=1)
        t_one = time.perf_counter() - t0
        reap_orphans()
        c_one = cpu_seconds() - c0
        cells = cell_seconds(root / "autograded" / "s000" / args.assignment)
        for p in others:
            (parked / p.name).rename(p)
        t0, c0 = time.perf_counter(), cpu_seconds()
        results = course.autograde(root, args.assignment, jobs=args.jobs, force=True)  # every one, the first again too
        t_batch = time.perf_counter() - t0
        reap_orphans()
        c_batch = cpu_seconds() - c0
        scores = {r.score for r in results}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          f"assignment {args.assignment}; sandbox "
          f"{'on' if course.sandbox.namespaces_available() else 'limits only'}")
    print(f"one submission alone (--jobs 1): {t_one:.1f} s, {c_one:.1f} CPU-s "
          f"(score {one[0].score:g}/{one[0].max_score:g})")
    kernel = sum(t for _, t in cells)
    slowest = ", ".join(f"{name} {t:.1f} s" for name, t in sorted(cells, key=lambda c: -c[1])[:5])
    print(f"  of which the student's cells ran {kernel:.1f} s in the kernel (slowest: {slowest}); the rest, "
          f"{t_one - kernel:.1f} s, is nbgrader, the kernel's start and the trusted step")
    print(f"batch of {args.batch} (--jobs {args.jobs}): {t_batch:.1f} s = {t_batch / args.batch:.1f} s a submission, "
          f"{60 * args.batch / t_batch:.1f} submissions a minute, {c_batch / args.batch:.1f} CPU-s a submission; "
          f"scores {sorted(scores)}")


if __name__ == "__main__":
    main()
