"""Chapter 1 helpers: filters, the grading checks and the TensorFlow reference, each against an independent oracle."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from cnnbook import grading
from cnnbook.data import sample_photos
from cnnbook.filters import line_filters

from autograder import trusted  # noqa: E402  (the grader's side holds the reference)

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

    code = ("import sys\nfrom autograder import preprocessors, trusted\n"
            "m = trusted.load_checks('ch01_convolution'); assert preprocessors.warm_keras(m) is None\n"
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


def test_sobel_kernels_respond_to_brightness_rising_right_and_down():
    # oracle: scipy's correlate2d (the cross-correlation Keras computes) on two hand-made ramps
    from cnnbook.filters import sobel

    ramp = np.tile(np.arange(5.0), (5, 1))                 # brighter to the right
    assert (signal.correlate2d(ramp, sobel("x"), mode="valid") == 8).all()
    assert (signal.correlate2d(ramp.T, sobel("y"), mode="valid") == 8).all()
    assert (signal.correlate2d(ramp, sobel("y"), mode="valid") == 0).all()


def test_fit_kernel_recovers_the_sobel_kernel_from_image_pairs():
    # chapter 1, section 1.4: a one-filter Conv2D fitted to (image, Sobel map) pairs. Oracle: the Sobel kernel that
    # made the targets (scipy's correlate2d, independent of Keras), within 0.02 on every weight after 300 steps.
    from cnnbook.filters import fit_kernel, sobel

    images, _ = sample_photos()
    grey = images.mean(axis=-1, keepdims=True)[:, ::4, ::4]
    targets = np.stack([signal.correlate2d(g[:, :, 0], sobel("x"), mode="valid") for g in grey])[..., None]
    losses, kernels = fit_kernel(grey, targets.astype("float32"), size=3, steps=300, learning_rate=0.05, seed=0)
    assert kernels.shape == (300, 3, 3) and losses[-1] < losses[0] * 1e-3
    assert np.abs(kernels[-1] - sobel("x")).max() < 0.02
    assert np.abs(kernels[0] - sobel("x")).max() > 1     # it started far away


def test_the_lesson_writes_the_same_fit_kernel_as_the_package():
    # STYLE.md section 3: the code that carries the idea is on the page, the package keeps the same function
    import inspect
    import json

    from cnnbook.filters import fit_kernel

    cells = json.loads((Path(__file__).resolve().parent.parent / "book" / "ch01_convolution.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert inspect.getsource(fit_kernel).strip() in [s.strip() for s in sources]


def test_show_grid_draws_bright_values_bright_and_outlines_the_window():
    # chapter 1 (issue 34): the grid uses the grey colour map, so 200 is drawn lighter than 0
    import matplotlib

    matplotlib.use("Agg")
    from cnnbook.viz import show_grid

    ax = show_grid(np.array([[0.0, 200.0]]), box=(0, 1, 1, 1))
    image = ax.get_images()[0]
    dark, bright = image.cmap(image.norm(np.array([0.0, 200.0])))
    assert image.cmap.name == "gray" and sum(bright[:3]) > sum(dark[:3])
    assert len(ax.patches) == 1


def test_stride_two_breaks_equivariance_for_odd_shifts_only():
    # chapter 1, self-check 2 (corrected: equivariance also fails under stride). Oracle: scipy's correlate2d, then
    # every other position kept (a stride-2 'valid' convolution), on a random image shifted right by p pixels.
    from cnnbook.filters import sobel

    rng = np.random.default_rng(0)
    image = rng.random((20, 40))

    def stride2(x):
        return signal.correlate2d(x, sobel("x"), mode="valid")[::2, ::2]

    base = stride2(image)
    for pixels, equivariant in [(1, False), (2, True), (3, False), (4, True)]:
        moved = stride2(np.roll(image, pixels, axis=1))[:, 4:-1]     # away from the wrapped-around columns
        best = min(np.abs(moved - np.roll(base, t, axis=1)[:, 4:-1]).max() for t in range(pixels + 1))
        assert (best < 1e-9) == equivariant, pixels
