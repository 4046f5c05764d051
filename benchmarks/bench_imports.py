"""Benchmark: what importing the tooling costs each process the runner and the grader start.

Every notebook the runner executes starts a worker (papermill, nbformat) and a kernel (Keras and its backend); every
submission the grader scores starts an nbgrader process. Their imports are paid once per notebook or submission.
This prints, for each import, the median CPU seconds of a fresh interpreter over ``--repeat`` runs, with and without
the block of ``rfc3987_syntax`` that coursetools/runner.py and autograder/course.py set (jsonschema's optional IRI
format checker; no notebook schema uses it). Run from the repository root:

    python benchmarks/bench_imports.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

BLOCK = "import sys; sys.modules.setdefault('rfc3987_syntax', None); "
IMPORTS = {
    "runner worker (papermill)": "import papermill",
    "nbgrader": "from nbgrader.apps.nbgraderapp import NbGraderApp",
    "kernel (keras on TensorFlow)": "import keras",
}


def cpu_seconds(code: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter that runs ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'import':<30} {'as is':>8} {'blocked':>8}   (median CPU s of {args.repeat} fresh interpreters)")
    for name, code in IMPORTS.items():
        plain = statistics.median(cpu_seconds(code) for _ in range(args.repeat))
        blocked = statistics.median(cpu_seconds(BLOCK + code) for _ in range(args.repeat))
        print(f"{name:<30} {plain:>8.2f} {blocked:>8.2f}")


if __name__ == "__main__":
    main()
