"""Checks used by the exercises' visible and hidden tests (autograder/README.md explains grading).

Every check raises ``AssertionError`` with a message a student can act on, and returns None: nbgrader counts a test
cell as passed when it raises nothing, and would read a number shown by the cell's last line as partial credit.
"""

from __future__ import annotations

import numpy as np


def expect_array(actual, expected, what: str, atol: float = 1e-5) -> None:
    """Assert that ``actual`` is an array equal to ``expected`` within ``atol``; say how it differs (all chapters)."""
    expected = np.asarray(expected)
    if actual is None:
        raise AssertionError(f"{what}: got None — does your function end with `return`?")
    try:
        actual = np.asarray(actual, dtype="float64")
    except (TypeError, ValueError):
        raise AssertionError(f"{what}: expected a NumPy array, got {type(actual).__name__}") from None
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: your output has shape {actual.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what}: your output contains NaN or infinity")
    diff = np.abs(actual - expected)
    if diff.max() > atol:
        where = np.unravel_index(int(diff.argmax()), diff.shape)
        raise AssertionError(
            f"{what}: wrong value at index {tuple(int(i) for i in where)}: yours {actual[where]:.6g}, "
            f"expected {expected[where]:.6g} ({int((diff > atol).sum())} of {diff.size} values differ)"
        )


def reference_conv2d(x, w, b=None, stride=1, padding="valid") -> np.ndarray:
    """Return TensorFlow's answer for ``conv2d(x, w, b, stride, padding)`` on one (H, W, C) image (chapter 1)."""
    import tensorflow as tf

    x = np.asarray(x, dtype="float64")
    w = np.asarray(w, dtype="float64")
    out = tf.nn.conv2d(x[None], w, strides=stride, padding=padding.upper()).numpy()[0]
    if b is not None:
        out = out + np.asarray(b, dtype="float64")
    return out


def random_conv_cases(seed: int, count: int, *, paddings=("valid", "same"), strides=(1, 2, 3),
                      channels: bool = True, bias: bool = True):
    """Yield ``count`` random conv2d problems (x, w, b, stride, padding) for hidden tests (chapter 1)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        c_in, c_out = (int(rng.integers(1, 4)), int(rng.integers(1, 5))) if channels else (1, 1)
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        h, w = int(rng.integers(kh, 14)), int(rng.integers(kw, 14))
        x = rng.normal(size=(h, w, c_in))
        kernel = rng.normal(size=(kh, kw, c_in, c_out))
        b = rng.normal(size=(c_out,)) if bias else None
        yield x, kernel, b, int(rng.choice(strides)), str(rng.choice(paddings))


def check_conv2d_against_tf(conv2d, seed: int, count: int = 25, **case_options) -> None:
    """Compare a student's ``conv2d`` with ``tf.nn.conv2d`` on random cases (chapter 1 hidden tests)."""
    for i, (x, w, b, stride, padding) in enumerate(random_conv_cases(seed, count, **case_options)):
        what = (f"random case {i + 1}/{count}: x {x.shape}, w {w.shape}, "
                f"bias {'yes' if b is not None else 'no'}, stride {stride}, padding {padding!r}")
        try:
            got = conv2d(x, w, b, stride=stride, padding=padding)
        except NotImplementedError:
            raise AssertionError("conv2d still raises NotImplementedError: replace the stub with your code") from None
        except Exception as exc:
            raise AssertionError(f"{what}: your conv2d raised {type(exc).__name__}: {exc}") from None
        expect_array(got, reference_conv2d(x, w, b, stride, padding), what)
