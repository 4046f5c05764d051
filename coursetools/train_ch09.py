"""Train chapter 9's localizer, grid detector and segmenters, and write their weights (cnnbook/data/ch09_weights/).

Chapter 9 (book/ch09_detection.ipynb) builds these models on its page (``cnnbook.detection.localizer_model``,
``grid_detector``, ``detector_loss``, ``unet``) but cannot train them to a solved-looking result in its time budget
at one thread, so it loads the weights this script writes. Everything is seeded: the canvases (fixed seeds of
``cnnbook.canvases.make_canvases`` on the *training* digits of the sample MNIST; validation canvases on the
validation digits), the initial weights and the shuffling (``keras.utils.set_random_seed`` and TensorFlow's op
determinism). The held-out canvases of the lesson (test digits) are only used to report the metrics at the end.

    python -m coursetools.train_ch09              # the full run: writes *.weights.h5 and manifest.json (~24 CPU-min)
    python -m coursetools.train_ch09 --reduced    # the short run that tests/test_detection.py repeats
    python -m coursetools.train_ch09 --seeds-comparison   # U-Net against the FCN head over seeds (~14 CPU-min)

manifest.json records the anchors, each model's training history and held-out metrics, the reduced run's losses,
and the sha256 of every weights file; tests/test_detection.py re-trains the reduced run and compares.

The seeds comparison (issue 36) trains the two segmenters, the U-Net and the same network without skips (the FCN
head), once per seed of SEEDS_PLAN on a smaller budget than the full run (~14 CPU-min for all six runs instead of
~18 for the full pair), with the full run's code and settings (same canvases' seed, loss weights, learning rate and
cosine schedule) except the batch: 16 instead of 64, which gives the short run four times as many steps for about
the same CPU time (prototyped on seed 0: batches of 64, 2,000 canvases, 10 epochs, 135 CPU-s, gave the U-Net and the
FCN head held-out mean IoUs of 0.16 and 0.15, barely above all-background's 0.08; batches of 16, 1,000 canvases, 12
epochs, 98 CPU-s, gave 0.29 and 0.24; then three seeds of 1,500 canvases and 12 epochs, 134 CPU-s a pair, gave the
U-Net 0.47, 0.27, 0.40 and the FCN head 0.39, 0.32, 0.40: seeds caught at different points of their climb out of the
all-background answer, no difference beyond that spread; hence the plan below, twice that budget). A seed sets the
initial weights and the order of the batches. It writes no weights, only seeds.json beside them: per seed and model,
the held-out mean IoU and pixel accuracy (the lesson's 300 test canvases), the loss curves and the CPU seconds; and
the same for the tiny SEEDS_TINY configuration, which tests/test_detection.py re-trains and compares. Chapter 9
draws the per-seed numbers and computes its verdict from them (cnnbook.compare.verdict).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time

import numpy as np

SEED = 9
#: Full run: canvases and epochs per model. The reduced run takes the first numbers of REDUCED.
FULL = {"localizer": (5000, 24), "detector": (8000, 30), "unet": (6000, 30), "fcn": (6000, 30)}
REDUCED = {"localizer": (256, 1), "detector": (256, 1), "unet": (256, 1), "fcn": (256, 1)}
BATCH, RATE, DIGIT_WEIGHT, ANCHORS = 64, 3e-3, 3.0, 3
#: The seeds comparison of the two segmenters: training canvases, epochs and seeds (module doc). TINY is its test.
SEEDS_PLAN = {"canvases": 2000, "epochs": 18, "batch": 16, "seeds": [0, 1, 2]}
SEEDS_TINY = {"canvases": 128, "epochs": 2, "batch": 16, "seeds": [0, 1]}
SEEDS_FILE = "seeds.json"


def shape_iou(sizes, anchors):
    """IoU of (w, h) boxes with (w, h) anchors placed on the same centre."""
    overlap = np.minimum(sizes[:, None, 0], anchors[:, 0]) * np.minimum(sizes[:, None, 1], anchors[:, 1])
    return overlap / (sizes.prod(1)[:, None] + anchors.prod(1) - overlap)


def iou_kmeans(sizes, k, steps=30, seed=0):
    """YOLOv2's anchors: k-means on (w, h) with the distance 1 - IoU (the lesson's cell, same code)."""
    centres = sizes[np.random.default_rng(seed).choice(len(sizes), k, replace=False)]
    for _ in range(steps):
        nearest = shape_iou(sizes, centres).argmax(1)
        centres = np.stack([sizes[nearest == j].mean(0) for j in range(k)])
    return centres


def _optimizer(keras, steps):
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(RATE, decay_steps=max(steps, 1), alpha=0.02))


def heldout():
    """The lesson's held-out canvases: one-digit ones for the localizer, the test split for detector and masks."""
    from cnnbook import canvases, data

    digits = data.load("mnist", profile="sample")
    _, _, test = canvases.load_canvases("sample", sizes=(2000, 300, 300), verbose=False)
    one_test = canvases.make_canvases(digits.x_test, digits.y_test, len(test), objects=(1, 1), seed=13)
    return one_test, test


def metrics(models, anchors, one_test, test):
    """Held-out numbers: localizer accuracy and mean box IoU, detector AP@0.5 and mAP, segmenters' mean IoU."""
    from cnnbook import detection

    out = {}
    if "localizer" in models:
        boxes, labels = one_test.single()
        predicted = models["localizer"].predict(one_test.images[..., None], verbose=0)
        out["localizer"] = {"accuracy": float(np.mean(predicted["digit"].argmax(-1) == labels)),
                            "mean_iou": float(detection.iou(predicted["box"], boxes).mean())}
    if "detector" in models:
        found = []
        for output in models["detector"].predict(test.images[..., None], verbose=0):
            boxes, scores, classes = detection.decode_grid(output, anchors)
            keep = detection.non_max_suppression(boxes, scores, 0.5, 0.05, classes=classes)
            found.append((boxes[keep], scores[keep], classes[keep]))
        table = detection.evaluate(found, list(zip(test.boxes, test.labels)), 10)
        out["detector"] = {"ap50": float(np.nanmean(table[0])), "coco_map": float(np.nanmean(table))}
    for name in ("unet", "fcn"):
        if name in models:
            masks = models[name].predict(test.images[..., None], verbose=0).argmax(-1)
            out[name] = {"mean_iou": detection.mean_iou(test.masks, masks, 11),
                         "pixel_accuracy": detection.pixel_accuracy(test.masks, masks)}
    return out


def segmenter(keras, name, seg, seg_val, epochs, batch=BATCH, verbose=0):
    """Build and train chapter 9's U-Net (``name`` "unet") or the same network without skips ("fcn") on the canvases
    ``seg`` (validation ``seg_val``), digit pixels weighted DIGIT_WEIGHT; return (model, history). The seed is the
    caller's (``keras.utils.set_random_seed`` just before)."""
    from cnnbook import detection

    weights = lambda c: np.where(c.masks > 0, DIGIT_WEIGHT, 1.0)  # noqa: E731
    model = detection.unet(skips=name == "unet")
    model.compile(optimizer=_optimizer(keras, epochs * -(-len(seg.images) // batch)),
                  loss="sparse_categorical_crossentropy")
    history = model.fit(seg.images[..., None], seg.masks, sample_weight=weights(seg), epochs=epochs,
                        batch_size=batch, verbose=verbose,
                        validation_data=(seg_val.images[..., None], seg_val.masks, weights(seg_val)))
    return model, history


def train(plan=FULL, verbose=0, names=tuple(FULL)):
    """Train the models ``names`` of ``plan`` ({name: (canvases, epochs)}); return (models, anchors, histories).

    Each model starts from ``keras.utils.set_random_seed(SEED)``, so training one alone gives the same weights.
    """
    import keras
    import tensorflow as tf

    from cnnbook import canvases, data, detection

    tf.config.experimental.enable_op_determinism()
    digits = data.load("mnist", profile="sample")
    train_digits, val_digits = (digits.x_train, digits.y_train), (digits.x_val, digits.y_val)
    models, histories = {}, {}
    many = canvases.make_canvases(*train_digits, plan["detector"][0], seed=103)
    anchors = iou_kmeans(detection.to_centers(np.concatenate(many.boxes))[:, 2:], ANCHORS)
    anchors = anchors[np.argsort(anchors.prod(1))]                     # small to large
    encode = lambda c: np.stack([detection.encode_grid(b, l, 8, anchors, 10) for b, l in zip(c.boxes, c.labels)])  # noqa: E731
    for name in names:
        n, epochs = plan[name]
        steps = epochs * -(-n // BATCH)
        keras.utils.set_random_seed(SEED)
        if name == "localizer":
            one = canvases.make_canvases(*train_digits, n, objects=(1, 1), seed=101)
            one_val = canvases.make_canvases(*val_digits, 500, objects=(1, 1), seed=102)
            (boxes, labels), (val_boxes, val_labels) = one.single(), one_val.single()
            model = detection.localizer_model()
            model.compile(optimizer=_optimizer(keras, steps), loss={"digit": "sparse_categorical_crossentropy",
                          "box": "mse"}, loss_weights={"digit": 1.0, "box": 100.0})
            x, y = one.images[..., None], {"digit": labels, "box": boxes}
            val = (one_val.images[..., None], {"digit": val_labels, "box": val_boxes})
        elif name == "detector":
            many_val = canvases.make_canvases(*val_digits, 500, seed=104)
            model = detection.grid_detector(len(anchors))
            model.compile(optimizer=_optimizer(keras, steps), loss=detection.detector_loss())
            x, y, val = many.images[..., None], encode(many), (many_val.images[..., None], encode(many_val))
        else:
            seg = canvases.make_canvases(*train_digits, n, seed=105)
            seg_val = canvases.make_canvases(*val_digits, 500, seed=106)
            model, history = segmenter(keras, name, seg, seg_val, epochs, verbose=verbose)
        if name in ("localizer", "detector"):   # the segmenters were trained by segmenter()
            history = model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=verbose, validation_data=val)
        histories[name] = {m: [round(float(v), 6) for v in vs] for m, vs in history.history.items()}
        models[name] = model
    return models, anchors, histories


def seeds_comparison(plan=SEEDS_PLAN, verbose=0, test=None):
    """Train the U-Net and the FCN head once per seed of ``plan`` and score each on the held-out canvases.

    Returns {"plan": plan, "unet": {...}, "fcn": {...}}, each model's entry holding one list per quantity with one
    number per seed (in the order of ``plan["seeds"]``): "mean_iou", "pixel_accuracy", "cpu_seconds", and the
    per-epoch curves "loss" and "val_loss" (a list of lists). Same code and settings as ``train`` for the
    segmenters (:func:`segmenter`); only the budget (canvases, epochs, batch) and the seed change.
    """
    import keras
    import tensorflow as tf

    from cnnbook import canvases, data, detection

    tf.config.experimental.enable_op_determinism()
    digits = data.load("mnist", profile="sample")
    test = heldout()[1] if test is None else test
    seg = canvases.make_canvases(digits.x_train, digits.y_train, plan["canvases"], seed=105)
    seg_val = canvases.make_canvases(digits.x_val, digits.y_val, 500, seed=106)
    out = {"plan": plan}
    for seed in plan["seeds"]:
        for name in ("unet", "fcn"):
            start = time.process_time()
            keras.utils.set_random_seed(seed)
            model, history = segmenter(keras, name, seg, seg_val, plan["epochs"], plan.get("batch", BATCH), verbose)
            masks = model.predict(test.images[..., None], verbose=0).argmax(-1)
            entry = out.setdefault(name, {})
            for key, value in (("mean_iou", detection.mean_iou(test.masks, masks, 11)),
                               ("pixel_accuracy", detection.pixel_accuracy(test.masks, masks)),
                               ("loss", [round(float(v), 6) for v in history.history["loss"]]),
                               ("val_loss", [round(float(v), 6) for v in history.history["val_loss"]]),
                               ("cpu_seconds", round(time.process_time() - start, 1))):
                entry.setdefault(key, []).append(float(value) if np.isscalar(value) else value)
            if verbose:
                print(f"seed {seed} {name}: mean IoU {entry['mean_iou'][-1]:.4f}, {entry['cpu_seconds'][-1]} CPU-s",
                      flush=True)
    return out


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None):
    from cnnbook import detection

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="only the short run; record its losses in the manifest")
    parser.add_argument("--seeds-comparison", action="store_true",
                        help="train the U-Net and the FCN head over the seeds of SEEDS_PLAN (and SEEDS_TINY); "
                             "write seeds.json, no weights")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=list(FULL), help="train these models only (merged into the manifest)")
    args = parser.parse_args(argv)
    out = detection.WEIGHTS_DIR
    if args.reduced:
        reduced = train(REDUCED)[2]
        with _locked(out / "manifest.json") as record:
            record["reduced"] = reduced
        print(json.dumps(reduced, indent=1))
        return reduced
    if args.seeds_comparison:
        test = heldout()[1]
        record = {"tiny": seeds_comparison(SEEDS_TINY, test=test),
                  "threads": os.environ.get("OMP_NUM_THREADS", "all")}
        record["comparison"] = seeds_comparison(SEEDS_PLAN, verbose=args.verbose, test=test)
        (out / SEEDS_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(json.dumps({name: record["comparison"][name]["mean_iou"] for name in ("unet", "fcn")}, indent=1))
        return record
    start = time.process_time()
    models, anchors, histories = train(FULL, verbose=args.verbose, names=args.only)
    one_test, test = heldout()
    scores = metrics(models, anchors, one_test, test)
    with _locked(out / "manifest.json") as record:
        _record(record, models, anchors, histories, scores, out, start)
    print(json.dumps(scores, indent=1))


def _record(record, models, anchors, histories, scores, out, start):
    record.update(seed=SEED, plan=FULL, reduced_plan=REDUCED, batch=BATCH, rate=RATE, digit_weight=DIGIT_WEIGHT,
                  anchors=anchors.tolist())
    for name, model in models.items():
        path = out / f"{name}.weights.h5"
        import keras

        bare = keras.Model.from_config(model.get_config())    # not compiled: the file holds no optimizer state
        bare.set_weights(model.get_weights())
        bare.save_weights(path)
        record.setdefault("files", {})[name] = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}
        record.setdefault("history", {})[name] = histories[name]
        record.setdefault("heldout", {})[name] = scores[name]
        record.setdefault("cpu_seconds", {})[name] = round((time.process_time() - start) / len(models))
    record["threads"] = os.environ.get("OMP_NUM_THREADS", "all")


@contextlib.contextmanager
def _locked(manifest):
    """Read, let the caller update, and write back manifest.json under a lock (several runs may merge into it)."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(os.path.join(tempfile.gettempdir(), "train_ch09.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(manifest.read_text()) if manifest.exists() else {}
        yield record
        manifest.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
