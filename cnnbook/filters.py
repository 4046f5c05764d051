"""Hand-made convolution filters (chapter 1, "A filter is a feature detector")."""

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
