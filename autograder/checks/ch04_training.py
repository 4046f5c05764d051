"""Trusted checks of chapter 4's exercises (autograder/PROTOCOL.md): batch normalisation and dropout on inputs the
grader chooses, and the Fashion-MNIST model under budget.

Oracles: this module's own NumPy batch normalisation (checked against keras.layers.BatchNormalization in
tests/test_training.py), the binomial statistics of a fair dropout mask, the held-out Fashion-MNIST images of
autograder/data (never in a student's kernel) and the bands autograder/calibrate.py derived from the reference
solution (autograder/calibration.json).
"""

import numpy as np

from autograder import trusted

ASSIGNMENT = "ch04_training"
TASK = "fashion_model"
BUDGET = 50_000  # fewer than this many parameters
BAND_CELLS = ("test_quality_band1", "test_quality_band2", "test_quality_band3")

#: batch-normalisation cases: (shape, training, momentum, epsilon)
BN_CASES = (((8, 6, 6, 3), True, 0.99, 1e-3), ((32, 5), True, 0.9, 1e-3), ((4, 3, 3, 7), True, 0.5, 1e-2),
            ((6, 4, 4, 2), True, 0.9, 1e-5), ((8, 6, 6, 3), False, 0.99, 1e-3), ((32, 5), False, 0.9, 1e-3),
            ((5, 2, 2, 4), False, 0.9, 1e-2))
#: dropout cases: (shape, rate, seed)
DROPOUT_CASES = (((400, 500), 0.1, 11), ((400, 500), 0.5, 12), ((200, 50, 10), 0.3, 13), ((1000, 200), 0.8, 14))

#: A plausible weak answer, for calibration: a multilayer perceptron; it must miss the top band on every run.
WEAK_SOURCE = trusted.weak_mlp("fashion_model", "fashion", hidden=48, epochs=6)


# ----------------------------------------------------------------------------------------------- the inputs


def bn_inputs() -> dict:
    """Random batches and layer states for batch_norm_forward (seeded: the same inputs at every grading)."""
    rng = np.random.default_rng(2404)
    out = {"count": np.array(len(BN_CASES))}
    for i, (shape, training, momentum, epsilon) in enumerate(BN_CASES):
        c = shape[-1]
        x = rng.normal(rng.uniform(-3, 3), rng.uniform(0.5, 4), shape)
        if i == 3:
            x[..., 1] = 2.5  # a constant channel: variance 0, where the epsilon decides everything
        out.update({f"x{i}": x.astype("float32"), f"gamma{i}": rng.normal(1, 0.3, c).astype("float32"),
                    f"beta{i}": rng.normal(0, 0.5, c).astype("float32"),
                    f"mean{i}": rng.normal(0, 1, c).astype("float32"),
                    f"var{i}": rng.uniform(0.2, 3, c).astype("float32"),
                    f"training{i}": np.array(training), f"momentum{i}": np.array(momentum),
                    f"epsilon{i}": np.array(epsilon)})
    return out


def dropout_inputs() -> dict:
    """Inputs of the dropout cases: values away from zero, so that a zero in the output means 'dropped'."""
    rng = np.random.default_rng(2405)
    out = {"count": np.array(len(DROPOUT_CASES))}
    for i, (shape, rate, seed) in enumerate(DROPOUT_CASES):
        x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        out.update({f"x{i}": x.astype("float32"), f"rate{i}": np.array(rate), f"seed{i}": np.array(seed)})
    return out


INPUTS = {"batch_norm": bn_inputs, "dropout": dropout_inputs}


# ------------------------------------------------------------------------------------------ the references


def reference_batch_norm(x, gamma, beta, mean, var, training, momentum, epsilon):
    """Keras's batch normalisation: biased batch variance, epsilon added, moving = m * moving + (1 - m) * batch."""
    x = np.asarray(x, "float64")
    if training:
        axes = tuple(range(x.ndim - 1))
        batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
        new_mean = momentum * mean + (1 - momentum) * batch_mean
        new_var = momentum * var + (1 - momentum) * batch_var
    else:
        batch_mean, batch_var, new_mean, new_var = mean, var, mean, var
    return gamma * (x - batch_mean) / np.sqrt(batch_var + epsilon) + beta, new_mean, new_var


def _check_bn(training: bool):
    def check(art: trusted.Artifacts) -> None:
        cases, got = art.inputs("batch_norm"), art.outputs("batch_norm")
        mode = "training" if training else "inference"
        for i in range(int(cases["count"])):
            if bool(cases[f"training{i}"]) != training:
                continue
            want = reference_batch_norm(cases[f"x{i}"], cases[f"gamma{i}"], cases[f"beta{i}"], cases[f"mean{i}"],
                                        cases[f"var{i}"], training, float(cases[f"momentum{i}"]),
                                        float(cases[f"epsilon{i}"]))
            what = (f"batch_norm_forward, {mode} mode, input {cases[f'x{i}'].shape}, "
                    f"momentum {float(cases[f'momentum{i}'])}, epsilon {float(cases[f'epsilon{i}'])}")
            for key, expected, name, atol in ((f"y{i}", want[0], "y", 2e-4), (f"mean{i}", want[1], "moving mean", 1e-5),
                                              (f"var{i}", want[2], "moving variance", 1e-5)):
                if key not in got:
                    raise AssertionError(f"{what}: no output {name} was saved — does your function return "
                                         "the triple (y, new_moving_mean, new_moving_var)?")
                trusted.expect_array(got[key], expected, f"{what}: {name}", atol=atol)
    check.__name__ = f"check_bn_{'training' if training else 'inference'}"
    return check


def check_dropout_training(art: trusted.Artifacts) -> None:
    """Fraction dropped within 5 binomial standard deviations, overall and in each block; survivors scaled."""
    cases, got = art.inputs("dropout"), art.outputs("dropout")
    for i in range(int(cases["count"])):
        x, rate = cases[f"x{i}"], float(cases[f"rate{i}"])
        out = got.get(f"train{i}")
        what = f"dropout(x of shape {x.shape}, rate={rate}, training=True)"
        if out is None or np.shape(out) != x.shape:
            raise AssertionError(f"{what}: expected an output of shape {x.shape}, got "
                                 f"{None if out is None else np.shape(out)}")
        out = np.asarray(out, "float64")
        dropped = out == 0
        for name, part in (("overall", dropped.ravel()), ("in the first tenth", dropped.ravel()[:x.size // 10]),
                           ("in the last tenth", dropped.ravel()[-(x.size // 10):])):
            tolerance = 5 * np.sqrt(rate * (1 - rate) / part.size)
            if abs(part.mean() - rate) > tolerance:
                raise AssertionError(f"{what}: {part.mean():.3f} of the values are zero {name}; expected "
                                     f"{rate} ± {tolerance:.3f} — drop each value independently with probability rate")
        trusted.expect_array(out[~dropped], x[~dropped] / (1 - rate),
                             f"{what}: the kept values (inverted dropout divides them by 1 - rate)", atol=1e-5)


def check_dropout_inference(art: trusted.Artifacts) -> None:
    """In inference mode the output is the input, unchanged."""
    cases, got = art.inputs("dropout"), art.outputs("dropout")
    for i in range(int(cases["count"])):
        x, rate = cases[f"x{i}"], float(cases[f"rate{i}"])
        if f"infer{i}" not in got:
            raise AssertionError("dropout in inference mode: no output was saved — does it return x?")
        trusted.expect_array(got[f"infer{i}"], x, f"dropout(x, rate={rate}, training=False): it must return x "
                             "unchanged (no mask, no scaling)", atol=0.0)


# ------------------------------------------------------------------------------------------------ the model


def heldout_accuracy(model) -> float:
    """Accuracy of a loaded model on the held-out Fashion-MNIST images."""
    return trusted.accuracy(model, *trusted.heldout("fashion_mnist"))


def check_budget(art: trusted.Artifacts) -> None:
    """The saved model takes (28, 28, 1) images, returns 10 scores and has fewer than BUDGET parameters."""
    model = art.model("fashion_model")
    if tuple(model.input_shape[1:]) != (28, 28, 1):
        raise AssertionError(f"fashion_model takes inputs of shape {tuple(model.input_shape[1:])}; it needs "
                             "(28, 28, 1): start with keras.Input((28, 28, 1))")
    if model.output_shape[-1] != 10:
        raise AssertionError(f"fashion_model has {model.output_shape[-1]} outputs; it needs 10")
    within_budget(model)


check_budget.trained_model = True   # the budget is read from the trained model the student saved

BELOW = ("fashion_model ({params:,} parameters) classifies {value:.1%} of the held-out Fashion-MNIST images "
         "correctly; band {band} needs {level:.1%} — train an epoch or two more, add batch normalisation after each "
         "convolution, or end with a lower learning rate")


def within_budget(model) -> None:
    """The saved fashion_model is under the parameter budget."""
    trusted.expect_budget(model, max_params=BUDGET - 1, what="fashion_model")


CHECKS = {"test_bn_training": _check_bn(True), "test_bn_inference": _check_bn(False),
          "test_dropout_training": check_dropout_training, "test_dropout_inference": check_dropout_inference,
          "test_budget": check_budget,
          **{gid: trusted.band_check(ASSIGNMENT, TASK, i, heldout_accuracy, BELOW, expect=within_budget)
             for i, gid in enumerate(BAND_CELLS)}}

TASKS = {TASK: trusted.QualityTask(
    cells=("imports", "bands", "fashion_model"), artifact="fashion_model", metric=heldout_accuracy,
    fixed=(0.80, 0.85), derive_top=True, weak={"fashion_model": WEAK_SOURCE},
    weak_name="a multilayer perceptron (Flatten, Dense(48), Dense(10)), no convolution")}
