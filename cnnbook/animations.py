"""Animated sliding windows for chapter 2: input grid, padding, kernel and output, sized by :mod:`cnnbook.arithmetic`.

A *scene* (:class:`Scene`) is the arithmetic of one layer laid out cell by cell; :func:`animate` draws it with
matplotlib, and :func:`gif_html` / :func:`jshtml` turn the animation into HTML that a static book page keeps (an
``<img>`` with the GIF inline, or matplotlib's JavaScript player). No ffmpeg and no LaTeX are needed.
"""

from __future__ import annotations

import base64
import os
import tempfile
from typing import NamedTuple

import numpy as np

from cnnbook import arithmetic as A

INPUT, PAD, INSERTED = 0, 1, 2  # kinds of cell on the (padded) input grid
COLOURS = {"input": "#a6cee3", "pad": "#ffffff", "inserted": "#f2f2f2", "window_input": "#1f78b4",
           "window_pad": "#9e9e9e", "output": "#ffffff", "done": "#b2df8a", "current": "#33a02c"}


class Scene(NamedTuple):
    """One layer laid out for drawing (chapter 2): padded input cells, window cells per frame and the output grid."""

    title: str
    cells: np.ndarray            # (rows, cols) of INPUT / PAD / INSERTED on the padded input grid
    windows: list                # per frame: list of (row, col) cells of the padded grid under the kernel
    outputs: list                # per frame: the (row, col) output cell being computed
    output_shape: tuple
    values: np.ndarray | None = None          # numbers shown on the padded input (pooling), NaN where none
    output_values: np.ndarray | None = None   # numbers shown on the output (pooling)


def _padded_cells(shape, pads) -> np.ndarray:
    """Return the padded grid of a (height, width) input with per-axis (before, after) zeros (chapter 2)."""
    (top, bottom), (left, right) = pads
    cells = np.full((shape[0] + top + bottom, shape[1] + left + right), PAD)
    cells[top:top + shape[0], left:left + shape[1]] = INPUT
    return cells


def _slide(output_shape, kernel_size, strides, dilation_rate) -> tuple[list, list]:
    """Return the padded-grid cells under the window and the output cell, frame by frame (chapter 2)."""
    windows, outputs = [], []
    for row in range(output_shape[0]):
        for col in range(output_shape[1]):
            windows.append([(row * strides[0] + a * dilation_rate[0], col * strides[1] + b * dilation_rate[1])
                            for a in range(kernel_size[0]) for b in range(kernel_size[1])])
            outputs.append((row, col))
    return windows, outputs


def conv_scene(input_shape=5, kernel_size=3, strides=1, padding="valid", dilation_rate=1, title=None) -> Scene:
    """Lay out a convolution of any padding, stride and dilation (chapter 2)."""
    shape, kernel = A.pair(input_shape, "input_shape"), A.pair(kernel_size, "kernel_size")
    stride, dilation = A.pair(strides, "strides"), A.pair(dilation_rate, "dilation_rate")
    out = A.conv_output_shape(shape, kernel, stride, padding, dilation)
    pads = [A.padding_amounts(n, k, s, p, d)[1:] for n, k, s, p, d in
            zip(shape, kernel, stride, A.pair(padding, "padding"), dilation)]
    windows, outputs = _slide(out, kernel, stride, dilation)
    default = (f"{shape[0]}×{shape[1]} input, {kernel[0]}×{kernel[1]} kernel, stride {stride[0]}, "
               f"padding {padding!r}" + (f", dilation {dilation[0]}" if dilation != (1, 1) else "")
               + f" → {out[0]}×{out[1]}")
    return Scene(title or default, _padded_cells(shape, pads), windows, outputs, out)


def pool_scene(input_shape=4, pool_size=2, strides=None, padding="valid", values=None, title=None) -> Scene:
    """Lay out a max pooling, with the numbers of the input and of the output (chapter 2)."""
    shape, pool = A.pair(input_shape, "input_shape"), A.pair(pool_size, "pool_size")
    stride = A.pair(pool_size if strides is None else strides, "strides")
    out = A.pool_output_shape(shape, pool, stride, padding)
    pads = [A.padding_amounts(n, k, s, p)[1:] for n, k, s, p in zip(shape, pool, stride, A.pair(padding, "padding"))]
    if values is None:
        values = np.random.default_rng(0).integers(0, 10, size=shape)
    values = np.asarray(values, dtype=float)
    if values.shape != shape:
        raise ValueError(f"values must have the input's shape {shape}, got {values.shape}")
    cells = _padded_cells(shape, pads)
    grid = np.full(cells.shape, np.nan)
    grid[cells == INPUT] = values.ravel()
    windows, outputs = _slide(out, pool, stride, (1, 1))
    pooled = np.array([np.nanmax([grid[r, c] for r, c in w]) for w in windows]).reshape(out)
    default = (f"max pooling: {shape[0]}×{shape[1]} input, {pool[0]}×{pool[1]} window, stride {stride[0]}, "
               f"padding {padding!r} → {out[0]}×{out[1]}")
    return Scene(title or default, cells, windows, outputs, out, grid, pooled)


def conv_transpose_scene(input_shape=2, kernel_size=3, strides=2, padding="valid", output_padding=None,
                         title=None) -> Scene:
    """Lay out a transposed convolution as the direct convolution that computes it (chapter 2).

    The input pixels are spread ``strides - 1`` zeros apart, padded with ``k - 1 - p`` zeros (``p`` = the top/left
    padding of the convolution being transposed) and an extra strip at the bottom/right, then a stride-1
    convolution with the flipped kernel slides over them.
    """
    shape, kernel = A.pair(input_shape, "input_shape"), A.pair(kernel_size, "kernel_size")
    stride = A.pair(strides, "strides")
    extra = A.pair(output_padding, "output_padding") if output_padding is not None else (None, None)
    out = A.conv_transpose_output_shape(shape, kernel, stride, padding, output_padding)
    pads = []
    for n, k, s, p, o in zip(shape, kernel, stride, A.pair(padding, "padding"), out):
        before = k - 1 - A.padding_amounts(o, k, s, p).before
        after = o + k - 1 - ((n - 1) * s + 1) - before
        if before < 0 or after < 0:
            raise ValueError(f"padding={padding!r} is larger than kernel_size - 1: nothing to draw")
        pads.append((before, after))
    cells = np.full((out[0] + kernel[0] - 1, out[1] + kernel[1] - 1), PAD)
    spread = np.full(((shape[0] - 1) * stride[0] + 1, (shape[1] - 1) * stride[1] + 1), INSERTED)
    spread[::stride[0], ::stride[1]] = INPUT
    cells[pads[0][0]:pads[0][0] + spread.shape[0], pads[1][0]:pads[1][0] + spread.shape[1]] = spread
    windows, outputs = _slide(out, kernel, (1, 1), (1, 1))
    default = (f"transposed: {shape[0]}×{shape[1]} input, {kernel[0]}×{kernel[1]} kernel, stride {stride[0]}, "
               f"padding {padding!r}" + (f", output_padding {extra[0]}" if extra[0] is not None else "")
               + f" → {out[0]}×{out[1]}")
    return Scene(title or default, cells, windows, outputs, out)


def gallery() -> dict:
    """Return the scenes of chapter 2: no padding, same padding, stride 2, dilation 2, transposed, max pooling."""
    return {
        "no padding": conv_scene(5, 3),
        "same padding": conv_scene(5, 3, padding="same"),
        "stride 2": conv_scene(5, 3, strides=2, padding=1),
        "dilation 2": conv_scene(7, 3, dilation_rate=2),
        "transposed, stride 2": conv_transpose_scene(2, 3, 2),
        "max pooling": pool_scene(4, 2),
    }


# --------------------------------------------------------------------------------------------------------------
# drawing


def _grid(ax, cells, x0, facecolours, linestyles="-"):
    """Draw a grid of square cells (one collection) with its top-left corner at column ``x0``; return it."""
    from matplotlib.collections import PolyCollection

    squares = [[(x0 + c, -r), (x0 + c + 1, -r), (x0 + c + 1, -r - 1), (x0 + c, -r - 1)] for r, c in cells]
    collection = PolyCollection(squares, facecolors=facecolours, edgecolors="#555555", linewidths=0.8,
                                linestyles=linestyles)
    ax.add_collection(collection)
    return collection


#: Text sizes in points; at ``DPI`` a caption is CAPTION_POINTS * DPI / 72 pixels high on the page, which shows the GIF at
#: its own size (at 72 dpi and 7 points the captions were about 6 pixels high, too small to read).
DPI = 100
TITLE_POINTS, CAPTION_POINTS, VALUE_POINTS = 11, 10, 9


def captions(scene: Scene) -> tuple[str, str]:
    """The captions under the input and the output grids: padding is mentioned only where the scene has some."""
    kinds = set(np.unique(scene.cells).tolist())
    if PAD in kinds and INSERTED in kinds:
        return "input (dotted: zeros)", "output"
    if PAD in kinds:
        return "input (dotted: padding zeros)", "output"
    return "input", "output"


def animate(scene: Scene, fps: float = 2.0, cell_inches: float = 0.36, dpi: int = DPI):
    """Return a matplotlib ``FuncAnimation`` of ``scene``: the window slides, the output fills (chapter 2)."""
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    rows, cols = scene.cells.shape
    out_rows, out_cols = scene.output_shape
    gap = 2
    width, height = cols + gap + out_cols, max(rows, out_rows) + 1  # one row for the captions
    fig_width = max(width * cell_inches, 4.2)
    title = textwrap.fill(scene.title, width=int(fig_width * 72 / (0.55 * TITLE_POINTS)))  # ~0.55 em per character
    title_inches = 1.4 * TITLE_POINTS / 72 * (title.count("\n") + 1) + 0.1
    fig = plt.figure(figsize=(fig_width, height * cell_inches + title_inches), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, height * cell_inches / (height * cell_inches + title_inches)])
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(-height - 0.1, 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(title, fontsize=TITLE_POINTS, y=0.99, va="top")
    below_input, below_output = captions(scene)
    ax.text(cols / 2, -height + 0.4, below_input, ha="center", va="center", fontsize=CAPTION_POINTS)
    ax.text(cols + gap + out_cols / 2, -height + 0.4, below_output, ha="center", va="center", fontsize=CAPTION_POINTS)
    base = {INPUT: COLOURS["input"], PAD: COLOURS["pad"], INSERTED: COLOURS["inserted"]}
    in_cells = [(r, c) for r in range(rows) for c in range(cols)]
    in_index = {cell: n for n, cell in enumerate(in_cells)}
    in_colours = [base[scene.cells[cell]] for cell in in_cells]
    inputs = _grid(ax, in_cells, 0, in_colours, [":" if scene.cells[cell] != INPUT else "-" for cell in in_cells])
    out_index = {cell: n for n, cell in enumerate(scene.outputs)}
    outputs = _grid(ax, scene.outputs, cols + gap, [COLOURS["output"]] * len(scene.outputs))
    texts = {}
    if scene.values is not None:
        for (r, c), value in np.ndenumerate(scene.values):
            if not np.isnan(value):
                ax.text(c + 0.5, -r - 0.5, f"{value:g}", ha="center", va="center", fontsize=VALUE_POINTS)
        for (r, c), value in np.ndenumerate(scene.output_values):
            texts[r, c] = ax.text(cols + gap + c + 0.5, -r - 0.5, "", ha="center", va="center",
                                  fontsize=VALUE_POINTS)

    def update(frame):
        colours = list(in_colours)
        for cell in scene.windows[frame]:
            colours[in_index[cell]] = COLOURS["window_input" if scene.cells[cell] == INPUT else "window_pad"]
        inputs.set_facecolors(colours)
        done = [COLOURS["current" if n == frame else "done" if n < frame else "output"]
                for n in range(len(scene.outputs))]
        outputs.set_facecolors(done)
        for cell, text in texts.items():
            text.set_text(f"{scene.output_values[cell]:g}" if out_index[cell] <= frame else "")
        return []

    animation = FuncAnimation(fig, update, frames=len(scene.windows), interval=1000 / fps, blit=False)
    plt.close(fig)
    return animation


def gif_bytes(animation, fps: float = 2.0, colours: int = 32) -> bytes:
    """Render an animation to an animated GIF with one shared palette (small and fast) and return it (chapter 2)."""
    from matplotlib.animation import PillowWriter
    from PIL import Image

    class SharedPaletteWriter(PillowWriter):
        """PillowWriter that quantizes every frame to one palette, so unchanged pixels compress away."""

        def finish(self):
            frames = [frame.convert("RGB") for frame in self._frames]
            strip = Image.new("RGB", (frames[0].width, frames[0].height * len(frames)))
            for index, frame in enumerate(frames):
                strip.paste(frame, (0, index * frame.height))
            palette = strip.quantize(colours, dither=Image.Dither.NONE)
            frames = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
            frames[0].save(self.outfile, save_all=True, append_images=frames[1:], duration=int(1000 / self.fps),
                           loop=0, optimize=True)

    handle, path = tempfile.mkstemp(suffix=".gif")
    os.close(handle)
    try:
        animation.save(path, writer=SharedPaletteWriter(fps=fps))
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.remove(path)


def gif_html(animation, fps: float = 2.0, alt: str = "animation") -> str:
    """Return an ``<img>`` tag holding the animation as an inline base64 GIF (survives a static build) (chapter 2)."""
    data = base64.b64encode(gif_bytes(animation, fps)).decode("ascii")
    return f'<img src="data:image/gif;base64,{data}" alt="{alt}"/>'


def jshtml(animation) -> str:
    """Return matplotlib's JavaScript player for the animation (play/pause/step controls) (chapter 2)."""
    return animation.to_jshtml()


def show(scene: Scene, fps: float = 2.0):
    """Return an ``IPython.display.HTML`` of ``scene`` as an inline GIF, for a notebook cell (chapter 2)."""
    from IPython.display import HTML

    return HTML(gif_html(animate(scene, fps), fps, alt=scene.title))
