"""Benchmark: a compact CNN trained on the ``sample`` MNIST digits (7,000 train) in well under a minute on 2 CPU cores.

The data issue's bar: >= 98 % on the sample test split (1,000 digits) in under 60 s. Prints the accuracy and the
seconds (training alone, and everything from importing TensorFlow to evaluation). Run from the repository root:

    python benchmarks/bench_data_mnist.py [--epochs 8] [--seed 0] [--widths 24,48,96] [--batch 64]
"""

from __future__ import annotations

import time

_T0, _CPU0 = time.perf_counter(), time.process_time()  # before importing TensorFlow: "total" counts it too

import argparse  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from cnnbook.data import load  # noqa: E402


def conv_block(filters: int) -> list:
    """3x3 convolution, batch normalisation, ReLU, 2x2 max-pooling."""
    return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(momentum=0.9),
            layers.ReLU(), layers.MaxPooling2D()]


def build_model(widths: tuple[int, ...]) -> keras.Model:
    """Conv blocks of the given widths, dropout, softmax (default 24, 48, 96 filters: 61,378 parameters)."""
    blocks = [layer for filters in widths for layer in conv_block(filters)]
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Rescaling(1 / 255), *blocks,
                             layers.Flatten(), layers.Dropout(0.4), layers.Dense(10, activation="softmax")])


def main() -> None:
    """Load, train with Adam under a cosine-decayed learning rate (the pipeline shuffles), evaluate, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--widths", default="24,48,96", help="filters of the conv blocks")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    data = load("mnist", profile="sample")
    train, val, test = data.datasets(batch_size=args.batch)
    model = build_model(tuple(int(w) for w in args.widths.split(",")))
    steps = args.epochs * -(-len(data.x_train) // args.batch)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=args.epochs, shuffle=False, verbose=0)
    fit_seconds = time.perf_counter() - fit_start
    _, accuracy = model.evaluate(test, verbose=0)
    total, cpu = time.perf_counter() - _T0, time.process_time() - _CPU0
    print(f"model: {model.count_params():,} parameters, {args.epochs} epochs, batch {args.batch}, seed {args.seed}, "
          f"{os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f}")
    print(f"validation accuracy after the last epoch: {history.history['val_accuracy'][-1]:.4f}")
    print(f"test accuracy: {accuracy:.4f} ({round(accuracy * len(data.y_test)):,} of {len(data.y_test):,})")
    print(f"seconds: training {fit_seconds:.1f}, total {total:.1f} (CPU time {cpu:.1f} s over all cores; "
          f"wall time grows when other work shares the cores)")
    print("PASS" if accuracy >= 0.98 and total < 60 else "FAIL", "(bar: >= 98 % in under 60 s)")


if __name__ == "__main__":
    main()
