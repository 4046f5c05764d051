"""The checks' API of the trusted step: what autograder/checks/ASSIGNMENT.py use, and ``score``, which runs them.

Everything here runs in the grader's own processes after the student's kernel has finished; no student code runs.
The contract (where checks live, their signature, the hidden cells, calibration) is `autograder/PROTOCOL.md`. The
other concerns of the trusted step live beside this module: ``autograder.artifacts`` (held-out data, model vetting,
``Artifacts``), ``autograder.scorer`` (the batch's scorer) and ``autograder.preprocessors`` (the nbgrader steps).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from autograder.artifacts import (  # noqa: F401  (the checks' API: trusted.heldout, trusted.Artifacts, ...)
    AUTOGRADER, DATA_DIR, HELDOUT_ENV, MAX_ARTIFACT_BYTES, PUBLIC_IN_FULL, REBUILD_HINT, REFUSED_CLASSES, Artifacts,
    grading_context, grading_profile, heldout, heldout_dir, load_model, vet_keras_file)

CHECKS_DIR = AUTOGRADER / "checks"
CALIBRATION = AUTOGRADER / "calibration.json"
ASSIGNMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# ------------------------------------------------------------------------------------------ measurements and checks


def _with_channels(model, x: np.ndarray) -> np.ndarray:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is not None and len(shape) == x.ndim + 1:
        x = x[..., None]
    return x


def predict(model, x, batch_size: int = 500) -> np.ndarray:
    """The loaded model's outputs on ``x`` in inference mode (adds a channel axis to (N, H, W) images)."""
    x = _with_channels(model, np.asarray(x, dtype="float32"))
    try:
        out = model.predict(x, batch_size=batch_size, verbose=0)
    except Exception as exc:
        raise AssertionError(f"your saved model could not be run on the grader's images of shape {x.shape[1:]} "
                             f"({type(exc).__name__}): give it the input shape the exercise asks for") from None
    return np.asarray(out)


def accuracy(model, x, y) -> float:
    """Top-1 accuracy (a fraction) of a loaded classifier on ``(x, y)``."""
    y = np.asarray(y).ravel()
    out = predict(model, x)
    if out.ndim != 2 or out.shape[0] != len(y) or out.shape[1] <= int(y.max()):
        raise AssertionError(f"your model's output has shape {out.shape[1:]}; a classifier of these images must "
                             f"return one score per class ({int(y.max()) + 1} classes)")
    return float(np.mean(out.argmax(axis=1) == y))


def params(model) -> int:
    """Parameters of the loaded model (read from the file, not from the kernel's object)."""
    return int(model.count_params())


def macs(model) -> int:
    """Multiply-accumulates per example of the loaded model (cnnbook.counting.count)."""
    from cnnbook.counting import count

    return int(count(model).macs)


def inbound(layer) -> list:
    """The layers whose outputs a layer of a loaded functional model reads (its graph, from Keras's nodes)."""
    return [t._keras_history.operation for node in getattr(layer, "_inbound_nodes", []) for t in node.input_tensors]


def expect_budget(model, max_params: int | None = None, max_macs: int | None = None, what: str = "your model") -> None:
    """Assert the loaded model fits its parameter and MAC budgets (limits inclusive)."""
    if max_params is not None and params(model) > max_params:
        raise AssertionError(f"{what} has {params(model):,} parameters; the budget is {max_params:,} — try fewer "
                             "filters, a GlobalAveragePooling2D head, or a smaller Dense layer")
    if max_macs is not None and macs(model) > max_macs:
        raise AssertionError(f"{what} costs {macs(model):,} multiply-accumulates per image; the budget is "
                             f"{max_macs:,} — downsample earlier (strides or pooling) or use fewer filters")


# cnnbook.grading is imported when first used, not when nbgrader loads this module (its Keras-using checks import
# Keras themselves): a chapter whose checks need no Keras (``KERAS = False``) never imports TensorFlow here.
def expect_array(*args, **kwargs):
    """Compare a saved output with a reference computed here within ``atol``, naming the first differing index: the
    comparison the visible tests make (cnnbook.grading.expect_array), run in this process on the loaded artifact."""
    from cnnbook import grading

    return grading.expect_array(*args, **kwargs)


def expect_train_only(*args, **kwargs):
    """Judge a train-only augmentation from the loaded model's and base's outputs (cnnbook.grading, chapter 6)."""
    from cnnbook import grading

    return grading.judge_train_only(*args, **kwargs)


def expect_pipeline(*args, **kwargs):
    """Judge a training pipeline from the batches the kernel handed in (cnnbook.grading, chapter 6)."""
    from cnnbook import grading

    return grading.judge_pipeline(*args, **kwargs)


# ------------------------------------------------------------------------------------------ thresholds and tasks

class BelowThreshold(AssertionError):
    """A measured quality (held-out accuracy, ...) under its threshold: the student's kernel cannot foresee it, so a
    kernel that passed the cell is not flagged as disagreeing (PROTOCOL §3)."""


MARGIN = 0.005   # every reference run clears every band by half a point of accuracy (PROTOCOL §6)
#: The derived top band sits this far under the worst reference run here: room for other CPUs and thread counts
#: (an AMD EPYC without AVX-512 scored 0.2 points under this machine's runs of the same seeded reference).
DERIVE_MARGIN = 0.01


@dataclass
class QualityTask:
    """A model-quality task that calibration trains and measures (PROTOCOL §6)."""

    cells: tuple[str, ...]                      # grade_ids of the solution cells that train the model, in order
    artifact: str                               # the variable saved after them (and the artifact's name)
    metric: Callable                            # loaded model -> float, higher is better
    fixed: tuple[float, ...] = ()               # the lower bands the chapter chooses
    derive_top: bool = True                     # calibration derives the top band
    weak: dict = field(default_factory=dict)    # grade_id -> source of a plausible weak solution
    weak_name: str = ""
    unit: str = "accuracy"
    ceiling: float | None = None                # the sample profile's ceiling, if the task has one (band_check)
    over: dict = field(default_factory=dict)    # name -> {grade_id: (old, new)}: the solution cell edited into an
                                                # answer trained on what it must not see; it must land above ceiling
    honest: dict = field(default_factory=dict)  # name -> {grade_id: source}: the strongest honest answers tried, on
                                                # the allowed data only; each must stay under the ceiling
    metric_reads_answers: bool = False          # metric(model, answers): it also gets the calibrated cells' sources
                                                # (grade_id -> source), e.g. an attack it runs against the model


def weak_mlp(name: str, data: str, hidden: int, epochs: int) -> str:
    """The source of a plausible weak answer for calibration: ``name`` = a multilayer perceptron on 28x28x1 images
    (Flatten, Dense(hidden), Dense(10)), no convolution, fit on ``data``'s training split."""
    return (f"inputs = keras.Input((28, 28, 1))\n"
            f"x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))\n"
            f"{name} = keras.Model(inputs, layers.Dense(10, activation='softmax')("
            f"layers.Dense({hidden}, activation='relu')(x)))\n"
            f"{name}.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
            f"history = {name}.fit({data}.x_train[..., None], {data}.y_train, batch_size=64, epochs={epochs}, "
            "verbose=0)\n")


def band_check(assignment: str, task: str, band: int, metric: Callable, message: str, *,
               artifact: str | None = None, expect: Callable | None = None,
               ceiling: dict | None = None, ceiling_message: str = ""):
    """The check of one calibrated band of ``task`` (PROTOCOL §3): load the artifact, ``expect(model)`` (shape,
    budget, layers: a plain AssertionError), measure ``metric(model)``; under the band, ``BelowThreshold``.

    ``message`` is formatted with ``value`` (the measure), ``level`` (the band's), ``band`` (1-based) and
    ``params`` (the saved model's parameter count); the bands come from calibration.json alone.
    ``ceiling`` (per profile) is the most an honest answer can reach; above it, an AssertionError with
    ``ceiling_message`` (formatted with ``value`` and ``ceiling``): the model was trained on what it must not see."""
    def check(art: Artifacts) -> None:
        model = art.model(artifact or task)
        if expect is not None:
            expect(model)
        level = thresholds(assignment, task, art.profile)[band]
        value = art.measure(artifact or task, metric)
        if value < level:
            raise BelowThreshold(message.format(value=value, level=level, band=band + 1, params=params(model)))
        top = (ceiling or {}).get(art.profile)
        if top is not None and value > top:
            raise AssertionError(ceiling_message.format(value=value, ceiling=top))
    check.__name__ = f"check_{task}_band{band + 1}"
    check.trained_model = True   # it measures a model the student trained (issue 13's share of the points)
    return check


def calibration() -> dict:
    """The calibration report (autograder/calibration.json), or {} before the first calibration."""
    return json.loads(CALIBRATION.read_text()) if CALIBRATION.exists() else {}


def thresholds(assignment: str, task: str, profile: str | None = None) -> tuple[float, ...]:
    """The calibrated bands of a task for a profile (autograder/calibration.json), or an error that says how to
    calibrate them: no band is set by hand (PROTOCOL §6)."""
    profile = profile or grading_profile()
    entry = calibration().get(assignment, {}).get(task, {}).get(profile)
    if entry and "bands" in entry:
        return tuple(float(b) for b in entry["bands"])
    option = "" if profile == "sample" else f" --profile {profile}"
    raise RuntimeError(f"autograder/calibration.json has no bands for {assignment}/{task} ({profile} profile): "
                       f"run `nice -n 10 .venv/bin/python -m autograder.calibrate {assignment}{option}`"
                       + ("" if profile == "sample" else " with the downloaded datasets and your private held-out "
                          f"split in ${HELDOUT_ENV} (book/instructors.md)"))


def load_checks(assignment: str):
    """Import ``autograder.checks.<assignment>``, or return None when the assignment has no trusted checks."""
    if not ASSIGNMENT_NAME.match(assignment or "") or not (CHECKS_DIR / f"{assignment}.py").is_file():
        return None
    return importlib.import_module(f"autograder.checks.{assignment}")


def write_inputs(module, folder: Path) -> None:
    """Write each INPUTS[name]() of a check module as ``folder/name.npz`` for the kernel (PROTOCOL §5)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in getattr(module, "INPUTS", {}).items():
        np.savez(folder / f"{name}.npz", **{k: np.asarray(v) for k, v in make().items()})


def run_check(check, art: Artifacts) -> tuple[str, float, str]:
    """Run one check: ("pass"|"partial"|"below"|"fail"|"error", fraction of the points, message)."""
    try:
        got = check(art)
    except BelowThreshold as exc:
        return "below", 0.0, str(exc).strip() or "under the threshold"
    except AssertionError as exc:
        return "fail", 0.0, str(exc).strip() or "the trusted check failed"
    except Exception as exc:  # the grader's bug, not the student's: flagged for the instructor
        return "error", 0.0, f"internal grader error ({type(exc).__name__}: {str(exc)[:300]}); the instructor is told"
    if got is None:
        return "pass", 1.0, ""
    fraction = min(1.0, max(0.0, float(got)))
    return ("pass" if fraction == 1.0 else "partial"), fraction, ""


def score(assignment: str, folder, gids, notebook=None, profile: str = "sample", private_heldout: str | None = None,
          cache: str | None = None) -> dict[str, tuple[str, float, str, list]]:
    """Run the trusted checks ``gids`` of an assignment on one submission's artifacts folder: {gid: run_check's
    verdict plus the check's lines for the instructor}. ``notebook`` is the executed submission, for checks of the
    answer cells' code; ``profile`` and ``private_heldout`` (the instructor's private held-out folder, or None) are the
    grading context; ``cache`` a folder the checks may share within a batch (the scorer's)."""
    module = load_checks(assignment)
    checks = getattr(module, "CHECKS", {}) if module else {}
    verdicts = {}
    with grading_context(profile, private_heldout):
        art = Artifacts(Path(folder), assignment, grading_profile(), getattr(module, "INPUTS", {}))
        art.notebook = notebook
        art.cache = Path(cache) if cache else None
        for gid in gids:
            art.flags = []
            verdicts[gid] = (*run_check(checks[gid], art), list(art.flags))
    return verdicts
