"""Tests of cnnbook.counting against three oracles: Keras' count_params(), the multiply-adds the papers print,
and a NumPy reference convolution that counts its own multiplications.

Building every keras.applications model is the slow part (about 80 s on two cores); each is built once per
session and only its Counts (a small table) is kept.
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pandas as pd
import pytest
from keras import layers

from cnnbook import counting
from cnnbook import grading

# --------------------------------------------------------------------------- keras.applications, built once

_APP_COUNTS: dict[str, counting.Counts] = {}


def app_counts(name: str) -> counting.Counts:
    """Counts of keras.applications.<name> (weights=None, default input size), built once per session."""
    if name not in _APP_COUNTS:
        model = counting.build_application(name)
        _APP_COUNTS[name] = counting.count(model)
        del model
        keras.backend.clear_session()
    return _APP_COUNTS[name]


def test_every_application_is_listed():
    names = counting.application_names()
    assert len(names) == 40
    assert {"VGG16", "ResNet50", "MobileNet", "MobileNetV2", "EfficientNetB0", "ConvNeXtXLarge"} <= set(names)


@pytest.mark.parametrize("name", counting.application_names())
def test_application_params_equal_keras_count_params(name):
    c = app_counts(name)
    assert c.params == c.keras_params, f"{name}: {c.params:,} counted, Keras count_params() {c.keras_params:,}"
    assert c.trainable == c.keras_trainable
    assert c.not_counted == [], f"{name}: layers not counted: {c.not_counted}"
    assert c.macs > 0 and c.flops == 2 * c.macs


def within_printed(value: float, printed: str, unit: float) -> bool:
    """True if ``value / unit`` rounds to ``printed`` at the precision it is printed with (0.39 → [0.385, 0.395))."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    half = 0.5 * 10.0 ** -decimals
    return float(printed) - half <= value / unit < float(printed) + half


def conv_and_dense_macs(c: counting.Counts) -> tuple[int, int]:
    kinds = c.table.groupby("type")["macs"].sum()
    dense = int(kinds.get("Dense", 0))
    return c.macs - dense, dense


def test_within_printed_reads_the_precision():
    assert within_printed(0.386e9, "0.39", 1e9) and not within_printed(0.384e9, "0.39", 1e9)
    assert within_printed(568.7e6, "569", 1e6) and not within_printed(568.4e6, "569", 1e6)


def test_vgg16_matches_he_et_al_and_keras_summary():
    # He, Zhang, Ren & Sun 2015, "Deep residual learning", sec. 4.1: VGG-16 has 15.3 billion FLOPs (multiply-adds).
    # It matches the 13 convolutions only (15.35 G); with the three dense layers VGG-16 has 15.47 G, which would print
    # as 15.5. Their VGG-19 figure matches convolutions plus dense layers (next test): the paper does not count its two
    # VGGs the same way, so "15.3 G is the convolutions alone" is a reading of the number, not what the paper says.
    c = app_counts("VGG16")
    conv, dense = conv_and_dense_macs(c)
    assert conv == 15_346_630_656 and within_printed(conv, "15.3", 1e9)
    assert c.macs == 15_470_264_320 and within_printed(c.macs, "15.5", 1e9) and not within_printed(c.macs, "15.3", 1e9)
    assert dense == 4096 * 25088 + 4096 * 4096 + 1000 * 4096
    assert c.params == 138_357_544  # Keras applications table (source 001)


def test_vgg19_matches_he_et_al():
    # He et al. 2015 (ResNet paper), sec. 3.3 and 4.1: VGG-19 has 19.6 billion FLOPs. Unlike their VGG-16 figure,
    # this one includes the dense layers (convolutions alone are 19.51 G, which would print as 19.5).
    c = app_counts("VGG19")
    conv, _ = conv_and_dense_macs(c)
    assert within_printed(c.macs, "19.6", 1e9)
    assert not within_printed(conv, "19.6", 1e9)


def test_resnet50_matches_senet_paper():
    # Hu, Shen & Sun 2018 (SENet), Table 2: ResNet-50 3.86 GFLOPs = convolutions + the final dense layer, 224 x 224.
    # He et al. 2015 print 3.8 x 10^9 for the same network: 3.858 G does not round to 3.8. It is not a rule of
    # truncation either: the same table's ResNet-101 and ResNet-152 figures are rounded (test below).
    c = app_counts("ResNet50")
    assert c.macs == 3_857_973_248
    assert within_printed(c.macs, "3.86", 1e9)
    assert not within_printed(c.macs, "3.8", 1e9) and math.floor(c.macs / 1e8) / 10 == 3.8


@pytest.mark.parametrize("name, printed, exact", [("ResNet101", "7.6", 7_570_194_432),
                                                  ("ResNet152", "11.3", 11_282_415_616)])
def test_deeper_resnets_match_he_et_al_rounded_not_truncated(name, printed, exact):
    # He et al. 2015, Table 1: ResNet-101 7.6 x 10^9 and ResNet-152 11.3 x 10^9 FLOPs (convolutions + dense).
    # Chapter 3 (corrected): these are rounded (7.570 G would truncate to 7.5, 11.282 G to 11.2), so the table's
    # 3.6 and 3.8 for ResNet-34/50 are not "truncated, not rounded": they are below the count.
    macs = app_counts(name).macs
    assert macs == exact and within_printed(macs, printed, 1e9)
    assert math.floor(macs / 1e8) / 10 != float(printed)


def test_mobilenet_matches_howard_et_al():
    # Howard et al. 2017 (MobileNets), Table 8: 1.0 MobileNet-224 has 569 million mult-adds and 4.2 million
    # parameters. The MACs include the classifier (a 1 x 1 convolution in Keras). The parameters are the trainable
    # ones: with BatchNormalization's moving statistics Keras counts 4,253,864, which would print as 4.3 M.
    c = app_counts("MobileNet")
    assert c.macs == 568_740_352 and within_printed(c.macs, "569", 1e6)
    assert within_printed(c.trainable, "4.2", 1e6)
    assert not within_printed(c.params, "4.2", 1e6)


def test_mobilenet_v2_against_sandler_et_al():
    # Sandler et al. 2018 (MobileNetV2), Table 4: 300M multiply-adds, 3.4M parameters.
    # Neither matches at face value (see the course's chapter 3): the convolutions and the classifier make
    # 300.77 M MACs, which agrees with "300M" read to two significant figures only, and the weights without any
    # BatchNormalization variables are 3.47 M (trainable 3.50 M, all 3.54 M), so "3.4M" is a truncation.
    c = app_counts("MobileNetV2")
    assert c.macs == 300_774_272
    assert within_printed(c.macs, "3.0", 1e8) and not within_printed(c.macs, "300", 1e6)
    bn = c.table.loc[c.table["type"] == "BatchNormalization", "params"].sum()
    weights = c.params - int(bn)
    assert weights == 3_470_760 and math.floor(weights / 1e5) / 10 == 3.4
    assert not any(within_printed(n, "3.4", 1e6) for n in (weights, c.trainable, c.params))


def test_efficientnet_b0_matches_tan_and_le():
    # Tan & Le 2019 (EfficientNet), Table 2: EfficientNet-B0 has 0.39 B FLOPS (multiply-adds) and 5.3 M parameters.
    c = app_counts("EfficientNetB0")
    assert within_printed(c.macs, "0.39", 1e9)
    assert within_printed(c.params, "5.3", 1e6) and within_printed(c.trainable, "5.3", 1e6)


# --------------------------------------------------------------------------- a NumPy reference that counts


class Counter:
    """Counts the multiplications a reference implementation performs, one by one."""

    def __init__(self):
        self.n = 0

    def mul(self, a, b):
        self.n += 1
        return a * b


def _same_pads(size, k, stride, dilation):
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return out, total // 2


def reference_conv(x, w, b, strides, padding, dilation, groups, counter):
    """N-d convolution of one channels-last example, written as loops; every multiplication goes through counter."""
    spatial = x.shape[:-1]
    ks = w.shape[:-2]
    c_in, c_out = x.shape[-1], w.shape[-1]
    per_group_in, per_group_out = c_in // groups, c_out // groups
    outs, pads = [], []
    for size, k, s, d in zip(spatial, ks, strides, dilation):
        if padding == "valid":
            outs.append((size - (k - 1) * d - 1) // s + 1)
            pads.append(0)
        else:
            o, p = _same_pads(size, k, s, d)
            outs.append(o)
            pads.append(p)
    y = np.zeros((*outs, c_out))
    for pos in itertools.product(*map(range, outs)):
        for co in range(c_out):
            g = co // per_group_out
            acc = 0.0 if b is None else b[co]
            for off in itertools.product(*map(range, ks)):
                src = [p * s + o * d - pad for p, s, o, d, pad in zip(pos, strides, off, dilation, pads)]
                inside = all(0 <= i < n for i, n in zip(src, spatial))
                for ci in range(per_group_in):
                    value = x[(*src, g * per_group_in + ci)] if inside else 0.0  # zero padding is multiplied too
                    acc += counter.mul(value, w[(*off, ci, co)])
            y[(*pos, co)] = acc
    return y


CONV_CASES = [
    # layer class, input shape, filters, kernel, strides, padding, dilation, groups
    (layers.Conv2D, (7, 6, 4), 6, (3, 3), (1, 1), "valid", (1, 1), 1),
    (layers.Conv2D, (7, 6, 4), 6, (3, 2), (2, 2), "same", (1, 1), 1),
    (layers.Conv2D, (9, 8, 4), 6, (3, 3), (1, 1), "same", (2, 2), 1),
    (layers.Conv2D, (7, 7, 4), 6, (3, 3), (1, 1), "valid", (1, 1), 2),
    (layers.Conv1D, (11, 3), 4, (5,), (2,), "same", (1,), 1),
    (layers.Conv1D, (12, 4), 4, (3,), (1,), "valid", (3,), 4),
    (layers.Conv3D, (5, 5, 4, 2), 3, (3, 3, 2), (1, 1, 1), "valid", (1, 1, 1), 1),
]


@pytest.mark.parametrize("cls, shape, filters, kernel, strides, padding, dilation, groups", CONV_CASES)
def test_conv_macs_equal_reference_multiplications(cls, shape, filters, kernel, strides, padding, dilation, groups):
    layer = cls(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation, groups=groups)
    model = keras.Sequential([keras.Input(shape), layer])
    rng = np.random.default_rng(0)
    w, b = (rng.normal(size=v.shape) for v in layer.weights)
    layer.set_weights([w, b])
    x = rng.normal(size=shape)
    counter = Counter()
    expected = reference_conv(x, w, b, strides, padding, dilation, groups, counter)
    np.testing.assert_allclose(model(x[None]).numpy()[0], expected, atol=1e-4)  # the reference is Keras' conv
    c = counting.count(model)
    assert c.macs == counter.n
    assert c.table["bias_adds"].sum() == expected.size


def test_depthwise_and_separable_macs_equal_reference_multiplications():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 7, 3))
    dw = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, use_bias=False)
    sep = layers.SeparableConv2D(5, 3, padding="valid", depth_multiplier=2, use_bias=False)
    for layer in (dw, sep):
        model = keras.Sequential([keras.Input(x.shape), layer])
        kernels = [rng.normal(size=v.shape) for v in layer.weights]
        layer.set_weights(kernels)
        counter = Counter()
        depth = kernels[0]  # (kh, kw, C_in, multiplier): a grouped convolution with one group per input channel
        as_grouped = depth.reshape(*depth.shape[:2], 1, -1)
        y = reference_conv(x, as_grouped, None, layer.strides, layer.padding, (1, 1), x.shape[-1], counter)
        if layer is sep:
            y = reference_conv(y, kernels[1], None, (1, 1), "valid", (1, 1), 1, counter)
        np.testing.assert_allclose(model(x[None]).numpy()[0], y, atol=1e-4)
        assert counting.count(model).macs == counter.n


def test_transposed_conv_and_dense_macs_equal_reference_multiplications():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5, 3))
    layer = layers.Conv2DTranspose(2, 3, strides=2, padding="valid", use_bias=False)
    model = keras.Sequential([keras.Input(x.shape), layer])
    (w,) = [rng.normal(size=v.shape) for v in layer.weights]  # (kh, kw, C_out, C_in)
    layer.set_weights([w])
    counter = Counter()
    y = np.zeros(((4 - 1) * 2 + 3, (5 - 1) * 2 + 3, 2))
    for i, j, ci, di, dj, co in itertools.product(range(4), range(5), range(3), range(3), range(3), range(2)):
        y[2 * i + di, 2 * j + dj, co] += counter.mul(x[i, j, ci], w[di, dj, co, ci])  # scatter each input
    np.testing.assert_allclose(model(x[None]).numpy()[0], y, atol=1e-4)
    assert counting.count(model).macs == counter.n

    v = rng.normal(size=(6,))
    dense = layers.Dense(4)
    model = keras.Sequential([keras.Input((6,)), dense])
    counter = Counter()
    kernel, bias = dense.get_weights()
    out = [sum(counter.mul(v[i], kernel[i, j]) for i in range(6)) + bias[j] for j in range(4)]
    np.testing.assert_allclose(model(v[None]).numpy()[0], out, atol=1e-4)
    assert counting.count(model).macs == counter.n == 24


# --------------------------------------------------------------------------- the architectures the course builds


def classroom_cnn():
    """The classroom activity network of source 001 (Chollet's MNIST convnet)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
    ])


def three_convs_and_dense():
    """Source 001: three convolutions without pooling, then one Dense unit (30,977 parameters)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(64, 3, activation="relu"),
        layers.Conv2D(64, 3, activation="relu"), layers.Flatten(), layers.Dense(1, activation="sigmoid"),
    ])


def alexnet():
    """AlexNet without the two-GPU grouping and without LRN, 227 x 227 x 3 input, 1000 classes (source 004)."""
    return keras.Sequential([
        keras.Input((227, 227, 3)),
        layers.Conv2D(96, 11, strides=4, activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Conv2D(256, 5, padding="same", activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Conv2D(384, 3, padding="same", activation="relu"),
        layers.Conv2D(384, 3, padding="same", activation="relu"),
        layers.Conv2D(256, 3, padding="same", activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Flatten(), layers.Dense(4096, activation="relu"), layers.Dropout(0.5),
        layers.Dense(4096, activation="relu"), layers.Dropout(0.5), layers.Dense(1000, activation="softmax"),
    ], name="alexnet")


def olafenwa_two_layers():
    """Source 002's example: 3x3 valid conv to 64 channels, then 4x4 conv, padding 1, stride 2, 64 channels."""
    return keras.Sequential([
        keras.Input((224, 224, 3)), layers.Conv2D(64, 3), layers.ZeroPadding2D(1), layers.Conv2D(64, 4, strides=2),
    ])


def depthwise_unit_model():
    """Source 002's mobile network: residual units of depthwise 3x3 + pointwise 1x1 (functional)."""

    def unit(x, filters, pool=False):
        res = x
        if pool:
            x = layers.MaxPooling2D(2)(x)
            res = layers.Conv2D(filters, 1, strides=2, padding="same")(res)
        out = layers.Activation("relu")(layers.BatchNormalization()(x))
        out = layers.DepthwiseConv2D(3, padding="same")(out)
        out = layers.Activation("relu")(layers.BatchNormalization()(out))
        out = layers.Conv2D(filters, 1, padding="same")(out)
        return layers.add([res, out])

    inputs = keras.Input((32, 32, 3))
    net = layers.Conv2D(32, 3, padding="same")(inputs)
    for filters, pool in [(32, False), (32, False), (64, True), (64, False), (128, True), (128, False)]:
        net = unit(net, filters, pool)
    net = layers.GlobalAveragePooling2D()(layers.Dropout(0.25)(net))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(net))


def inception_3a(reduce: bool = True):
    """GoogLeNet's inception (3a) module on 28 x 28 x 192, with or without the 1x1 reductions (Szegedy et al.)."""
    x = keras.Input((28, 28, 192))
    b1 = layers.Conv2D(64, 1, activation="relu")(x)
    b2 = layers.Conv2D(96, 1, activation="relu")(x) if reduce else x
    b2 = layers.Conv2D(128, 3, padding="same", activation="relu")(b2)
    b3 = layers.Conv2D(16, 1, activation="relu")(x) if reduce else x
    b3 = layers.Conv2D(32, 5, padding="same", activation="relu")(b3)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    if reduce:
        b4 = layers.Conv2D(32, 1, activation="relu")(b4)
    return keras.Model(x, layers.Concatenate()([b1, b2, b3, b4]))


COURSE_MODELS = {"classroom_cnn": classroom_cnn, "three_convs_and_dense": three_convs_and_dense,
                 "alexnet": alexnet, "olafenwa_two_layers": olafenwa_two_layers,
                 "depthwise_unit_model": depthwise_unit_model, "inception_3a": inception_3a}


@pytest.mark.parametrize("name", sorted(COURSE_MODELS))
def test_course_model_params_equal_keras(name):
    counting.check_params(COURSE_MODELS[name]())


def _models():
    from cnnbook import models

    return models


# chapter 5's builders (cnnbook.models); those equal to a keras.applications model are covered above
CHAPTER4_BUILDS = {
    "lenet5": lambda: _models().lenet5(), "lenet5_modern": lambda: _models().lenet5(modern=True),
    "alexnet_lrn": lambda: _models().alexnet(), "googlenet": lambda: _models().googlenet(),
    "resnet18": lambda: _models().resnet(18), "resnet34": lambda: _models().resnet(34),
    "small_cnn": lambda: _models().small_cnn(),
    "deep_cnn_residual": lambda: _models().deep_cnn(5, residual=True, batch_norm=True),
}


@pytest.mark.parametrize("name", sorted(CHAPTER4_BUILDS))
def test_chapter4_model_params_equal_keras(name):
    c = counting.check_params(CHAPTER4_BUILDS[name]())
    assert c.not_counted == []
    keras.backend.clear_session()


def test_resnet34_against_he_et_al():
    # He et al. 2015, Table 1 and sec. 3.3: the 34-layer ResNet has 3.6 billion FLOPs (multiply-adds). Counted as
    # for ResNet-50 (convolutions + dense) it has 3.66 G, which rounds to 3.7: like ResNet-50's 3.8 the printed figure
    # is below the count (the same table rounds ResNet-101 and -152, so it is no rule of truncation).
    c = counting.count(_models().resnet(34))
    assert c.macs == 3_663_761_408
    assert not within_printed(c.macs, "3.6", 1e9) and math.floor(c.macs / 1e8) / 10 == 3.6
    keras.backend.clear_session()


def test_classroom_cnn_and_dense_after_three_convs():
    c = counting.count(classroom_cnn())
    assert c.params == 93_322
    dense = counting.count(three_convs_and_dense()).table.iloc[-1]
    assert dense["params"] == 64 * 22 * 22 + 1 == 30_977  # source 001's figure is right


def test_alexnet_layer_by_layer_corrects_the_slide():
    c = counting.count(alexnet())
    weighted = c.table[c.table["params"] > 0]["params"].tolist()
    # source 004's slide: C1..C5 right; FC1 must see 6 x 6 x 256 = 9216 inputs, not 4096
    assert weighted == [34_944, 614_656, 885_120, 1_327_488, 884_992, 37_752_832, 16_781_312, 4_097_000]
    assert c.params == 62_378_344
    assert 3_747_200 + 2 * (4096 + 4096 * 4096) + 4_097_000 == 41_406_824  # what the slide's numbers add up to


def test_vgg16_conv_base_and_fine_tuning_block5():
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(200, 200, 3))  # source 004
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5_conv")
    c = counting.check_params(base)
    assert (c.params, c.trainable, c.non_trainable) == (14_714_688, 7_079_424, 7_635_264)
    assert c.table.loc[c.table["layer"] == "block5_pool", "output_shape"].item() == (6, 6, 512)


def test_olafenwa_two_layer_example_corrected():
    c = counting.count(olafenwa_two_layers())
    convs = c.table[c.table["type"] == "Conv2D"]["macs"].tolist()
    assert convs == [85_162_752, 807_469_056]
    # the book prints 28,387,584 for layer 1: that is 3 x 3 x 222 x 222 x 64, without the factor C_in = 3
    assert 3 * 3 * 222 * 222 * 64 == 28_387_584 == convs[0] // 3
    assert c.macs == 892_631_808 and c.flops == 1_785_263_616


def test_geron_memory_example():
    # Géron ch. 14: 5x5 filters, 200 maps of 150x100, stride 1, same padding, RGB input
    model = keras.Sequential([keras.Input((150, 100, 3)), layers.Conv2D(200, 5, padding="same")])
    conv = counting.count(model).table.iloc[1]
    assert conv["params"] == 15_200 and conv["macs"] == 225_000_000
    assert conv["activation_bytes"] == 12_000_000  # 12 MB of float32 for one image
    assert counting.count(model, batch_size=100).table.iloc[1]["activation_bytes"] == 1_200_000_000
    assert counting.count(model, dtype="float16").table.iloc[1]["activation_bytes"] == 6_000_000


def test_depthwise_separable_and_bottleneck_tables():
    def cost(*stack):
        return counting.count(keras.Sequential([keras.Input((112, 112, 32)), *stack])).macs

    separable = cost(layers.DepthwiseConv2D(3, padding="same"), layers.Conv2D(32, 1))
    standard = cost(layers.Conv2D(32, 3, padding="same"), layers.Conv2D(32, 1))
    assert (separable, standard) == (16_457_728, 128_450_560)  # source 002's tables
    bottleneck = cost(layers.Conv2D(16, 1), layers.Conv2D(32, 3, padding="same"))
    plain = cost(layers.Conv2D(32, 3, padding="same"))
    assert (bottleneck, plain) == (64_225_280, 115_605_504)


def test_inception_bottleneck_savings():
    naive, reduced = counting.count(inception_3a(False)), counting.count(inception_3a(True))
    assert naive.macs == 28 * 28 * (192 * 64 + 9 * 192 * 128 + 25 * 192 * 32) == 303_464_448
    assert reduced.macs == 28 * 28 * (192 * (64 + 96 + 16 + 32) + 9 * 96 * 128 + 25 * 16 * 32) == 128_049_152
    assert naive.table.iloc[-1]["output_shape"] == (28, 28, 416)  # the naive module also grows the depth


# --------------------------------------------------------------------------- how the walker handles structure


class ResidualBlock(layers.Layer):
    """A subclassed layer with sublayers and its own weight and arithmetic."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn = layers.BatchNormalization()
        self.gain = self.add_weight(shape=(filters,), initializer="ones", name="gain")

    def call(self, x):
        return keras.ops.relu(self.bn(self.conv(x))) * self.gain + x


def test_shared_layers_nested_models_and_subclassed_layers():
    inputs = keras.Input((10, 10, 4))
    shared = layers.Conv2D(4, 1, name="shared")
    x = shared(shared(inputs))
    x = ResidualBlock(4, name="block")(x)
    inner = keras.Sequential([layers.Conv2D(2, 3, name="inner_conv"), layers.ReLU()], name="inner")
    x = inner(x)
    x = x * 2.0  # a keras.ops operation in the functional graph
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, out)
    model.get_layer("inner").trainable = False
    c = counting.check_params(model)
    t = c.table.set_index("layer")
    assert t.loc["shared", "macs"].tolist() == [1600, 1600]  # shared: MACs at every call ...
    assert t.loc["shared", "params"].tolist() == [20, 0]  # ... parameters once
    assert pd.isna(t.loc["block", "macs"]) and t.loc["block", "params"] == 4  # own call() arithmetic: not counted
    assert t.loc["block/" + model.get_layer("block").conv.name, "macs"] == 100 * 36 * 4
    assert t.loc["inner/inner_conv", "macs"] == 64 * 36 * 2
    assert t.loc["inner/inner_conv", "non_trainable"] == 74
    assert c.table.loc[c.table["type"] == "Multiply", "elementwise_ops"].tolist() == [128]
    assert c.not_counted == ["block"]
    assert c.non_trainable == 74 + 8  # frozen inner conv + BN moving statistics


def test_unknown_layer_is_reported_not_zero():
    model = keras.Sequential([keras.Input((4,)), layers.Lambda(lambda t: t * 3), layers.Dense(2)])
    c = counting.count(model)
    row = c.table.iloc[1]
    assert pd.isna(row["macs"]) and row["note"].startswith("not counted")
    assert c.not_counted == [model.layers[0].name]
    assert c.macs == 8  # the total covers what was counted, and the printout says what was not
    assert "NOT COUNTED (1)" in str(c)


def test_register_teaches_a_new_layer():
    class Scale(layers.Layer):
        def call(self, x):
            return 2.0 * x

    model = keras.Sequential([keras.Input((5,)), Scale()])
    assert counting.count(model).not_counted
    counting.register(Scale)(lambda layer, inputs, outputs: {"elementwise_ops": math.prod(outputs[0])})
    c = counting.count(model)
    assert not c.not_counted and c.table.iloc[1]["elementwise_ops"] == 5


def test_subclassed_model_needs_and_accepts_an_input_shape():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(8, 3)
            self.pool = layers.GlobalMaxPooling2D()
            self.head = layers.Dense(2)

        def call(self, x):
            return self.head(self.pool(self.conv(x)))

    net = Net()
    with pytest.raises(ValueError, match="input_shape"):
        counting.count(net)
    c = counting.count(net, input_shape=(12, 12, 3))
    c.check_keras()
    assert c.macs == 10 * 10 * 8 * 27 + 16
    assert c.not_counted == [net.name]  # its own call() could compute: flagged, not zeroed


def test_unknown_spatial_size_is_not_counted_until_given():
    model = counting.build_application("MobileNetV3Small", input_shape=(None, None, 3))
    c = counting.count(model)
    assert c.not_counted and "input_shape" in c.table.loc[c.table["note"].str.startswith("not"), "note"].iloc[-1]
    assert counting.count(model, input_shape=(224, 224, 3)).macs == app_counts("MobileNetV3Small").macs


def test_preprocessing_dropout_and_reshaping_layers():
    model = keras.Sequential([
        keras.Input((8, 8, 3)), layers.Rescaling(1 / 127.5, offset=-1), layers.RandomFlip(),
        layers.Normalization(mean=0.0, variance=1.0), layers.ZeroPadding2D(1), layers.Conv2D(4, 3),
        layers.BatchNormalization(), layers.Activation("relu"), layers.AveragePooling2D(2),
        layers.SpatialDropout2D(0.1), layers.UpSampling2D(2), layers.Cropping2D(1), layers.Reshape((-1,)),
        layers.Dropout(0.5), layers.Dense(2),
    ])
    c = counting.check_params(model)
    t = c.table.set_index("type")
    assert t.loc["Rescaling", "elementwise_ops"] == 2 * 192
    assert t.loc["Normalization", "norm_ops"] == 2 * 192
    assert t.loc["BatchNormalization", "norm_ops"] == 2 * 256
    assert t.loc["Activation", "act_ops"] == 256
    assert t.loc["AveragePooling2D", "pool_ops"] == 64 * 4
    assert t.loc["RandomFlip", "note"].startswith("identity")
    assert c.not_counted == []
    assert c.macs == 256 * 27 + 144 * 2


def test_printout_and_totals():
    c = counting.count(classroom_cnn(), batch_size=32)
    text = str(c)
    assert "Keras count_params(): 93,322 (equal)" in text
    assert "FLOPs (= 2 x MACs)" in text
    totals = c.totals
    assert totals["macs"] == c.macs == 2_794_240 and totals["flops (2 x macs)"] == 2 * c.macs
    assert c.activation_bytes == 32 * 4 * sum(math.prod(s) for s in c.table["output_shape"])
    assert c.training_bytes(optimizer_slots=2) == c.activation_bytes + 4 * 4 * 93_322
    assert list(c.table.columns) == list(counting.COLUMNS)
    assert c.by_type().loc["Conv2D", "calls"] == 3


# --------------------------------------------------------------------------- the exercise checks (hidden tests)


def solution_count_params(model):
    """The exercise's model solution: parameters from each layer's configuration, never from its weights."""
    total = trainable = 0
    for layer in model.layers:
        c_in = layer.input.shape[-1]
        k = math.prod(getattr(layer, "kernel_size", (1,)))
        bias = int(getattr(layer, "use_bias", False))
        train, frozen = 0, 0
        if isinstance(layer, layers.SeparableConv2D):
            mid = c_in * layer.depth_multiplier
            train = k * mid + mid * layer.filters + bias * layer.filters
        elif isinstance(layer, layers.DepthwiseConv2D):
            train = (k + bias) * c_in * layer.depth_multiplier
        elif isinstance(layer, layers.Conv2D):
            train = (k * c_in + bias) * layer.filters
        elif isinstance(layer, layers.Dense):
            train = (c_in + bias) * layer.units
        elif isinstance(layer, layers.BatchNormalization):
            train, frozen = 2 * c_in, 2 * c_in
        total += train + frozen
        trainable += train if layer.trainable else 0
    return total, trainable


def solution_count_macs(model):
    macs = 0
    for layer in model.layers:
        c_in, out = layer.input.shape[-1], layer.output.shape[1:]
        k = math.prod(getattr(layer, "kernel_size", (1,)))
        if isinstance(layer, layers.SeparableConv2D):
            mid = c_in * layer.depth_multiplier
            macs += math.prod(out[:-1]) * (k * mid + mid * layer.filters)
        elif isinstance(layer, layers.DepthwiseConv2D):
            macs += math.prod(out) * k
        elif isinstance(layer, (layers.Conv2D, layers.Dense)):
            macs += math.prod(out) * k * c_in
    return macs


def test_the_graders_random_models_are_counted_alike_by_the_layer_formulas_keras_and_the_course_counter():
    # Oracles: Keras's count_params and trainable weights, and cnnbook.counting.count, against this file's counters
    # written from the layer formulas alone: the random models the trusted ch03 check draws are fair to a student.

    from autograder import trusted

    checks = trusted.load_checks("ch03_counting")
    keras_counts = [(m.count_params(), sum(math.prod(v.shape) for v in m.trainable_weights))
                    for m in checks.counter_models("count_params")]
    assert [solution_count_params(m) for m in checks.counter_models("count_params")] == keras_counts
    assert any(total != trainable for total, trainable in keras_counts)   # some layers are frozen
    macs = [counting.count(m).macs for m in checks.counter_models("count_macs")]
    assert [solution_count_macs(m) for m in checks.counter_models("count_macs")] == macs and min(macs) > 0


def test_budget_check():
    good = keras.Sequential([
        keras.Input((32, 32, 3)), layers.Conv2D(24, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.SeparableConv2D(48, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.SeparableConv2D(96, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.SeparableConv2D(192, 3, padding="same", activation="relu"), layers.GlobalAveragePooling2D(),
        layers.Dense(10, activation="softmax")])
    c = grading.check_budget_model(good, (32, 32, 3), 10, 50_000, 5_000_000, 4)
    assert c.params < 50_000 and c.macs < 5_000_000
    plain = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(32, 3), layers.Conv2D(64, 3),
                              layers.Conv2D(64, 3), layers.Conv2D(64, 3), layers.Flatten(), layers.Dense(10)])
    with pytest.raises(AssertionError, match="GlobalAveragePooling2D"):
        grading.check_budget_model(plain, (32, 32, 3), 10, 50_000, 5_000_000, 4)
    with pytest.raises(AssertionError, match="most expensive layer"):
        grading.check_budget_model(plain, (32, 32, 3), 10, 10**9, 5_000_000, 4)


def test_refused_names_the_builders_keras_will_not_build_on_the_backend(monkeypatch):
    # Oracle: keras/src/applications/nasnet.py raises ValueError for NASNetMobile on torch, and only there.
    import keras

    names = ["NASNetMobile", "ResNet50"]
    assert counting.refused(names) == {} and keras.backend.backend() != "torch"
    counting.build_application("NASNetMobile")   # TensorFlow builds it
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    assert list(counting.refused(names)) == ["NASNetMobile"]
    assert "torch" in counting.refused(names)["NASNetMobile"]
    assert counting.refused(["ResNet50"]) == {}


def test_umsl_max_pooling_reads_50176_values_and_makes_37632_comparisons():
    # UMSL slides (source 001): a 2x2 max pooling on 28x28x16 takes "[16][2*2]*28*28 comparisons = 50 K". The counter's
    # pool_ops is the values read, 4 per output (50,176). Oracle for the comparisons: a max that counts its own
    # comparisons, run on every window (every window full, as the slide assumes): a max of 4 values takes 3.
    c = counting.count(keras.Sequential([keras.Input((28, 28, 16)), layers.MaxPooling2D(2, strides=1, padding="same")]))
    assert int(c.table.iloc[1]["pool_ops"]) == 50_176 == 16 * 4 * 28 * 28

    def counted_max(values):
        best, comparisons = values[0], 0
        for v in values[1:]:
            comparisons += 1
            best = v if v > best else best
        return best, comparisons

    x = np.random.default_rng(0).random((29, 29, 16))          # one extra row and column: every window is full
    total = sum(counted_max(list(x[r:r + 2, c:c + 2, ch].ravel()))[1]
                for r in range(28) for c in range(28) for ch in range(16))
    assert total == 37_632
