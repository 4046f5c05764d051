"""Checks used by the exercises' visible tests, and what their hidden cells hand in (scores come from the
trusted step the course's autograder runs, never from these: autograder/README.md explains grading).

Every check raises ``AssertionError`` with a message a student can act on, and returns None: nbgrader counts a test
cell as passed when it raises nothing, and would read a number shown by the cell's last line as partial credit.
"""

from __future__ import annotations

import numpy as np

# Keras is imported by the checks that need it, never here: chapter 1's exercise imports this module with NumPy alone.


def expect_array(actual, expected, what: str, atol: float = 1e-5) -> None:
    """Assert that ``actual`` is an array equal to ``expected`` within ``atol``; say how it differs (all chapters)."""
    expected = np.asarray(expected)
    if actual is None:
        raise AssertionError(f"{what}: got None — does your function end with `return`?")
    try:
        actual = np.asarray(actual, dtype="float64")
    except (TypeError, ValueError):
        raise AssertionError(f"{what}: expected a NumPy array, got {type(actual).__name__}") from None
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: your output has shape {actual.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what}: your output contains NaN or infinity")
    diff = np.abs(actual - expected)
    if diff.size and diff.max() > atol:
        where = np.unravel_index(int(diff.argmax()), diff.shape)
        raise AssertionError(
            f"{what}: wrong value at index {tuple(int(i) for i in where)}: yours {actual[where]:.6g}, "
            f"expected {expected[where]:.6g} ({int((diff > atol).sum())} of {diff.size} values differ)"
        )


def _outputs(model, x, training: bool = False) -> np.ndarray:
    """A model's outputs on ``x`` as a NumPy array on any Keras backend (torch's need detaching) (chapters 5-6)."""
    import keras

    return keras.ops.convert_to_numpy(model(x, training=training))


# ------------------------------------------------------------------------------------------- chapter 6: augmentation


def check_train_only_augmentation(model, base, images, seed: int = 0) -> None:
    """Check that ``model`` = augmentation + ``base``: inactive and deterministic at inference, active in training (ch. 6)."""
    import keras

    x = np.asarray(images, "float32")
    keras.utils.set_random_seed(seed)
    try:
        expected = _outputs(base, x)
        first = _outputs(model, x)
        second = _outputs(model, x)
        trained = [_outputs(model, x, training=True) for _ in range(2)]
    except NotImplementedError:
        raise AssertionError("your function still raises NotImplementedError: replace the stub with your code") from None
    except Exception as exc:
        raise AssertionError(f"calling your model raised {type(exc).__name__}: {exc}") from None
    judge_train_only(expected, first, second, trained)


def judge_train_only(expected, first, second, trained) -> None:
    """Say what is wrong with a train-only augmentation, from the base's output and the model's two at inference
    and two in training (chapter 6)."""
    if first.shape != expected.shape:
        raise AssertionError(f"your model's output has shape {first.shape[1:]}, the base model's "
                             f"{expected.shape[1:]}: put the augmentation block in front of the base model, do not "
                             "replace it")
    if not np.array_equal(first, second):
        raise AssertionError("model(x, training=False) gave two different answers: something random is active at "
                             "inference — use Keras Random* layers, which do nothing when training=False")
    if not np.allclose(first, expected, atol=1e-5):
        raise AssertionError("model(x, training=False) differs from the base model without augmentation: at "
                             "inference the augmentation block must pass images through unchanged, and the base "
                             "must be the one given")
    if all(np.allclose(t, expected, atol=1e-5) for t in trained):
        raise AssertionError("model(x, training=True) gave the same output as without augmentation: the "
                             "augmentation block does nothing in training — does it contain Random* layers?")


def check_aligned_pipeline(make_dataset, batch_size: int = 16, n: int = 100) -> None:
    """Check a student's ``make_dataset(x, y, augment, batch_size)`` keeps labels with images and augments (ch. 6).

    Image ``i`` is filled with the value ``i`` (plus a marker pixel) so its label can be read back from the pixels.
    """
    import tensorflow as tf

    x = np.broadcast_to(np.arange(n, dtype="float32")[:, None, None, None], (n, 8, 8, 1)).copy()
    y = np.arange(n)

    def augment(images, training=True):
        return images + 1000.0 if training else images  # a visible, label-preserving change

    try:
        ds = make_dataset(x, y, augment, batch_size)
    except NotImplementedError:
        raise AssertionError("make_dataset still raises NotImplementedError: replace the stub with your code") from None
    if not isinstance(ds, tf.data.Dataset):
        raise AssertionError(f"make_dataset should return a tf.data.Dataset, got {type(ds).__name__}")
    seen_images, seen_labels, sizes = [], [], []
    for element in ds:
        if not isinstance(element, tuple) or len(element) != 2:
            raise AssertionError("each element of your dataset should be a pair (images, labels)")
        images, labels = (np.asarray(t) for t in element)
        if images.ndim != 4:
            raise AssertionError(f"images in a batch should have 4 dimensions (batch, h, w, c), got {images.shape}: "
                                 "call .batch(batch_size)")
        sizes.append(len(labels))
        seen_images.append(images.reshape(len(images), -1).mean(axis=1))
        seen_labels.append(labels.ravel())
    if not sizes:
        raise AssertionError("your dataset gives no batches at all: build it from (x, y), then .batch(batch_size)")
    judge_pipeline(np.concatenate(seen_images), np.concatenate(seen_labels), np.asarray(sizes), batch_size, n)


def judge_pipeline(means, labels, sizes, batch_size: int, n: int, what: str = "") -> None:
    """Say what is wrong with a training pipeline, from its batches' sizes and each image's mean beside its label,
    image ``i`` holding the value ``i`` and the augmentation adding 1000 (chapter 6)."""
    where = f"{what}: " if what else ""
    if sizes.size == 0 or means.shape != labels.shape:
        raise AssertionError(f"{where}each element of your dataset should be a pair (images, labels) of batches: "
                             "call .batch(batch_size)")
    if sizes.sum() != len(labels) or (len(sizes) > 1 and sizes[:-1].max() != batch_size):
        raise AssertionError(f"{where}your batches hold {int(sizes[0])} images, expected batch_size={batch_size}")
    if sorted(labels.tolist()) != list(range(n)):
        raise AssertionError(f"{where}one pass over your dataset should give every one of the {n} examples exactly "
                             "once")
    if np.allclose(means, labels):
        raise AssertionError(f"{where}the images came out unchanged: map the augmentation over the training batches "
                             "(augment(images, training=True))")
    if not np.allclose(means, labels + 1000.0):
        wrong = int(np.sum(~np.isclose(means, labels + 1000.0)))
        raise AssertionError(f"{where}{wrong} of {n} images no longer sit next to their own label: shuffle (x, y) "
                             "pairs together in one Dataset, never x and y separately")
    if np.array_equal(labels, np.arange(n)):
        raise AssertionError(f"{where}the examples come out in their original order: shuffle the training data")


# ------------------------------------------------------------------------------------------- chapter 5 checks


def _zero_all_weights(model) -> None:
    """Set every weight of ``model`` to zero (chapter 5 checks of residual units and SE blocks)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([np.zeros_like(w) for w in weights])


def _build_block(block, input_shape, what: str, *args, **kwargs):
    """Call a student's block function on a Keras input and wrap it into a model (chapter 5)."""
    import keras

    x = keras.Input(shape=input_shape)
    try:
        y = block(x, *args, **kwargs)
    except NotImplementedError:
        raise  # the stub: the runner expects a student notebook to stop with exactly this error
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__} on an input of shape {input_shape}: {exc}") from None
    if y is None:
        raise AssertionError(f"{what} returned None — does your function end with `return`?")
    return keras.Model(x, y)


def check_params(model, expected: int, what: str, hint: str = "") -> None:
    """Assert that ``model`` has exactly ``expected`` parameters, saying by how much it differs (chapter 5)."""
    got = int(model.count_params())
    if got != expected:
        raise AssertionError(f"{what} has {got:,} parameters, expected {expected:,} ({got - expected:+,}){hint}")


def check_output_shape(model, expected: tuple, what: str) -> None:
    """Assert that ``model``'s per-example output shape equals ``expected`` (chapter 5)."""
    got = tuple(model.output_shape[1:])
    if got != tuple(expected):
        raise AssertionError(f"{what}: output shape {got}, expected {tuple(expected)}")


def inception_params(c_in: int, f1: int, f3r: int, f3: int, f5r: int, f5: int, fp: int) -> int:
    """Parameters of an Inception module with biases on every convolution (chapter 5)."""
    return (c_in * f1 + f1) + (c_in * f3r + f3r) + (9 * f3r * f3 + f3) + (c_in * f5r + f5r) + (25 * f5r * f5 + f5) \
        + (c_in * fp + fp)


def check_inception_module(inception_module, input_shape=(28, 28, 192), widths=(64, 96, 128, 16, 32, 32)) -> None:
    """Check a student's Inception module: output shape and parameter count for given branch widths (chapter 5)."""
    model = _build_block(inception_module, input_shape, "inception_module", *widths)
    h, w, c_in = input_shape
    f1, _, f3, _, f5, fp = widths
    check_output_shape(model, (h, w, f1 + f3 + f5 + fp), f"inception_module with widths {widths}")
    check_params(model, inception_params(c_in, *widths), f"inception_module with widths {widths} on {c_in} channels",
                 " — four branches: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool then 1x1, all with "
                 "padding='same', concatenated")
    if any(type(layer).__name__ == "AveragePooling2D" for layer in model.layers):
        raise AssertionError("inception_module: the pooling branch uses average pooling; GoogLeNet's uses "
                             "layers.MaxPooling2D(3, strides=1, padding='same')")
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    if _outputs(model, x).min() < 0:
        raise AssertionError("inception_module outputs negative values: give every convolution activation='relu'")


def check_residual_adds_input(residual_unit, input_shape=(8, 8, 16), seed: int = 0) -> None:
    """Check that a student's residual unit really adds its input: with all weights zero it passes x on (ch. 5)."""
    model = _build_block(residual_unit, input_shape, "residual_unit", input_shape[-1])
    check_output_shape(model, input_shape, f"residual_unit(x, filters={input_shape[-1]}) with stride 1")
    x = np.random.default_rng(seed).normal(size=(2, *input_shape)).astype("float32")
    threes = [layer for layer in model.layers if type(layer).__name__ == "Conv2D" and tuple(layer.kernel_size) == (3, 3)]
    if len(threes) != 2:
        raise AssertionError(f"residual_unit's branch has {len(threes)} 3x3 convolution(s); a basic unit has two, "
                             "each followed by batch normalisation")
    if _outputs(model, x).min() < 0:
        raise AssertionError("residual_unit outputs negative values: apply the last ReLU after the addition")
    if np.allclose(_outputs(model, x), np.maximum(x, 0), atol=1e-5):
        raise AssertionError("residual_unit returns relu(x) with random weights: the residual branch does nothing")
    _zero_all_weights(model)
    y = _outputs(model, x)
    if not (np.allclose(y, np.maximum(x, 0), atol=1e-5) or np.allclose(y, x, atol=1e-5)):
        raise AssertionError("with all its weights set to zero your residual unit should return relu(x) (the "
                             "branch gives 0, the skip connection gives x); it does not: add the unit's input to "
                             "the branch's output with layers.Add() before the last ReLU")


def check_resnet34(model, num_classes: int = 1000, input_shape=(224, 224, 3)) -> None:
    """Check a student's ResNet-34: input and output shapes and 21.8 M trainable parameters (chapter 5)."""
    if model is None:
        raise AssertionError("got None instead of a Keras model — does your function end with `return`?")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise AssertionError(f"your ResNet-34 takes inputs of shape {model.input_shape[1:]}, expected {input_shape}")
    check_output_shape(model, (num_classes,), "your ResNet-34")
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    trainable += 513 * (1000 - num_classes)  # the paper's figure is for the 1000-class head (512 x classes + bias)
    if round(trainable / 1e6, 1) != 21.8:
        raise AssertionError(f"your ResNet-34 has {trainable:,} trainable parameters with 1000 classes "
                             f"({trainable / 1e6:.2f} M); "
                             "He et al. report 21.8 M — check the stages (3, 4, 6, 3 units of 64, 128, 256, 512 "
                             "filters), the 7x7 stem and the 1x1 projection shortcuts where the shape changes")


def se_block_params(channels: int, ratio: int) -> int:
    """Parameters of a squeeze-and-excitation block with biases on both Dense layers (chapter 5)."""
    squeezed = channels // ratio
    return channels * squeezed + squeezed + squeezed * channels + channels


def check_se_block(se_block, input_shape=(7, 7, 64), ratio: int = 16, seed: int = 0) -> None:
    """Check a student's SE block: shape kept, parameter count, and x scaled by sigmoid(0) = 0.5 at zero weights."""
    model = _build_block(se_block, input_shape, "se_block", ratio=ratio)
    check_output_shape(model, input_shape, f"se_block(x, ratio={ratio})")
    check_params(model, se_block_params(input_shape[-1], ratio), f"se_block(x, ratio={ratio}) on {input_shape[-1]} "
                 "channels", " — squeeze with global average pooling, then Dense(channels // ratio, relu) and "
                 "Dense(channels, sigmoid)")
    _zero_all_weights(model)
    x = np.random.default_rng(seed).normal(size=(2, *input_shape)).astype("float32")
    if not np.allclose(_outputs(model, x), 0.5 * x, atol=1e-5):
        raise AssertionError("with zero weights every channel weight is sigmoid(0) = 0.5, so se_block should return "
                             "0.5 * x; it does not: multiply the input by the excitation (layers.Multiply)")


def check_param_budget(model, budget: int = 100_000) -> None:
    """Assert that ``model`` has fewer than ``budget`` parameters (chapter 5 model-quality exercise)."""
    if model is None:
        raise AssertionError("got None instead of a Keras model")
    got = int(model.count_params())
    if got >= budget:
        raise AssertionError(f"your model has {got:,} parameters; the budget is under {budget:,} — try a "
                             "GlobalAveragePooling2D head instead of Flatten + Dense, or fewer filters")


def model_accuracy(model, images, labels) -> float:
    """Accuracy of a trained classifier on raw uint8 images, adding the channel axis if its input needs one."""
    x = np.asarray(images, dtype="float32")
    if len(model.input_shape) == x.ndim + 1:
        x = x[..., None]
    probabilities = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(labels).ravel()))


# ------------------------------------------------------------------------------------ chapter 7: transfer learning


def _param_count(weights) -> int:
    """Number of scalars in a list of variables."""
    return int(sum(np.prod(v.shape) for v in weights))


def check_frozen_base_with_head(model, base, num_classes: int) -> None:
    """Assert ``model`` = frozen ``base`` + a new head with ``num_classes`` outputs; only the head trains (ch. 7)."""
    import keras

    if not isinstance(model, keras.Model):
        raise AssertionError(f"expected a keras.Model, got {type(model).__name__} — does your function end with "
                             "`return model`?")
    if model.output.shape[-1] != num_classes:
        raise AssertionError(f"your model has {model.output.shape[-1]} outputs; it needs one per class: {num_classes}")
    base_ids = {id(v) for v in base.weights}
    model_ids = {id(v) for v in model.weights}
    if not base_ids <= model_ids:
        raise AssertionError("your model does not contain the base's weights: build it on top of `base` "
                             "(e.g. x = base(inputs, training=False)), do not create a new network")
    still_training = [v.path for v in model.trainable_weights if id(v) in base_ids]
    if still_training:
        raise AssertionError(f"{len(still_training)} weights of the base are still trainable (e.g. "
                             f"{still_training[0]}): set base.trainable = False before training")
    head = [v for v in model.weights if id(v) not in base_ids]
    trainable = _param_count(model.trainable_weights)
    if trainable != _param_count(head):
        raise AssertionError(f"your model trains {trainable:,} parameters but its head has {_param_count(head):,}: "
                             "every head weight should train, every base weight should not")
    if trainable == 0:
        raise AssertionError("nothing in your model is trainable: the new head must be")


def check_unfreeze_top(unfreeze_top, backbone: str, n: int, learning_rate: float = 1e-5,
                       input_shape=(64, 64, 3)) -> None:
    """Run a student's ``unfreeze_top(model, base, n, learning_rate)`` on a fresh transfer model and check it (ch. 7).

    Oracle: :func:`cnnbook.transfer.unfreeze` on an identical model (top ``n`` layers, BN kept frozen); a
    training-mode pass must leave BN statistics unchanged; the model must be compiled again at ``learning_rate``.
    """
    import keras

    from cnnbook import transfer

    def fresh():
        keras.utils.set_random_seed(0)
        base = transfer.backbone(backbone, input_shape)
        model = transfer.attach_head(base, 3)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return model, base

    model, base = fresh()
    old_optimizer = model.optimizer
    returned = unfreeze_top(model, base, n, learning_rate)  # a stub's NotImplementedError passes through as it is
    if returned is not model:
        raise AssertionError("unfreeze_top must return the model it was given (after recompiling it)")
    ref_model, ref_base = fresh()
    expected = transfer.unfreeze(ref_base, -n, verbose=False)
    bn_open = [l.name for l in base.layers if transfer.is_batch_norm(l) and l.trainable]
    if bn_open:
        raise AssertionError(f"{len(bn_open)} BatchNormalization layers are trainable (e.g. {bn_open[0]}): keep them "
                             "frozen (layer.trainable = False) so they stay in inference mode while fine-tuning")
    got = transfer.param_counts(base)
    if got != expected:
        raise AssertionError(f"after unfreezing the top {n} layers of {backbone} the base should have "
                             f"{expected['trainable']:,} trainable and {expected['non_trainable']:,} non-trainable "
                             f"parameters; yours has {got['trainable']:,} and {got['non_trainable']:,}")
    x = np.random.default_rng(0).uniform(0, 255, (2, *input_shape)).astype("float32")
    if not transfer.batch_norm_in_inference(model, x):
        raise AssertionError("a training step changed BatchNormalization statistics: keep BN layers frozen")
    if model.optimizer is old_optimizer or not getattr(model, "compiled", True):
        raise AssertionError("the model was not compiled again: changes to `trainable` take effect only after "
                             "model.compile(...)")
    lr = float(np.asarray(model.optimizer.learning_rate))
    if not np.isclose(lr, learning_rate, rtol=1e-3):
        raise AssertionError(f"your optimizer's learning rate is {lr:g}; fine-tune with the given {learning_rate:g}")


# --------------------------------------------------------------------------- chapter 3 exercises (counting)


def _student_call(fn, what, *args):
    """Call a student's function; turn a stub, a crash or a missing return into an AssertionError (chapter 3)."""
    try:
        result = fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{what} still raises NotImplementedError: replace the stub with your code") from None
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from None
    if result is None:
        raise AssertionError(f"{what} returned None — does your function end with `return`?")
    return result


def check_budget_model(model, input_shape, classes: int, max_params: int, max_macs: int, min_convs: int):
    """Assert that a designed model has the right input and output and fits the budgets; return its counts (ch. 3)."""
    import keras

    from cnnbook.counting import count

    if not isinstance(model, keras.Model):
        raise AssertionError(f"expected a Keras model, got {type(model).__name__}")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise AssertionError(f"the model's input is {model.input_shape[1:]}, expected {tuple(input_shape)}")
    if tuple(model.output_shape[1:]) != (classes,):
        raise AssertionError(f"the model's output is {model.output_shape[1:]}, expected ({classes},): "
                             f"end with Dense({classes}, activation='softmax')")
    counts = count(model)
    if counts.not_counted:
        raise AssertionError(f"the counter cannot count these layers: {counts.not_counted}; use standard layers")
    convs = sum(t in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D") for t in counts.table["type"])
    if convs < min_convs:
        raise AssertionError(f"your model has {convs} convolutional layers; use at least {min_convs}")
    if counts.params > max_params:
        raise AssertionError(f"your model has {counts.params:,} parameters; the budget is {max_params:,} — try a "
                             "GlobalAveragePooling2D head instead of Flatten, or separable convolutions")
    if counts.macs > max_macs:
        heavy = counts.table.sort_values("macs", ascending=False).iloc[0]
        raise AssertionError(f"your model needs {counts.macs:,} MACs; the budget is {max_macs:,} — its most "
                             f"expensive layer is {heavy['layer']} ({int(heavy['macs']):,} MACs): downsample "
                             "earlier (strides or pooling), or use fewer filters at full resolution")
    return counts


# ---------------------------------------------------------------------------------------- chapter 9 (visible checks)


def check_pairwise_iou(pairwise_iou) -> None:
    """Check a student's pairwise IoU on worked, disjoint, degenerate and random boxes (chapter 9)."""
    from cnnbook import detection

    a = np.array([[0, 0, 0.5, 0.5], [0.1, 0.1, 0.2, 0.2]])
    b = np.array([[0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 0.9, 0.9], [0.3, 0.3, 0.3, 0.3]])
    out = np.asarray(_student_call(pairwise_iou, "pairwise_iou", a, b))
    if out.shape != (2, 3):
        raise AssertionError(f"pairwise_iou of 2 and 3 boxes returned shape {out.shape}; it must be (2, 3), "
                             "one row per box of boxes_a")
    if abs(out[0, 0] - 1 / 7) > 1e-6:
        raise AssertionError(f"pairwise_iou([0, 0, .5, .5], [.25, .25, .75, .75]) = {out[0, 0]:.4f}, expected "
                             f"{1 / 7:.4f} (overlap 0.0625 / union 0.4375)")
    if abs(out[1, 1]) > 1e-9 or abs(out[0, 1]) > 1e-9:
        raise AssertionError(f"disjoint boxes got IoU {out[1, 1]:.4f} and {out[0, 1]:.4f}; expected 0 — clamp the "
                             "overlap's width and height at 0 before multiplying them")
    expect_array(out, detection.pairwise_iou(a, b), "pairwise_iou on the worked boxes")
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 0.7, size=(9, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.05, 0.3, size=(9, 2))], axis=1)
    expect_array(np.asarray(_student_call(pairwise_iou, "pairwise_iou", boxes[:4], boxes[4:])),
                 detection.pairwise_iou(boxes[:4], boxes[4:]), "pairwise_iou on random boxes")


def check_nms(nms) -> None:
    """Check a student's non-max suppression on a worked case and random boxes (chapter 9)."""
    from cnnbook import detection

    boxes = np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.4], [0.6, 0.6, 0.9, 0.9]])
    kept = np.asarray(_student_call(nms, "nms", boxes, np.array([0.9, 0.8, 0.7]), 0.5)).tolist()
    if kept != [0, 2]:
        raise AssertionError(f"nms on the worked case kept {kept}, expected [0, 2]: the second box overlaps the "
                             "first by IoU 0.8 > 0.5 and must go, the third overlaps nothing and stays")
    kept = np.asarray(_student_call(nms, "nms", boxes, np.array([0.7, 0.8, 0.9]), 0.5)).tolist()
    if kept != [2, 1]:
        raise AssertionError(f"nms with scores 0.7, 0.8, 0.9 kept {kept}, expected [2, 1]: start from the best "
                             "score, not from the first box")
    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 0.7, size=(30, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.1, 0.3, size=(30, 2))], axis=1)
    scores = rng.uniform(size=30)
    for threshold in (0.3, 0.5):
        kept = np.asarray(_student_call(nms, "nms", boxes, scores, threshold))
        expected = detection.non_max_suppression(boxes, scores, threshold)
        if kept.tolist() != expected.tolist():
            raise AssertionError(f"nms on 30 random boxes (threshold {threshold}) kept {kept.tolist()}, expected "
                                 f"{expected.tolist()}: keep the best box, remove boxes with IoU above the "
                                 "threshold with it, repeat")

# ------------------------------------------------------------------- hidden tests: hand outputs in (autograder/PROTOCOL.md)


def grader_cases(name: str) -> list:
    """The grader's cases for a hidden test, a list of argument lists, read with ``cnnbook.submit`` (chapters 2-3)."""
    import json

    from cnnbook import submit

    return json.loads(submit.load_inputs(name)["json"].tobytes().decode("utf-8"))


def answers_of(fn, cases) -> dict:
    """``fn(*case)`` for every case, as arrays for ``save_outputs`` (NaN where it raised ValueError) (chapters 2-3)."""
    out = {}
    for i, case in enumerate(cases):
        try:
            value = fn(*case)
        except ValueError:
            value = float("nan")
        out[f"out_{i}"] = np.asarray(value, dtype="float64")
    return out


def conv2d_outputs(conv2d, cases: dict) -> dict:
    """``conv2d`` on the grader's cases (arrays x_i, w_i, b_i, stride_i, padding_i), for ``save_outputs`` (ch. 1)."""
    n = sum(key.startswith("x_") for key in cases)
    return {f"out_{i}": conv2d(cases[f"x_{i}"], cases[f"w_{i}"], cases.get(f"b_{i}"),
                               stride=int(cases[f"stride_{i}"]), padding=("valid", "same")[int(cases[f"padding_{i}"])])
            for i in range(n)}


def grader_models(name: str) -> list:
    """The grader's random models for a hidden test, rebuilt from their configurations (chapter 3)."""
    import keras

    return [keras.models.model_from_json(config) for config in grader_cases(name)]


def pipeline_outputs(make_dataset, batch_size: int, n: int) -> dict:
    """One pass of ``make_dataset`` over ``n`` marker images (image i filled with i), for ``save_outputs`` (ch. 6).

    The augmentation adds 1000 in training, so the grader can tell augmented images and read each label back."""
    x = np.broadcast_to(np.arange(n, dtype="float32")[:, None, None, None], (n, 8, 8, 1)).copy()

    def augment(images, training=True):
        return images + 1000.0 if training else images

    means, labels, sizes = [], [], []
    for images, batch_labels in make_dataset(x, np.arange(n), augment, batch_size):
        images, batch_labels = np.asarray(images), np.asarray(batch_labels).ravel()
        means.append(images.reshape(len(images), -1).mean(axis=1))
        labels.append(batch_labels)
        sizes.append(len(batch_labels))
    return {"means": np.concatenate(means), "labels": np.concatenate(labels), "sizes": np.array(sizes)}
