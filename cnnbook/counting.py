"""Count the parameters, multiply-accumulates and activation memory of a built Keras 3 model (chapter 3).

``count(model)`` walks any built model — Sequential, functional, subclassed layers and models, models nested in
models such as the ``keras.applications`` backbones — and returns a :class:`Counts`: one row per layer call in a
pandas DataFrame (``counts.table``), totals, and a readable printout (``print(counts)``).

What the columns count, per example (the batch dimension is left out of every arithmetic count):

``macs``
    multiply-accumulates of convolutions, transposed and depthwise/separable convolutions and dense (and einsum)
    layers — the convention of the papers (He et al. 2015, Howard et al. 2017, Sandler et al. 2018, Tan & Le 2019),
    where a "FLOP" or a "mult-add" means one multiply-accumulate. ``counts.flops`` is 2 × MACs, labelled so.
``bias_adds``
    one addition per output element of a layer with a bias (not in ``macs``).
``norm_ops``
    normalisation arithmetic: BatchNormalization at inference is a per-channel scale and shift, 2 per element
    (mean and variance fold into them); Layer/GroupNormalization 7 per element (mean 1, variance 3, normalise 1,
    scale and shift 2); UnitNormalization 3; the Normalization preprocessing layer 2.
``act_ops``
    one activation-function evaluation per output element, whatever the function (ReLU or softmax alike).
``pool_ops``
    comparisons (max) or additions (average) of pooling: the window size per output element; global pooling one
    per input element.
``elementwise_ops``
    Add/Subtract/Multiply/Maximum/Minimum of n tensors: (n − 1) per output element (Average: n);
    Rescaling 1 or 2 per element; the same for ``keras.ops`` arithmetic in a functional graph.
``activation_bytes``
    size of the layer's output for ``batch_size`` examples in the layer's compute dtype (or ``dtype``).

Layers that do no arithmetic at inference (reshaping, padding, cropping, dropout and random augmentation, which are
identities at inference, concatenation, the input) count 0 and say why in ``note``. A layer type the counter does
not know is listed with ``note`` = "not counted" and ``<NA>`` in its arithmetic columns, never a silent 0; teach it
with :func:`register`. Parameters are always counted (from the layer's variables), each variable once even if a
layer is shared or called several times; arithmetic is counted for every call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Arithmetic columns of the table, in order; ``macs`` is the papers' count, the others are reported apart.
OP_COLUMNS = ("macs", "bias_adds", "norm_ops", "act_ops", "pool_ops", "elementwise_ops")
COLUMNS = ("layer", "type", "output_shape", "params", "trainable", "non_trainable", *OP_COLUMNS,
           "activation_bytes", "note")
NOT_COUNTED = "not counted"

_RULES: dict[str, object] = {}


class NotCounted(Exception):
    """Raised by a rule that cannot count a particular call (the message goes into the ``note`` column)."""


def _qualname(cls) -> str:
    return cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"


def register(*classes):
    """Decorator: count layers (or ``keras.ops`` operations) of these classes or qualified class names with ``fn``.

    ``fn(layer, inputs, outputs)`` gets the layer and the per-example shapes (batch dimension removed) of its input
    and output tensors, two lists of tuples, and returns a dict with some of :data:`OP_COLUMNS` and optionally
    ``note``; missing columns are 0. Subclasses of a registered class use its rule unless they have their own.
    """

    def decorate(fn):
        for cls in classes:
            _RULES[_qualname(cls)] = fn
        return fn

    return decorate


def rule_for(op):
    """Return the counting rule for ``op`` (looked up along its class's MRO), or None if its type is unknown."""
    for klass in type(op).__mro__:
        fn = _RULES.get(_qualname(klass))
        if fn is not None:
            return fn
    return None


# --------------------------------------------------------------------------- the rules


def _size(shape) -> int:
    """Number of elements of one example's tensor; raise NotCounted if a dimension is unknown."""
    if any(d is None for d in shape):
        raise NotCounted(f"{NOT_COUNTED}: unknown size {tuple(shape)} (pass input_shape=...)")
    return math.prod(shape)


def _activation_ops(layer, n: int) -> int:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None)
    return 0 if act is None or name == "linear" else n


def _has_bias(layer) -> bool:
    return bool(getattr(layer, "use_bias", False)) or getattr(layer, "bias", None) is not None


def _affine(layer, outputs, macs) -> dict:
    n = _size(outputs[0])
    return {"macs": macs, "bias_adds": n if _has_bias(layer) else 0, "act_ops": _activation_ops(layer, n)}


def _kernel_shape(layer, attr="kernel") -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(layer, attr).shape)


def _dense(layer, inputs, outputs):
    # every output element is a dot product over the last input axis
    return _affine(layer, outputs, _size(outputs[0]) * inputs[0][-1])


def _einsum_dense(layer, inputs, outputs):
    spec = layer.equation.replace(" ", "")
    operands, out_spec = spec.split("->")
    kernel_spec = operands.split(",")[1]
    kernel = dict(zip(kernel_spec, _kernel_shape(layer)))
    contracted = math.prod(d for letter, d in kernel.items() if letter not in out_spec)
    return _affine(layer, outputs, _size(outputs[0]) * contracted)


def _conv(layer, inputs, outputs):
    # kernel (k..., C_in / groups, C_out): each output element is a dot product of length k... * C_in / groups
    return _affine(layer, outputs, _size(outputs[0]) * math.prod(_kernel_shape(layer)[:-1]))


def _conv_transpose(layer, inputs, outputs):
    # kernel (k..., C_out, C_in): each input element is multiplied by k... * C_out weights (all of them are
    # counted, also those whose products fall in the padding that "same" crops away)
    return _affine(layer, outputs, _size(inputs[0]) * math.prod(_kernel_shape(layer)[:-1]))


def _depthwise(layer, inputs, outputs):
    # kernel (k..., C_in, multiplier): each output element sees one input channel
    return _affine(layer, outputs, _size(outputs[0]) * math.prod(_kernel_shape(layer)[:-2]))


def _separable(layer, inputs, outputs):
    positions = _size(outputs[0]) // layer.filters  # output positions; the depthwise step has the same grid
    depthwise = positions * math.prod(_kernel_shape(layer, "depthwise_kernel"))
    pointwise = positions * math.prod(_kernel_shape(layer, "pointwise_kernel"))
    return _affine(layer, outputs, depthwise + pointwise)


def _per_element(column, per, note=None):
    def rule(layer, inputs, outputs):
        result = {column: per * _size(outputs[0])}
        if note:
            result["note"] = note
        return result

    return rule


def _free(note):
    def rule(layer, inputs, outputs):
        return {"note": note}

    return rule


def _pooling(layer, inputs, outputs):
    return {"pool_ops": _size(outputs[0]) * math.prod(layer.pool_size)}


def _global_pooling(layer, inputs, outputs):
    return {"pool_ops": _size(inputs[0])}


def _merge(layer, inputs, outputs):
    n = _size(outputs[0])
    extra = n if type(layer).__name__ == "Average" else 0
    return {"elementwise_ops": (len(inputs) - 1) * n + extra}


def _activation_layer(layer, inputs, outputs):
    n = _size(outputs[0])
    return {"act_ops": _activation_ops(layer, n) if hasattr(layer, "activation") else n}


def _rescaling(layer, inputs, outputs):
    offset = np.asarray(getattr(layer, "offset", 0.0), dtype="float64")
    return {"elementwise_ops": _size(outputs[0]) * (2 if np.any(offset != 0) else 1)}


def _upsampling(layer, inputs, outputs):
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise NotCounted(f"{NOT_COUNTED}: {layer.interpolation} interpolation")
    return {"note": "no arithmetic (copies)"}


def _resizing(layer, inputs, outputs):
    if layer.interpolation != "nearest":
        raise NotCounted(f"{NOT_COUNTED}: {layer.interpolation} interpolation")
    return {"note": "no arithmetic (copies)"}


def _elementwise_op(operation, inputs, outputs):
    return {"elementwise_ops": _size(outputs[0]) * max(1, len(inputs) - 1)}


def _install_rules() -> None:
    from keras import layers as L

    register(L.Dense)(_dense)
    register(L.EinsumDense)(_einsum_dense)
    register(L.Conv1D, L.Conv2D, L.Conv3D)(_conv)
    register(L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)(_conv_transpose)
    register(L.DepthwiseConv1D, L.DepthwiseConv2D)(_depthwise)
    register(L.SeparableConv1D, L.SeparableConv2D)(_separable)
    register(L.BatchNormalization)(_per_element("norm_ops", 2))
    register(L.LayerNormalization, L.GroupNormalization)(_per_element("norm_ops", 7))
    register(L.UnitNormalization)(_per_element("norm_ops", 3))
    register(L.Normalization)(_per_element("norm_ops", 2))
    register(L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
             L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)(_pooling)
    register(L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
             L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)(_global_pooling)
    register(L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)(_merge)
    register(L.Concatenate)(_free("no arithmetic (copies)"))
    register(L.Activation, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Softmax)(_activation_layer)
    register(L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout,
             L.GaussianNoise, L.AlphaDropout, L.ActivityRegularization)(_free("identity at inference"))
    register(L.InputLayer)(_free("input"))
    register(L.Flatten, L.Reshape, L.Permute, L.RepeatVector, L.Identity, L.Masking,
             L.Cropping1D, L.Cropping2D, L.Cropping3D, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
             L.CenterCrop)(_free("no arithmetic (reshape, crop or pad)"))
    register(L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)(_upsampling)
    register(L.Resizing)(_resizing)
    register(L.Rescaling)(_rescaling)
    register(L.Embedding)(_free("no arithmetic (table look-up)"))
    for name in dir(L):
        if name.startswith("Random") and isinstance(getattr(L, name), type):
            register(getattr(L, name))(_free("identity at inference (augmentation)"))
    # layers defined inside keras.applications
    register("keras.src.applications.convnext.LayerScale")(_per_element("elementwise_ops", 1))
    register("keras.src.applications.convnext.StochasticDepth")(_free("identity at inference"))
    register("keras.src.applications.inception_resnet_v2.CustomScaleLayer")(_per_element("elementwise_ops", 2))
    # keras.ops arithmetic used directly in functional models (x + 3, x * y, ...)
    for name in ("Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum"):
        register(f"keras.src.ops.numpy.{name}")(_elementwise_op)
    for name in ("Relu", "Relu6", "Sigmoid", "HardSigmoid", "HardSilu", "Silu", "Gelu", "Elu", "Selu",
                 "LeakyRelu", "Softplus", "Softsign", "Softmax", "LogSoftmax", "Mish"):
        register(f"keras.src.ops.nn.{name}")(_per_element("act_ops", 1))
    register("keras.src.ops.numpy.Tanh")(_per_element("act_ops", 1))


_install_rules()


# --------------------------------------------------------------------------- walking the model


@dataclass
class _Call:
    """One call of a layer or operation, with per-example shapes."""

    op: object
    path: str
    inputs: list
    outputs: list
    composite: bool = False


def _shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in t.shape) for t in tensors]


def _tensors(structure) -> list:
    from keras import tree

    return [x for x in tree.flatten(structure) if hasattr(x, "shape") and hasattr(x, "dtype")]


def _sublayers(layer) -> list:
    return list(getattr(layer, "_layers", []) or [])


def _functional_graph(model):
    """Return the Functional object holding ``model``'s graph, or None (subclassed model, unbuilt Sequential)."""
    from keras import Sequential
    from keras.src.models.functional import Functional

    if isinstance(model, Sequential):
        return model._functional
    if isinstance(model, Functional):
        return model
    return None


def _graph_nodes(graph) -> list:
    """The graph's nodes in the order of ``graph.operations`` (the order ``summary()`` prints), calls in order."""
    order = {id(op): i for i, op in enumerate(graph.operations)}
    nodes = [n for depth in graph._nodes_by_depth.values() for n in depth]
    return sorted(nodes, key=lambda n: (order.get(id(n.operation), len(order)),
                                        n.operation._inbound_nodes.index(n)))


def _same_shapes(a, b) -> bool:
    return len(a) == len(b) and all(tuple(x)[1:] == tuple(y)[1:] for x, y in zip(a, b))


def _walk_graph(graph, prefix: str, calls: list) -> None:
    for node in _graph_nodes(graph):
        op = node.operation
        ins, outs = _shapes(node.input_tensors), _shapes(node.outputs)
        if node.is_input:
            if not prefix:  # a nested model's input is the output of the layer that feeds it
                calls.append(_Call(op, op.name, ins, outs))
            continue
        _add_call(op, prefix, node.arguments.args, node.arguments.kwargs, ins, outs, calls)


def _add_call(op, prefix, args, kwargs, ins, outs, calls) -> None:
    path = prefix + op.name
    inner = _functional_graph(op)
    if inner is not None and rule_for(op) is None and _same_shapes(ins, _shapes(inner.inputs)):
        calls.append(_Call(op, path, ins, outs, composite=True))
        _walk_graph(inner, path + "/", calls)
    elif rule_for(op) is None and _children(op):
        calls.append(_Call(op, path, ins, outs, composite=True))
        _trace(op, args, kwargs, path + "/", calls)
    else:
        calls.append(_Call(op, path, ins, outs))


def _trace(layer, args, kwargs, prefix: str, calls: list):
    """Run ``layer`` symbolically on ``args``, record every call of its sublayers, return the output spec."""
    from keras.src.backend import compute_output_spec

    parents = {}

    def collect(container, path):
        for sub in _children(container):
            if id(sub) not in parents:
                parents[id(sub)] = path + sub.name
                collect(sub, path + sub.name + "/")

    collect(layer, prefix)
    if not layer.built or not all(getattr(sub, "built", True) for sub in _iter_unique(layer)):
        compute_output_spec(layer, *args, **kwargs)  # let Keras build lazily first: building re-runs call()
    hooked, records = [], []
    for sub in _iter_unique(layer):
        original = sub.call

        def wrapped(*a, __sub=sub, __original=original, **k):
            slot = len(records)
            records.append(None)  # keep the order of entry: a container comes before what it calls
            out = __original(*a, **k)
            records[slot] = (__sub, _shapes(_tensors((a, k))), _shapes(_tensors(out)))
            return out

        object.__setattr__(sub, "call", wrapped)
        hooked.append(sub)
    try:
        output_spec = compute_output_spec(layer, *args, **kwargs)
    finally:
        for sub in hooked:
            object.__delattr__(sub, "call")
    for sub, ins, outs in filter(None, records):
        ins, outs = [s[1:] for s in ins], [s[1:] for s in outs]
        composite = rule_for(sub) is None and bool(_children(sub))
        calls.append(_Call(sub, parents[id(sub)], [(None, *s) for s in ins], [(None, *s) for s in outs],
                           composite=composite))
    return output_spec


def _children(container) -> list:
    """Sublayers of ``container`` and, for a functional model, the ``keras.ops`` operations of its graph."""
    from keras.layers import InputLayer

    children = _sublayers(container)
    graph = _functional_graph(container)
    if graph is not None:
        children += [op for op in graph.operations if not isinstance(op, InputLayer)]
    unique = {id(c): c for c in children}
    return list(unique.values())


def _iter_unique(layer):
    seen, stack = set(), list(_children(layer))
    while stack:
        sub = stack.pop()
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        yield sub
        stack.extend(_children(sub))


def _collect_calls(model, input_shape) -> list[_Call]:
    from keras import KerasTensor

    graph = _functional_graph(model)
    if graph is not None and input_shape is None:
        calls: list[_Call] = []
        _walk_graph(graph, "", calls)
        return calls
    if input_shape is None:
        shapes = getattr(model, "_build_shapes_dict", None)
        if not shapes:
            raise ValueError(f"model {model.name!r} is not built and has no input: call it on data, "
                             "build it with model.build(input_shape), or pass input_shape=(H, W, C)")
        input_shape = tuple(next(iter(shapes.values())))[1:]
    shapes = input_shape if isinstance(input_shape, list) else [tuple(input_shape)]
    specs = [KerasTensor((None, *s), dtype=_input_dtype(model)) for s in shapes]
    calls = [_Call(None, "input", [], [(None, *s)], composite=False) for s in shapes]
    if graph is None:  # a subclassed model: its own call() may compute too
        calls.append(_Call(model, model.name, [(None, *s) for s in shapes], [], composite=True))
    out = _trace(model, (specs if len(specs) > 1 else specs[0],), {}, "", calls)
    if graph is None:
        calls[len(shapes)].outputs = _shapes(_tensors(out))
    return calls


def _input_dtype(model) -> str:
    graph = _functional_graph(model)
    if graph is not None and graph.inputs:
        return graph.inputs[0].dtype
    return getattr(model, "compute_dtype", "float32")


# --------------------------------------------------------------------------- the result


def _itemsize(dtype) -> int:
    name = str(getattr(dtype, "name", dtype))
    return 2 if name == "bfloat16" else np.dtype(name).itemsize


def _human(n, unit="") -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "n/a"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human(n, unit: str = "") -> str:
    """Format ``n`` with a decimal prefix and two decimals: ``human(15.47e9, "MAC")`` is "15.47 GMAC" (chapter 3)."""
    return _human(n, unit)


@dataclass
class Counts:
    """What :func:`count` found: the per-call ``table`` and totals (see the module docstring for the columns)."""

    name: str
    table: pd.DataFrame
    batch_size: int
    dtype: str | None
    keras_params: int
    keras_trainable: int
    inference_peak_bytes: int
    param_bytes: int

    @property
    def params(self) -> int:
        return int(self.table["params"].sum())

    @property
    def trainable(self) -> int:
        return int(self.table["trainable"].sum())

    @property
    def non_trainable(self) -> int:
        return int(self.table["non_trainable"].sum())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of convolutions and dense layers (the papers' "FLOPs" / "mult-adds")."""
        return int(self.table["macs"].sum())

    @property
    def flops(self) -> int:
        """FLOPs counted as 2 × MACs (one multiply and one add per multiply-accumulate)."""
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        """Sum of every layer's output for ``batch_size`` examples: what training keeps for the backward pass."""
        return int(self.table["activation_bytes"].sum())

    def training_bytes(self, optimizer_slots: int = 2) -> int:
        """Activations + weights + gradients + ``optimizer_slots`` copies of the weights (Adam keeps 2)."""
        return self.activation_bytes + self.param_bytes * (2 + optimizer_slots)

    @property
    def not_counted(self) -> list[str]:
        """Names of the layer calls whose arithmetic is unknown to the counter."""
        return self.table.loc[self.table["note"].str.startswith(NOT_COUNTED), "layer"].tolist()

    @property
    def totals(self) -> pd.Series:
        """All totals in one Series (MACs and FLOPs labelled)."""
        return pd.Series({
            "params": self.params, "trainable": self.trainable, "non_trainable": self.non_trainable,
            **{c: int(self.table[c].sum()) for c in OP_COLUMNS},
            "flops (2 x macs)": self.flops,
            "activation_bytes": self.activation_bytes, "param_bytes": self.param_bytes,
            "inference_peak_bytes": self.inference_peak_bytes,
            "not_counted": len(self.not_counted),
        }, name=self.name)

    def check_keras(self) -> None:
        """Raise AssertionError unless total and trainable parameters equal Keras' ``count_params()``."""
        if (self.params, self.trainable) != (self.keras_params, self.keras_trainable):
            raise AssertionError(
                f"{self.name}: counted {self.params:,} parameters ({self.trainable:,} trainable), Keras has "
                f"{self.keras_params:,} ({self.keras_trainable:,} trainable)")

    def by_type(self) -> pd.DataFrame:
        """Parameters and operations summed by layer type, largest MACs first."""
        cols = ["params", *OP_COLUMNS]
        grouped = self.table.groupby("type")[cols].sum()
        grouped.insert(0, "calls", self.table.groupby("type").size())
        return grouped.sort_values(["macs", "params"], ascending=False)

    def to_string(self, max_rows: int | None = 60) -> str:
        """The readable printout: the table (``max_rows`` rows at most, None for all) and the totals."""
        t = self.table
        if max_rows is None or len(t) <= max_rows:
            shown = t
        else:
            shown = pd.concat([t.head(max_rows // 2), t.tail(max_rows // 2)])
        view = pd.DataFrame({
            "layer": shown["layer"], "type": shown["type"], "output shape": shown["output_shape"],
            "params": shown["params"].map("{:,}".format),
            "MACs": shown["macs"].map(lambda v: "not counted" if pd.isna(v) else f"{int(v):,}"),
            "other ops": shown[list(OP_COLUMNS[1:])].sum(axis=1, min_count=1).map(
                lambda v: "n/a" if pd.isna(v) else f"{int(v):,}"),
            "activation": shown["activation_bytes"].map(lambda v: _human(v, "B")),
            "note": shown["note"],
        })
        lines = [f'Model "{self.name}": {len(t)} layer calls, counts per example'
                 f'{"" if shown is t else f" (showing {len(shown)})"}',
                 view.to_string(index=False)]
        ok = (self.params, self.trainable) == (self.keras_params, self.keras_trainable)
        tot = self.totals
        dtype = self.dtype or "each layer's compute dtype"
        lines += [
            f"Parameters: {self.params:,} (trainable {self.trainable:,}, non-trainable {self.non_trainable:,}); "
            f"Keras count_params(): {self.keras_params:,} {'(equal)' if ok else '(DIFFERENT)'}",
            f"MACs (conv + dense multiply-accumulates): {self.macs:,} = {_human(self.macs)}; "
            f"FLOPs (= 2 x MACs): {_human(self.flops)}",
            "Other operations, not in MACs: " + ", ".join(
                f"{c.replace('_', ' ')} {int(tot[c]):,}" for c in OP_COLUMNS[1:]),
            f"Memory ({dtype}, batch {self.batch_size}): weights {_human(self.param_bytes, 'B')}; "
            f"all layer outputs {_human(self.activation_bytes, 'B')} (kept for training); largest input + output "
            f"of one layer {_human(self.inference_peak_bytes, 'B')} (inference needs at least this)",
        ]
        if self.not_counted:
            lines.append(f"NOT COUNTED ({len(self.not_counted)}): " + ", ".join(self.not_counted[:10])
                         + (" ..." if len(self.not_counted) > 10 else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return (f"Counts({self.name!r}: {self.params:,} params, {_human(self.macs, 'MAC')}, "
                f"{len(self.not_counted)} not counted)")


def count(model, *, batch_size: int = 1, dtype=None, input_shape=None) -> Counts:
    """Count parameters, MACs and activation memory of a built Keras model, layer call by layer call (chapter 3).

    ``batch_size`` and ``dtype`` (default: each layer's compute dtype) only affect the memory columns.
    ``input_shape`` (one example's shape, or a list for several inputs) is needed for a subclassed model that was
    never built, and re-traces any model at another size (e.g. a model built with ``(None, None, 3)`` inputs).
    """
    calls = _collect_calls(model, input_shape)
    trainable_ids = {id(v) for v in model.trainable_weights}
    seen: set[int] = set()
    rows = []
    peak = 0
    for call in calls:
        op = call.op
        own = [] if op is None else list(getattr(op, "_trainable_variables", [])) + list(
            getattr(op, "_non_trainable_variables", []))
        fresh = [v for v in own if id(v) not in seen]
        seen.update(id(v) for v in fresh)
        train = sum(math.prod(v.shape) for v in fresh if id(v) in trainable_ids)
        frozen = sum(math.prod(v.shape) for v in fresh if id(v) not in trainable_ids)
        ins = [s[1:] for s in call.inputs]
        outs = [s[1:] for s in call.outputs]
        row = {"layer": call.path, "type": "InputLayer" if op is None else type(op).__name__,
               "output_shape": outs[0] if len(outs) == 1 else outs, "params": train + frozen,
               "trainable": train, "non_trainable": frozen, "note": ""}
        if call.composite and _functional_graph(op) is not None:
            counted = {c: 0 for c in OP_COLUMNS}
            row["note"] = "container: its layers are listed below it"
            row["activation_bytes"] = 0  # its outputs are its last layers' outputs
        elif call.composite:
            # keras.ops called on concrete tensors inside call() leave no trace: say so, never report 0
            counted = {c: pd.NA for c in OP_COLUMNS}
            row["note"] = f"{NOT_COUNTED}: arithmetic in its own call(); its layers are listed below it"
            row["activation_bytes"] = 0
        else:
            rule = _free("input") if op is None else rule_for(op)
            try:
                if rule is None:
                    raise NotCounted(f"{NOT_COUNTED}: unknown layer type")
                result = dict(rule(op, ins, outs))
                row["note"] = result.pop("note", "")
                counted = {c: int(result.get(c, 0)) for c in OP_COLUMNS}
            except NotCounted as why:
                counted = {c: pd.NA for c in OP_COLUMNS}
                row["note"] = str(why)
            size = _itemsize(dtype or getattr(op, "compute_dtype", None) or "float32")
            out_elems = [math.prod(s) for s in outs if None not in s]
            in_elems = [math.prod(s) for s in ins if None not in s]
            row["activation_bytes"] = batch_size * size * sum(out_elems) if len(out_elems) == len(outs) else pd.NA
            if len(in_elems) == len(ins) and len(out_elems) == len(outs):
                peak = max(peak, batch_size * size * (sum(in_elems) + sum(out_elems)))
        if fresh and len(fresh) < len(own):
            row["note"] = (row["note"] + "; " if row["note"] else "") + "shared weights counted once"
        elif own and not fresh:
            row["note"] = (row["note"] + "; " if row["note"] else "") + "shared: parameters counted at first call"
        row.update(counted)
        rows.append(row)
    leftover = [v for v in model.weights if id(v) not in seen]
    if leftover:
        train = sum(math.prod(v.shape) for v in leftover if id(v) in trainable_ids)
        frozen = sum(math.prod(v.shape) for v in leftover if id(v) not in trainable_ids)
        rows.append({"layer": "(weights of no called layer)", "type": "-", "output_shape": (),
                     "params": train + frozen, "trainable": train, "non_trainable": frozen,
                     **{c: 0 for c in OP_COLUMNS}, "activation_bytes": 0,
                     "note": "variables not used by any layer call: " + ", ".join(v.path for v in leftover[:5])})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("params", "trainable", "non_trainable"):
        table[c] = table[c].astype("int64")
    for c in (*OP_COLUMNS, "activation_bytes"):
        table[c] = table[c].astype("Int64")
    param_bytes = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in model.weights)
    return Counts(
        name=model.name, table=table, batch_size=batch_size, dtype=None if dtype is None else str(dtype),
        keras_params=int(model.count_params()),
        keras_trainable=int(sum(math.prod(v.shape) for v in model.trainable_weights)),
        inference_peak_bytes=int(peak), param_bytes=int(param_bytes))


def check_params(model) -> Counts:
    """Count ``model`` and assert that the counter agrees with Keras' ``count_params()`` (total and trainable)."""
    counts = count(model)
    counts.check_keras()
    return counts


# --------------------------------------------------------------------------- keras.applications


#: keras.applications models that have no fixed input size build for this one when counted.
DEFAULT_INPUT_SHAPE = (224, 224, 3)


def application_names() -> list[str]:
    """Names of every model builder in ``keras.applications`` (40 in Keras 3.15)."""
    import inspect

    import keras

    return sorted(n for n in dir(keras.applications) if inspect.isfunction(getattr(keras.applications, n)))


#: keras.applications builders that Keras itself refuses on a backend (its ValueError), with Keras's reason.
REFUSED = {"torch": {"NASNetMobile": "Keras does not build NASNetMobile on the torch backend (an open Keras bug)"}}


def refused(names: list[str]) -> dict[str, str]:
    """Those of ``names`` that Keras will not build on the current backend, with the reason (chapter 3)."""
    import keras

    return {n: why for n, why in REFUSED.get(keras.backend.backend(), {}).items() if n in names}


def build_application(name: str, **kwargs):
    """Build ``keras.applications.<name>`` with ``weights=None`` (no download) at its default input size."""
    import keras

    builder = getattr(keras.applications, name)
    kwargs.setdefault("weights", None)
    if name.startswith("MobileNetV3"):  # its default input is (None, None, 3)
        kwargs.setdefault("input_shape", DEFAULT_INPUT_SHAPE)
    return builder(**kwargs)
