"""Trusted checks of exercise 1 (`conv2d` in NumPy), to autograder/PROTOCOL.md; the answer rule: answer_rules.

Oracle: SciPy's ``signal.correlate2d`` in the grader's process, on an input padded by TensorFlow's "same" rule
(tests/test_chapter1_helpers.py checks it equals ``tf.nn.conv2d`` on every case the grader draws), on seeded random
cases the grader chooses (``INPUTS``: the kernel reads them with ``cnnbook.submit.load_inputs`` and saves its outputs;
the grader regenerates them, never reads them back). The checks need no Keras (``KERAS = False``): the grader's
process does not import TensorFlow for this chapter. Rule: ``conv2d`` uses Python and NumPy only — no TensorFlow, Keras, SciPy or course reference. The score
comes from the answer cell re-run alone in the sandbox (see answer_rules); the kernel's outputs only raise a flag.
"""

from __future__ import annotations

import numpy as np

from autograder import answer_rules
from autograder import trusted
from autograder.answer_rules import tasks

RULE = answer_rules.Rule("conv2d", "write conv2d with Python and NumPy only (no TensorFlow, Keras, SciPy or "
                                   "course function)")

#: grade_id -> (artifact name, seed, count, case options)
CASES = {
    "test_valid_single_channel": ("conv2d_valid", 101, 20,
                                  dict(paddings=("valid",), strides=(1,), channels=False, bias=False)),
    "test_valid_strides": ("conv2d_strides", 202, 20,
                           dict(paddings=("valid",), strides=(2, 3), channels=False, bias=False)),
    "test_same_padding": ("conv2d_same", 303, 25,
                          dict(paddings=("same",), strides=(1, 2, 3), channels=False, bias=False)),
    "test_channels_and_bias": ("conv2d_channels", 404, 30, {}),
}
PADDINGS = ("valid", "same")


def random_conv_cases(seed: int, count: int, *, paddings=PADDINGS, strides=(1, 2, 3), channels: bool = True,
                      bias: bool = True) -> list[tuple]:
    """``count`` random conv2d problems (x, w, b, stride, padding), seeded (chapter 1 hidden tests)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        c_in, c_out = (int(rng.integers(1, 4)), int(rng.integers(1, 5))) if channels else (1, 1)
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        h, w = int(rng.integers(kh, 14)), int(rng.integers(kw, 14))
        x = rng.normal(size=(h, w, c_in))
        kernel = rng.normal(size=(kh, kw, c_in, c_out))
        b = rng.normal(size=(c_out,)) if bias else None
        cases.append((x, kernel, b, int(rng.choice(strides)), str(rng.choice(paddings))))
    return cases


def inputs_of(grade_id: str) -> dict[str, np.ndarray]:
    """The grader's inputs of one test cell as arrays: x_i, w_i, [b_i], stride_i, padding_i (0 valid, 1 same)."""
    _, seed, count, options = CASES[grade_id]
    arrays = {}
    for i, (x, w, b, stride, padding) in enumerate(random_conv_cases(seed, count, **options)):
        arrays.update({f"x_{i}": x, f"w_{i}": w, f"stride_{i}": np.array(stride),
                       f"padding_{i}": np.array(PADDINGS.index(padding))})
        if b is not None:
            arrays[f"b_{i}"] = b
    return arrays


def reference_conv2d(x, w, b=None, stride=1, padding="valid") -> np.ndarray:
    """The answer of ``tf.nn.conv2d`` for ``conv2d(x, w, b, stride, padding)`` on one (H, W, C) image, computed with
    SciPy: pad as TensorFlow's "same" does (the extra row or column at the bottom and right), cross-correlate each
    input channel with its kernel slice, sum over the channels, keep every ``stride``-th position (the oracle)."""
    from scipy import signal

    x, w = np.asarray(x, dtype="float64"), np.asarray(w, dtype="float64")
    kh, kw = w.shape[:2]
    if padding == "same":
        pad_h = max((-(-x.shape[0] // stride) - 1) * stride + kh - x.shape[0], 0)
        pad_w = max((-(-x.shape[1] // stride) - 1) * stride + kw - x.shape[1], 0)
        x = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.stack([sum(signal.correlate2d(x[:, :, c], w[:, :, c, o], mode="valid") for c in range(x.shape[2]))
                    for o in range(w.shape[3])], axis=-1)[::stride, ::stride]
    return out if b is None else out + np.asarray(b, dtype="float64")


def _plain(a):
    return None if a is None else {"array": np.asarray(a).tolist()}


def check_cases(art, grade_id: str):
    """Score one test cell: the rule, then the answer cell run alone on the cell's random cases vs the oracle."""
    name, seed, count, options = CASES[grade_id]
    source = tasks.enforce(art, "conv2d", RULE, {"conv2d"})
    cases = random_conv_cases(seed, count, **options)
    calls = [["conv2d", [_plain(x), _plain(w), _plain(b)], {"stride": s, "padding": p}] for x, w, b, s, p in cases]
    # the cell imports only NumPy and math, and an honest conv2d of nested Python loops does these cases in well
    # under a second; a cell that never ends costs the grader RERUN_SECONDS once (answer_rules.rerun)
    results = tasks.run_alone(source, calls, timeout=RERUN_SECONDS)
    rerun = {}
    for i, ((x, w, b, s, p), result) in enumerate(zip(cases, results)):
        what = (f"random case {i + 1}/{count}: x {x.shape}, w {w.shape}, bias {'yes' if b is not None else 'no'}, "
                f"stride {s}, padding {p!r}")
        got = tasks.as_array(result, what)
        trusted.expect_array(got, reference_conv2d(x, w, b, s, p), what)
        rerun[f"out_{i}"] = got
    art.notes = getattr(art, "notes", []) + tasks.disagreement(art, name, rerun)


RERUN_SECONDS = 20   # the answer cell's re-run (tasks.run_alone's default is 60 s)
KERAS = False   # no check here loads a model: trusted.warm_keras leaves TensorFlow unimported
INPUTS = {name: (lambda gid=gid: inputs_of(gid)) for gid, (name, *_rest) in CASES.items()}
CHECKS = {gid: (lambda art, gid=gid: check_cases(art, gid)) for gid in CASES}
