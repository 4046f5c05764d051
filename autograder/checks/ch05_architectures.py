"""Trusted checks of chapter 5's exercises (autograder/PROTOCOL.md): task 4, the best MNIST model under budget.

Oracle: the held-out MNIST digits of autograder/data (never in a student's kernel) and the bands that
autograder/calibrate.py derived from the reference solution (autograder/calibration.json).
"""

import trusted

ASSIGNMENT = "ch05_architectures"
TASK = "best_model"
BUDGET = 100_000   # fewer than this many parameters
MAX_MACS = 200_000_000   # the grader's cost limit per image (the reference needs about 2 M; 100x that is honest room)
BAND_CELLS = ("test_quality_band1", "test_quality_band2", "test_quality_band3")

#: A plausible weak answer, for calibration: it must miss the top band on every run.
WEAK_SOURCE = """\
inputs = keras.Input((28, 28, 1))
x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))
best_model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Dense(64, activation="relu")(x)))
best_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = best_model.fit(mnist.x_train[..., None], mnist.y_train, batch_size=64, epochs=8, verbose=0)
"""


def heldout_accuracy(model) -> float:
    """Accuracy of a loaded model on the held-out MNIST digits."""
    return trusted.accuracy(model, *trusted.heldout("mnist"))


def _band(i: int):
    def check(art: trusted.Artifacts) -> None:
        model = art.model("best_model")
        trusted.expect_budget(model, max_params=BUDGET - 1, max_macs=MAX_MACS, what="best_model")
        bands = trusted.thresholds(ASSIGNMENT, TASK, art.profile)
        acc = heldout_accuracy(model)
        if acc < bands[i]:
            raise trusted.BelowThreshold(
                f"best_model ({trusted.params(model):,} parameters) classifies {acc:.1%} of the held-out digits "
                f"correctly; band {i + 1} needs {bands[i]:.1%} — train a few epochs more, add batch normalisation "
                "after each convolution, or widen the convolutions within the budget")
    check.__name__ = f"check_band{i + 1}"
    return check


CHECKS = {gid: _band(i) for i, gid in enumerate(BAND_CELLS)}


def _blocks():
    """Tasks 1-3 (Inception, residual unit and ResNet-34, SE): autograder/checks/parts/ch05_blocks.py."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "parts" / "ch05_blocks.py"
    spec = importlib.util.spec_from_file_location("autograder_checks_ch05_blocks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CHECKS


CHECKS.update(_blocks())

TASKS = {TASK: trusted.QualityTask(
    cells=("imports", "bands", "best_model"), artifact="best_model", metric=heldout_accuracy,
    fixed=(0.955, 0.965), derive_top=True, weak={"best_model": WEAK_SOURCE},
    weak_name="a multilayer perceptron (Flatten, Dense(64), Dense(10)), no convolution")}
