"""Hand-made convolution filters, and one learned from data (chapter 1, "A filter is a feature detector")."""

import numpy as np


def line_filters(size: int = 7, channels: int = 3) -> np.ndarray:
    """Return a (size, size, channels, 2) kernel: a vertical-line and a horizontal-line detector (chapter 1)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number so the line has a centre, got {size}")
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    kernel = np.zeros((size, size, channels, 2), dtype="float32")
    kernel[:, size // 2, :, 0] = 1.0  # vertical: the centre column
    kernel[size // 2, :, :, 1] = 1.0  # horizontal: the centre row
    return kernel


def sobel(direction: str = "x") -> np.ndarray:
    """Return the 3x3 Sobel kernel (float32): ``"x"`` responds to dark-to-bright from left to right, ``"y"`` from
    top to bottom, under the cross-correlation that Keras computes (chapter 1)."""
    x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype="float32")
    if direction not in ("x", "y"):
        raise ValueError(f"direction must be 'x' or 'y', got {direction!r}")
    return x if direction == "x" else x.T.copy()


def fit_kernel(images, targets, size=3, steps=300, learning_rate=0.05, seed=0):
    """Fit one Conv2D filter (no bias) mapping images to targets; return each step's loss and kernel (chapter 1)."""
    import keras

    keras.utils.set_random_seed(seed)
    conv = keras.layers.Conv2D(1, size, use_bias=False)
    model = keras.Sequential([keras.Input(images.shape[1:]), conv])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    losses, kernels = [], []
    for step in range(steps):
        losses.append(float(model.train_on_batch(images, targets)))
        kernels.append(keras.ops.convert_to_numpy(conv.kernel)[:, :, 0, 0])
    return np.array(losses), np.array(kernels)
