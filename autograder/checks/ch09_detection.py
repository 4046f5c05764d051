"""Trusted checks of chapter 9's exercises (autograder/PROTOCOL.md): IoU, NMS, a box regressor and a U-Net.

Oracles: cnnbook.detection's pairwise_iou and non_max_suppression (tested against pycocotools and
tf.image.non_max_suppression in tests/test_detection.py) on inputs the grader draws here, and canvases made in this
process from the held-out MNIST digits of autograder/data (never from the students' sample) for the two models.
"""

import numpy as np
from autograder import trusted

from cnnbook import canvases, detection

ASSIGNMENT = "ch09_detection"
BUDGET = 200_000
HELDOUT_CANVASES = 300


def _boxes(rng, n, min_size=0.02):
    corner = rng.uniform(0, 0.9, size=(n, 2))
    return np.concatenate([corner, np.minimum(corner + rng.uniform(min_size, 0.5, size=(n, 2)), 1)], axis=1)


def iou_inputs() -> dict:
    """Random boxes, disjoint and nested pairs, degenerate (zero-area) boxes and an empty side."""
    rng = np.random.default_rng(2026)
    cases = [(_boxes(rng, 17), _boxes(rng, 11)),
             (np.array([[0, 0, 0.2, 0.2], [0.1, 0.1, 0.15, 0.15]]), np.array([[0.5, 0.5, 0.9, 0.9], [0, 0, 1, 1]])),
             (np.array([[0.3, 0.3, 0.3, 0.3], [0.2, 0.2, 0.2, 0.6]]), np.array([[0.3, 0.3, 0.3, 0.3], [0, 0, 1, 1]])),
             (np.array([[0.0, 0.0, 0.5, 0.5]]), np.array([[0.5, 0.0, 1.0, 0.5], [0.6, 0.6, 0.7, 0.7]]))]
    return {f"{side}{i}": boxes for i, pair in enumerate(cases) for side, boxes in zip("ab", pair)}


def nms_inputs() -> dict:
    """Clusters of overlapping boxes at three thresholds, with distinct scores."""
    rng = np.random.default_rng(7)
    out = {}
    for i, threshold in enumerate((0.3, 0.5, 0.7)):
        centres = rng.uniform(0.2, 0.8, size=(5, 2))
        jitter = np.repeat(centres, 8, axis=0) + rng.normal(0, 0.04, size=(40, 2))
        half = rng.uniform(0.05, 0.15, size=(40, 2))
        out[f"boxes{i}"] = np.concatenate([jitter - half, jitter + half], axis=1)
        out[f"scores{i}"] = rng.permutation(np.linspace(0.05, 0.95, 40))
        out[f"threshold{i}"] = np.array(threshold)
    return out


def check_iou(art: trusted.Artifacts) -> None:
    cases, outputs = art.inputs("pairwise_iou"), art.outputs("pairwise_iou")
    for i in range(len(cases) // 2):
        a, b = cases[f"a{i}"], cases[f"b{i}"]
        if f"iou{i}" not in outputs:
            raise AssertionError(f"no output for the grader's case {i}: the hidden test saves pairwise_iou's result")
        trusted.expect_array(outputs[f"iou{i}"], detection.pairwise_iou(a, b),
                             f"pairwise_iou on the grader's case {i} ({len(a)} x {len(b)} boxes: "
                             + ("random" if i == 0 else "disjoint, nested, degenerate or touching") + ")")


def check_nms(art: trusted.Artifacts) -> None:
    cases, outputs = art.inputs("nms"), art.outputs("nms")
    for i in range(len(cases) // 3):
        expected = detection.non_max_suppression(cases[f"boxes{i}"], cases[f"scores{i}"], float(cases[f"threshold{i}"]))
        got = np.asarray(outputs.get(f"keep{i}", np.array([-1]))).reshape(-1)
        if got.tolist() != expected.tolist():
            raise AssertionError(f"nms on the grader's 40 boxes at IoU threshold {float(cases[f'threshold{i}'])} kept "
                                 f"{got.tolist()}, expected {expected.tolist()}")


def heldout_canvases(objects):
    x, y = trusted.heldout("mnist")
    return canvases.make_canvases(x, y, HELDOUT_CANVASES, objects=objects, seed=90210)


def box_miou(model) -> float:
    """Mean IoU of a loaded box regressor on single-digit canvases of held-out digits."""
    data = heldout_canvases((1, 1))
    boxes, _ = data.single()
    out = trusted.predict(model, data.images)
    if out.shape != (len(boxes), 4):
        raise AssertionError(f"box_model returns shape {out.shape[1:]} per canvas; it must return 4 numbers, "
                             "(x_min, y_min, x_max, y_max) normalised to 0-1")
    return float(detection.iou(out, boxes).mean())


def unet_miou(model) -> float:
    """Mean IoU over the 11 mask classes of a loaded U-Net on canvases of held-out digits."""
    data = heldout_canvases((1, 3))
    out = trusted.predict(model, data.images)
    if out.shape != (len(data), 64, 64, 11):
        raise AssertionError(f"unet returns shape {out.shape[1:]} per canvas; it must return (64, 64, 11): "
                             "11 class probabilities per pixel")
    return detection.mean_iou(data.masks, out.argmax(-1), 11)


def _within_budget(task):
    return lambda model: trusted.expect_budget(model, max_params=BUDGET - 1, what=task)


#: Layers that shrink a feature map: what a skip connection has to span.
DOWNSAMPLING = ("MaxPooling2D", "AveragePooling2D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D")


def _downsamples(layer) -> bool:
    return type(layer).__name__ in DOWNSAMPLING and max(layer.strides) > 1   # pooling layers have strides too


def skip_connections(model) -> int:
    """Concatenate layers that join a feature map with one computed from it through a downsampling (chapter 9).

    Read from the loaded model's graph: a map joined with itself, or with a map computed from it at the same
    resolution only (``Concatenate()([x, conv(x)])``), is not a U-Net's skip connection.
    """
    def reaches(layer, target, crossed, seen):  # is target an ancestor of layer, with a downsampling between?
        if layer is target:
            return crossed
        crossed = crossed or _downsamples(layer)
        if (id(layer), crossed) in seen:
            return False
        seen.add((id(layer), crossed))
        return any(reaches(parent, target, crossed, seen) for parent in trusted.inbound(layer))

    joins = [trusted.inbound(layer) for layer in model.layers if type(layer).__name__ == "Concatenate"]
    return sum(any(a is not b and reaches(a, b, False, set()) for a in inputs for b in inputs) for inputs in joins)


def expect_unet(model) -> None:
    """The saved unet is under budget and is a U-Net: it upsamples with Conv2DTranspose and has skip connections."""
    _within_budget("unet")(model)
    kinds = [type(layer).__name__ for layer in model.layers]
    skips = skip_connections(model)
    if kinds.count("Conv2DTranspose") < 2 or skips < 2:
        raise AssertionError(f"your unet has {kinds.count('Conv2DTranspose')} Conv2DTranspose layers and {skips} "
                             f"skip connections ({kinds.count('Concatenate')} Concatenate layers); a U-Net upsamples "
                             "twice and, after each upsampling, concatenates the encoder's feature map of the same "
                             "size, the one saved before the pooling (the skip connections): "
                             "layers.Concatenate()([x, skip])")


def _band(task, metric, expect, i, advice):
    return trusted.band_check(ASSIGNMENT, task, i, metric, expect=expect,
                              message=f"{task}: mean IoU {{value:.3f}} on the grader's held-out canvases; band "
                                      f"{{band}} needs {{level:.3f}} — {advice}")


CHECKS = {"test_pairwise_iou": check_iou, "test_nms": check_nms}
CHECKS.update({f"test_box_band{i + 1}": _band("box_model", box_miou, _within_budget("box_model"), i,
                                              "read the flattened feature map (not a global average) and train a "
                                              "few epochs more") for i in range(2)})
CHECKS.update({f"test_unet_band{i + 1}": _band("unet", unet_miou, expect_unet, i,
                                               "add the skip connections (Concatenate) and train a few epochs more")
               for i in range(2)})
INPUTS = {"pairwise_iou": iou_inputs, "nms": nms_inputs}

TASKS = {
    "box_model": trusted.QualityTask(
        cells=("imports", "box_bands", "box_model"), artifact="box_model", metric=box_miou,
        fixed=(0.55,), derive_top=True,
        weak={"box_model": "box_model = keras.Sequential([keras.Input((64, 64, 1)), layers.Flatten(), "
                           "layers.Dense(4, activation='sigmoid')])\nbox_model.compile('adam', 'mse')\n"
                           "box_model.fit(one_train.images[..., None] / 255, boxes_train, epochs=2, verbose=0)\n"},
        weak_name="a linear model on the raw pixels, two epochs", unit="mean IoU"),
    "unet": trusted.QualityTask(
        cells=("imports", "unet_bands", "unet"), artifact="unet", metric=unet_miou,
        fixed=(0.15,), derive_top=True,
        weak={"unet": "unet = keras.Sequential([keras.Input((64, 64, 1)), layers.Rescaling(1 / 255), "
                      "layers.Conv2D(11, 3, padding='same', activation='softmax')])\n"
                      "unet.compile('adam', 'sparse_categorical_crossentropy')\n"
                      "unet.fit(train.images[..., None], train.masks, epochs=1, verbose=0)\n"},
        weak_name="one 3x3 convolution, no encoder, one epoch", unit="mean IoU"),
}
