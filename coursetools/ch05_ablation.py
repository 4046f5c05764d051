"""Chapter 5's depth ablation: plain, plain + BN, residual, residual + BN at several depths over seeds (issue 35).

Chapter 5 (book/ch05_architectures.ipynb) asks what skip connections and batch normalisation each do for a deep
network. The honest experiment (four variants x three depths, the deepest with more than 20 weight layers, three
seeds, wide enough that the shallow nets reach 88 % on Fashion-MNIST) costs about twenty CPU-minutes at one thread, more than
the lesson's budget, so this script runs it once and writes the numbers the lesson plots to
``cnnbook/data/ch05_ablation.json``. Everything is seeded: each network starts from
``keras.utils.set_random_seed(seed)``, the data are the sample Fashion-MNIST images (the 10,000 training and 1,000
validation images of ``cnnbook.data``), and
TensorFlow's op determinism is on, so a run at one thread repeats the same numbers.

    python -m coursetools.ch05_ablation                 # the full run (all depths in one process)
    python -m coursetools.ch05_ablation --seeds 0       # one seed only (merged into the JSON): run seeds in parallel
    python -m coursetools.ch05_ablation --reduced       # the short run that tests/test_ch05_ablation.py repeats

For each network the JSON records the training loss and accuracy measured after training on the whole training
split in inference mode (the degradation problem is about *training* error), the loss of every epoch as the
optimiser saw it, and the validation loss and accuracy. All networks of one depth are trained side by side in one
``fit`` (``cnnbook.models.side_by_side``: no shared weights, so each trains as it would alone on the same batches).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "cnnbook" / "data" / "ch05_ablation.json"

#: The variants: (skip connections, batch normalisation).
VARIANTS = {"plain": (False, False), "plain + BN": (False, True), "residual": (True, False),
            "residual + BN": (True, True)}
#: The full run. ``depth`` counts the 3x3 conv layers; each net adds one dense layer (weight layers = depth + 1).
FULL = {"data": "fashion_mnist", "depths": [4, 10, 20], "seeds": [0, 1, 2], "train": 10000, "epochs": 8, "width": 24,
        "stem_pool": [2, 2], "head": "flatten", "rate": 2e-3, "schedule": "cosine", "batch": 64}
#: The reduced run (a few CPU-seconds) that the test repeats and compares with the stored numbers.
REDUCED = {**FULL, "depths": [4, 12], "seeds": [0], "train": 640, "epochs": 1}


def run(config: dict, seeds=None, log=print) -> tuple[list[dict], dict[str, int]]:
    """Train every variant and depth of ``config`` for ``seeds`` (default: all): one row per network, CPU-s per depth."""
    import keras
    import numpy as np
    import tensorflow as tf

    from cnnbook import data, models

    tf.config.experimental.enable_op_determinism()
    images = data.load(config["data"], profile="sample", verbose=False)
    n = config["train"]
    x_train, y_train = images.x_train[:n, ..., None], images.y_train[:n]
    x_val, y_val = images.x_val[..., None], images.y_val
    rows, cpu = [], {}
    for depth in config["depths"]:
        start, nets = time.process_time(), {}
        for variant, (residual, batch_norm) in VARIANTS.items():
            for seed in seeds or config["seeds"]:
                keras.utils.set_random_seed(seed)
                name = f"{variant.replace(' + ', '_')}_{depth}_seed{seed}"
                nets[name] = (variant, seed, models.deep_cnn(
                    depth, x_train.shape[1:], width=config["width"], residual=residual, batch_norm=batch_norm,
                    stem_pool=config["stem_pool"], head=config["head"], name=name))
        stack = models.side_by_side([net for *_, net in nets.values()])
        steps = config["epochs"] * -(-n // config["batch"])  # Adam, its rate decayed to 0 along a cosine
        rate = keras.optimizers.schedules.CosineDecay(config["rate"], decay_steps=steps)
        stack.compile(optimizer=keras.optimizers.Adam(rate),
                      loss={k: "sparse_categorical_crossentropy" for k in nets}, metrics={k: ["accuracy"] for k in nets})
        keras.utils.set_random_seed(1000 + depth)          # the order of the batches: the same for every seed
        history = stack.fit(x_train, {k: y_train for k in nets}, batch_size=config["batch"],
                            epochs=config["epochs"], verbose=0)
        train = stack.evaluate(x_train, {k: y_train for k in nets}, batch_size=500, verbose=0, return_dict=True)
        val = stack.evaluate(x_val, {k: y_val for k in nets}, batch_size=500, verbose=0, return_dict=True)
        for name, (variant, seed, net) in nets.items():
            rows.append({"depth": depth, "weight_layers": depth + 1, "variant": variant, "seed": seed,
                         "parameters": int(net.count_params()),
                         "train_loss": round(float(train[f"{name}_loss"]), 5),
                         "train_accuracy": round(float(train[f"{name}_accuracy"]), 5),
                         "val_loss": round(float(val[f"{name}_loss"]), 5),
                         "val_accuracy": round(float(val[f"{name}_accuracy"]), 5),
                         "epoch_loss": [round(float(v), 5) for v in history.history[f"{name}_loss"]]})
        cpu[str(depth)] = round(time.process_time() - start, 1)
        log(f"depth {depth}: {len(nets)} networks in {cpu[str(depth)]} CPU-s; "
            + ", ".join(f"{v} {np.mean([r['train_loss'] for r in rows if r['depth'] == depth and r['variant'] == v]):.3f}"
                        for v in VARIANTS))
    return rows, cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="only the reduced run (stored under 'reduced')")
    parser.add_argument("--seeds", type=int, nargs="*", help="full run of these seeds only (merged into the JSON)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf

    start = time.process_time()
    if args.reduced:
        update = {"reduced": {"config": REDUCED, "rows": run(REDUCED)[0]}}
    else:
        seeds = args.seeds or FULL["seeds"]
        rows, cpu_new = run(FULL, seeds)
    made_by = (f"python -m coursetools.ch05_ablation (Keras {keras.__version__}, TensorFlow {tf.__version__}, "
               f"{os.environ.get('TF_NUM_INTRAOP_THREADS', 'default')} thread(s))")
    with open(Path(tempfile.gettempdir()) / "ch05_ablation.lock", "w") as lock:           # depths run in parallel processes merge here
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = json.loads(args.out.read_text()) if args.out.exists() else {}
        if args.reduced:
            stored.update(update)
        else:
            same = stored.get("config") == FULL
            kept = [r for r in stored.get("rows", []) if same and r["seed"] not in seeds]
            order = lambda r: (r["depth"], list(VARIANTS).index(r["variant"]), r["seed"])  # noqa: E731
            cpu = {k: v for k, v in stored.get("cpu_seconds", {}).items() if same and k != "all" and int(k) not in seeds}
            cpu.update({str(s): cpu_new for s in seeds} if len(seeds) == 1 else {"all": cpu_new})
            stored.update(config=FULL, rows=sorted(kept + rows, key=order), cpu_seconds=cpu)
        stored["made_by"] = made_by
        args.out.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {args.out} ({time.process_time() - start:.0f} CPU-s)")


if __name__ == "__main__":
    main()
