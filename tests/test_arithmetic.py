"""Convolution arithmetic (chapter 2) against its oracles: Keras's own shape inference, real layer calls, TensorFlow's
padding, and a brute-force receptive field measured by pushing one-pixel impulses through an all-ones network."""

import contextlib
import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cnnbook import arithmetic as A  # noqa: E402

FAMILIES = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "Conv2DTranspose", "dilated Conv2D")
CONFIGS_PER_FAMILY = 1_200  # 6,000 in all


def random_config(rng: random.Random, family: str) -> dict:
    """Draw one random, Keras-constructible configuration of ``family`` (rectangular sizes, mixed paddings)."""
    size = lambda low, high: (rng.randint(low, high), rng.randint(low, high))  # noqa: E731
    config = {"input_shape": size(1, 40), "padding": rng.choice(["valid", "same"])}
    if family in ("MaxPooling2D", "AveragePooling2D"):
        config["pool_size"] = size(1, 6)
        config["strides"] = rng.choice([None, size(1, 4)])
    elif family == "Conv2DTranspose":
        config["input_shape"] = size(1, 20)
        config["kernel_size"] = size(1, 6)
        strides = size(1, 4)
        config["strides"] = strides
        dilate = strides == (1, 1) and rng.random() < 0.3
        config["dilation_rate"] = size(1, 3) if dilate else (1, 1)
        config["output_padding"] = rng.choice([None, tuple(rng.randint(0, s - 1) for s in strides)])
    else:
        config["kernel_size"] = size(1, 7)
        if family == "dilated Conv2D":
            config["dilation_rate"] = size(1, 4)
            config["strides"] = (1, 1)  # Keras refuses strides > 1 with dilation_rate > 1
        else:
            config["strides"] = size(1, 4)
            config["dilation_rate"] = (1, 1)
    return config


def keras_layer(family: str, config: dict):
    """Build the Keras layer of ``family`` with ``config`` (without calling it)."""
    if family in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(keras.layers, family)(config["pool_size"], config["strides"], config["padding"])
    options = {k: config[k] for k in ("kernel_size", "strides", "padding", "dilation_rate")}
    if family == "Conv2DTranspose":
        return A.conv2d_transpose(2, output_padding=config["output_padding"], **options)
    return keras.layers.Conv2D(2, **options)


def module_shape(family: str, config: dict):
    """Return the (height, width) that :mod:`cnnbook.arithmetic` predicts, or the ``ValueError`` it raises."""
    try:
        if family in ("MaxPooling2D", "AveragePooling2D"):
            return A.pool_output_shape(config["input_shape"], config["pool_size"], config["strides"],
                                       config["padding"])
        options = {k: config[k] for k in ("kernel_size", "strides", "padding", "dilation_rate")}
        if family == "Conv2DTranspose":
            return A.conv_transpose_output_shape(config["input_shape"], output_padding=config["output_padding"],
                                                 **options)
        return A.conv_output_shape(config["input_shape"], **options)
    except ValueError as error:
        return error


def keras_shape(layer, config: dict):
    """Return the (height, width) of Keras's ``compute_output_shape``, or the ``ValueError`` it raises."""
    try:
        return tuple(layer.compute_output_shape((None, *config["input_shape"], 3))[1:3])
    except ValueError as error:
        return error


def real_shape(layer, config: dict):
    """Return the (height, width) the layer really produces on zeros, or the exception it raises."""
    try:
        return tuple(layer(np.zeros((1, *config["input_shape"], 3), "float32")).shape[1:3])
    except Exception as error:  # TensorFlow raises its own error types at run time
        return error


class _TerminalSummary:
    """A plugin registered at run time that repeats the comparison's counts at the end of pytest's output."""

    def __init__(self, line: str):
        self.line = line

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("-", "chapter 2 arithmetic vs Keras")
        terminalreporter.write_line(self.line)


def test_thousands_of_random_configurations_agree_with_keras(request, record_property):
    """6,000 random configurations: the module's size equals Keras's, and both refuse the same invalid ones.

    Keras's ``Conv2DTranspose.compute_output_shape`` returns a size for 'same' padding, an even kernel span and
    ``output_padding=0``, but calling the layer fails (TensorFlow checks that a 'same' convolution maps that size back
    to the input). The module raises there; those configurations are counted apart and a sample is really run.
    """
    rng = random.Random(2)
    counts = {family: 0 for family in FAMILIES}
    disagreements, refused_by_both, unrunnable = [], 0, []
    for family in FAMILIES:
        for _ in range(CONFIGS_PER_FAMILY):
            config = random_config(rng, family)
            layer = keras_layer(family, config)
            ours, theirs = module_shape(family, config), keras_shape(layer, config)
            counts[family] += 1
            if isinstance(ours, ValueError) and isinstance(theirs, ValueError):
                refused_by_both += 1
            elif isinstance(ours, ValueError) and "output_padding" in str(ours) and family == "Conv2DTranspose":
                unrunnable.append((config, theirs))
            elif ours != theirs:
                disagreements.append((family, config, ours, theirs))
    for config, _ in unrunnable[:15]:
        result = real_shape(keras_layer("Conv2DTranspose", config), config)
        assert isinstance(result, Exception), f"Keras ran {config} to {result}, the module refused it"
    total = sum(counts.values())
    summary = (f"convolution arithmetic vs Keras: {total:,} random configurations "
               f"({', '.join(f'{n:,} {f}' for f, n in counts.items())}), {len(disagreements)} disagreements, "
               f"{refused_by_both} refused by both, {len(unrunnable)} transposed configs that Keras sizes "
               f"but cannot run (refused by the module; {min(15, len(unrunnable))} checked by running them)")
    print("\n" + summary)
    record_property("arithmetic_disagreements", len(disagreements))
    if not request.config.pluginmanager.has_plugin("cnnbook-arithmetic-summary"):
        request.config.pluginmanager.register(_TerminalSummary(summary), "cnnbook-arithmetic-summary")
    assert total >= 5_000
    assert not disagreements, f"{summary}; first ones: {disagreements[:5]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_compute_output_shape_matches_calling_the_layer(family):
    """On a few configurations per family, Keras's shape inference (the oracle above) equals a real call."""
    rng = random.Random(family)
    checked = 0
    while checked < 6:
        config = random_config(rng, family)
        layer = keras_layer(family, config)
        ours = module_shape(family, config)
        if isinstance(ours, ValueError):
            continue
        assert real_shape(layer, config) == ours == keras_shape(layer, config), config
        checked += 1


# -- property tests (hypothesis) --------------------------------------------------------------------------------

sizes = st.integers(1, 48)
kernels = st.integers(1, 7)
strides_ = st.integers(1, 4)
paddings = st.sampled_from(["valid", "same"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(sizes, sizes, kernels, kernels, strides_, strides_, paddings)
def test_conv_shape_property(h, w, kh, kw, sh, sw, padding):
    layer = keras.layers.Conv2D(1, (kh, kw), strides=(sh, sw), padding=padding)
    config = {"input_shape": (h, w)}
    ours = module_shape("Conv2D", {**config, "kernel_size": (kh, kw), "strides": (sh, sw), "padding": padding,
                                   "dilation_rate": 1})
    theirs = keras_shape(layer, config)
    assert type(ours) is type(theirs) and (isinstance(ours, ValueError) or ours == theirs)


@FAST
@given(sizes, kernels, kernels, st.integers(1, 4), st.integers(1, 4), paddings)
def test_dilated_conv_shape_property(i, kh, kw, dh, dw, padding):
    layer = keras.layers.Conv2D(1, (kh, kw), padding=padding, dilation_rate=(dh, dw))
    ours = module_shape("Conv2D", {"input_shape": i, "kernel_size": (kh, kw), "strides": 1, "padding": padding,
                                   "dilation_rate": (dh, dw)})
    theirs = keras_shape(layer, {"input_shape": (i, i)})
    assert type(ours) is type(theirs) and (isinstance(ours, ValueError) or ours == theirs)


@FAST
@given(sizes, sizes, st.integers(1, 6), st.one_of(st.none(), strides_), paddings, st.booleans())
def test_pool_shape_property(h, w, k, s, padding, average):
    family = "AveragePooling2D" if average else "MaxPooling2D"
    config = {"input_shape": (h, w), "pool_size": k, "strides": s, "padding": padding}
    ours, theirs = module_shape(family, config), keras_shape(keras_layer(family, config), config)
    assert type(ours) is type(theirs) and (isinstance(ours, ValueError) or ours == theirs)


@FAST
@given(st.integers(1, 20), st.integers(1, 6), strides_, paddings, st.data())
def test_transposed_shape_property(i, k, s, padding, data):
    output_padding = data.draw(st.one_of(st.none(), st.integers(0, s - 1)))
    ours = A.conv_transpose_output_length(i, k, s, padding, output_padding) if not (
        padding == "same" and output_padding == 0 and k % 2 == 0) else None
    layer = A.conv2d_transpose(1, k, strides=s, padding=padding, output_padding=output_padding)
    theirs = layer.compute_output_shape((None, i, i, 1))[1]
    if ours is None:  # Keras sizes it, TensorFlow refuses to run it: the module refuses too
        with pytest.raises(ValueError, match="output_padding"):
            A.conv_transpose_output_length(i, k, s, padding, output_padding)
    else:
        assert ours == theirs
        # a transposed convolution undoes the sizes of the convolution it transposes
        assert A.conv_output_length(ours, k, s, padding) == i


# -- padding and special cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("i, k, s, d", [(13, 6, 5, 1), (7, 4, 2, 1), (8, 3, 2, 1), (9, 2, 1, 3), (5, 5, 3, 1),
                                        (10, 1, 3, 1), (6, 4, 1, 1), (11, 3, 1, 2), (12, 4, 1, 3)])
def test_same_padding_split_matches_tensorflow(i, k, s, d):
    """Read TensorFlow's top padding off a real Conv2D: a kernel with one 1 at its top tap copies x[n*s - top]."""
    kernel = np.zeros((k, 1, 1, 1), "float32")
    kernel[0] = 1.0
    layer = keras.layers.Conv2D(1, (k, 1), strides=(s, 1), padding="same", dilation_rate=(d, 1), use_bias=False)
    layer.build((None, i, 1, 1))
    layer.set_weights([kernel])
    x = np.arange(1, i + 1, dtype="float32").reshape(1, i, 1, 1)
    y = np.asarray(layer(x))[0, :, 0, 0]
    pad = A.same_padding(i, k, s, d)
    expected = [n * s - pad.before + 1 if 0 <= n * s - pad.before < i else 0 for n in range(len(y))]
    assert y.tolist() == expected
    assert pad.total == pad.before + pad.after and pad.after - pad.before in (0, 1)
    assert len(y) == -(-i // s) == A.conv_output_length(i, k, s, "same", d)


def test_textbook_special_cases():
    """Dumoulin & Visin's cases and the sources' examples, by number."""
    assert A.conv_output_length(5, 3) == 3  # no padding (UMSL: 5x5 input, 3x3 kernel)
    assert A.conv_output_length(5, 3, padding=1) == 5 == A.conv_output_length(5, 3, padding="same")  # half
    assert A.conv_output_length(5, 3, padding="full") == 7  # full: i + k - 1
    assert A.conv_output_length(4, 2) == 3 and A.conv_output_length(4, 2, 2) == 2  # Olafenwa's 4x4 examples
    assert A.conv_output_length(4, 3, padding=1) == 4
    assert A.conv_output_length(224, 3) == 222 and A.conv_output_length(222, 4, 2, padding=1) == 111
    assert A.pool_output_length(26, 2) == 13  # UMSL: 26x26 halves to 13x13
    assert A.conv_output_length(13, 6, 5, "same") == 3 and A.conv_output_length(13, 6, 5) == 2  # Geron fig 14-7
    assert A.effective_kernel_size(3, 2) == 5
    assert A.conv_output_shape((200, 300), 3, 2, "same") == (100, 150)
    assert A.conv_transpose_output_length(3, 3, 2) == 7 and A.conv_transpose_output_length(3, 3, 2, "same") == 6
    assert A.same_padding_2d((13, 8), (6, 3), (5, 2)) == (A.Padding(3, 1, 2), A.Padding(1, 0, 1))


# -- invalid input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, name", [
    (lambda: A.conv_output_length(4, 5), "kernel_size"),
    (lambda: A.conv_output_length(5, 3, dilation_rate=3), "kernel_size"),
    (lambda: A.conv_output_length(0, 3), "input_length"),
    (lambda: A.conv_output_length(5, 0), "kernel_size"),
    (lambda: A.conv_output_length(5, 3, 0), "strides"),
    (lambda: A.conv_output_length(5, 3, -1), "strides"),
    (lambda: A.conv_output_length(5, 3, padding="half"), "padding"),
    (lambda: A.conv_output_length(5, 3, padding=-1), "padding"),
    (lambda: A.conv_output_length(5, 3, dilation_rate=0), "dilation_rate"),
    (lambda: A.conv_output_length(5.0, 3), "input_length"),
    (lambda: A.pool_output_length(3, 4), "pool_size"),
    (lambda: A.pool_output_length(3, 2, 0), "strides"),
    (lambda: A.conv_output_shape((5, 2), 3), "input_shape"),
    (lambda: A.conv_output_shape((5, 5, 3), 3), "input_shape"),
    (lambda: A.conv_output_shape(5, (3, 3), (1, 0)), "strides"),
    (lambda: A.conv_transpose_output_length(3, 3, 2, output_padding=2), "output_padding"),
    (lambda: A.conv_transpose_output_length(3, 4, 2, "same", output_padding=0), "output_padding"),
    (lambda: A.conv_transpose_output_length(3, 3, 0), "strides"),
    (lambda: A.same_padding(0, 3), "input_length"),
    (lambda: A.receptive_field([A.conv_layer(3, 2, "same")]), "input_shape"),
    (lambda: A.receptive_field([A.conv_layer(5)], input_shape=3), "kernel_size"),
    (lambda: A.conv_layer(3, padding="causal"), "padding"),
])
def test_invalid_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# -- receptive fields against a brute-force impulse response ---------------------------------------------------


def impulse_supports(model, height: int, width: int, depthwise: bool = True) -> np.ndarray:
    """Push every one-pixel impulse through ``model``; return a boolean array [out_row, out_col, in_row, in_col].

    ``depthwise``: the impulses travel as the H*W channels of one image through depthwise layers, otherwise as a
    batch of H*W one-channel images. (TF 2.21's oneDNN Conv2D on CPU returns wrong values for a batch of 2 or more
    when the row stride is 1, the column stride is above 1 and the output is one column wide; batch 1 is right.)
    """
    impulses = np.eye(height * width, dtype="float32").reshape(height * width, height, width, 1)
    if depthwise:
        response = np.moveaxis(np.asarray(model(np.moveaxis(impulses[..., 0], 0, -1)[None]))[0], -1, 0)
    else:
        response = np.asarray(model(impulses))[..., 0]  # (H*W, out_h, out_w)
    return np.moveaxis(response.reshape(height, width, *response.shape[1:]) > 0, (0, 1), (2, 3))


def all_ones_network(windows, height, width, average_pooling=True, depthwise=True):
    """A linear network with all-ones kernels, no bias and no activation, following ``windows``."""
    layers = [keras.Input((height, width, height * width if depthwise else 1))]
    for w in windows:
        padding = w.padding[0] if isinstance(w.padding[0], str) else "valid"
        options = dict(strides=w.strides, padding=padding, dilation_rate=w.dilation_rate, use_bias=False)
        if w.name == "conv" and depthwise and w.strides[0] == w.strides[1]:
            layers.append(keras.layers.DepthwiseConv2D(w.kernel_size, depthwise_initializer="ones", **options))
        elif w.name == "conv" and depthwise:
            # DepthwiseConv2D refuses unequal strides on CPU ("Current implementation only supports equal length
            # strides in the row and column dimensions"); a grouped Conv2D, one group per channel, is the same map.
            channels = height * width
            layers.append(keras.layers.Conv2D(channels, w.kernel_size, groups=channels, kernel_initializer="ones",
                                              **options))
        elif w.name == "conv":
            layers.append(keras.layers.Conv2D(1, w.kernel_size, kernel_initializer="ones", **options))
        else:
            pool = keras.layers.AveragePooling2D if average_pooling else keras.layers.MaxPooling2D
            layers.append(pool(w.kernel_size, w.strides, padding))
    return keras.Sequential(layers)


def check_field_against_impulses(field: A.Field, supports: np.ndarray) -> int:
    """Every output's support lies in its predicted window, and equals it where the window is inside the input."""
    out_h, out_w, height, width = supports.shape
    assert field.output_shape == (out_h, out_w)
    exact = 0
    for row in range(out_h):
        for col in range(out_w):
            rows, cols = np.nonzero(supports[row, col])
            if not rows.size:  # every tap of a dilated kernel can land on padding: nothing to compare
                continue
            (top, bottom), (left, right) = field.window(row, col)
            assert top <= rows.min() and rows.max() < bottom and left <= cols.min() and cols.max() < right
            if top >= 0 and left >= 0 and bottom <= height and right <= width:
                assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (top, bottom, left, right)
                exact += 1
    return exact


windows = st.one_of(
    st.builds(lambda k, s, p: A.conv_layer(k, s, p), st.tuples(st.integers(1, 4), st.integers(1, 4)),
              st.tuples(st.integers(1, 3), st.integers(1, 3)), paddings),
    st.builds(lambda k, d, p: A.conv_layer(k, 1, p, d), st.integers(2, 3), st.integers(2, 3), paddings),
    st.builds(lambda k, s, p: A.pool_layer(k, s, p), st.integers(2, 3), st.integers(1, 3), paddings),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(windows, min_size=1, max_size=4), st.integers(14, 26), st.integers(14, 26), st.booleans())
# The case Hypothesis once drew that DepthwiseConv2D refuses on CPU (issue 18): unequal strides, kept for ever.
@example([A.conv_layer((2, 3), (1, 2), "valid")], 14, 15, True)
@example([A.conv_layer(3, (2, 1), "same"), A.pool_layer(2), A.conv_layer((1, 3), (1, 3), "valid")], 20, 26, False)
def test_receptive_field_matches_impulse_response(stack, height, width, average):
    try:
        field = A.receptive_field(stack, (height, width))
    except ValueError:
        field = None  # the stack does not fit this input: nothing to measure
    assume(field is not None)
    model = all_ones_network(stack, height, width, average)
    check_field_against_impulses(field, impulse_supports(model, height, width))
    assert A.receptive_field(model) == field  # the model walk reads the same geometry off the Keras layers


def test_umsl_three_convolutions_see_7x7_and_18x18_with_pooling():
    """UMSL's slide: three 3x3 convs on a 28x28 digit see 7x7; Chollet's model with two 2x2 pools sees 18x18."""
    plain = [A.conv_layer(3)] * 3
    pooled = [A.conv_layer(3), A.pool_layer(2), A.conv_layer(3), A.pool_layer(2), A.conv_layer(3)]
    for stack, size, shape in [(plain, 7, (22, 22)), (pooled, 18, (3, 3))]:
        field = A.receptive_field(stack, 28)
        assert field.size == (size, size) and field.output_shape == shape
        model = all_ones_network(stack, 28, 28, depthwise=False)  # real Conv2D layers, as on the slide
        supports = impulse_supports(model, 28, 28, depthwise=False)
        assert check_field_against_impulses(field, supports) == shape[0] * shape[1]


# -- the Keras model walk ---------------------------------------------------------------------------------------


def test_model_walk_covers_functional_nested_and_padding_layers():
    inputs = keras.Input((32, 30, 3))
    x = keras.layers.ZeroPadding2D(((1, 2), (0, 3)))(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.SeparableConv2D(4, (3, 5), dilation_rate=2, padding="same")(x)
    x = keras.layers.Cropping2D(1)(x)
    x = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.DepthwiseConv2D(3), keras.layers.MaxPooling2D()])(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    stack = [A.Window((1, 1), (1, 1), ((1, 2), (0, 3)), (1, 1)), A.conv_layer(3, 2, "same"),
             A.conv_layer((3, 5), 1, "same", 2), A.Window((1, 1), (1, 1), ((-1, -1), (-1, -1)), (1, 1)),
             A.conv_layer(3), A.pool_layer(2)]
    assert A.receptive_field(model) == A.receptive_field(stack, (32, 30))
    last_spatial = model.layers[-3].output.shape[1:3]
    assert A.receptive_field(model).output_shape == tuple(last_spatial)


def test_model_walk_refuses_branches_and_unknown_resampling():
    inputs = keras.Input((16, 16, 1))
    a, b = keras.layers.Conv2D(2, 3)(inputs), keras.layers.Conv2D(2, 3)(inputs)
    with pytest.raises(ValueError, match="chain"):
        A.receptive_field(keras.Model(inputs, keras.layers.Add()([a, b])))
    upsampling = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.UpSampling2D()])
    with pytest.raises(ValueError, match="UpSampling2D"):
        A.receptive_field(upsampling)


# -- animations (drawn from the same arithmetic) ----------------------------------------------------------------


def test_gallery_scenes_have_the_sizes_keras_computes():
    from cnnbook import animations

    scenes = animations.gallery()
    assert set(scenes) >= {"no padding", "same padding", "stride 2", "dilation 2", "transposed, stride 2",
                           "max pooling"}
    layers = {
        "no padding": (keras.layers.Conv2D(1, 3), 5),
        "same padding": (keras.layers.Conv2D(1, 3, padding="same"), 5),
        "stride 2": (keras.Sequential([keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(1, 3, strides=2)]), 5),
        "dilation 2": (keras.layers.Conv2D(1, 3, dilation_rate=2), 7),
        "transposed, stride 2": (keras.layers.Conv2DTranspose(1, 3, strides=2), 2),
        "max pooling": (keras.layers.MaxPooling2D(2), 4),
    }
    for name, (layer, size) in layers.items():
        scene = scenes[name]
        assert scene.output_shape == tuple(layer(np.zeros((1, size, size, 1), "float32")).shape[1:3]), name
        assert len(scene.windows) == len(scene.outputs) == scene.output_shape[0] * scene.output_shape[1]
        rows, cols = scene.cells.shape
        assert all(0 <= r < rows and 0 <= c < cols for window in scene.windows for r, c in window), name


@pytest.mark.parametrize("size, kernel, strides, padding, output_padding", [
    ((2, 3), 3, 2, "valid", None), ((3, 2), (2, 3), (2, 3), "same", None), (3, 3, 2, "same", 1),
    ((4, 3), 4, (3, 2), "valid", (2, 1)), (2, 1, 3, "valid", None), (3, 2, 2, "same", 1)])
def test_transposed_scene_is_the_direct_convolution_keras_computes(size, kernel, strides, padding, output_padding):
    """The drawn layout (input spread by the stride, padded) convolved with the flipped kernel = Conv2DTranspose."""
    from cnnbook import animations

    scene = animations.conv_transpose_scene(size, kernel, strides, padding, output_padding)
    rng = np.random.default_rng(0)
    kh, kw = A.pair(kernel, "kernel_size")
    x = rng.normal(size=A.pair(size, "input_shape")).astype("float32")
    w = rng.normal(size=(kh, kw)).astype("float32")
    grid = np.zeros(scene.cells.shape, "float32")
    grid[scene.cells == animations.INPUT] = x.ravel()
    direct = np.array([[np.sum(grid[r:r + kh, c:c + kw] * w[::-1, ::-1]) for c in range(scene.output_shape[1])]
                       for r in range(scene.output_shape[0])])
    layer = A.conv2d_transpose(1, kernel, strides, padding, output_padding=output_padding, use_bias=False)
    layer.build((None, *x.shape, 1))
    layer.set_weights([w.reshape(kh, kw, 1, 1)])
    np.testing.assert_allclose(np.asarray(layer(x[None, :, :, None]))[0, :, :, 0], direct, atol=1e-5)


class Keras310Conv2DTranspose(keras.layers.Conv2DTranspose):
    """Keras 3.10's constructor (Colab's stack): a 0 anywhere in ``output_padding`` is refused ("must be > 0")."""

    def __init__(self, *args, output_padding=None, **kwargs):
        if output_padding is not None and 0 in A.pair(output_padding, "output_padding"):
            raise ValueError("The `output_padding` argument must be a tuple of 2 integers. Received "
                             f"output_padding={output_padding}, including values {{0}} that do not satisfy `value > 0`")
        super().__init__(*args, output_padding=output_padding, **kwargs)


@pytest.mark.parametrize("refuses_zero", [False, True], ids=["keras-3.15", "keras-3.10"])
@pytest.mark.parametrize("size, kernel, strides, padding, output_padding, expected", [
    (4, 3, 2, "same", 0, (7, 7)), (4, 3, 2, "same", 1, (8, 8)), (3, 2, 3, "valid", (0, 2), (8, 10)),
    (5, 3, (2, 1), "valid", (1, 0), (12, 7)),
])
def test_conv2d_transpose_takes_output_padding_zero_on_keras_310_and_315(monkeypatch, refuses_zero, size, kernel,
                                                                          strides, padding, output_padding, expected):
    """Issue 18: Colab's Keras 3.10 refuses output_padding=0. Oracle: the same layer built by the newest Keras."""
    try:  # the oracle needs a Keras that takes the 0 itself (3.15); on the real 3.10 only the sizes are compared
        reference = keras.layers.Conv2DTranspose(1, kernel, strides, padding, output_padding=output_padding,
                                                 kernel_initializer="ones", use_bias=False)
    except ValueError:
        reference = None
    if refuses_zero:
        monkeypatch.setattr(keras.layers, "Conv2DTranspose", Keras310Conv2DTranspose)
        with pytest.raises(ValueError, match="must be|value > 0") if 0 in A.pair(output_padding, "p") else \
                contextlib.nullcontext():
            keras.layers.Conv2DTranspose(1, kernel, strides, padding, output_padding=output_padding)
    layer = A.conv2d_transpose(1, kernel, strides, padding, output_padding=output_padding,
                               kernel_initializer="ones", use_bias=False)
    assert type(layer) is keras.layers.Conv2DTranspose
    x = np.arange(size * size, dtype="float32").reshape(1, size, size, 1)
    assert tuple(layer.compute_output_shape(x.shape)[1:3]) == expected
    assert A.conv_transpose_output_shape(size, kernel, strides, padding, output_padding) == expected
    assert layer(x).shape[1:3] == expected
    if reference is not None:
        np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(reference(x)))


def test_conv2d_transpose_still_refuses_what_every_keras_refuses():
    with pytest.raises(ValueError):
        A.conv2d_transpose(1, 3, 2, output_padding=-1)


def test_a_scene_renders_to_an_inline_gif():
    from cnnbook import animations

    html = animations.gif_html(animations.animate(animations.pool_scene(4, 2)))
    assert html.startswith('<img src="data:image/gif;base64,R0lGODlh')  # base64 of "GIF89a"


def test_explorer_table_is_the_formula_and_the_page_only_looks_up():
    # oracle: the output-length formula written out here, floor((i + 2p - k_eff) / s) + 1
    from cnnbook import arithmetic as A
    table = A.explorer_table()
    for key, value in table["output_length"].items():
        i, k, s, p, d = map(int, key.split(","))
        span = k + (k - 1) * (d - 1)
        assert value == ((i + 2 * p - span) // s + 1 if i + 2 * p >= span else None), key
    html = A.explorer_html(table)
    assert '"28,3,1,0,1": 26' in html and '"5,7,1,0,1": null' in html
    assert "Math." not in html and "/ s" not in html     # the page does no arithmetic of its own


def test_captions_mention_padding_only_where_the_scene_has_some_and_are_readable():
    # oracle: the scenes' own cells (a pooling window of 2 on 4x4 has no padding; 'same' with k = 3 pads one zero)
    from cnnbook import animations

    assert animations.captions(animations.pool_scene(4, 2)) == ("input", "output")
    assert "zeros" in animations.captions(animations.conv_scene(5, 3, padding="same"))[0]
    from matplotlib.text import Text

    figure = animations.animate(animations.pool_scene(4, 2, values=np.arange(16.0).reshape(4, 4)))._fig
    sizes = [t.get_fontsize() * figure.dpi / 72 for t in figure.findobj(Text) if t.get_text()]
    assert min(sizes) >= 12, f"a text of the GIF is {min(sizes):.1f} px high; the page shows it at its own size"


def test_self_check_same_padding_of_7_with_kernel_3_stride_2_is_one_zero_each_side():
    # ch02 self-check 2 (corrected: there is no odd zero). Oracle: a real Keras layer whose kernel copies its first
    # tap, as in the lesson: output n shows the input cell n*s - left, or 0 where that tap is on padding.
    import keras

    for i, left in [(7, 1), (8, 0)]:
        layer = keras.layers.Conv2D(1, (1, 3), strides=(1, 2), padding="same", use_bias=False)
        layer.build((None, 1, i, 1))
        first_tap = np.zeros((1, 3, 1, 1), "float32")
        first_tap[0, 0] = 1.0
        layer.set_weights([first_tap])
        out = keras.ops.convert_to_numpy(layer(np.arange(1, i + 1, dtype="float32").reshape(1, 1, i, 1))).ravel()
        assert out[0] == (0 if left else 1)                  # the first window starts on a zero iff left == 1
        last_end = (len(out) - 1) * 2 - left + 3             # one past the last window's last cell
        assert A.same_padding(i, 3, 2) == A.Padding(left + last_end - i, left, last_end - i)
    assert A.same_padding(7, 3, 2) == A.Padding(2, 1, 1) and A.same_padding(8, 3, 2) == A.Padding(1, 0, 1)
