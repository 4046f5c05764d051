"""Trusted checks of exercise 5's building blocks (tasks 1-3); task 4, best_model, is in ch05_architectures.py.

The hidden test cells save what the student's functions build (``save_model``: a Keras model around one block) or,
for ResNet-34, whose weights are too large to hand in, its architecture (``model.to_json()``). Everything here reads
those files in the grader's process: structure from the loaded configuration, behaviour from running the loaded
model, and references built here from Keras layers to the papers' descriptions (Szegedy et al. 2015, He et al. 2015,
Hu et al. 2018). Plausible wrong answers each fail a check: an Inception module without ReLUs or with average
pooling, a residual unit without its final ReLU or with one convolution in its branch, a ResNet-34 with the wrong
stages, an SE block that does not multiply.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from autograder import trusted

#: Keras classes a saved architecture may use (ResNet-34 is rebuilt from its JSON configuration).
STANDARD = {"Functional", "Model", "Sequential", "InputLayer", "Conv2D", "BatchNormalization", "Activation", "ReLU",
            "MaxPooling2D", "GlobalAveragePooling2D", "Dense", "Add", "Rescaling", "ZeroPadding2D", "Flatten",
            "Dropout", "Multiply", "Reshape", "Concatenate"}
INCEPTION_CASES = {"inception_a": ((14, 14, 480), (192, 96, 208, 16, 48, 64)),
                   "inception_b": ((9, 11, 5), (3, 4, 7, 2, 6, 1))}


def _layers(model):
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _relu_after(model) -> dict:
    """For each Conv2D of a functional model: is its output passed through a ReLU (its own or the next layer's)?"""
    consumers = {}
    for layer in model.layers:
        for producer in trusted.inbound(layer):
            consumers.setdefault(id(producer), []).append(layer)
    out = {}
    for layer in _layers(model):
        if type(layer).__name__ != "Conv2D":
            continue
        own = getattr(layer.activation, "__name__", "") == "relu"
        nxt = consumers.get(id(layer), [])
        out[layer.name] = own or (len(nxt) > 0 and all(
            type(n).__name__ == "ReLU" or (type(n).__name__ == "Activation"
                                          and getattr(n.activation, "__name__", "") == "relu") for n in nxt))
    return out


def _zero(model) -> None:
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32")


def _run(model, x):
    return np.asarray(model(x, training=False))


def inception_params(c_in, f1, f3r, f3, f5r, f5, fp) -> int:
    """Parameters of an Inception module with biases on every convolution (Szegedy et al. 2015)."""
    return (c_in * f1 + f1) + (c_in * f3r + f3r) + (9 * f3r * f3 + f3) + (c_in * f5r + f5r) + (25 * f5r * f5 + f5) \
        + (c_in * fp + fp)


def check_inception(art) -> None:
    """Shape, parameters, six ReLU convolutions of sizes 1,1,1,1,3,5, one 3x3 stride-1 max pooling, no averaging."""
    for name, (shape, widths) in INCEPTION_CASES.items():
        model = art.model(name)
        what = f"inception_module on {shape} with widths {widths}"
        f1, _, f3, _, f5, fp = widths
        want = (shape[0], shape[1], f1 + f3 + f5 + fp)
        if tuple(model.output_shape[1:]) != want:
            raise AssertionError(f"{what}: output shape {tuple(model.output_shape[1:])}, expected {want}")
        if model.count_params() != inception_params(shape[-1], *widths):
            raise AssertionError(f"{what}: {model.count_params():,} parameters, expected "
                                 f"{inception_params(shape[-1], *widths):,} — four branches: 1x1; 1x1 then 3x3; "
                                 "1x1 then 5x5; 3x3 max pool then 1x1, every convolution with a bias")
        types = Counter(type(layer).__name__ for layer in _layers(model))
        if types.get("AveragePooling2D"):
            raise AssertionError(f"{what}: the pooling branch uses average pooling; GoogLeNet's uses "
                                 "MaxPooling2D(3, strides=1, padding='same')")
        pools = [layer for layer in _layers(model) if type(layer).__name__ == "MaxPooling2D"]
        if len(pools) != 1 or tuple(pools[0].pool_size) != (3, 3) or tuple(pools[0].strides) != (1, 1):
            raise AssertionError(f"{what}: the pooling branch needs one MaxPooling2D(3, strides=1, padding='same')")
        sizes = sorted(layer.kernel_size[0] for layer in _layers(model) if type(layer).__name__ == "Conv2D")
        if sizes != [1, 1, 1, 1, 3, 5]:
            raise AssertionError(f"{what}: convolutions of sizes {sizes}, expected 1, 1, 1, 1, 3 and 5")
        missing = [n for n, ok in _relu_after(model).items() if not ok]
        if missing:
            raise AssertionError(f"{what}: {len(missing)} of its 6 convolutions have no ReLU (e.g. {missing[0]}): "
                                 "give every convolution activation='relu'")
        if _run(model, _x(shape)).min() < 0:
            raise AssertionError(f"{what}: the module outputs negative values; every branch ends in a ReLU")


def residual_reference(shape, filters, strides=1):
    """He et al.'s basic unit built here from Keras layers (the reference for parameter counts)."""
    import keras
    from keras import layers

    x = keras.Input(shape)
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.Activation("relu")(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    s = x
    if strides != 1 or shape[-1] != filters:
        s = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x))
    return keras.Model(x, layers.Activation("relu")(layers.Add()([y, s])))


def _expect_unit(model, shape, filters, strides, what, extra_params=0) -> None:
    h, w = -(-shape[0] // strides), -(-shape[1] // strides)
    if tuple(model.output_shape[1:]) != (h, w, filters):
        raise AssertionError(f"{what}: output shape {tuple(model.output_shape[1:])}, expected {(h, w, filters)}")
    convs = [layer for layer in _layers(model) if type(layer).__name__ == "Conv2D"]
    threes = [c for c in convs if tuple(c.kernel_size) == (3, 3)]
    if len(threes) != 2:
        raise AssertionError(f"{what}: its branch has {len(threes)} 3x3 convolution(s); a basic unit has two, each "
                             "followed by batch normalisation")
    ref = residual_reference(shape, filters, strides).count_params() + extra_params
    if model.count_params() != ref:
        raise AssertionError(f"{what}: {model.count_params():,} parameters, expected {ref:,} — two 3x3 convolutions "
                             "without bias, each with batch normalisation, and a 1x1 projection (with its batch "
                             "normalisation) only where the shape changes")
    x = _x(shape, seed=3)
    if _run(model, x).min() < 0:
        raise AssertionError(f"{what}: the unit outputs negative values: apply the last ReLU after the addition")


def check_residual(art) -> None:
    """An identity unit and a projection unit: shapes, two 3x3 convolutions, parameters, final ReLU, the skip."""
    identity = art.model("residual_identity")
    _expect_unit(identity, (6, 5, 32), 32, 1, "residual_unit(x, 32) on a 6x5x32 input")
    x = _x((6, 5, 32), seed=7)
    if np.allclose(_run(identity, x), np.maximum(x, 0), atol=1e-5):
        raise AssertionError("residual_unit returns relu(x) with random weights: the residual branch does nothing")
    _zero(identity)
    if not np.allclose(_run(identity, x), np.maximum(x, 0), atol=1e-5):
        raise AssertionError("with all its weights set to zero your residual unit should return relu(x) (the branch "
                             "gives 0, the skip connection gives x): add the unit's input to the branch's output "
                             "with layers.Add() before the last ReLU")
    _expect_unit(art.model("residual_projection"), (8, 8, 16), 32, 2, "residual_unit(x, 32, strides=2) on 8x8x16")


def _vet_config(config) -> None:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict):
                found.append(str(node["class_name"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(config)
    odd = sorted(set(found) - STANDARD - {"VarianceScaling", "GlorotUniform", "Zeros", "Ones", "HeNormal",
                                          "HeUniform", "GlorotNormal", "RandomNormal", "RandomUniform",
                                          "TruncatedNormal", "Constant", "L2", "L1", "DTypePolicy", "KerasTensor",
                                          "__tensor__", "__keras_tensor__"})
    if odd:
        raise AssertionError(f"your ResNet-34 uses {', '.join(odd)}: build it from standard Keras layers only")


def check_resnet34(art) -> None:
    """ResNet-34 rebuilt from its saved configuration: 21.8 M parameters, 36 convolutions, 16 additions, the stem."""
    import keras

    raw = art.outputs("resnet34").get("json")
    if raw is None or raw.dtype != np.uint8:
        raise AssertionError("the grader found no ResNet-34 architecture: run every cell from the top")
    try:
        config = json.loads(raw.tobytes().decode("utf-8"))
        _vet_config(config)
        model = keras.models.model_from_json(json.dumps(config))
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"your ResNet-34's configuration could not be rebuilt ({type(exc).__name__}): build it "
                             "with keras.Model(inputs, outputs) from standard layers") from None
    if tuple(model.input_shape[1:]) != (224, 224, 3) or tuple(model.output_shape[1:]) != (1000,):
        raise AssertionError(f"your ResNet-34 maps {tuple(model.input_shape[1:])} to {tuple(model.output_shape[1:])}"
                             "; resnet34() should map (224, 224, 3) to (1000,)")
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    if round(trainable / 1e6, 1) != 21.8:
        raise AssertionError(f"your ResNet-34 has {trainable:,} trainable parameters ({trainable / 1e6:.2f} M); He et "
                             "al. report 21.8 M — check the stages (3, 4, 6, 3 units of 64, 128, 256, 512 filters), "
                             "the 7x7 stem and the 1x1 projection shortcuts where the shape changes")
    types = Counter(type(layer).__name__ for layer in model.layers)
    if types["Conv2D"] != 36 or types["Add"] != 16:
        raise AssertionError(f"your ResNet-34 has {types['Conv2D']} convolutions and {types['Add']} additions; it "
                             "needs 36 (the stem, 2 per unit, 3 projections) and 16 (one per residual unit)")
    stem = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    if tuple(stem.kernel_size) != (7, 7) or tuple(stem.strides) != (2, 2):
        raise AssertionError("the first convolution of ResNet-34 is 7x7 with stride 2")
    head = model.layers[-1]
    if type(head).__name__ != "Dense" or getattr(head.activation, "__name__", "") != "softmax":
        raise AssertionError("ResNet-34 ends with a softmax Dense(num_classes) after global average pooling")


def se_params(channels: int, ratio: int) -> int:
    """Parameters of a squeeze-and-excitation block with biases on both Dense layers (Hu et al. 2018)."""
    squeezed = channels // ratio
    return channels * squeezed + squeezed + squeezed * channels + channels


def check_se(art) -> None:
    """SE block: shape, parameters, 0.5 x at zero weights; SE-ResNet unit: a residual unit plus one SE block."""
    block = art.model("se_block")
    shape, ratio = (5, 6, 96), 8
    if tuple(block.output_shape[1:]) != shape:
        raise AssertionError(f"se_block(x, ratio={ratio}) changes the shape {shape} to {tuple(block.output_shape[1:])}")
    if block.count_params() != se_params(96, ratio):
        raise AssertionError(f"se_block(x, ratio={ratio}) on 96 channels has {block.count_params():,} parameters, "
                             f"expected {se_params(96, ratio):,} — global average pooling, Dense(channels // ratio, "
                             "relu), Dense(channels, sigmoid)")
    x = _x(shape, seed=3)
    _zero(block)
    if not np.allclose(_run(block, x), 0.5 * x, atol=1e-5):
        raise AssertionError("with zero weights every channel weight is sigmoid(0) = 0.5, so se_block should return "
                             "0.5 * x: multiply the input by the excitation (layers.Multiply)")
    unit = art.model("se_residual_unit")
    _expect_unit(unit, (8, 8, 32), 32, 1, "se_residual_unit(x, 32) on 8x8x32", extra_params=se_params(32, 16))
    x = _x((8, 8, 32), seed=5)
    _zero(unit)
    if not np.allclose(_run(unit, x), np.maximum(x, 0), atol=1e-5):
        raise AssertionError("with zero weights se_residual_unit should return relu(x): keep the skip connection")


CHECKS = {"test_inception": check_inception, "test_residual_unit": check_residual, "test_resnet34": check_resnet34,
          "test_se": check_se}
