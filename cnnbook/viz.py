"""Plots shared by the chapters (each function names the chapter that uses it)."""

import matplotlib.pyplot as plt
import numpy as np


def show_feature_maps(images: np.ndarray, maps: np.ndarray, image_titles, map_titles):
    """Plot each image beside its feature maps, one row per image (chapter 1); return the figure."""
    images, maps = np.asarray(images), np.asarray(maps)
    if images.shape[0] != maps.shape[0] or maps.ndim != 4:
        raise ValueError(f"need images (n, h, w, c) and maps (n, h, w, k) with the same n, "
                         f"got {images.shape} and {maps.shape}")
    n, k = maps.shape[0], maps.shape[-1]
    if len(image_titles) != n or len(map_titles) != k:
        raise ValueError(f"need {n} image titles and {k} map titles, got {len(image_titles)} and {len(map_titles)}")
    fig, axes = plt.subplots(n, k + 1, figsize=(3.2 * (k + 1), 2.4 * n), squeeze=False)
    for row in range(n):
        axes[row, 0].imshow(np.clip(images[row], 0, 1))
        axes[row, 0].set_title(image_titles[row])
        for col in range(k):
            axes[row, col + 1].imshow(maps[row, :, :, col], cmap="gray")
            axes[row, col + 1].set_title(f"{image_titles[row]}: {map_titles[col]}")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_grid(array: np.ndarray, title: str = "", ax=None, fmt: str = "{:g}", box=None, box_colour: str = "tab:orange"):
    """Draw a small 2-D array as a grid of numbers, bright values bright (chapter 1); return the axes.

    ``box=(row, col, height, width)`` outlines a window of cells (the kernel's position, or the output it makes).
    """
    from matplotlib.patches import Rectangle

    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"show_grid draws a 2-D array, got shape {array.shape}")
    ax = ax or plt.gca()
    low, high = min(array.min(), 0), max(array.max(), 0)
    if high == low:                                   # a constant grid (all zeros) is drawn mid-grey
        low, high = low - 1, high + 1
    ax.imshow(array, cmap="gray", vmin=low, vmax=high)
    for (r, c), v in np.ndenumerate(array):
        colour = "black" if v > (high + low) / 2 else "white"
        ax.text(c, r, fmt.format(v + 0.0), ha="center", va="center", color=colour, fontsize=9)  # + 0.0: no "-0"
    if box is not None:
        row, col, height, width = box
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), width, height, fill=False, edgecolor=box_colour, linewidth=3))
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title)
    return ax


def show_table(rows) -> None:
    """Print a list of dicts (one per row) as a plain-text table (chapters 2 and 3)."""
    import pandas as pd

    print(pd.DataFrame(list(rows)).to_string(index=False))
