"""Train chapter 7's exercise source model once: the small CNN on digits 0-4 whose feature extractor is ``base``.

    python -m coursetools.train_ch07_base           # writes cnnbook/data/ch07_digit_source.weights.h5
    python -m coursetools.train_ch07_base --check   # trains it again and compares with that file (exit 1 if not)

The exercise's setup cell (solutions/ch07_transfer) used to train this model in every kernel: 7 CPU-seconds of each
student's run and of each graded submission (issue 32: the chapter 7 batch ran 3.9 a minute, 4 asked). It now loads
these weights in the ``sample`` profile, and trains the same lines itself in ``full`` (CIFAR-size downloads differ).
This script runs exactly those lines, in that order, with the seed the cell sets (6) and one thread of computation,
as the grader's sandbox runs the setup cell (autograder/checks/ch07_transfer.trusted_setup): so the file holds, bit
for bit on the machine that made it, the base the grader's calibration of task 3 measured
(autograder/calibration.json). On another processor the floating point may differ in the last bits; ``--check`` and
tests/test_transfer.py compare what a re-training predicts, not the bits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "cnnbook" / "data" / "ch07_digit_source.weights.h5"
SEED, EPOCHS, BATCH = 6, 3, 64
SOURCE_CLASSES = (0, 1, 2, 3, 4)


def one_thread() -> None:
    """The grader's sandbox settings of computation (autograder/answer_rules/rerun._env, one thread), before
    TensorFlow is imported: read from there, so the two cannot drift apart."""
    from autograder.answer_rules import rerun

    os.environ.update({k: v for k, v in rerun._env("", 1).items() if k.startswith(("TF_NUM", "TF_DET", "OMP"))})


def train(verbose: bool = False):
    """The setup cell's lines: seed, the sample MNIST, digits 0-4, the small CNN, 3 epochs. Returns the model."""
    import keras

    from cnnbook import models, transfer
    from cnnbook.data import load

    keras.utils.set_random_seed(SEED)
    data = load("mnist", profile="sample", verbose=verbose)
    x_src, y_src = transfer.subset(data.x_train[..., None], data.y_train, SOURCE_CLASSES)
    model = transfer.compile_for(models.small_cnn(num_classes=5, global_pool=False), 1e-3)
    model.fit(x_src, y_src, epochs=EPOCHS, batch_size=BATCH, verbose=2 if verbose else 0)
    return model


def agreement(model, other) -> tuple[float, float, float]:
    """(share of validation digits 0-4 on which the two models predict the same class, accuracy of each)."""
    from cnnbook import transfer
    from cnnbook.data import load

    data = load("mnist", profile="sample", verbose=False)
    x, y = transfer.subset(data.x_val[..., None], data.y_val, SOURCE_CLASSES)
    a, b = model.predict(x, verbose=0).argmax(-1), other.predict(x, verbose=0).argmax(-1)
    return float((a == b).mean()), float((a == y).mean()), float((b == y).mean())


def load_shipped():
    """The small CNN with the shipped weights (what the setup cell builds in ``sample``)."""
    from cnnbook import models, transfer

    model = models.small_cnn(num_classes=5, global_pool=False)
    model.load_weights(transfer.DIGIT_SOURCE_WEIGHTS)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="train again and compare with the shipped file")
    args = parser.parse_args(argv)
    one_thread()
    model = train(verbose=not args.check)
    if args.check:
        same, ours, shipped = agreement(model, load_shipped())
        print(f"re-trained vs shipped: same class on {same:.1%} of validation digits 0-4; accuracy {ours:.1%} vs "
              f"{shipped:.1%}")
        return 0 if same >= 0.98 and abs(ours - shipped) <= 0.01 else 1
    from cnnbook import models

    bare = models.small_cnn(num_classes=5, global_pool=False)   # the weights alone, no optimizer state
    bare.set_weights(model.get_weights())
    bare.save_weights(WEIGHTS)
    print(f"wrote {WEIGHTS.relative_to(ROOT)} ({WEIGHTS.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
