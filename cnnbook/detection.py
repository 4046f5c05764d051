"""Boxes, IoU, grid encoding, non-max suppression, average precision and segmentation metrics (chapter 9).

Boxes are NumPy arrays whose last axis holds four numbers, normalised to the image size (0 to 1):
``"corners"`` is (x_min, y_min, x_max, y_max) and ``"centers"`` is (x_center, y_center, width, height).
Every function here is plain NumPy, so it runs the same on every Keras backend; :func:`grid_loss` uses
``keras.ops``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = ("corners", "centers")
#: COCO's ten IoU thresholds 0.50, 0.55, ..., 0.95 (mAP@[.5:.95]), as pycocotools builds them.
COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: The error types of :func:`error_types`, in the order the figure draws them.
ERROR_TYPES = ("correct", "localization", "duplicate", "wrong class", "background", "missed")


# ------------------------------------------------------------------------------------------------- box formats


def _boxes(boxes, name: str = "boxes") -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise ValueError(f"{name} must have 4 numbers on the last axis, got shape {array.shape}")
    return array


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"box format {fmt!r} is not one of {FORMATS}")
    return fmt


def to_corners(boxes, fmt: str = "centers") -> np.ndarray:
    """Return boxes in (x_min, y_min, x_max, y_max) from ``fmt`` (chapter 9)."""
    boxes = _boxes(boxes)
    if _check_format(fmt) == "corners":
        return boxes
    centre, size = boxes[..., :2], boxes[..., 2:]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def to_centers(boxes, fmt: str = "corners") -> np.ndarray:
    """Return boxes in (x_center, y_center, width, height) from ``fmt`` (chapter 9)."""
    boxes = _boxes(boxes)
    if _check_format(fmt) == "centers":
        return boxes
    low, high = boxes[..., :2], boxes[..., 2:]
    return np.concatenate([(low + high) / 2, high - low], axis=-1)


def box_area(boxes, fmt: str = "corners") -> np.ndarray:
    """Return the area of each box, 0 for a degenerate one (chapter 9)."""
    corners = to_corners(boxes, fmt)
    size = np.clip(corners[..., 2:] - corners[..., :2], 0, None)
    return size[..., 0] * size[..., 1]


def pairwise_iou(boxes_a, boxes_b, fmt: str = "corners") -> np.ndarray:
    """Return the (N, M) intersection over union of every box of ``boxes_a`` (N, 4) with every box of ``boxes_b`` (ch. 8).

    Disjoint boxes have IoU 0 (the overlap's width and height are clamped at 0); two boxes of area 0 have IoU 0.
    """
    a = to_corners(_boxes(boxes_a, "boxes_a").reshape(-1, 4), fmt)
    b = to_corners(_boxes(boxes_b, "boxes_b").reshape(-1, 4), fmt)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(high - low, 0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def iou(box_a, box_b, fmt: str = "corners") -> np.ndarray:
    """Return the IoU of matching pairs of boxes (..., 4) (chapter 9)."""
    a, b = np.broadcast_arrays(_boxes(box_a), _boxes(box_b))
    flat = [pairwise_iou(x[None], y[None], fmt)[0, 0] for x, y in zip(a.reshape(-1, 4), b.reshape(-1, 4))]
    return np.array(flat).reshape(a.shape[:-1])


# ---------------------------------------------------------------------------------------- grid (YOLO-style) targets


def encode_grid(boxes, labels, grid_size: int, anchors, num_classes: int) -> np.ndarray:
    """Encode one image's corner boxes and labels as a (S, S, A, 5 + C) YOLO-style target (chapter 9).

    Each box goes to the cell that holds its centre and to the anchor (w, h) of best shape IoU; the target holds
    objectness 1, the centre's offset in the cell (0-1), log(w / anchor_w), log(h / anchor_h) and a one-hot class.
    When two boxes claim the same cell and anchor, the first keeps it.
    """
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    target = np.zeros((grid_size, grid_size, len(anchors), 5 + num_classes), np.float32)
    centres = to_centers(_boxes(boxes).reshape(-1, 4))
    for (cx, cy, w, h), label in zip(centres, np.asarray(labels).reshape(-1)):
        col, row = min(int(cx * grid_size), grid_size - 1), min(int(cy * grid_size), grid_size - 1)
        shape_iou = (np.minimum(w, anchors[:, 0]) * np.minimum(h, anchors[:, 1])
                     / (w * h + anchors[:, 0] * anchors[:, 1] - np.minimum(w, anchors[:, 0]) * np.minimum(h, anchors[:, 1])))
        k = int(np.argmax(shape_iou))
        if target[row, col, k, 0] == 1:
            continue
        target[row, col, k, :5] = (1, cx * grid_size - col, cy * grid_size - row,
                                   np.log(w / anchors[k, 0]), np.log(h / anchors[k, 1]))
        target[row, col, k, 5 + int(label)] = 1
    return target


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def decode_grid(grid, anchors, from_logits: bool = True):
    """Return (boxes (S*S*A, 4) corners, scores, classes) from a (S, S, A, 5 + C) grid (chapter 9).

    ``from_logits=True`` reads a network's raw output (sigmoid for objectness and offsets, softmax for classes);
    ``False`` reads an :func:`encode_grid` target. The score is objectness times the best class probability.
    """
    grid = np.asarray(grid, np.float64)
    size, _, count, _ = grid.shape
    anchors = np.asarray(anchors, np.float64).reshape(count, 2)
    objectness, offsets, log_scale, classes = grid[..., 0], grid[..., 1:3], grid[..., 3:5], grid[..., 5:]
    if from_logits:
        objectness, offsets = _sigmoid(objectness), _sigmoid(offsets)
        classes = np.exp(classes - classes.max(-1, keepdims=True))
        classes = classes / classes.sum(-1, keepdims=True)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    cx = (cols[..., None] + offsets[..., 0]) / size
    cy = (rows[..., None] + offsets[..., 1]) / size
    wh = anchors * np.exp(log_scale)
    boxes = to_corners(np.stack([cx, cy, wh[..., 0], wh[..., 1]], axis=-1))
    scores = objectness * classes.max(-1)
    return boxes.reshape(-1, 4), scores.reshape(-1), classes.argmax(-1).reshape(-1)


def grid_loss(box_weight: float = 5.0, positive_weight: float = 5.0):
    """Return a Keras loss for raw (S, S, A, 5 + C) grid outputs against :func:`encode_grid` targets (chapter 9).

    Binary cross-entropy on objectness everywhere (cells with an object weighted ``positive_weight``), and, where
    there is an object, squared error on the offsets (after a sigmoid) and log-scales, plus the class cross-entropy.
    """
    from keras import ops

    def loss(y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        present = y_true[..., 0]
        objectness = ops.binary_crossentropy(present, y_pred[..., 0], from_logits=True)
        objectness = objectness * (1 + (positive_weight - 1) * present)
        offsets = ops.sum(ops.square(ops.sigmoid(y_pred[..., 1:3]) - y_true[..., 1:3]), axis=-1)
        scales = ops.sum(ops.square(y_pred[..., 3:5] - y_true[..., 3:5]), axis=-1)
        classes = ops.categorical_crossentropy(y_true[..., 5:], y_pred[..., 5:], from_logits=True)
        per_anchor = objectness + present * (box_weight * (offsets + scales) + classes)
        return ops.sum(ops.reshape(per_anchor, (ops.shape(per_anchor)[0], -1)), axis=-1)

    return loss


def smooth_l1(error, beta: float = 1.0) -> np.ndarray:
    """Return Fast R-CNN's smooth L1 loss of each error: ``0.5 x² / beta`` below ``beta``, ``|x| - beta / 2`` above (ch. 8)."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    error = np.abs(np.asarray(error, np.float64))
    return np.where(error < beta, 0.5 * error ** 2 / beta, error - 0.5 * beta)


def focal_loss(p, y, gamma: float = 2.0, alpha: float = 0.25) -> np.ndarray:
    """Return RetinaNet's binary focal loss ``-alpha_t (1 - p_t)^gamma log(p_t)`` per example (Lin et al.; chapter 9).

    ``p`` is the predicted probability of class 1 (0 < p < 1), ``y`` the label (0 or 1); ``p_t`` is the probability
    given to the true label, ``alpha_t`` is ``alpha`` for y = 1 and ``1 - alpha`` for y = 0. ``gamma = 0`` and
    ``alpha = 0.5`` give half the binary cross-entropy.
    """
    p, y = np.asarray(p, np.float64), np.asarray(y)
    p_true = np.where(y == 1, p, 1 - p)
    weight = np.where(y == 1, alpha, 1 - alpha)
    return -weight * (1 - p_true) ** gamma * np.log(p_true)


# ------------------------------------------------------------------------------------------- non-max suppression


def non_max_suppression(boxes, scores, iou_threshold: float = 0.5, score_threshold: float = -np.inf,
                        max_output: int | None = None, classes=None) -> np.ndarray:
    """Return the indices of the boxes kept by greedy non-max suppression, best score first (chapter 9).

    Boxes scoring at most ``score_threshold`` are dropped; then, repeatedly, the best remaining box is kept and every
    box whose IoU with it is above ``iou_threshold`` is removed. With ``classes``, boxes of different classes never
    suppress each other.
    """
    boxes = _boxes(boxes).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores: give one score per box")
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] > score_threshold]
    same_class = (np.ones((len(boxes), len(boxes)), bool) if classes is None
                  else np.asarray(classes).reshape(-1)[:, None] == np.asarray(classes).reshape(-1)[None, :])
    overlaps = pairwise_iou(boxes, boxes)
    keep, removed = [], np.zeros(len(boxes), bool)
    for index in order:
        if removed[index]:
            continue
        keep.append(index)
        if max_output is not None and len(keep) >= max_output:
            break
        removed |= (overlaps[index] > iou_threshold) & same_class[index]
    return np.array(keep, dtype=np.int64)


# ------------------------------------------------------------------------------------------- average precision


def match_detections(det_boxes, det_scores, det_labels, gt_boxes, gt_labels, iou_threshold: float = 0.5):
    """Return, per detection of one image, whether it is a true positive at ``iou_threshold`` (chapter 9).

    COCO's greedy rule: detections in decreasing score take the unmatched ground-truth box of their class with the
    highest IoU, if that IoU is at least the threshold; a second detection of a matched object is a false positive.
    """
    det_boxes, gt_boxes = _boxes(det_boxes).reshape(-1, 4), _boxes(gt_boxes).reshape(-1, 4)
    det_labels, gt_labels = np.asarray(det_labels).reshape(-1), np.asarray(gt_labels).reshape(-1)
    overlaps = pairwise_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    hits = np.zeros(len(det_boxes), bool)
    for d in np.argsort(-np.asarray(det_scores, np.float64).reshape(-1), kind="mergesort"):
        candidates = np.where(~taken & (gt_labels == det_labels[d]), overlaps[d], -1.0)
        if len(candidates) and candidates.max() >= min(iou_threshold, 1 - 1e-10):
            best = int(np.argmax(candidates))
            taken[best], hits[d] = True, True
    return hits


def precision_recall(hits, scores, num_ground_truth: int) -> tuple[np.ndarray, np.ndarray]:
    """Return precision and recall after each detection, in decreasing score (chapter 9)."""
    order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="mergesort")
    true_positives = np.cumsum(np.asarray(hits, bool).reshape(-1)[order])
    ranks = np.arange(1, len(order) + 1)
    return true_positives / ranks, true_positives / max(num_ground_truth, 1)


def average_precision(precision, recall, method: str = "coco") -> float:
    """Return the area under a precision-recall curve, interpolated as COCO (101 points) or VOC 2007 (11) (ch. 8).

    Both take, at each recall level r, the highest precision reached at a recall of at least r (0 if none), and
    average over the levels: r = 0, 0.01, ..., 1 for ``"coco"``, r = 0, 0.1, ..., 1 for ``"voc11"`` (Géron's rule).
    """
    precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    levels = {"coco": np.linspace(0, 1, 101), "voc11": np.linspace(0, 1, 11)}.get(method)
    if levels is None:
        raise ValueError(f"method {method!r} is not 'coco' or 'voc11'")
    if len(precision) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    if method == "voc11":
        return float(np.mean([envelope[recall >= r].max() if (recall >= r).any() else 0.0 for r in levels]))
    index = np.searchsorted(recall, levels, side="left")
    return float(np.mean(np.where(index < len(envelope), envelope[np.minimum(index, len(envelope) - 1)], 0.0)))


def evaluate(detections, ground_truths, num_classes: int, iou_thresholds=COCO_THRESHOLDS,
             method: str = "coco") -> np.ndarray:
    """Return AP per (IoU threshold, class) over a set of images; NaN for a class without ground truth (chapter 9).

    ``detections``: per image (boxes (k, 4), scores (k,), labels (k,)); ``ground_truths``: per image
    (boxes (m, 4), labels (m,)). mAP is ``np.nanmean`` of a row (one threshold) or of the whole table.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} images of detections but {len(ground_truths)} of ground truth")
    thresholds = np.atleast_1d(np.asarray(iou_thresholds, np.float64))
    table = np.full((len(thresholds), num_classes), np.nan)
    for t, threshold in enumerate(thresholds):
        per_class = [([], []) for _ in range(num_classes)]
        counts = np.zeros(num_classes, int)
        for (boxes, scores, labels), (gt_boxes, gt_labels) in zip(detections, ground_truths):
            labels, gt_labels = np.asarray(labels).reshape(-1), np.asarray(gt_labels).reshape(-1)
            hits = match_detections(boxes, scores, labels, gt_boxes, gt_labels, threshold)
            scores = np.asarray(scores, np.float64).reshape(-1)
            for c in range(num_classes):
                per_class[c][0].append(hits[labels == c])
                per_class[c][1].append(scores[labels == c])
                counts[c] += int((gt_labels == c).sum())
        for c in range(num_classes):
            if counts[c]:
                precision, recall = precision_recall(np.concatenate(per_class[c][0]),
                                                     np.concatenate(per_class[c][1]), counts[c])
                table[t, c] = average_precision(precision, recall, method)
    return table


def error_types(detections, ground_truths, iou_threshold: float = 0.5, near: float = 0.1) -> dict:
    """Count each detection's kind (correct, localization, duplicate, wrong class, background) and missed objects (ch. 8).

    A detection that is not correct is a *duplicate* if it overlaps an already matched object of its class by at least
    ``iou_threshold``, a *wrong class* if it overlaps an object of another class that much, a *localization* error if
    it overlaps an object of its class by at least ``near``, else *background*. Missed: objects no detection matched.
    """
    counts = dict.fromkeys(ERROR_TYPES, 0)
    for (boxes, scores, labels), (gt_boxes, gt_labels) in zip(detections, ground_truths):
        labels, gt_labels = np.asarray(labels).reshape(-1), np.asarray(gt_labels).reshape(-1)
        hits = match_detections(boxes, scores, labels, gt_boxes, gt_labels, iou_threshold)
        overlaps = pairwise_iou(boxes, gt_boxes)
        if overlaps.shape[1] == 0:
            overlaps = np.zeros((len(hits), 1))
            gt_labels = np.array([-1])
        same = labels[:, None] == gt_labels[None, :]
        for d in range(len(hits)):
            if hits[d]:
                kind = "correct"
            elif (overlaps[d] * same[d]).max() >= iou_threshold:
                kind = "duplicate"
            elif (overlaps[d] * ~same[d]).max() >= iou_threshold:
                kind = "wrong class"
            elif (overlaps[d] * same[d]).max() >= near:
                kind = "localization"
            else:
                kind = "background"
            counts[kind] += 1
        counts["missed"] += len(np.asarray(gt_boxes).reshape(-1, 4)) - int(hits.sum())
    return counts


# ------------------------------------------------------------------------------------------------ segmentation


def confusion_matrix(true_masks, predicted_masks, num_classes: int) -> np.ndarray:
    """Return the (C, C) pixel counts, rows the true class and columns the predicted one (chapter 9)."""
    true, predicted = np.asarray(true_masks).reshape(-1), np.asarray(predicted_masks).reshape(-1)
    if true.shape != predicted.shape:
        raise ValueError(f"masks differ in size: {np.shape(true_masks)} and {np.shape(predicted_masks)}")
    if true.size and (min(true.min(), predicted.min()) < 0 or max(true.max(), predicted.max()) >= num_classes):
        raise ValueError(f"mask values must be class indices 0-{num_classes - 1}")
    return np.bincount(true * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def pixel_accuracy(true_masks, predicted_masks) -> float:
    """Return the fraction of pixels whose predicted class is right (chapter 9)."""
    true, predicted = np.asarray(true_masks), np.asarray(predicted_masks)
    return float(np.mean(true == predicted))


def class_iou(true_masks, predicted_masks, num_classes: int) -> np.ndarray:
    """Return each class's IoU between true and predicted pixels; NaN for a class absent from both (chapter 9)."""
    matrix = confusion_matrix(true_masks, predicted_masks, num_classes).astype(np.float64)
    intersection = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    return np.divide(intersection, union, out=np.full(num_classes, np.nan), where=union > 0)


def mean_iou(true_masks, predicted_masks, num_classes: int) -> float:
    """Return the mean over classes of the per-class IoU, classes absent from both masks left out (chapter 9)."""
    return float(np.nanmean(class_iou(true_masks, predicted_masks, num_classes)))


# ---------------------------------------------------------------------------------------------------- figures


def draw_boxes(ax, image, boxes=(), labels=None, color="lime", scores=None, linestyle="-", show_image=True):
    """Draw an image and its normalised corner boxes, with labels (and scores), on ``ax`` (chapter 9)."""
    from matplotlib.patches import Rectangle

    image = np.asarray(image)
    height, width = image.shape[:2]
    if show_image:
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    for i, (x0, y0, x1, y1) in enumerate(_boxes(boxes).reshape(-1, 4)):
        ax.add_patch(Rectangle((x0 * width - 0.5, y0 * height - 0.5), (x1 - x0) * width, (y1 - y0) * height,
                               fill=False, edgecolor=color, linewidth=1.5, linestyle=linestyle))
        text = "" if labels is None else str(labels[i])
        text += "" if scores is None else f" {scores[i]:.2f}"
        if text:
            ax.text(x0 * width, y0 * height - 1, text.strip(), color=color, fontsize=8, va="bottom")
    ax.set_xticks([]), ax.set_yticks([])
    return ax


def mask_overlay(image, mask, num_classes: int = 11, alpha: float = 0.55) -> np.ndarray:
    """Return an RGB picture of a grey image with each non-background mask class tinted (chapter 9)."""
    import matplotlib

    grey = np.asarray(image, np.float64) / 255.0
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    colours = matplotlib.colormaps["tab10"](np.arange(10))[:, :3]
    mask = np.asarray(mask)
    for value in range(1, num_classes):
        where = mask == value
        rgb[where] = (1 - alpha) * rgb[where] + alpha * colours[(value - 1) % 10]
    return rgb


# ----------------------------------------------------------------------------- the chapter's trained models (ch. 9)
# The lesson writes these on its page (``#@save``); coursetools/train_ch09.py trains them and ships their weights in
# cnnbook/data/ch09_weights/. Keras is imported inside each function, so importing this module stays NumPy-only.

#: Where coursetools/train_ch09.py writes the chapter's weights and its record (manifest.json).
WEIGHTS_DIR = Path(__file__).resolve().parent / "data" / "ch09_weights"


def conv_backbone(inputs, widths=(16, 32, 64)):  #@save cnnbook.detection.conv_backbone
    """Return the features of a 3x3 conv + batch norm + ReLU + 2x2 max-pool stage per width (stride 2 ** len, ch. 9)."""
    import keras

    x = keras.layers.Rescaling(1 / 255)(inputs)
    for width in widths:
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        x = keras.layers.MaxPooling2D()(x)
    return x


def localizer_model(widths=(16, 32, 64)):  #@save cnnbook.detection.localizer_model
    """Return a 64x64 one-digit localizer with a ``digit`` softmax head and a ``box`` sigmoid corners head (ch. 9)."""
    import keras

    inputs = keras.Input((64, 64, 1))
    features = conv_backbone(inputs, widths)                                  # 8x8 for 64x64 inputs
    pooled = keras.layers.GlobalMaxPooling2D()(features)                      # where each feature fires most
    digit = keras.layers.Dense(10, activation="softmax", name="digit")(keras.layers.Dropout(0.3)(pooled))
    where = keras.layers.Flatten()(keras.layers.Conv2D(16, 1, activation="relu")(features))
    box = keras.layers.Dense(4, activation="sigmoid", name="box")(keras.layers.Dense(64, activation="relu")(where))
    return keras.Model(inputs, {"digit": digit, "box": box})


def grid_detector(num_anchors, num_classes=10, size=64, widths=(16, 32, 64)):  #@save cnnbook.detection.grid_detector
    """Return a one-stage detector: (size/8, size/8, anchors, 5 + classes) raw outputs for ``size`` canvases (ch. 9)."""
    import keras

    inputs = keras.Input((size, size, 1))
    x = conv_backbone(inputs, widths)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(num_anchors * (5 + num_classes), 1)(x)         # a 1x1 convolution: every cell at once
    return keras.Model(inputs, keras.layers.Reshape((size // 8, size // 8, num_anchors, 5 + num_classes))(x))


def detector_loss(box_weight=5.0, gamma=2.0, alpha=0.25):  #@save cnnbook.detection.detector_loss
    """Return a Keras loss for :func:`grid_detector` outputs: focal objectness, smooth-L1 box, class CE (chapter 9)."""
    from keras import ops

    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        present = y_true[..., 0]                                           # 1 where an anchor holds an object
        p = ops.sigmoid(y_pred[..., 0])
        p_true = ops.clip(ops.where(present == 1, p, 1 - p), 1e-7, 1.0)   # the probability of the true answer
        focal = -ops.where(present == 1, alpha, 1 - alpha) * (1 - p_true) ** gamma * ops.log(p_true)
        error = ops.abs(ops.concatenate([ops.sigmoid(y_pred[..., 1:3]), y_pred[..., 3:5]], -1) - y_true[..., 1:5])
        box = ops.sum(ops.where(error < 1.0, 0.5 * error ** 2, error - 0.5), axis=-1)     # smooth L1
        classes = ops.categorical_crossentropy(y_true[..., 5:], y_pred[..., 5:], from_logits=True)
        per_anchor = 10 * focal + present * (box_weight * box + classes)
        return ops.sum(ops.reshape(per_anchor, (ops.shape(per_anchor)[0], -1)), axis=-1)

    return loss


def unet(skips=True, widths=(16, 32, 64), num_classes=11):  #@save cnnbook.detection.unet
    """Return a 64x64 segmenter: pool to 8x8, come back with transposed convolutions (and U-Net skips) (chapter 9)."""
    import keras

    inputs = keras.Input((64, 64, 1))
    x, saved = keras.layers.Rescaling(1 / 255)(inputs), []
    for width in widths:                                                   # 64 -> 32 -> 16 -> 8
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        saved.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(2 * widths[-1], 3, padding="same", activation="relu")(x)   # 8x8, the coarsest scale
    for width, skip in zip(widths[::-1], saved[::-1]):                     # 8 -> 16 -> 32 -> 64
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
        if skips:
            x = keras.layers.Concatenate()([x, skip])
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(num_classes, 1, activation="softmax")(x))
