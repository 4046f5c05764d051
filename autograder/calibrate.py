"""Calibrate every model-quality threshold from the reference solutions (autograder/PROTOCOL.md §6).

    nice -n 10 .venv/bin/python -m autograder.calibrate [ASSIGNMENT ...] [--task NAME] [--seeds 5] [--threads 1 2]
                                                        [--quick] [--profile sample|full]

For each task that a check module declares in TASKS, it runs the task's cells of the solution notebook once per
seed and thread count (a fresh kernel each time, the grading kernel's environment), saves the trained model, and
measures it in this process with the task's trusted metric; then the task's named weak solution the same way.
It prints the distribution, derives the top band (lowest reference run minus 1 point, rounded down to 0.1
point), checks that every reference run clears every band by the margin and that the weak solution misses the top
band; for a task with a ceiling, that every reference run stays under it by the margin and that each answer
trained on what it must not see (``over``) lands above it by the margin; and writes autograder/calibration.json,
which the trusted checks read and the notebooks' bands must match.

A task whose scored model is not the kernel's but the grader's re-run of the answer cells (chapter 7's fine-tuning,
issue 32) is calibrated on that model: its check module maps the task's artifact to a function in ``RERUN``
(cells, seed, threads, profile, folder, cache) -> model file, which runs the (edited) answer cells exactly as grading
does, alone, in the sandbox, on the trusted setup; ``run_notebook`` calls it instead of running a kernel.
Exit status 1 when a rule fails. `--quick` (one seed, one thread, no weak run) only checks that the pipeline works
and never writes the report. Run by hand, not in CI: it trains ~11 models a task.

`--profile full` calibrates the ``full`` profile's bands the same way (an instructor with the downloaded datasets and
a private held-out split in ``$AUTOGRADER_HELDOUT_DIR``, book/instructors.md): the notebook runs with
``PROFILE = "full"``, the metric reads that profile's held-out split, and the report gets a ``full`` entry next to
the ``sample`` one. A task's ceiling (and its ``over`` and ``honest`` answers) is the sample profile's only.

``--output PATH`` writes the report there instead (the repository's report is read and merged, never changed).
Against the test mirror (issue 39: ``CNNBOOK_MIRROR`` and the smoke knob ``CNNBOOK_SMOKE=1``, README "Profiles"),
``--profile full`` runs end to end on miniature data: the broken rules are reported, not enforced (no accuracy on that
data means anything), and the report is written only to an ``--output`` path, never to autograder/calibration.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import trusted
from cnnbook.profiles import SMOKE_ENV, smoke

REPO = trusted.AUTOGRADER.parent
SOLUTIONS = REPO / "solutions"


def solution_notebook(assignment: str) -> Path:
    """The assignment's solution notebook (solutions/ASSIGNMENT/*.ipynb, the one holding the task's cells)."""
    found = sorted((SOLUTIONS / assignment).glob("*.ipynb"))
    if not found:
        raise SystemExit(f"calibrate: no solution notebook in {SOLUTIONS / assignment}")
    return found[0]


def run_notebook(assignment: str, task: trusted.QualityTask, seed: int, threads: int, weak: bool,
                 timeout: int = 900, over: str = "", honest: str = "", profile: str = "sample") -> float:
    """Train the task's model (reference, weak, the ``over`` or ``honest`` answer named) in a fresh kernel; return
    its metric. A task whose scored model is the grader's re-run of the answer cells (the check module's ``RERUN``,
    keyed by the task's artifact: chapter 7's fine-tuning) is trained that way instead (``run_rerun``)."""
    module = trusted.load_checks(assignment)
    if task.artifact in getattr(module, "RERUN", {}):
        return run_rerun(assignment, task, module.RERUN[task.artifact], seed, threads, weak, over, honest, profile)
    from nbclient import NotebookClient

    src = nbformat.read(solution_notebook(assignment), as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in src.cells}
    missing = [g for g in ("parameters", *task.cells) if g not in by_id]
    if missing:
        raise SystemExit(f"calibrate: {assignment} has no cells {missing} (TASKS cells are grade_ids)")
    cells = [copy.deepcopy(by_id["parameters"])]
    cells.append(nbformat.v4.new_code_cell(
        f"PROFILE = {profile!r}\nSEED = {seed}\nimport tensorflow as tf\n"
        f"tf.config.threading.set_intra_op_parallelism_threads({threads})\n"
        "tf.config.threading.set_inter_op_parallelism_threads(1)"))
    for gid in task.cells:
        cell = copy.deepcopy(by_id[gid])
        if weak and gid in task.weak:
            cell.source = task.weak[gid]
        if gid in task.honest.get(honest, {}):
            cell.source = task.honest[honest][gid]
        if gid in task.over.get(over, {}):
            old, new = task.over[over][gid]
            if old not in cell.source:
                raise SystemExit(f"calibrate: {assignment}/{gid} has no {old!r} to edit into {over!r}")
            cell.source = cell.source.replace(old, new)
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(
        f"from cnnbook import submit\nsubmit.save_model({task.artifact}, {task.artifact!r})"))
    for c in cells:
        c.outputs, c.execution_count = [], None
    nb = nbformat.v4.new_notebook(cells=cells, metadata=src.metadata)
    with tempfile.TemporaryDirectory(prefix="calib-") as tmp:
        env = {"CNNBOOK_ARTIFACTS": str(Path(tmp) / "artifacts"), "OMP_NUM_THREADS": str(threads),
               "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "PYTHONHASHSEED": "0",
               "TF_DETERMINISTIC_OPS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        art = trusted.Artifacts(Path(env["CNNBOOK_ARTIFACTS"]), assignment, profile)
        model = art.model(task.artifact)
        if task.metric_reads_answers:
            answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in cells}
            return float(task.metric(model, {g: answers[g] for g in task.cells}))
        return float(task.metric(model))


def edited_cells(assignment: str, task: trusted.QualityTask, weak: bool, over: str, honest: str) -> dict[str, str]:
    """The task's cells (grade_id -> source) of the solution notebook, edited into the weak, ``over`` or ``honest``
    answer named."""
    src = nbformat.read(solution_notebook(assignment), as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in src.cells}
    cells = {}
    for gid in task.cells:
        source = by_id[gid]
        if weak and gid in task.weak:
            source = task.weak[gid]
        if gid in task.honest.get(honest, {}):
            source = task.honest[honest][gid]
        if gid in task.over.get(over, {}):
            old, new = task.over[over][gid]
            if old not in source:
                raise SystemExit(f"calibrate: {assignment}/{gid} has no {old!r} to edit into {over!r}")
            source = source.replace(old, new)
        cells[gid] = source
    return cells


#: The trusted setup a re-run task makes once (chapter 7's base), shared by one calibration's runs.
_RERUN_CACHE: list[Path] = []


def run_rerun(assignment: str, task: trusted.QualityTask, train, seed: int, threads: int, weak: bool, over: str,
              honest: str, profile: str) -> float:
    """Train a re-run task's model as grading does (``train``: the check module's ``RERUN`` entry, which runs the
    answer cells again, alone, in the sandbox) and measure it with the task's metric: the bands are set on the model
    that is scored, not on a kernel's."""
    cells = edited_cells(assignment, task, weak, over, honest)   # the solution's markers are comments
    if not _RERUN_CACHE:
        import atexit
        import shutil

        _RERUN_CACHE.append(Path(tempfile.mkdtemp(prefix="calib-setup-")))
        atexit.register(shutil.rmtree, _RERUN_CACHE[0], ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="calib-rerun-") as tmp:
        try:
            path = train(cells, seed, threads, profile, Path(tmp), _RERUN_CACHE[0])
        except AssertionError as exc:
            raise SystemExit(f"calibrate: {assignment}: the grader's re-run of the answer failed: {exc}") from None
        return float(task.metric(trusted.load_model(path)))


def machine() -> dict:
    """CPU model, AVX-512 or not, and the stack: what a calibration was measured on."""
    import keras
    import tensorflow as tf

    model, flags = platform.processor(), ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
        flags = next(l for l in info.splitlines() if l.startswith("flags"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "avx512": "avx512f" in flags, "cores": os.cpu_count(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def derive(task: trusted.QualityTask, ref: list[float], weak: list[float],
           over: list[float] = (), honest: list[float] = ()) -> tuple[list[float], list[str]]:
    """The bands (fixed ones plus the derived top) and the list of broken rules (PROTOCOL §6)."""
    floor = min(ref) - trusted.DERIVE_MARGIN
    bands = list(task.fixed)
    if task.derive_top:
        bands.append(math.floor(round(floor * 1000, 6)) / 1000)
    problems = []
    for b in bands:
        if min(ref) - b < trusted.MARGIN - 1e-9:
            problems.append(f"band {b:.3f}: the worst reference run {min(ref):.4f} clears it by "
                            f"{(min(ref) - b) * 100:.2f} points, under the {trusted.MARGIN * 100:.1f}-point margin")
    if sorted(bands) != bands or len(set(bands)) != len(bands):
        problems.append(f"bands {bands} are not strictly increasing: the derived top band is not above the fixed ones")
    if weak and bands and max(weak) >= bands[-1]:
        problems.append(f"the weak solution reaches {max(weak):.4f}, the top band {bands[-1]:.3f}: it must miss it")
    if task.ceiling is not None:
        if task.ceiling - max(ref) < trusted.MARGIN - 1e-9:
            problems.append(f"ceiling {task.ceiling:.3f}: the best reference run {max(ref):.4f} stays under it by "
                            f"{(task.ceiling - max(ref)) * 100:.2f} points, under the {trusted.MARGIN * 100:.1f}-point "
                            "margin")
        if over and min(over) - task.ceiling < trusted.MARGIN - 1e-9:
            problems.append(f"ceiling {task.ceiling:.3f}: an answer trained on what it must not see reaches only "
                            f"{min(over):.4f}; it must clear the ceiling by {trusted.MARGIN * 100:.1f} points")
        if honest and task.ceiling - max(honest) < trusted.MARGIN - 1e-9:
            problems.append(f"ceiling {task.ceiling:.3f}: an honest answer (on the allowed data only) reaches "
                            f"{max(honest):.4f}; it must stay under the ceiling by {trusted.MARGIN * 100:.1f} points")
    return bands, problems


def calibrate(assignment: str, seeds: int, threads: list[int], quick: bool,
              only: list[str] | None = None, profile: str = "sample") -> tuple[dict, list[str]]:
    """Calibrate every task of one assignment (or the tasks named in ``only``) in one profile; return its entry
    ({task: {profile: ...}}) and the broken rules."""
    module = trusted.load_checks(assignment)
    tasks = getattr(module, "TASKS", {}) if module else {}
    unknown = sorted(set(only or ()) - set(tasks))
    if unknown:
        raise SystemExit(f"calibrate: {assignment} has no tasks {unknown}; its tasks are {sorted(tasks)}")
    tasks = {name: task for name, task in tasks.items() if not only or name in only}
    if not tasks:
        print(f"{assignment}: no model-quality tasks (no TASKS in autograder/checks/{assignment}.py)")
        return {}, []
    entry, problems = {}, []
    for name, task in tasks.items():
        runs = []
        for n in threads:
            for seed in range(seeds):
                t0 = time.time()
                value = run_notebook(assignment, task, seed, n, weak=False, profile=profile)
                runs.append({"seed": seed, "threads": n, "value": value, "seconds": round(time.time() - t0, 1)})
                print(f"  {assignment}/{name} reference seed {seed} threads {n}: {task.unit} {value:.4f} "
                      f"({runs[-1]['seconds']:.0f} s)", flush=True)
        weak_runs = []
        if task.weak and not quick:
            for seed in range(min(seeds, 2)):
                value = run_notebook(assignment, task, seed, max(threads), weak=True, profile=profile)
                weak_runs.append({"seed": seed, "threads": max(threads), "value": value})
                print(f"  {assignment}/{name} weak ({task.weak_name}) seed {seed}: {task.unit} {value:.4f}", flush=True)
        capped = task.ceiling is not None and profile == "sample"   # the ceiling is the sample profile's
        if not capped:
            task = dataclasses.replace(task, ceiling=None)
        edited = {"over": [], "honest": []}   # the answers of both sides of the ceiling, each run like the reference
        for kind, label in (("over", "over the ceiling"), ("honest", "honest")):
            for answer in ([] if quick or not capped else getattr(task, kind)):
                for seed in range(min(seeds, 2)):
                    value = run_notebook(assignment, task, seed, max(threads), weak=False, **{kind: answer})
                    edited[kind].append({"name": answer, "seed": seed, "threads": max(threads), "value": value})
                    print(f"  {assignment}/{name} {label} ({answer}) seed {seed}: {task.unit} {value:.4f}", flush=True)
        over_runs, honest_runs = edited["over"], edited["honest"]
        ref = [r["value"] for r in runs]
        bands, broken = derive(task, ref, [r["value"] for r in weak_runs], [r["value"] for r in over_runs],
                               [r["value"] for r in honest_runs])
        for n in threads:
            vals = [r["value"] for r in runs if r["threads"] == n]
            print(f"{assignment}/{name} at {n} thread(s): min {min(vals):.4f}, median {statistics.median(vals):.4f}, "
                  f"max {max(vals):.4f} over {len(vals)} seeds")
        print(f"{assignment}/{name} bands: " + ", ".join(f"{b:.3f} (margin {(min(ref) - b) * 100:.2f} points)"
                                                         for b in bands)
              + (f"; weak best {max(r['value'] for r in weak_runs):.4f}" if weak_runs else ""))
        if task.ceiling is not None:
            print(f"{assignment}/{name} ceiling {task.ceiling:.3f}: best reference {max(ref):.4f} "
                  f"({(task.ceiling - max(ref)) * 100:.2f} points under)"
                  + (f", lowest answer trained on more {min(r['value'] for r in over_runs):.4f} "
                     f"({(min(r['value'] for r in over_runs) - task.ceiling) * 100:.2f} points over)"
                     if over_runs else "")
                  + (f", best honest answer {max(r['value'] for r in honest_runs):.4f} "
                     f"({(task.ceiling - max(r['value'] for r in honest_runs)) * 100:.2f} points under)"
                     if honest_runs else ""))
        problems += [f"{assignment}/{name}: {p}" for p in broken]
        entry[name] = {profile: {
            "bands": bands, "fixed": list(task.fixed), "derive_top": task.derive_top, "margin": trusted.MARGIN,
            "metric": task.unit, "min": min(ref), "median": statistics.median(ref), "max": max(ref),
            "margins": [round(min(ref) - b, 6) for b in bands], "runs": runs,
            "weak": {"name": task.weak_name, "runs": weak_runs}}}
        if task.ceiling is not None:
            entry[name][profile]["ceiling"] = {"value": task.ceiling, "over": over_runs, "honest": honest_runs}
    return entry, problems


def merge(report: dict, assignment: str, entry: dict, profile: str, facts: dict) -> None:
    """Put a calibration's entry of one profile into the report, keeping every task's other profiles."""
    for task, value in entry.items():
        report.setdefault(assignment, {}).setdefault(task, {})[profile] = {**value[profile], **facts}


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m autograder.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment with TASKS")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="one seed, one thread, no weak run, nothing written")
    parser.add_argument("--task", action="append", help="only this task (repeatable); the others keep their entry")
    parser.add_argument("--profile", default="sample", choices=("sample", "full"),
                        help="the profile to calibrate (full: the downloaded datasets and a private held-out split)")
    parser.add_argument("--output", type=Path, default=trusted.CALIBRATION,
                        help="where to write the report (default autograder/calibration.json)")
    args = parser.parse_args(argv)
    if smoke() and args.output.resolve() == trusted.CALIBRATION.resolve():
        print(f"calibrate: {SMOKE_ENV} is set (the test mirror's miniature data): its calibration is never written "
              f"to {trusted.CALIBRATION.relative_to(REPO)}; pass --output PATH", file=sys.stderr)
        return 2
    with trusted.grading_context(args.profile):   # the metrics read that profile's held-out splits
        return _calibrate_all(args)


def _calibrate_all(args) -> int:
    """Calibrate the assignments ``args`` names, print the rules broken and write the report; the exit status."""
    names = args.assignments or sorted(p.stem for p in trusted.CHECKS_DIR.glob("ch*.py"))
    seeds, threads = (1, [1]) if args.quick else (args.seeds, args.threads)
    if not args.quick and (seeds < 5 or sorted(set(threads)) != sorted(set(threads) | {1, 2})):
        print("calibrate: warning: the protocol asks for at least 5 seeds at 1 and 2 threads", file=sys.stderr)
    report, problems = trusted.calibration(), []
    for name in names:
        entry, broken = calibrate(name, seeds, threads, args.quick, args.task, args.profile)
        problems += broken
        merge(report, name, entry, args.profile, {
            "machine": machine() if entry else {}, "seeds": seeds, "threads": threads,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    enforced = not smoke()   # on the test mirror's miniature data the rules are reported, not enforced
    for p in problems:
        print("RULE BROKEN:" if enforced else f"RULE BROKEN (reported, not enforced: {SMOKE_ENV}):", p,
              file=sys.stderr)
    output = args.output
    if not args.quick and (not problems or not enforced):
        output.write_text(json.dumps(report, indent=1) + "\n")
        shown = output.resolve()
        print("written:", shown.relative_to(REPO.resolve()) if shown.is_relative_to(REPO.resolve()) else shown)
    return 1 if problems and enforced and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
