"""Trusted checks of exercise 6 (augmentation), to autograder/PROTOCOL.md.

What the kernel hands in: the augmented model of task 1 with its base (``.keras``, loaded with safe_mode, so a
``Lambda`` around ``tf.image.random_*`` is refused), the batches task 2's pipeline produced on marker images the test
cell builds (image ``i`` is filled with the value ``i``, so the label beside it can be read back), task 3's ranges,
and task 4's model trained with augmentation. Oracles, in the grader's process: the loaded base model, an SVM
trained on scikit-learn's digits under mild augmentation (task 3), and held-out MNIST digits, on which the model
trained with augmentation must beat the calibrated level of the same model trained without it (task 4).
"""

from __future__ import annotations

import json

import numpy as np

from autograder import trusted

ASSIGNMENT = "ch06_augmentation"
RANDOM_LAYERS = {"RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
                 "RandomBrightness", "RandomCrop", "RandomShear", "GaussianNoise", "GaussianDropout", "RandomErasing",
                 "RandomGrayscale", "RandomSaturation", "RandomHue", "RandomColorJitter", "RandomPerspective",
                 "RandomSharpness", "RandomInvert", "RandomPosterization", "RandomElasticTransform", "Identity"}


def _digits(n=32, seed=7):
    x, _ = trusted.heldout("mnist")
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)][..., None].astype("float32")


# --------------------------------------------------------------------------------------------- task 1


def check_train_only(art) -> None:
    """model(x, training=False) is deterministic and equals the base; model(x, training=True) differs."""
    import keras

    model, base = art.model("augmented_other"), art.model("other_base")
    x = _digits()
    keras.utils.set_random_seed(7)
    try:
        expected = np.asarray(base(x, training=False))
        first, second = np.asarray(model(x, training=False)), np.asarray(model(x, training=False))
        trained = [np.asarray(model(x, training=True)) for _ in range(2)]
    except Exception as exc:
        raise AssertionError(f"the grader could not run your saved model on 28x28x1 digits ({type(exc).__name__}): "
                             "with_augmentation should return keras.Model(inputs, base(block(inputs)))") from None
    trusted.expect_train_only(expected, first, second, trained)


# --------------------------------------------------------------------------------------------- task 2

#: artifact -> (number of marker images, batch size); the test cell makes the images, the grader reads the batches.
PIPELINES = {"pipeline_a": (100, 16), "pipeline_b": (50, 7)}


def check_pipeline(art) -> None:
    """Every example once, its label beside its own image, augmentation applied, batches of the size asked, shuffled."""
    for name, (n, batch_size) in PIPELINES.items():
        out = art.outputs(name)
        means, labels, sizes = (np.asarray(out.get(k, []), dtype="float64").ravel() for k in ("means", "labels",
                                                                                              "sizes"))
        trusted.expect_pipeline(means, labels, sizes, batch_size, n,
                                what=f"make_dataset on {n} images, batch_size={batch_size}")


# --------------------------------------------------------------------------------------------- task 3


def digits_reference_classifier(seed: int = 0):
    """An SVM trained on scikit-learn's digits under mild shifts, rotations and zooms (the oracle of task 3)."""
    from sklearn.svm import SVC

    from cnnbook.augment import build_augmentation
    from cnnbook.data import load

    data = load("digits", "sample", verbose=False)
    mild = build_augmentation({"rotation": 15, "width_shift": 0.15, "height_shift": 0.15, "zoom": 0.15}, seed=seed)
    x = data.x_train.astype("float32")[..., None]
    copies = [x] + [np.asarray(mild(x, training=True)) for _ in range(2)]
    features = np.concatenate(copies).reshape(len(x) * len(copies), -1) / 255
    return SVC(gamma=0.02, C=10).fit(features, np.tile(data.y_train, len(copies))), data


def check_digit_ranges(art) -> None:
    """Task 3's test cell: the ranges the kernel handed in, checked by :func:`check_ranges_dict`."""
    raw = art.outputs("digit_ranges").get("json")
    try:
        ranges = json.loads(raw.tobytes().decode("utf-8"))
    except Exception:
        raise AssertionError("the grader could not read DIGIT_RANGES: make it a dict such as "
                             "{'rotation': 10}") from None
    check_ranges_dict(ranges)


def check_ranges_dict(ranges, min_accuracy: float = 0.85, seed: int = 0) -> None:
    """The ranges keep each digit's label (the SVM still reads 85 %) and do change the images; no flips, <= 30 deg."""
    from cnnbook.augment import build_augmentation, check_ranges

    if not isinstance(ranges, dict):
        raise AssertionError(f"DIGIT_RANGES should be a dict such as {{'rotation': 10}}, got {type(ranges).__name__}")
    try:
        checked = check_ranges(ranges)
    except (ValueError, TypeError) as exc:
        raise AssertionError(f"build_augmentation rejects your ranges: {exc}") from None
    if checked.get("flip"):
        raise AssertionError(f"flip={checked['flip']!r} changes what a digit is (a mirrored 2 is not a 2, and an "
                             "upside-down 6 reads as a 9): leave flips out")
    if checked.get("rotation", 0) > 30:
        raise AssertionError(f"rotation={checked['rotation']:g} degrees is too much for digits: stay at 30 or less")
    classifier, data = digits_reference_classifier(seed)
    x = data.x_test.astype("float32")[..., None]
    augmented = np.asarray(build_augmentation(checked, seed=seed)(x, training=True))
    change = float(np.abs(augmented - x).mean())
    if change < 1.0:
        raise AssertionError(f"your augmentation barely changes the digits (mean change {change:.2f} of 255): add "
                             "at least one geometric transformation such as a small rotation, shift or zoom")
    accuracy = float(classifier.score(augmented.reshape(len(x), -1) / 255, data.y_test))
    if accuracy < min_accuracy:
        raise AssertionError(f"a reference classifier recognises only {accuracy:.1%} of the augmented test digits "
                             f"(it needs {min_accuracy:.0%}): your ranges change too many digits beyond recognition")


# --------------------------------------------------------------------------------------------- task 4


def heldout_accuracy(model) -> float:
    """Accuracy on the held-out MNIST digits (the calibration metric of task 4)."""
    return trusted.accuracy(model, *trusted.heldout("mnist"))


def expect_augmented_small_cnn(model) -> None:
    """The saved model has a Keras Random* layer and is chapter 6's small CNN (under 100,000 parameters)."""
    names = set()

    def walk(m):
        for layer in m.layers:
            names.add(type(layer).__name__)
            if hasattr(layer, "layers"):
                walk(layer)
    walk(model)
    if not names & (RANDOM_LAYERS - {"Identity"}):
        raise AssertionError("your trained model contains no Keras Random* layer: build it with "
                             "small_cnn(..., augmentation=build_augmentation(DIGIT_RANGES, seed=SEED))")
    if trusted.params(model) > 100_000:
        raise AssertionError(f"your model has {trusted.params(model):,} parameters: train chapter 6's small_cnn")


#: The model trained with augmentation has Random* layers and beats the no-augmentation level on held-out digits.
check_beats_baseline = trusted.band_check(
    ASSIGNMENT, "augmented_model", 0, heldout_accuracy, expect=expect_augmented_small_cnn,
    message="trained with augmentation, your model recognises {value:.1%} of the held-out digits; it needs "
            "{level:.1%}, above what the same model reaches without augmentation: train for the 40 epochs the task "
            "gives, with mild ranges")


CHECKS = {"test_train_only": check_train_only, "test_pipeline": check_pipeline,
          "test_digit_ranges": check_digit_ranges, "test_beats_baseline": check_beats_baseline}
BASELINE = ("keras.utils.set_random_seed(SEED)\n"
            "augmented_model = small_cnn((28, 28, 1), 10)\n"
            "augmented_model.fit(mnist.x_train[:N_TRAIN, ..., None], mnist.y_train[:N_TRAIN], epochs=EPOCHS, "
            "batch_size=32, verbose=0)\n")
TASKS = {"augmented_model": trusted.QualityTask(
    cells=("imports", "digit_ranges", "train_data", "train_augmented"), artifact="augmented_model",
    metric=heldout_accuracy, fixed=(0.935,), derive_top=False, weak={"train_augmented": BASELINE},
    weak_name="the same small CNN trained without augmentation (the baseline it must beat)")}
