"""Trusted checks of exercise 1 (`conv2d` in NumPy); see autograder/checks/rules.py for how the answer rule is checked.

Oracle: ``tf.nn.conv2d`` in the grader's process, on random cases from ``cnnbook.grading.random_conv_cases`` (the
same seeded generator the hidden test cells call; the grader regenerates the inputs itself and never reads them from
the kernel). Rule: ``conv2d`` uses Python and NumPy only — no TensorFlow, Keras, SciPy or course reference.
"""

from __future__ import annotations

import numpy as np

from cnnbook.grading import random_conv_cases

from . import Context
from .common import as_array, disagreement, enforce, expect_close, run_alone
from .rules import Rule

RULE = Rule("conv2d", "write conv2d with Python and NumPy only (no TensorFlow, Keras, SciPy or course function)")

#: grade_id -> (artifact name, seed, count, case options); the hidden test cells save the same cases.
CASES = {
    "test_valid_single_channel": ("conv2d_valid", 101, 20,
                                  dict(paddings=("valid",), strides=(1,), channels=False, bias=False)),
    "test_valid_strides": ("conv2d_strides", 202, 20,
                           dict(paddings=("valid",), strides=(2, 3), channels=False, bias=False)),
    "test_same_padding": ("conv2d_same", 303, 25, dict(paddings=("same",), strides=(1, 2, 3), channels=False,
                                                       bias=False)),
    "test_channels_and_bias": ("conv2d_channels", 404, 30, {}),
}


def reference_conv2d(x, w, b=None, stride=1, padding="valid") -> np.ndarray:
    """TensorFlow's answer for ``conv2d(x, w, b, stride, padding)`` on one (H, W, C) image (the oracle)."""
    import tensorflow as tf

    x, w = np.asarray(x, dtype="float64"), np.asarray(w, dtype="float64")
    out = tf.nn.conv2d(x[None], w, strides=stride, padding=padding.upper()).numpy()[0]
    return out if b is None else out + np.asarray(b, dtype="float64")


def _array(a):
    return None if a is None else {"array": np.asarray(a).tolist()}


def check_cases(ctx: Context, grade_id: str):
    """Score one test cell: the rule, then the answer cell run alone on the cell's random cases vs TensorFlow."""
    name, seed, count, options = CASES[grade_id]
    source = enforce(ctx, "conv2d", RULE, {"conv2d"})
    cases = list(random_conv_cases(seed, count, **options))
    calls = [["conv2d", [_array(x), _array(w), _array(b)], {"stride": s, "padding": p}] for x, w, b, s, p in cases]
    results = run_alone(source, calls)
    trusted = {}
    for i, ((x, w, b, s, p), result) in enumerate(zip(cases, results)):
        what = (f"random case {i + 1}/{count}: x {x.shape}, w {w.shape}, bias {'yes' if b is not None else 'no'}, "
                f"stride {s}, padding {p!r}")
        got = as_array(result, what)
        expect_close(got, reference_conv2d(x, w, b, s, p), what)
        trusted[f"case_{i}"] = got
    return disagreement(ctx, name, trusted)


CHECKS = {gid: (lambda ctx, gid=gid: check_cases(ctx, gid)) for gid in CASES}
