"""Convolution arithmetic (chapter 2): output sizes, padding, transposed convolutions and receptive fields.

Every function follows Keras's names and conventions (``kernel_size``, ``strides``, ``padding``, ``dilation_rate``,
``pool_size``, ``output_padding``) so that its numbers can be put next to a real Keras layer. The ``*_length``
functions work on one axis and take ints; the ``*_shape`` functions take an int (square) or a ``(height, width)``
pair and return a ``(height, width)`` tuple. ``padding`` is ``"valid"``, ``"same"`` (TensorFlow's rule), ``"full"``
(``k - 1`` zeros on each side; not a Keras option) or an explicit number of zeros ``p`` added on each side.
Invalid arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

PADDINGS = ("valid", "same", "full")


class Padding(NamedTuple):
    """Zeros added along one axis (chapter 2): ``total = before + after`` (before = top/left, after = bottom/right)."""

    total: int
    before: int
    after: int


# --------------------------------------------------------------------------------------------------------------
# argument checks


def _int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise ``ValueError`` naming ``name`` (chapter 2)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {number}")
    return number


def pair(value, name: str) -> tuple:
    """Return ``value`` as a ``(height, width)`` pair; an int is used for both axes (chapter 2)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a (height, width) pair, got {value!r}")
        return tuple(value)
    return (value, value)


def _padding(padding, name: str = "padding"):
    """Return ``padding`` as a lower-case known string or an int >= 0, else raise ``ValueError`` (chapter 2)."""
    if isinstance(padding, str):
        if padding.lower() not in PADDINGS:
            raise ValueError(
                f"{name} must be one of {', '.join(map(repr, PADDINGS))} or a number of zeros, got {padding!r}"
            )
        return padding.lower()
    return _int(padding, name, minimum=0)


# --------------------------------------------------------------------------------------------------------------
# one axis


def effective_kernel_size(kernel_size: int, dilation_rate: int = 1) -> int:
    """Return the span k + (k - 1)(d - 1) of a kernel of size k dilated by d (chapter 2)."""
    k = _int(kernel_size, "kernel_size")
    d = _int(dilation_rate, "dilation_rate")
    return k + (k - 1) * (d - 1)


def padding_amounts(input_length: int, kernel_size: int, strides: int = 1, padding="valid",
                    dilation_rate: int = 1) -> Padding:
    """Return the zeros (total, before, after) that a convolution or pooling adds along one axis (chapter 2)."""
    i = _int(input_length, "input_length")
    s = _int(strides, "strides")
    k = effective_kernel_size(kernel_size, dilation_rate)
    padding = _padding(padding)
    if padding == "valid":
        return Padding(0, 0, 0)
    if padding == "full":
        return Padding(2 * (k - 1), k - 1, k - 1)
    if padding == "same":
        out = -(-i // s)
        total = max((out - 1) * s + k - i, 0)
        return Padding(total, total // 2, total - total // 2)
    return Padding(2 * padding, padding, padding)


def same_padding(input_length: int, kernel_size: int, strides: int = 1, dilation_rate: int = 1) -> Padding:
    """Return TensorFlow's "same" padding along one axis: the odd zero goes after (bottom/right) (chapter 2)."""
    return padding_amounts(input_length, kernel_size, strides, "same", dilation_rate)


def conv_output_length(input_length: int, kernel_size: int, strides: int = 1, padding="valid",
                       dilation_rate: int = 1) -> int:
    """Return o = floor((i + 2p - k_eff) / s) + 1 along one axis; "same" gives ceil(i / s) (chapter 2)."""
    i = _int(input_length, "input_length")
    k = effective_kernel_size(kernel_size, dilation_rate)
    pad = padding_amounts(i, kernel_size, strides, padding, dilation_rate)
    s = _int(strides, "strides")
    if i + pad.total < k:
        dilated = f" (span {k} with dilation_rate={dilation_rate})" if k != kernel_size else ""
        raise ValueError(
            f"kernel_size={kernel_size}{dilated} is larger than the padded input "
            f"(input_length={i} + padding {pad.total} = {i + pad.total}); use a smaller kernel or more padding"
        )
    return (i + pad.total - k) // s + 1


def pool_output_length(input_length: int, pool_size: int, strides: int | None = None, padding="valid") -> int:
    """Return a pooling layer's output length; ``strides`` defaults to ``pool_size`` as in Keras (chapter 2)."""
    _int(pool_size, "pool_size")
    strides = pool_size if strides is None else strides
    try:
        return conv_output_length(input_length, pool_size, strides, padding)
    except ValueError as error:
        raise ValueError(str(error).replace("kernel_size", "pool_size")) from None


def conv_transpose_output_length(input_length: int, kernel_size: int, strides: int = 1, padding="valid",
                                 output_padding: int | None = None, dilation_rate: int = 1) -> int:
    """Return the output length of Keras's ``Conv2DTranspose`` along one axis (chapter 2)."""
    i = _int(input_length, "input_length")
    s = _int(strides, "strides")
    k = effective_kernel_size(kernel_size, dilation_rate)
    padding = _padding(padding)
    if output_padding is not None:
        a = _int(output_padding, "output_padding", minimum=0)
        if a >= s:
            raise ValueError(f"output_padding={a} must be smaller than strides={s}")
    if padding == "same" and output_padding == 0 and k % 2 == 0:
        raise ValueError(
            f"output_padding=0 with padding='same' and an even kernel span ({k}) asks for an output of length "
            f"{(i - 1) * s} that a 'same' convolution with strides={s} does not map back to {i} (Keras's "
            "compute_output_shape gives that size, but TensorFlow refuses to run the layer); use output_padding=None "
            "(or 1 when strides > 1)"
        )
    if padding == "same" and output_padding is None:
        out = i * s
    elif padding == "valid" and output_padding is None:
        out = (i - 1) * s + max(k, s)
    else:
        a = output_padding or 0
        before = {"valid": 0, "same": k // 2, "full": k - 1}.get(padding, padding)
        out = (i - 1) * s + k - 2 * before + a
    if out < 1:
        raise ValueError(
            f"padding={padding!r} removes more than the transposed convolution produces "
            f"(output length {out}); use less padding"
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# two axes (height, width)


def _each_axis(function, input_shape, input_name, *pairs):
    """Apply a one-axis function to height and width; ``pairs`` are (value, name) of per-axis arguments (chapter 2)."""
    shape = pair(input_shape, input_name)
    split = [pair(value, name) if value is not None else (None, None) for value, name in pairs]
    results = []
    for axis in range(2):
        try:
            results.append(function(shape[axis], *(values[axis] for values in split)))
        except ValueError as error:
            axis_name = ("height", "width")[axis]
            message = str(error).replace("input_length", input_name)
            raise ValueError(f"{message} [{axis_name}]") from None
    return tuple(results)


def conv_output_shape(input_shape, kernel_size, strides=1, padding="valid", dilation_rate=1) -> tuple:
    """Return a ``Conv2D``'s output (height, width); every argument is an int or a pair (chapter 2)."""
    return _each_axis(conv_output_length, input_shape, "input_shape", (kernel_size, "kernel_size"),
                      (strides, "strides"), (padding, "padding"), (dilation_rate, "dilation_rate"))


def pool_output_shape(input_shape, pool_size, strides=None, padding="valid") -> tuple:
    """Return a ``MaxPooling2D``/``AveragePooling2D`` output (height, width) (chapter 2)."""
    strides = pool_size if strides is None else strides
    return _each_axis(pool_output_length, input_shape, "input_shape", (pool_size, "pool_size"),
                      (strides, "strides"), (padding, "padding"))


def same_padding_2d(input_shape, kernel_size, strides=1, dilation_rate=1) -> tuple:
    """Return TensorFlow's "same" padding as (rows: total/top/bottom, columns: total/left/right) (chapter 2)."""
    return _each_axis(same_padding, input_shape, "input_shape", (kernel_size, "kernel_size"),
                      (strides, "strides"), (dilation_rate, "dilation_rate"))


def conv2d_transpose(filters: int, kernel_size, strides=1, padding="valid", output_padding=None, **kwargs):
    """Return ``keras.layers.Conv2DTranspose``, taking ``output_padding=0`` on every Keras 3 (chapter 2).

    Keras 3.10 (Colab's) refuses a 0 in ``output_padding`` ("must be > 0") although the layer computes with it, and
    Keras 3.15 accepts it; on a Keras that refuses, the layer is built without it and given the tuple afterwards.
    """
    import keras

    options = dict(strides=strides, padding=padding, **kwargs)
    try:
        return keras.layers.Conv2DTranspose(filters, kernel_size, output_padding=output_padding, **options)
    except ValueError:
        if output_padding is None:
            raise
        extra = tuple(_int(a, "output_padding", minimum=0) for a in pair(output_padding, "output_padding"))
        if min(extra) > 0:
            raise
        layer = keras.layers.Conv2DTranspose(filters, kernel_size, output_padding=None, **options)
        layer.output_padding = extra
        return layer


def conv_transpose_output_shape(input_shape, kernel_size, strides=1, padding="valid", output_padding=None,
                                dilation_rate=1) -> tuple:
    """Return a ``Conv2DTranspose``'s output (height, width), ``output_padding`` included (chapter 2)."""
    return _each_axis(conv_transpose_output_length, input_shape, "input_shape", (kernel_size, "kernel_size"),
                      (strides, "strides"), (padding, "padding"), (output_padding, "output_padding"),
                      (dilation_rate, "dilation_rate"))


# --------------------------------------------------------------------------------------------------------------
# receptive fields


class Window(NamedTuple):
    """A sliding window over two axes (chapter 2): per-axis kernel span, stride and padding ("same"/(before, after))."""

    kernel_size: tuple
    strides: tuple
    padding: object
    dilation_rate: tuple
    name: str = ""


class Field(NamedTuple):
    """Receptive field of a stack (chapter 2): unit n sees input cells n * stride - padding + [0, size) per axis."""

    size: tuple
    stride: tuple
    padding: tuple
    output_shape: tuple | None = None

    def window(self, row: int, col: int) -> tuple:
        """Return the half-open input ranges ((top, bottom), (left, right)) that output (row, col) sees (chapter 2)."""
        return tuple((n * j - p, n * j - p + r) for n, j, p, r in zip((row, col), self.stride, self.padding, self.size))


def conv_layer(kernel_size, strides=1, padding="valid", dilation_rate=1, name: str = "conv") -> Window:
    """Describe a convolution for :func:`receptive_field`; arguments as in ``Conv2D`` (chapter 2)."""
    kernel = tuple(_int(k, "kernel_size") for k in pair(kernel_size, "kernel_size"))
    stride = tuple(_int(s, "strides") for s in pair(strides, "strides"))
    dilation = tuple(_int(d, "dilation_rate") for d in pair(dilation_rate, "dilation_rate"))
    pads = tuple(_padding(p) for p in pair(padding, "padding"))
    return Window(kernel, stride, tuple((p, p) if isinstance(p, int) else p for p in pads), dilation, name)


def pool_layer(pool_size, strides=None, padding="valid", name: str = "pool") -> Window:
    """Describe a pooling window for :func:`receptive_field`; ``strides`` defaults to ``pool_size`` (chapter 2)."""
    return conv_layer(pool_size, pool_size if strides is None else strides, padding, 1, name)


def _axis_padding(spec, length, kernel_size, strides, dilation_rate, layer_name) -> tuple:
    """Return (before, after) zeros of one layer along one axis; "same" needs the input length (chapter 2)."""
    if isinstance(spec, tuple):
        return spec
    if spec == "same" and strides > 1 and length is None:
        raise ValueError(
            f"input_shape is needed: layer {layer_name!r} uses padding='same' with strides={strides}, "
            "whose top/left padding depends on the input size"
        )
    pad = padding_amounts(length or 1, kernel_size, strides, spec, dilation_rate)
    return pad.before, pad.after


def receptive_field_table(layers, input_shape=None) -> list:
    """Return the :class:`Field` after each layer of a stack (list of :class:`Window` or a Keras model) (chapter 2)."""
    if hasattr(layers, "layers") and hasattr(layers, "inputs"):
        if input_shape is None:
            input_shape = tuple(layers.inputs[0].shape[1:3])
            input_shape = None if None in input_shape else input_shape
        layers = model_windows(layers)
    shape = None if input_shape is None else tuple(_int(n, "input_shape") for n in pair(input_shape, "input_shape"))
    size, jump, start = [1, 1], [1, 1], [0, 0]
    table = []
    for layer in layers:
        if not isinstance(layer, Window):
            raise ValueError(f"layers must hold conv_layer()/pool_layer() windows or be a Keras model, got {layer!r}")
        out = [None, None]
        for axis in range(2):
            k, s, d = layer.kernel_size[axis], layer.strides[axis], layer.dilation_rate[axis]
            length = None if shape is None else shape[axis]
            before, after = _axis_padding(layer.padding[axis], length, k, s, d, layer.name)
            span = effective_kernel_size(k, d)
            size[axis] += (span - 1) * jump[axis]
            start[axis] += before * jump[axis]
            jump[axis] *= s
            if length is not None:
                if length + before + after < span:
                    raise ValueError(
                        f"kernel_size={k} of layer {layer.name!r} is larger than its padded input "
                        f"({length} + {before + after}) [{('height', 'width')[axis]}]"
                    )
                out[axis] = (length + before + after - span) // s + 1
        shape = None if shape is None else tuple(out)
        table.append(Field(tuple(size), tuple(jump), tuple(start), shape))
    return table


def receptive_field(layers, input_shape=None) -> Field:
    """Return receptive field, effective stride and effective padding of a stack or a Keras model (chapter 2)."""
    table = receptive_field_table(layers, input_shape)
    if table:
        return table[-1]
    shape = None if input_shape is None else pair(input_shape, "input_shape")
    return Field((1, 1), (1, 1), (0, 0), shape)


# --------------------------------------------------------------------------------------------------------------
# Keras models


_CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
_POOL_TYPES = ("MaxPooling2D", "AveragePooling2D", "MaxPool2D", "AvgPool2D")
_END_TYPES = ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dense", "Reshape")


def layer_window(layer) -> Window | None:
    """Return the :class:`Window` of a Keras layer, or None for a layer that keeps every pixel in place (chapter 2)."""
    kind = type(layer).__name__
    if kind in _CONV_TYPES:
        return conv_layer(layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate, layer.name)
    if kind in _POOL_TYPES:
        return pool_layer(layer.pool_size, layer.strides, layer.padding, layer.name)
    if kind == "ZeroPadding2D":
        return Window((1, 1), (1, 1), tuple(tuple(p) for p in layer.padding), (1, 1), layer.name)
    if kind == "Cropping2D":
        return Window((1, 1), (1, 1), tuple((-a, -b) for a, b in layer.cropping), (1, 1), layer.name)
    if kind == "InputLayer":
        return None
    in_shape, out_shape = tuple(layer.input.shape), tuple(layer.output.shape)
    if len(in_shape) == 4 and len(out_shape) == 4 and in_shape[1:3] == out_shape[1:3]:
        return None
    raise ValueError(
        f"layer {layer.name!r} ({kind}) changes the spatial shape in a way the receptive field walk does not "
        "know (it covers Conv2D, DepthwiseConv2D, SeparableConv2D, pooling, ZeroPadding2D, Cropping2D)"
    )


def _chain(model) -> list:
    """Return the layers of a Sequential model or of a single-path functional model, in order (chapter 2)."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    previous = model.inputs[0] if getattr(model, "inputs", None) else None
    for layer in layers:
        inputs = layer.input
        if isinstance(inputs, (list, tuple)) or previous is None:
            raise ValueError(f"model must be a single chain of layers; layer {layer.name!r} has several inputs")
        if inputs is not previous and getattr(inputs, "_keras_history", None) != getattr(previous, "_keras_history", 0):
            raise ValueError(
                f"model must be a single chain of layers; layer {layer.name!r} does not take the previous output"
            )
        previous = layer.output
    return layers


def model_windows(model) -> list:
    """Return the :class:`Window` list of a Keras chain model up to Flatten, global pooling or Dense (chapter 2)."""
    windows = []
    for layer in _chain(model):
        kind = type(layer).__name__
        if kind in _END_TYPES:
            break
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            windows.extend(model_windows(layer))
            continue
        window = layer_window(layer)
        if window is not None:
            windows.append(window)
    return windows


def explorer_table(input_lengths=(5, 6, 7, 8, 9, 10, 16, 28, 32), kernel_sizes=(1, 2, 3, 4, 5, 7),
                   strides=(1, 2, 3), paddings=(0, 1, 2, 3), dilations=(1, 2, 3)) -> dict:
    """Output length of every (i, k, s, p, d) combination, keyed "i,k,s,p,d"; None where the kernel does not fit (ch. 2)."""
    table = {}
    for i in input_lengths:
        for k in kernel_sizes:
            for s in strides:
                for p in paddings:
                    for d in dilations:
                        fits = i + 2 * p >= effective_kernel_size(k, d)
                        table[f"{i},{k},{s},{p},{d}"] = (conv_output_length(i + 2 * p, k, s, "valid", d)
                                                         if fits else None)
    return {"input_length": list(input_lengths), "kernel_size": list(kernel_sizes), "strides": list(strides),
            "padding": list(paddings), "dilation_rate": list(dilations), "output_length": table}


def explorer_html(table: dict, element_id: str = "conv-explorer") -> str:
    """A static HTML/JS widget that looks output lengths up in ``table`` (no arithmetic in the page) (chapter 2)."""
    import json

    controls = "".join(
        f'<label style="margin-right:1em">{key.replace("_", " ")} '
        f'<select data-key="{key}">' + "".join(
            f'<option value="{v}"{" selected" if v == table[key][min(2, len(table[key]) - 1)] else ""}>{v}</option>'
            for v in table[key]) + "</select></label>"
        for key in ("input_length", "kernel_size", "strides", "padding", "dilation_rate"))
    return f"""<div id="{element_id}" class="conv-explorer">{controls}
<p>output length: <strong class="conv-explorer-output">?</strong></p>
<script type="application/json" class="conv-explorer-table">{json.dumps(table["output_length"])}</script>
<script>(function () {{
  var root = document.getElementById("{element_id}");
  var table = JSON.parse(root.querySelector(".conv-explorer-table").textContent);
  var keys = ["input_length", "kernel_size", "strides", "padding", "dilation_rate"];
  function show() {{
    var key = keys.map(function (k) {{ return root.querySelector('select[data-key="' + k + '"]').value; }}).join(",");
    var value = table[key];
    root.querySelector(".conv-explorer-output").textContent =
      value === null ? "the kernel does not fit: pad more or shrink it" : String(value);
  }}
  root.querySelectorAll("select").forEach(function (s) {{ s.addEventListener("change", show); }});
  show();
}})();</script></div>"""
