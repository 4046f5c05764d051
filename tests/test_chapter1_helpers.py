"""Chapter 1 helpers: filters, the grading checks and the TensorFlow reference, each against an independent oracle."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from cnnbook import grading
from cnnbook.data import sample_photos
from cnnbook.filters import line_filters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "autograder"))
import trusted  # noqa: E402  (autograder/trusted.py: the grader's side holds the reference)

ch01 = trusted.load_checks("ch01_convolution")


def test_line_filters_detect_lines_of_their_own_orientation():
    k = line_filters(7, channels=1)
    vertical_line, horizontal_line = np.zeros((7, 7)), np.zeros((7, 7))
    vertical_line[:, 3], horizontal_line[3, :] = 1, 1
    assert np.sum(k[:, :, 0, 0] * vertical_line) == 7 and np.sum(k[:, :, 0, 0] * horizontal_line) == 1
    assert np.sum(k[:, :, 0, 1] * horizontal_line) == 7 and np.sum(k[:, :, 0, 1] * vertical_line) == 1


@pytest.mark.parametrize("size, channels", [(4, 3), (0, 3), (7, 0)])
def test_line_filters_reject_bad_sizes(size, channels):
    with pytest.raises(ValueError, match="size|channels"):
        line_filters(size, channels)


def test_sample_photos_are_scikit_learns_two_photos():
    images, names = sample_photos()
    assert images.shape == (2, 427, 640, 3) and images.dtype == np.float32
    assert names == ["china.jpg", "flower.jpg"] and 0 <= images.min() and images.max() <= 1


def test_reference_conv2d_equals_scipy_cross_correlation():
    # Oracle: scipy.signal.correlate2d summed over input channels, written out here for one valid case.
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(9, 8, 2)), rng.normal(size=(3, 2, 2, 3)), rng.normal(size=3)
    expected = np.stack([sum(signal.correlate2d(x[:, :, c], w[:, :, c, o], mode="valid") for c in range(2)) + b[o]
                         for o in range(3)], axis=-1)
    np.testing.assert_allclose(ch01.reference_conv2d(x, w, b), expected, atol=1e-6)


def tensorflow_conv2d(x, w, b=None, stride=1, padding="valid"):
    """The oracle of the grader's reference: tf.nn.conv2d in float64 on one (H, W, C) image."""
    import tensorflow as tf

    out = tf.nn.conv2d(np.asarray(x, "float64")[None], np.asarray(w, "float64"), strides=stride,
                       padding=padding.upper()).numpy()[0]
    return out if b is None else out + b


def every_grader_case():
    """The cases of every hidden test cell of chapter 1, and 40 more of the same generator."""
    for _name, seed, count, options in ch01.CASES.values():
        yield from ch01.random_conv_cases(seed, count, **options)
    yield from ch01.random_conv_cases(7, 40)


def test_the_graders_reference_agrees_with_tensorflow_on_its_random_cases():
    # Oracle: tf.nn.conv2d. The grader computes its reference with SciPy, so that grading chapter 1 imports no
    # TensorFlow; this is what makes the two the same answer, "same" padding's uneven split included.
    cases = list(every_grader_case())
    assert sum(p == "same" for *_, p in cases) > 20 and sum(s > 1 for *_, s, _ in cases) > 20
    for x, w, b, stride, padding in cases:
        np.testing.assert_allclose(ch01.reference_conv2d(x, w, b, stride, padding),
                                   tensorflow_conv2d(x, w, b, stride, padding), atol=1e-9)


def test_a_flipped_kernel_differs_from_the_reference():
    # the plausible wrong answer of a convolution exercise: a true convolution (flipped kernel), not TF's correlation
    differs = [not np.allclose(ch01.reference_conv2d(x, w, b, s, p), tensorflow_conv2d(x, w[::-1, ::-1], b, s, p))
               for x, w, b, s, p in ch01.random_conv_cases(7, 40)]
    assert sum(differs) > 30


def test_grading_chapter_1_imports_no_tensorflow(tmp_path):
    # What KERAS = False buys: the trusted step of chapter 1 (check module, reference, comparison) in a fresh process
    # leaves TensorFlow and Keras unimported. Oracle: that process's sys.modules.
    import subprocess

    code = ("import sys; sys.path.insert(0, 'autograder'); import trusted\n"
            "m = trusted.load_checks('ch01_convolution'); assert trusted.warm_keras(m) is None\n"
            "x, w, b, s, p = m.random_conv_cases(404, 1)[0]\n"
            "trusted.expect_array(m.reference_conv2d(x, w, b, s, p), m.reference_conv2d(x, w, b, s, p), 'case')\n"
            "print(sorted(k for k in ('tensorflow', 'keras') if k in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("actual, message", [
    (None, "got None"),
    ("text", "expected a NumPy array"),
    (np.zeros((2, 3)), r"shape \(2, 3\), expected \(2, 2\)"),
    (np.array([[0, 0], [0, np.nan]]), "NaN"),
    (np.array([[0, 0], [0, 2.0]]), r"index \(1, 1\): yours 2, expected 1 \(1 of 4 values differ\)"),
])
def test_expect_array_messages(actual, message):
    with pytest.raises(AssertionError, match=message):
        grading.expect_array(actual, np.array([[0, 0], [0, 1.0]]), "test")
