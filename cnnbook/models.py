"""The classic CNN architectures built from Keras layers, with readable layer names (chapter 5).

Every builder takes ``input_shape`` and ``num_classes`` and returns a functional ``keras.Model``. Where a builder
follows ``keras.applications`` (VGG-16/19, ResNet-50, DenseNet-121, MobileNet, Xception) its parameter count equals
the Keras model built with ``weights=None``; the others match their paper (tests/test_models.py checks both).
Building blocks (``inception_module``, ``residual_unit``, ``dense_block``, ``separable_block``, ``squeeze_excite``...)
take a tensor and return a tensor, so they compose into new models.
"""

from __future__ import annotations

import functools
from typing import Callable

import keras
from keras import layers

#: BatchNormalization epsilon used by keras.applications' ResNet, DenseNet and Xception.
KERAS_BN_EPSILON = 1.001e-5


def _input(input_shape, name: str = "image"):
    """Return a Keras input tensor of one example's ``input_shape`` (chapter 5)."""
    return keras.Input(shape=tuple(input_shape), name=name)


def _classifier(x, num_classes: int, name: str = "predictions"):
    """Return the softmax Dense output layer applied to ``x`` (chapter 5)."""
    return layers.Dense(num_classes, activation="softmax", name=name)(x)


# ----------------------------------------------------------------------------------------------------- LeNet-5


def lenet5(input_shape=(32, 32, 1), num_classes: int = 10, *, modern: bool = False) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): tanh + average pooling, or ReLU + max pooling when ``modern`` (chapter 5).

    C3 connects to all six S2 maps (the paper's sparse connection table is left out) and the output is a softmax
    Dense layer instead of the paper's RBF units: 61,706 parameters at 32x32x1 with 10 classes.
    """
    act = "relu" if modern else "tanh"
    pool = layers.MaxPooling2D if modern else layers.AveragePooling2D
    inputs = _input(input_shape)
    x = layers.Conv2D(6, 5, activation=act, name="C1")(inputs)
    x = pool(2, name="S2")(x)
    x = layers.Conv2D(16, 5, activation=act, name="C3")(x)
    x = pool(2, name="S4")(x)
    x = layers.Conv2D(120, 5, activation=act, name="C5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation=act, name="F6")(x)
    outputs = _classifier(x, num_classes, name="output")
    return keras.Model(inputs, outputs, name="lenet5_modern" if modern else "lenet5")


# ----------------------------------------------------------------------------------------------------- AlexNet


class LocalResponseNormalization(layers.Layer):
    """AlexNet's local response normalisation across channels, no weights (chapter 5)."""

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, x):
        # b = a / (bias + alpha/n * sum of a^2 over the n = 2r+1 nearest channels)^beta, in keras.ops (any backend)
        r, channels = self.depth_radius, x.shape[-1]
        squares = keras.ops.pad(keras.ops.square(x), [[0, 0]] * (len(x.shape) - 1) + [[r, r]])
        window = sum(squares[..., i:i + channels] for i in range(2 * r + 1))
        return x / keras.ops.power(self.bias + self.alpha / (2 * r + 1) * window, self.beta)

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha,
                "beta": self.beta}


def _register_lrn_rule() -> None:
    """Teach the counting module that LRN does about 4 operations per element (chapter 5)."""
    try:
        from cnnbook import counting
    except ImportError:  # pragma: no cover - counting is optional for building models
        return
    if hasattr(counting, "register"):
        counting.register(LocalResponseNormalization)(
            lambda layer, inputs, outputs: {"norm_ops": 4 * _prod(outputs[0])})


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def alexnet(input_shape=(227, 227, 3), num_classes: int = 1000, *, lrn: bool = True,
            dropout: float = 0.5, groups: int = 1) -> keras.Model:
    """AlexNet (Krizhevsky et al. 2012): ungrouped, 62,378,344 parameters at 227x227x3 (chapter 5).

    ``groups=2`` splits conv2, conv4 and conv5 into two halves as the paper's two GPUs did (conv3 and the dense
    layers see both halves): 60,965,224 parameters.
    """
    inputs = _input(input_shape)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    if lrn:
        x = LocalResponseNormalization(name="lrn1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", groups=groups, name="conv2")(x)
    if lrn:
        x = LocalResponseNormalization(name="lrn2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", groups=groups, name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", groups=groups, name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = _classifier(x, num_classes, name="fc8")
    return keras.Model(inputs, outputs, name="alexnet" if groups == 1 else f"alexnet_{groups}_groups")


# --------------------------------------------------------------------------------------------------------- VGG

VGG_BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg(depth: int = 16, input_shape=(224, 224, 3), num_classes: int = 1000, *, width: int = 64,
        dense_units: int = 4096) -> keras.Model:
    """VGG-16 or VGG-19 (Simonyan & Zisserman 2014): stacks of 3x3 convs, as ``keras.applications`` (chapter 5)."""
    if depth not in VGG_BLOCKS:
        raise ValueError(f"depth must be one of {sorted(VGG_BLOCKS)}, got {depth}")
    inputs = _input(input_shape)
    x = inputs
    for b, convs in enumerate(VGG_BLOCKS[depth], start=1):
        filters = width * 2 ** min(b - 1, 3)
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc2")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name=f"vgg{depth}")


vgg16 = functools.partial(vgg, 16)
vgg19 = functools.partial(vgg, 19)


# ------------------------------------------------------------------------------------------- Network in Network


def nin_block(x, filters: int, kernel_size: int, strides: int = 1, padding: str = "valid", name: str = "nin"):
    """NiN block (Lin et al. 2013): a conv, then two 1x1 convs, i.e. a small MLP at every pixel (chapter 5)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu",
                      name=f"{name}_conv")(x)
    x = layers.Conv2D(filters, 1, activation="relu", name=f"{name}_mlp1")(x)
    return layers.Conv2D(filters, 1, activation="relu", name=f"{name}_mlp2")(x)


# --------------------------------------------------------------------------------------------- Inception/GoogLeNet

#: GoogLeNet's modules (Szegedy et al. 2014, table 1): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def inception_module(x, f1: int, f3_reduce: int, f3: int, f5_reduce: int, f5: int, pool_proj: int,
                     name: str = "inception"):
    """Inception module: 1x1, 1x1→3x3, 1x1→5x5 and 3x3 max-pool→1x1 branches, concatenated (chapter 5)."""
    def conv(t, filters, size, suffix):
        return layers.Conv2D(filters, size, padding="same", activation="relu", name=f"{name}_{suffix}")(t)

    b1 = conv(x, f1, 1, "1x1")
    b3 = conv(conv(x, f3_reduce, 1, "3x3_reduce"), f3, 3, "3x3")
    b5 = conv(conv(x, f5_reduce, 1, "5x5_reduce"), f5, 5, "5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv(bp, pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def googlenet(input_shape=(224, 224, 3), num_classes: int = 1000, *, dropout: float = 0.4) -> keras.Model:
    """GoogLeNet / Inception-v1 without the auxiliary classifiers and LRN (chapter 5)."""
    inputs = _input(input_shape)
    x = layers.Conv2D(64, 7, strides=2, padding="same", activation="relu", name="conv1_7x7")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = layers.Conv2D(64, 1, activation="relu", name="conv2_3x3_reduce")(x)
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv2_3x3")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for key, widths in GOOGLENET_MODULES.items():
        if key in ("4a", "5a"):
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{int(key[0]) - 1}")(x)
        x = inception_module(x, *widths, name=f"inception_{key}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="googlenet")


#: The "params" column of Szegedy et al. (2014), table 1, in thousands (the paper's own figures, with its errors).
GOOGLENET_PAPER_PARAMS_K = {"conv1": 2.7, "conv2": 112, "3a": 159, "3b": 380, "4a": 364, "4b": 437, "4c": 463,
                            "4d": 580, "4e": 840, "5a": 1072, "5b": 1388, "linear": 1000}


def googlenet_rows(model=None):
    """Weights and biases of :func:`googlenet` per row of the paper's table 1, beside the paper's figure (chapter 5).

    Returns a DataFrame indexed by row ("conv1", "conv2", "3a" ... "5b", "linear") with columns ``weights``
    (kernels only), ``biases``, ``params`` (their sum) and ``paper`` (:data:`GOOGLENET_PAPER_PARAMS_K` x 1000).
    """
    import pandas as pd

    model = model or googlenet()
    rows = {key: {"weights": 0, "biases": 0} for key in GOOGLENET_PAPER_PARAMS_K}
    for layer in model.layers:
        if not layer.weights:
            continue
        n = layer.name
        key = ("conv1" if n.startswith("conv1") else "conv2" if n.startswith("conv2") else
               "linear" if n == "predictions" else n.split("_")[1])
        rows[key]["weights"] += _prod(layer.kernel.shape)
        rows[key]["biases"] += _prod(layer.bias.shape) if getattr(layer, "use_bias", False) else 0
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["params"] = frame["weights"] + frame["biases"]
    frame["paper"] = [round(k * 1000) for k in GOOGLENET_PAPER_PARAMS_K.values()]
    return frame


# ----------------------------------------------------------------------------------------------------- ResNet


def squeeze_excite(x, ratio: int = 16, name: str = "se"):
    """Squeeze-and-excitation (Hu et al. 2018): rescale channels by sigmoid(Dense(relu(Dense(GAP(x))))) (chapter 5)."""
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(max(1, channels // ratio), activation="relu", name=f"{name}_reduce")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def residual_unit(x, filters: int, strides: int = 1, *, name: str = "res", use_bias: bool = False,
                  epsilon: float = 1e-3, recalibrate: Callable | None = None):
    """Basic residual unit of ResNet-18/34: relu(F(x) + shortcut(x)), F = two 3x3 conv+BN (chapter 5)."""
    bn = functools.partial(layers.BatchNormalization, epsilon=epsilon)
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(bn(name=f"{name}_bn1")(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name=f"{name}_conv2")(y)
    y = bn(name=f"{name}_bn2")(y)
    if recalibrate is not None:                   # e.g. an SE block on the branch (with_se)
        y = recalibrate(y, name=f"{name}_se")
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:    # projection shortcut: a strided 1x1 conv + BN
        shortcut = bn(name=f"{name}_proj_bn")(
            layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias, name=f"{name}_proj")(x))
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def preact_residual_unit(x, filters: int, strides: int = 1, *, name: str = "preact"):
    """Pre-activation residual unit (He et al. 2016): BN-ReLU-conv twice, the sum not activated (chapter 5)."""
    y = layers.Activation("relu", name=f"{name}_relu1")(layers.BatchNormalization(name=f"{name}_bn1")(x))
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:    # the projection reads the pre-activated input
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(y)
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(layers.BatchNormalization(name=f"{name}_bn2")(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def bottleneck_unit(x, filters: int, strides: int = 1, *, name: str = "res", use_bias: bool = True,
                    epsilon: float = KERAS_BN_EPSILON, recalibrate: Callable | None = None):
    """Bottleneck residual unit of ResNet-50: 1x1 reduce, 3x3, 1x1 expand to 4x ``filters``, as Keras (chapter 5)."""
    bn = functools.partial(layers.BatchNormalization, epsilon=epsilon)
    shortcut = x
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, use_bias=use_bias, name=f"{name}_proj")(x)
        shortcut = bn(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias, name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(bn(name=f"{name}_bn1")(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name=f"{name}_conv2")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(bn(name=f"{name}_bn2")(y))
    y = layers.Conv2D(4 * filters, 1, use_bias=use_bias, name=f"{name}_conv3")(y)
    y = bn(name=f"{name}_bn3")(y)
    if recalibrate is not None:
        y = recalibrate(y, name=f"{name}_se")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnext_unit(x, filters: int, strides: int = 1, *, cardinality: int = 32, name: str = "resnext"):
    """ResNeXt unit (Xie et al. 2017): 1x1 reduce, 3x3 conv in ``cardinality`` groups, 1x1 expand, plus x (ch. 5).

    ``filters`` is the width of the grouped 3x3 (128 in conv2 of ResNeXt-50 32x4d); the output has 2x ``filters``.
    """
    bn = functools.partial(layers.BatchNormalization, epsilon=KERAS_BN_EPSILON)
    shortcut = x
    if strides != 1 or x.shape[-1] != 2 * filters:
        shortcut = bn(name=f"{name}_proj_bn")(
            layers.Conv2D(2 * filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x))
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(bn(name=f"{name}_bn1")(y))
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", groups=cardinality, use_bias=False,
                      name=f"{name}_conv2")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(bn(name=f"{name}_bn2")(y))
    y = bn(name=f"{name}_bn3")(layers.Conv2D(2 * filters, 1, use_bias=False, name=f"{name}_conv3")(y))
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def factorised_conv(x, filters: int, size: int, *, name: str = "factorised"):
    """Inception-v3's factorisation of a ``size``x``size`` conv into 1x``size`` then ``size``x1 (chapter 5)."""
    x = layers.Conv2D(filters, (1, size), padding="same", activation="relu", name=f"{name}_1x{size}")(x)
    return layers.Conv2D(filters, (size, 1), padding="same", activation="relu", name=f"{name}_{size}x1")(x)


def with_se(unit: Callable, ratio: int = 16) -> Callable:
    """Wrap a residual unit so that an SE block recalibrates its branch before the add (chapter 5)."""
    return functools.partial(unit, recalibrate=functools.partial(squeeze_excite, ratio=ratio))


#: Residual units per stage (He et al. 2015, table 1).
RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}


def resnet(depth: int = 34, input_shape=(224, 224, 3), num_classes: int = 1000, *, width: int = 64,
           se_ratio: int | None = None) -> keras.Model:
    """ResNet-18/34 (paper layout, convs without bias) or ResNet-50 (as ``keras.applications``) (chapter 5).

    ``width`` is the first stage's filters (doubled at every stage); ``se_ratio`` makes it an SE-ResNet.
    """
    if depth not in RESNET_STAGES:
        raise ValueError(f"depth must be one of {sorted(RESNET_STAGES)}, got {depth}")
    keras_like = depth == 50
    unit = bottleneck_unit if keras_like else residual_unit
    if se_ratio:
        unit = with_se(unit, se_ratio)
    eps = KERAS_BN_EPSILON if keras_like else 1e-3
    inputs = _input(input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(width, 7, strides=2, use_bias=keras_like, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=eps, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, units in enumerate(RESNET_STAGES[depth]):
        for u in range(units):
            strides = 2 if stage > 0 and u == 0 else 1
            x = unit(x, width * 2 ** stage, strides, name=f"conv{stage + 2}_block{u + 1}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    name = f"{'se_' if se_ratio else ''}resnet{depth}"
    return keras.Model(inputs, _classifier(x, num_classes), name=name)


resnet18 = functools.partial(resnet, 18)
resnet34 = functools.partial(resnet, 34)
resnet50 = functools.partial(resnet, 50)


# --------------------------------------------------------------------------------------------------- DenseNet


def dense_block(x, units: int, growth_rate: int = 32, name: str = "dense"):
    """Dense block: ``units`` times BN-ReLU-1x1(4k)-BN-ReLU-3x3(k), each output concatenated to x (chapter 5)."""
    bn = functools.partial(layers.BatchNormalization, epsilon=KERAS_BN_EPSILON)
    for i in range(1, units + 1):
        p = f"{name}_unit{i}"
        y = layers.Activation("relu", name=f"{p}_relu1")(bn(name=f"{p}_bn1")(x))
        y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{p}_conv1")(y)
        y = layers.Activation("relu", name=f"{p}_relu2")(bn(name=f"{p}_bn2")(y))
        y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{p}_conv2")(y)
        x = layers.Concatenate(name=f"{p}_concat")([x, y])
    return x


def transition_layer(x, reduction: float = 0.5, name: str = "transition"):
    """DenseNet transition: BN-ReLU-1x1 conv keeping ``reduction`` of the channels, then 2x2 average pool (ch. 5)."""
    x = layers.BatchNormalization(epsilon=KERAS_BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(int(x.shape[-1] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def densenet121(input_shape=(224, 224, 3), num_classes: int = 1000, *, growth_rate: int = 32,
                blocks=(6, 12, 24, 16)) -> keras.Model:
    """DenseNet-121 (Huang et al. 2017), as ``keras.applications.DenseNet121`` (chapter 5)."""
    inputs = _input(input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(2 * growth_rate, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=KERAS_BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for i, units in enumerate(blocks, start=1):
        x = dense_block(x, units, growth_rate, name=f"dense{i}")
        if i < len(blocks):
            x = transition_layer(x, name=f"transition{i}")
    x = layers.BatchNormalization(epsilon=KERAS_BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="densenet121")


# ----------------------------------------------------------------------------------- MobileNet and Xception


def separable_block(x, filters: int, strides: int = 1, name: str = "dw"):
    """MobileNet's depthwise-separable block: 3x3 depthwise-BN-ReLU6, then 1x1 pointwise-BN-ReLU6 (chapter 5)."""
    if strides != 1:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same" if strides == 1 else "valid", use_bias=False,
                               name=f"{name}_depthwise")(x)
    x = layers.BatchNormalization(name=f"{name}_depthwise_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pointwise")(x)
    x = layers.BatchNormalization(name=f"{name}_pointwise_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_pointwise_relu")(x)


#: MobileNet's separable blocks (Howard et al. 2017, table 1): (pointwise filters, stride).
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet(input_shape=(224, 224, 3), num_classes: int = 1000, *, width: float = 1.0,
              dropout: float = 1e-3) -> keras.Model:
    """MobileNet v1 with width multiplier ``width`` (alpha), as ``keras.applications.MobileNet`` (chapter 5)."""
    inputs = _input(input_shape)
    x = layers.Conv2D(int(32 * width), 3, strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for i, (filters, strides) in enumerate(MOBILENET_BLOCKS, start=1):
        x = separable_block(x, int(filters * width), strides, name=f"block{i}")
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv2D(num_classes, 1, padding="same", name="conv_preds")(x)
    x = layers.Reshape((num_classes,), name="reshape")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mobilenet")


def _sep_bn(x, filters, name, relu_first=True):
    """ReLU (optional), 3x3 SeparableConv2D without bias, BN: Xception's repeated unit."""
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    return layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)


def _xception_down(x, filters: tuple[int, int], name: str, relu_first: bool = True):
    """Two separable convs and a strided max pool, added to a strided 1x1 projection of the input."""
    shortcut = layers.Conv2D(filters[1], 1, strides=2, padding="same", use_bias=False, name=f"{name}_proj")(x)
    shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    x = _sep_bn(x, filters[0], f"{name}_sep1", relu_first)
    x = _sep_bn(x, filters[1], f"{name}_sep2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def xception_entry_flow(x):
    """Xception's entry flow: two convs, then three strided separable blocks to 728 channels (chapter 5)."""
    for i, (filters, strides) in enumerate(((32, 2), (64, 1)), start=1):
        x = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"entry_conv{i}")(x)
        x = layers.BatchNormalization(name=f"entry_conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"entry_conv{i}_relu")(x)
    for i, filters in enumerate((128, 256, 728), start=1):
        x = _xception_down(x, (filters, filters), f"entry_block{i}", relu_first=i > 1)
    return x


def xception_middle_flow(x, repeats: int = 8):
    """Xception's middle flow: ``repeats`` residual blocks of three ReLU-SeparableConv-BN at 728 (chapter 5)."""
    for r in range(1, repeats + 1):
        y = x
        for k in range(1, 4):
            y = _sep_bn(y, x.shape[-1], f"middle{r}_sep{k}")
        x = layers.Add(name=f"middle{r}_add")([y, x])
    return x


def xception_exit_flow(x):
    """Xception's exit flow: a strided block to 1024, then separable convs to 1536 and 2048 (chapter 5)."""
    x = _xception_down(x, (728, 1024), "exit_block1")
    for i, filters in enumerate((1536, 2048), start=1):
        x = _sep_bn(x, filters, f"exit_sep{i}", relu_first=False)
        x = layers.Activation("relu", name=f"exit_sep{i}_relu")(x)
    return x


def xception(input_shape=(299, 299, 3), num_classes: int = 1000, *, middle_repeats: int = 8) -> keras.Model:
    """Xception (Chollet 2017), as ``keras.applications.Xception`` (chapter 5)."""
    inputs = _input(input_shape)
    x = xception_exit_flow(xception_middle_flow(xception_entry_flow(inputs), middle_repeats))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="xception")


# --------------------------------------------------------------------------------------------- small CNNs


def small_cnn(input_shape=(28, 28, 1), num_classes: int = 10, *, filters=(32, 64), convs_per_block: int = 1,
              batch_norm: bool = False, dropout: float = 0.0, dense_units: int = 0,
              global_pool: bool = True) -> keras.Model:
    """A small configurable CNN for the exercises: conv blocks with max pooling, then a small head (chapter 5)."""
    inputs = _input(input_shape)
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for b, f in enumerate(filters, start=1):
        for c in range(1, convs_per_block + 1):
            x = layers.Conv2D(f, 3, padding="same", use_bias=not batch_norm, name=f"block{b}_conv{c}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x) if global_pool else layers.Flatten(name="flatten")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="small_cnn")


def deep_cnn(depth: int, input_shape=(28, 28, 1), num_classes: int = 10, *, width: int = 16,
             residual: bool = False, batch_norm: bool = False, stem_pool: int | tuple[int, ...] = 2,
             head: str = "gap", name: str | None = None) -> keras.Model:
    """A CNN of ``depth`` 3x3 conv layers at constant width, plain or residual (+BN): the depth experiment (ch. 5).

    A stem conv and a ``stem_pool`` x ``stem_pool`` max pool (a tuple of sizes: one conv and one pool for each), then
    the remaining conv layers (in pairs around a skip connection when ``residual``; an odd leftover layer is plain),
    then ``head``: global average pooling (``"gap"``) or the whole map flattened (``"flatten"``), and a softmax layer.
    """
    pools = (stem_pool,) if isinstance(stem_pool, int) else tuple(stem_pool)
    if head not in ("gap", "flatten"):
        raise ValueError(f"head must be 'gap' or 'flatten', got {head!r}")
    if depth < len(pools):
        raise ValueError(f"depth must be at least the {len(pools)} stem conv(s), got {depth}")
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    inputs = _input(input_shape)
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)

    def conv(t, name, activate=True):
        t = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm, name=name)(t)
        if batch_norm:
            t = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(t)  # short runs: faster moving stats
        return layers.Activation("relu", name=f"{name}_relu")(t) if activate else t

    for k, size in enumerate(pools):
        suffix = "" if len(pools) == 1 else str(k + 1)
        x = layers.MaxPooling2D(size, name=f"stem_pool{suffix}")(conv(x, f"stem{suffix}"))
    remaining = depth - len(pools)
    i = 0
    while remaining > 0:
        i += 1
        if residual and remaining >= 2:
            y = conv(conv(x, f"unit{i}_conv1"), f"unit{i}_conv2", activate=False)
            x = layers.Activation("relu", name=f"unit{i}_out")(layers.Add(name=f"unit{i}_add")([x, y]))
            remaining -= 2
        else:
            x = conv(x, f"conv{i}")
            remaining -= 1
    x = layers.GlobalAveragePooling2D(name="gap")(x) if head == "gap" else layers.Flatten(name="flatten")(x)
    kind = ("residual" if residual else "plain") + ("_bn" if batch_norm else "")
    return keras.Model(inputs, _classifier(x, num_classes), name=name or f"{kind}_{depth}")


def side_by_side(nets, name: str = "side_by_side") -> keras.Model:
    """One model that runs independent networks on the same input, so one ``fit`` trains them all (chapter 5).

    The networks share no weights, so the gradient of the summed loss with respect to each network's weights is
    the gradient of its own loss: training the stack is training each network alone on the same batches.
    """
    names = [net.name for net in nets]
    if len(set(names)) != len(names):
        raise ValueError(f"the networks need distinct names (pass name=... to their builders), got {names}")
    inputs = _input(nets[0].input_shape[1:])
    return keras.Model(inputs, {net.name: net(inputs) for net in nets}, name=name)


_GRAPHVIZ_HINT_SHOWN = False


def diagram(model, filename: str | None = None, **options):
    """Draw ``model`` with ``keras.utils.plot_model``, or print a text summary and say why when graphviz is absent (ch. 5)."""
    import importlib.util
    import shutil

    missing = [name for name, ok in (("pydot", importlib.util.find_spec("pydot") is not None),
                                     ("graphviz's dot program", shutil.which("dot") is not None)) if not ok]
    if missing:
        global _GRAPHVIZ_HINT_SHOWN
        if not _GRAPHVIZ_HINT_SHOWN:   # said once a session, not before every diagram
            print(f"[no diagram: {' and '.join(missing)} not installed here, so the networks of this page are shown as "
                  "text summaries (to draw them: `make graphviz-deps`, or pip install pydot and apt-get install "
                  f"graphviz); the text summary of {model.name!r}]")
            _GRAPHVIZ_HINT_SHOWN = True
        else:
            print(f"[no diagram; the text summary of {model.name!r}]")
        model.summary(line_length=100, expand_nested=False)
        return None
    return keras.utils.plot_model(model, to_file=filename or f"{model.name}.png", **options)


def branch_diagram(branches, *, inputs: str = "input", output: str = "concatenate", title: str = "", ax=None):
    """Draw parallel branches of layer boxes from one input to one output, each box's text as given (chapter 5).

    ``branches`` is a list of branches, each a list of box texts from top to bottom (write the kernel size and the
    stride in them, e.g. ``"3×3 conv, 128\\nstride 1"``): a readable block diagram where plot_model shows no kernels.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    n, depth = len(branches), max(len(b) for b in branches)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4 * n + 0.4, 1.15 * (depth + 2)))
    colours = {"1×1": "#cfe2f3", "pool": "#fce5cd"}

    def box(xc, yc, text):
        colour = next((c for key, c in colours.items() if key in text), "#d9ead3")
        end = text in (inputs, output)
        half = 0.65 if end else 0.44
        ax.add_patch(FancyBboxPatch((xc - half, yc - 0.32), 2 * half, 0.64, boxstyle="round,pad=0.02",
                                    fc="#eeeeee" if end else colour, ec="black", lw=0.8))
        ax.text(xc, yc, text, ha="center", va="center", fontsize=10)

    def arrow(start, end):
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 0.8})

    centre = (n - 1) / 2
    box(centre, depth + 1, inputs)
    box(centre, 0, output)
    for i, branch in enumerate(branches):
        ys = [depth - k for k in range(len(branch))]
        arrow((centre, depth + 1 - 0.34), (i, ys[0] + 0.34))
        for k, text in enumerate(branch):
            box(i, ys[k], text)
            if k:
                arrow((i, ys[k - 1] - 0.34), (i, ys[k] + 0.34))
        if len(branch) < depth:        # a short branch runs straight down to the last row, past no other box
            ax.plot([i, i], [ys[-1] - 0.34, 1 - 0.34], color="black", lw=0.8)
        arrow((i, 1 - 0.34 if len(branch) < depth else ys[-1] - 0.34), (centre, 0.34))
    ax.set_xlim(-0.6, n - 0.4), ax.set_ylim(-0.5, depth + 1.5), ax.axis("off")
    if title:
        ax.set_title(title)
    return ax.figure


#: Builders that reproduce a keras.applications model exactly (same parameter count), by Keras name.
KERAS_EQUIVALENTS = {"VGG16": vgg16, "VGG19": vgg19, "ResNet50": resnet50, "DenseNet121": densenet121,
                     "MobileNet": mobilenet, "Xception": xception}

_register_lrn_rule()
