"""Pipeline speed (issue 18): `make all` cold, `make all` again with nothing changed (the runner's cache), `make test`.

Run from a fresh clone after `make setup`: ``python benchmarks/bench_pipeline.py [--skip-test]``. It clears
``_build/`` first (cold run), so run it on a quiet machine and say how loaded it was (it prints the load average).
Targets: cold `make all` <= 8 min, warm `make all` <= 1 min, `make test` <= 20 min (2 cores).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(*cmd: str) -> tuple[float, int]:
    """Run a command in the checkout; return (seconds, exit status)."""
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=ROOT).returncode
    return time.perf_counter() - start, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-test", action="store_true", help="measure make all only")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average before: {os.getloadavg()}")
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    rows = [("make all (cold: no _build, no cache)", *timed("make", "all"))]
    rows.append(("make all (again, nothing changed)", *timed("make", "all")))
    if not args.skip_test:
        rows.append(("make test (after make all)", *timed("make", "test")))
    print(f"load average after: {os.getloadavg()}")
    for what, seconds, code in rows:
        print(f"{what:<40} {seconds / 60:6.1f} min  exit {code}")
    return max(code for _, _, code in rows)


if __name__ == "__main__":
    sys.exit(main())
