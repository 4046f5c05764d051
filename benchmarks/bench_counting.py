"""Benchmark: counting every ``keras.applications`` model with ``cnnbook.counting`` takes well under 60 s in total.

The counting issue's bar: under 60 s for all 40 models, counting only (building them with ``weights=None`` is timed
and reported apart: it is Keras' work, not the counter's). Prints one line per model and the totals. Run from the
repository root:

    python benchmarks/bench_counting.py [--repeat 3] [--only VGG16,ResNet50]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from cnnbook import counting  # noqa: E402

BUDGET_SECONDS = 60.0


def main() -> None:
    """Build each model once, count it ``--repeat`` times (best time kept), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="counts per model; the fastest is kept")
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or counting.application_names()
    build_total = count_total = 0.0
    print(f"{'model':18s} {'build s':>8s} {'count s':>8s} {'layer calls':>11s} {'params':>13s} {'MACs':>11s}")
    for name in names:
        start = time.perf_counter()
        model = counting.build_application(name)
        built = time.perf_counter() - start
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            counts = counting.count(model)
            best = min(best, time.perf_counter() - start)
        build_total += built
        count_total += best
        print(f"{name:18s} {built:8.2f} {best:8.3f} {len(counts.table):11d} {counts.params:13,} "
              f"{counting.human(counts.macs):>11s}", flush=True)
        del model
        keras.backend.clear_session()
    print(f"{len(names)} models, {os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f} "
          "(other work slows it)")
    print(f"counting: {count_total:.2f} s in total (budget {BUDGET_SECONDS:.0f} s) — "
          f"{'within' if count_total < BUDGET_SECONDS else 'OVER'} budget")
    print(f"building with weights=None (Keras, not timed against the budget): {build_total:.1f} s")


if __name__ == "__main__":
    main()
