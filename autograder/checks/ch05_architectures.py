"""Trusted checks of chapter 5's exercises (autograder/PROTOCOL.md): task 4, the best MNIST model under budget.

Oracle: the held-out MNIST digits of autograder/data (never in a student's kernel) and the bands that
autograder/calibrate.py derived from the reference solution (autograder/calibration.json).
"""

from autograder import trusted

ASSIGNMENT = "ch05_architectures"
TASK = "best_model"
BUDGET = 100_000   # fewer than this many parameters
MAX_MACS = 200_000_000   # the grader's cost limit per image (the reference needs about 2 M; 100x that is honest room)
BAND_CELLS = ("test_quality_band1", "test_quality_band2", "test_quality_band3")

#: A plausible weak answer, for calibration: it must miss the top band on every run.
WEAK_SOURCE = trusted.weak_mlp("best_model", "mnist", hidden=64, epochs=8)


def heldout_accuracy(model) -> float:
    """Accuracy of a loaded model on the held-out MNIST digits."""
    return trusted.accuracy(model, *trusted.heldout("mnist"))


def within_budget(model) -> None:
    """The saved best_model is under the parameter and MAC budgets."""
    trusted.expect_budget(model, max_params=BUDGET - 1, max_macs=MAX_MACS, what="best_model")


BELOW = ("best_model ({params:,} parameters) classifies {value:.1%} of the held-out digits correctly; band {band} "
         "needs {level:.1%} — train a few epochs more, add batch normalisation after each convolution, or widen the "
         "convolutions within the budget")


CHECKS = {gid: trusted.band_check(ASSIGNMENT, TASK, i, heldout_accuracy, BELOW, expect=within_budget)
          for i, gid in enumerate(BAND_CELLS)}


def _blocks():
    """Tasks 1-3 (Inception, residual unit and ResNet-34, SE): autograder/checks/parts/ch05_blocks.py."""
    from autograder.checks.parts import ch05_blocks

    return ch05_blocks.CHECKS


CHECKS.update(_blocks())

TASKS = {TASK: trusted.QualityTask(
    cells=("imports", "bands", "best_model"), artifact="best_model", metric=heldout_accuracy,
    fixed=(0.955, 0.965), derive_top=True, weak={"best_model": WEAK_SOURCE},
    weak_name="a multilayer perceptron (Flatten, Dense(64), Dense(10)), no convolution")}
