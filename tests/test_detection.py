"""cnnbook.detection and cnnbook.canvases (chapter 9), each against a named independent oracle.

Oracles: pycocotools (its C IoU and COCOeval, the reference implementation of COCO's AP), TensorFlow's
``tf.image.non_max_suppression``, Keras's ``keras.utils.bounding_boxes`` and ``keras.metrics.MeanIoU``, and the
figures of Géron (2019, ch. 14) that the lesson restates.
"""

import contextlib
import io

import keras
import numpy as np
import pytest

from cnnbook import canvases, detection


def random_boxes(rng, n, low=0.0, high=1.0, min_size=0.02):
    corner = rng.uniform(low, high - min_size, size=(n, 2))
    size = rng.uniform(min_size, 0.5, size=(n, 2))
    return np.concatenate([corner, np.minimum(corner + size, high)], axis=1)


def xywh(boxes, scale=100.0):
    boxes = np.asarray(boxes) * scale
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


# --------------------------------------------------------------------------------------------------- IoU, formats


def test_pairwise_iou_matches_pycocotools_c_iou_on_random_boxes():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 40), random_boxes(rng, 30)
    expected = mask_utils.iou(xywh(a).tolist(), xywh(b).tolist(), [0] * len(b))  # oracle: pycocotools' bbIou
    np.testing.assert_allclose(detection.pairwise_iou(a, b), expected, atol=1e-9)


def test_pairwise_iou_matches_keras_compute_iou_and_formats_agree():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 12), random_boxes(rng, 9)
    oracle = keras.ops.convert_to_numpy(
        keras.utils.bounding_boxes.compute_iou(a.astype("float32"), b.astype("float32"), bounding_box_format="xyxy"))
    np.testing.assert_allclose(detection.pairwise_iou(a, b), oracle, atol=1e-5)
    centres = keras.ops.convert_to_numpy(keras.utils.bounding_boxes.convert_format(
        a.astype("float32"), source="xyxy", target="center_xywh"))  # oracle: Keras's format conversion
    np.testing.assert_allclose(detection.to_centers(a), centres, atol=1e-6)
    np.testing.assert_allclose(detection.to_corners(detection.to_centers(a)), a, atol=1e-12)
    np.testing.assert_allclose(detection.pairwise_iou(detection.to_centers(a), detection.to_centers(b), "centers"),
                               detection.pairwise_iou(a, b), atol=1e-12)


def test_iou_worked_cases_disjoint_touching_nested_degenerate():
    unit = [0, 0, 0.5, 0.5]
    cases = {  # by hand: intersection / union
        (0.25, 0.25, 0.75, 0.75): 0.0625 / (0.25 + 0.25 - 0.0625),
        (0.6, 0.6, 0.9, 0.9): 0.0,  # disjoint: without the clamp at 0 the product of two negatives is positive
        (0.5, 0.0, 1.0, 0.5): 0.0,  # touching edge
        (0.1, 0.1, 0.2, 0.2): 0.01 / 0.25,  # nested
        (0.3, 0.3, 0.3, 0.3): 0.0,  # degenerate point inside
    }
    for other, expected in cases.items():
        assert detection.pairwise_iou([unit], [other])[0, 0] == pytest.approx(expected)
    assert detection.pairwise_iou([[0.2, 0.2, 0.2, 0.2]], [[0.2, 0.2, 0.2, 0.2]])[0, 0] == 0.0
    assert detection.pairwise_iou(np.zeros((0, 4)), [unit]).shape == (0, 1)
    with pytest.raises(ValueError, match="4 numbers"):
        detection.pairwise_iou([[0, 0, 1]], [unit])


# ----------------------------------------------------------------------------------------------- grid encoding


def test_grid_encoding_round_trips_and_geron_anchor_example():
    anchors = [(0.2, 0.2), (0.4, 0.25)]
    boxes = np.array([[0.1, 0.1, 0.3, 0.35], [0.5, 0.55, 0.9, 0.8]])
    target = detection.encode_grid(boxes, [3, 7], grid_size=4, anchors=anchors, num_classes=10)
    assert target.shape == (4, 4, 2, 15) and target[..., 0].sum() == 2
    decoded, scores, classes = detection.decode_grid(target, anchors, from_logits=False)
    kept = scores > 0.5
    np.testing.assert_allclose(decoded[kept], boxes, atol=1e-6)
    assert sorted(classes[kept]) == [3, 7]
    # Géron: an anchor 100 px tall and 50 wide, rescaled by 1.5 vertically and 0.9 horizontally, gives 150 x 45 px.
    grid = np.zeros((1, 1, 1, 6))
    grid[0, 0, 0, 3:5] = np.log(0.9), np.log(1.5)  # (log of width factor, log of height factor)
    box, _, _ = detection.decode_grid(grid, [(50 / 448, 100 / 448)], from_logits=False)
    width, height = (detection.to_centers(box)[0, 2:] * 448)
    assert (round(width, 6), round(height, 6)) == (45.0, 150.0)


def test_grid_loss_is_zero_only_for_a_perfect_prediction():
    anchors = [(0.25, 0.25)]
    target = detection.encode_grid([[0.1, 0.1, 0.35, 0.35]], [2], 2, anchors, 3)[None]
    logits = np.where(target[..., :1] > 0, 30.0, -30.0)
    offsets = np.log(np.clip(target[..., 1:3], 1e-6, 1 - 1e-6) / (1 - np.clip(target[..., 1:3], 1e-6, 1 - 1e-6)))
    perfect = np.concatenate([logits, offsets, target[..., 3:5], target[..., 5:] * 60.0], axis=-1).astype("float32")
    loss = detection.grid_loss()
    assert float(keras.ops.convert_to_numpy(loss(target, perfect))[0]) < 1e-3
    assert float(keras.ops.convert_to_numpy(loss(target, np.zeros_like(perfect)))[0]) > 1


# ------------------------------------------------------------------------------------------------------- NMS


@pytest.mark.parametrize("seed,threshold", [(0, 0.5), (1, 0.3), (2, 0.7)])
def test_nms_matches_tf_image_non_max_suppression(seed, threshold):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 60, min_size=0.1)
    scores = rng.uniform(size=60)
    yx = boxes[:, [1, 0, 3, 2]]  # TensorFlow's order: (y_min, x_min, y_max, x_max)
    for score_threshold in (-np.inf, 0.4):
        oracle = tf.image.non_max_suppression(yx, scores, max_output_size=60, iou_threshold=threshold,
                                              score_threshold=score_threshold).numpy()
        ours = detection.non_max_suppression(boxes, scores, threshold, score_threshold)
        np.testing.assert_array_equal(ours, oracle)
    assert len(detection.non_max_suppression(boxes, scores, threshold, max_output=5)) == 5


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = [[0, 0, 0.5, 0.5], [0.02, 0, 0.52, 0.5], [0.01, 0, 0.51, 0.5]]
    scores = [0.9, 0.8, 0.7]
    assert detection.non_max_suppression(boxes, scores, 0.5).tolist() == [0]
    assert detection.non_max_suppression(boxes, scores, 0.5, classes=[1, 2, 1]).tolist() == [0, 1]


# ------------------------------------------------------------------------------------------------------- AP


def coco_map(detections, ground_truths, scale=100.0):
    """Oracle: pycocotools' COCOeval on the same boxes; returns (mAP@[.5:.95], AP@.5)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, ((boxes, scores, labels), (gt_boxes, gt_labels)) in enumerate(zip(detections, ground_truths)):
        images.append({"id": image_id, "width": scale, "height": scale})
        for box, label in zip(xywh(gt_boxes, scale), gt_labels):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0})
        for box, score, label in zip(xywh(boxes, scale), scores, labels):
            results.append({"image_id": image_id, "category_id": int(label), "bbox": box.tolist(),
                            "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c} for c in range(5)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.areaRngLbl = ["all"]
        evaluation.params.areaRng = [[0, 1e10]]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (T, R, K), area all, maxDets 100
    per_class = np.where(precision > -1, precision, np.nan).mean(axis=1)
    return np.nanmean(per_class), np.nanmean(per_class[0])


def noisy_detections(rng, ground_truths, num_classes=5):
    detections = []
    for gt_boxes, gt_labels in ground_truths:
        jitter = gt_boxes + rng.normal(0, 0.03, size=gt_boxes.shape)
        extra = random_boxes(rng, 3)
        boxes = np.concatenate([jitter, jitter[:1] + 0.01, extra])
        labels = np.concatenate([np.where(rng.uniform(size=len(gt_labels)) < 0.8, gt_labels,
                                          rng.integers(num_classes, size=len(gt_labels))),
                                 gt_labels[:1], rng.integers(num_classes, size=3)])
        detections.append((boxes, rng.uniform(size=len(boxes)), labels))
    return detections


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_and_coco_map_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    ground_truths = [(random_boxes(rng, k, min_size=0.1), rng.integers(5, size=k))
                     for k in rng.integers(1, 5, size=25)]
    detections = noisy_detections(rng, ground_truths)
    table = detection.evaluate(detections, ground_truths, num_classes=5)
    expected_map, expected_ap50 = coco_map(detections, ground_truths)
    assert np.nanmean(table) == pytest.approx(expected_map, abs=1e-9)
    assert np.nanmean(table[0]) == pytest.approx(expected_ap50, abs=1e-9)
    assert 0.05 < expected_map < 0.95  # a case that exercises the matching, not a trivial 0 or 1


def test_geron_map_definition_and_thresholds():
    # Géron: 90 % precision at 10 % recall but 96 % at 20 %: the precision credited at 10 % recall is 96 %.
    precision, recall = np.array([0.90, 0.96]), np.array([0.10, 0.20])
    envelope_at_10 = max(p for p, r in zip(precision, recall) if r >= 0.10)
    assert envelope_at_10 == 0.96
    # His AP: the mean of the best precision at recall >= 0, 0.1, ..., 1 (11 levels); three levels reach 0.96.
    assert detection.average_precision(precision, recall, "voc11") == pytest.approx(3 * 0.96 / 11)
    # COCO's thresholds: 0.50, 0.55, ..., 0.95, ten of them (mAP@[.50:.95]).
    np.testing.assert_allclose(detection.COCO_THRESHOLDS, [0.5 + 0.05 * i for i in range(10)])
    perfect = [(np.array([[0.1, 0.1, 0.4, 0.4]]), np.array([0.9]), np.array([1]))]
    truth = [(np.array([[0.1, 0.1, 0.4, 0.4]]), np.array([1]))]
    assert np.nanmean(detection.evaluate(perfect, truth, 2)) == 1.0


def test_error_types_counts_each_kind():
    truth = [(np.array([[0.0, 0.0, 0.4, 0.4], [0.6, 0.6, 1.0, 1.0], [0.0, 0.6, 0.3, 0.9]]), np.array([1, 2, 3]))]
    boxes = np.array([[0.0, 0.0, 0.4, 0.4],    # correct
                      [0.01, 0.0, 0.41, 0.4],  # duplicate of the first
                      [0.6, 0.6, 1.0, 1.0],    # right place, wrong class (label 4 below)
                      [0.6, 0.6, 0.8, 0.75],   # class 2, too small: localization
                      [0.45, 0.0, 0.55, 0.1]])  # nothing there: background
    detections = [(boxes, np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 1, 4, 2, 0]))]
    counts = detection.error_types(detections, truth)
    assert counts == {"correct": 1, "localization": 1, "duplicate": 1, "wrong class": 1, "background": 1,
                      "missed": 2}


# ---------------------------------------------------------------------------------------------- segmentation


def test_mean_iou_and_pixel_accuracy_match_keras_metrics():
    rng = np.random.default_rng(3)
    true = rng.integers(0, 6, size=(4, 16, 16))
    predicted = np.where(rng.uniform(size=true.shape) < 0.7, true, rng.integers(0, 6, size=true.shape))
    oracle = keras.metrics.MeanIoU(num_classes=6)  # oracle: Keras's own metric
    oracle.update_state(true.reshape(-1), predicted.reshape(-1))
    assert detection.mean_iou(true, predicted, 6) == pytest.approx(float(oracle.result()), abs=1e-6)
    accuracy = keras.metrics.Accuracy()
    accuracy.update_state(true.reshape(-1), predicted.reshape(-1))
    assert detection.pixel_accuracy(true, predicted) == pytest.approx(float(accuracy.result()), abs=1e-6)
    # a mask that is all background gets high pixel accuracy and a low mean IoU
    sparse = np.zeros((32, 32), int)
    sparse[:4, :4] = 1
    assert detection.pixel_accuracy(sparse, np.zeros_like(sparse)) > 0.98
    assert detection.mean_iou(sparse, np.zeros_like(sparse), 2) < 0.5
    with pytest.raises(ValueError, match="class indices"):
        detection.mean_iou(sparse, sparse + 5, 2)


# -------------------------------------------------------------------------------------------------- canvases


def test_canvases_are_deterministic_and_labels_come_from_pixels():
    from cnnbook import data

    digits = data.load("mnist")
    a = canvases.make_canvases(digits.x_train, digits.y_train, 40, seed=5)
    b = canvases.make_canvases(digits.x_train, digits.y_train, 40, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))
    size = a.images.shape[1]
    for image, mask, boxes, labels in zip(a.images, a.masks, a.boxes, a.labels):
        assert np.array_equal(mask > 0, image > 0)  # every inked pixel belongs to one object, no other is labelled
        assert 1 <= len(boxes) <= 3
        for value in np.unique(mask[mask > 0]):
            rows, cols = np.nonzero(mask == value)
            inside = np.zeros(len(rows), bool)
            for box in boxes[labels == value - 1] * size:
                inside |= (cols >= box[0]) & (cols < box[2]) & (rows >= box[1]) & (rows < box[3])
            assert inside.all()  # oracle: the box is the tight box of those pixels (checked below on one digit)
    single = canvases.make_canvases(digits.x_train, digits.y_train, 10, objects=(1, 1), seed=2)
    boxes, labels = single.single()
    for image, box in zip(single.images, boxes):
        rows, cols = np.nonzero(image)
        assert np.allclose(box * size, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    with pytest.raises(ValueError, match="one object per canvas"):
        a.single()


def test_full_profile_pets_without_network_names_sample(tmp_path, monkeypatch):
    from cnnbook import data

    monkeypatch.setattr(canvases, "PETS", (("oxford_pets/images", "http://127.0.0.1:9/images.tar.gz"),))
    with pytest.raises(data.DownloadError, match="sample"):
        canvases.load_pets(cache_dir=tmp_path)


def test_full_profile_pets_archives_are_fetched_with_their_md5(tmp_path, monkeypatch):
    # Oracle: the md5s torchvision's OxfordIIITPet checks for images.tar.gz and annotations.tar.gz
    import urllib.error

    from cnnbook import data

    seen = {}

    def record(fname, origin, file_hash=None, **kwargs):
        seen[fname] = file_hash
        raise urllib.error.URLError("offline")  # fake only the download: nothing is fetched
    monkeypatch.setattr(keras.utils, "get_file", record)
    for relative, origin in canvases.PETS:
        monkeypatch.setattr(canvases, "PETS", ((relative, origin),))
        with pytest.raises(data.DownloadError):
            canvases.load_pets(cache_dir=tmp_path)
    assert seen == {"images": "5c4f3ee8e5d25df40f4fd59a7f44e54c", "annotations": "95a8c909bbe2e81eed6a22bccdf3f68f"}


# --- the box and classification losses of chapter 9's "losses of the field" ------------------------------------------
# Oracles: values worked by hand from the definitions (Girshick 2015, Fast R-CNN; Lin et al. 2017, focal loss), and
# Keras's own Huber loss (smooth L1 with beta = 1 is Huber with delta = 1) and BinaryFocalCrossentropy.

def test_smooth_l1_by_hand_and_against_keras_huber():
    import keras

    errors = np.array([0.0, 0.5, -0.5, 1.0, 2.0, -3.0])
    # |x| < 1: x² / 2 (0, 0.125, 0.125); |x| >= 1: |x| - 1/2 (0.5, 1.5, 2.5)
    np.testing.assert_allclose(detection.smooth_l1(errors), [0.0, 0.125, 0.125, 0.5, 1.5, 2.5])
    # beta = 2: x = 1 -> 1² / (2 * 2) = 0.25; x = 3 -> 3 - 1 = 2
    np.testing.assert_allclose(detection.smooth_l1([1.0, 3.0], beta=2.0), [0.25, 2.0])
    huber = keras.losses.Huber(delta=1.0, reduction=None)
    x = np.linspace(-3, 3, 13).reshape(-1, 1)
    np.testing.assert_allclose(detection.smooth_l1(x[:, 0]),
                               keras.ops.convert_to_numpy(huber(np.zeros_like(x), x)), rtol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        detection.smooth_l1([1.0], beta=0)


def test_focal_loss_by_hand_and_against_keras():
    import keras

    # y = 1, p = 0.9, gamma 2, alpha 0.25: 0.25 * (0.1)² * -ln(0.9) = 2.634013e-4
    assert detection.focal_loss([0.9], [1])[0] == pytest.approx(2.634012891e-4, rel=1e-8)
    # y = 0, p = 0.2 -> p_t = 0.8, alpha_t = 0.75: 0.75 * 0.04 * -ln(0.8) = 6.694306e-3
    assert detection.focal_loss([0.2], [0])[0] == pytest.approx(6.694306539e-3, rel=1e-8)
    # gamma = 0, alpha = 0.5: half the binary cross-entropy
    p, y = np.array([0.3, 0.7, 0.95]), np.array([1, 0, 1])
    np.testing.assert_allclose(detection.focal_loss(p, y, gamma=0, alpha=0.5),
                               -0.5 * (y * np.log(p) + (1 - y) * np.log(1 - p)))
    focal = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, gamma=2.0, reduction=None)
    theirs = keras.ops.convert_to_numpy(focal(y.reshape(-1, 1).astype("float32"), p.reshape(-1, 1).astype("float32")))
    np.testing.assert_allclose(detection.focal_loss(p, y), theirs, rtol=1e-4)


# ------------------------------------------------------------------- chapter 9's trained weights (train_ch09.py)
# The lesson loads weights written by coursetools/train_ch09.py. Oracles: the script itself (a reduced run, re-trained
# here from its seeds, must give the losses its record stores), sha256 of the shipped files, and the metric functions
# above (IoU against pycocotools, AP against COCOeval, mean IoU against keras.metrics.MeanIoU) for the held-out numbers.

import hashlib  # noqa: E402
import json  # noqa: E402

MANIFEST = detection.WEIGHTS_DIR / "manifest.json"
#: Issue 36's targets on the held-out canvases (test digits): localizer, detector, U-Net.
TARGETS = {("localizer", "accuracy"): 0.95, ("localizer", "mean_iou"): 0.8, ("detector", "ap50"): 0.8,
           ("unet", "mean_iou"): 0.7}


@pytest.fixture(scope="module")
def record():
    return json.loads(MANIFEST.read_text())


def test_shipped_weights_are_the_files_the_record_names(record):
    assert set(record["files"]) == {"localizer", "detector", "unet", "fcn"}
    for entry in record["files"].values():
        path = detection.WEIGHTS_DIR / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], f"{path.name} is not the trained file"
        assert path.stat().st_size == entry["bytes"] < 3_000_000


def load_models(record):
    anchors = np.array(record["anchors"])
    models = {"localizer": detection.localizer_model(), "detector": detection.grid_detector(len(anchors)),
              "unet": detection.unet(), "fcn": detection.unet(skips=False)}
    for name, model in models.items():
        model.load_weights(detection.WEIGHTS_DIR / record["files"][name]["file"])
    return models, anchors


def test_shipped_weights_reach_the_recorded_heldout_numbers_and_the_targets(record):
    from coursetools import train_ch09

    models, anchors = load_models(record)
    scores = train_ch09.metrics(models, anchors, *train_ch09.heldout())
    for name, values in record["heldout"].items():
        for metric, value in values.items():
            assert scores[name][metric] == pytest.approx(value, abs=2e-3), (name, metric)
    assert scores["unet"]["mean_iou"] > scores["fcn"]["mean_iou"]


#: Targets the shipped run does not reach yet (measured value in the reason); strict, so reaching one fails here
#: until its entry is removed.
SHORT_OF_TARGET: dict = {}   # (model, metric) -> why, while a shipped run falls short of its target (strict xfail)


@pytest.mark.parametrize("name, metric", [pytest.param(*key, marks=pytest.mark.xfail(
    strict=True, reason=SHORT_OF_TARGET[key])) if key in SHORT_OF_TARGET else key for key in TARGETS])
def test_shipped_weights_meet_issue_36_targets(record, name, metric):
    # the recorded held-out numbers are the files' own (test above)
    assert record["heldout"][name][metric] >= TARGETS[name, metric]


def test_a_reduced_run_of_the_script_gives_the_losses_it_recorded(record):
    from coursetools import train_ch09

    _, anchors, histories = train_ch09.train(train_ch09.REDUCED)
    assert set(histories) == set(record["reduced"]) == set(train_ch09.FULL)
    for name, history in histories.items():
        for key, values in history.items():
            np.testing.assert_allclose(values, record["reduced"][name][key], rtol=2e-3, err_msg=f"{name} {key}")
        # the shipped run is the same code trained further: its last loss is far below the reduced run's
        assert record["history"][name]["loss"][-1] < 0.8 * history["loss"][-1], name
    assert anchors.shape == (train_ch09.ANCHORS, 2) and np.all(np.diff(anchors.prod(1)) > 0)


def test_iou_kmeans_of_the_script_finds_planted_box_shapes():
    from coursetools import train_ch09

    rng = np.random.default_rng(0)
    planted = np.array([[0.2, 0.3], [0.45, 0.25], [0.5, 0.6]])
    sizes = np.concatenate([shape * rng.uniform(0.97, 1.03, size=(200, 2)) for shape in planted])
    found = train_ch09.iou_kmeans(sizes, 3)
    np.testing.assert_allclose(found[np.argsort(found[:, 0] * 10 + found[:, 1])],
                               planted[np.argsort(planted[:, 0] * 10 + planted[:, 1])], atol=0.01)
    assert train_ch09.shape_iou(planted, planted).diagonal() == pytest.approx(1.0)


# ---------------------------------------------- chapter 9's seeds comparison (train_ch09.py --seeds-comparison)
# Oracles: the script itself (its tiny configuration, re-trained here from its seeds, must give the numbers seeds.json
# stores for it), detection.mean_iou (checked against keras.metrics.MeanIoU above) for the held-out numbers, and the
# all-background answer's mean IoU as the floor a segmenter that learned must clear.

SEEDS = detection.WEIGHTS_DIR / "seeds.json"


@pytest.fixture(scope="module")
def seeds_record():
    return json.loads(SEEDS.read_text())


def test_a_tiny_seeds_comparison_gives_the_numbers_it_recorded(seeds_record):
    from coursetools import train_ch09

    tiny = seeds_record["tiny"]
    assert tiny["plan"] == train_ch09.SEEDS_TINY
    again = train_ch09.seeds_comparison(train_ch09.SEEDS_TINY)
    for name in ("unet", "fcn"):
        for key in ("mean_iou", "pixel_accuracy"):
            np.testing.assert_allclose(again[name][key], tiny[name][key], atol=2e-3, err_msg=f"{name} {key}")
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(again[name][key], tiny[name][key], rtol=2e-3, err_msg=f"{name} {key}")
        # the seed reaches the weights and the batches: two seeds, two different runs
        assert again[name]["loss"][0] != again[name]["loss"][1], name
    # same seed, same data: the two models differ only by the skips, so their first losses differ too
    assert again["unet"]["loss"][0] != again["fcn"]["loss"][0]


def test_the_recorded_seeds_comparison_is_complete_and_both_models_learned(seeds_record):
    from coursetools import train_ch09

    comparison = seeds_record["comparison"]
    plan = comparison["plan"]
    assert plan == train_ch09.SEEDS_PLAN and len(set(plan["seeds"])) == len(plan["seeds"]) >= 3
    _, test = train_ch09.heldout()
    floor = detection.mean_iou(test.masks, np.zeros_like(test.masks), 11)     # all background
    for name in ("unet", "fcn"):
        entry = comparison[name]
        assert len(entry["mean_iou"]) == len(entry["loss"]) == len(entry["cpu_seconds"]) == len(plan["seeds"])
        assert all(len(curve) == plan["epochs"] for curve in entry["loss"] + entry["val_loss"])
        assert min(entry["mean_iou"]) > floor + 0.1, name                         # each seed learned the digits
        assert all(curve[-1] < 0.8 * curve[0] for curve in entry["loss"]), name
        assert len(set(entry["mean_iou"])) == len(plan["seeds"])                  # seeds give distinct runs
    # the comparison's budget: about 15 CPU-minutes in all, well under the full run's two segmenters
    total = sum(sum(comparison[name]["cpu_seconds"]) for name in ("unet", "fcn"))
    assert total < 1000 and plan["epochs"] * plan["canvases"] < np.prod(train_ch09.FULL["unet"])
