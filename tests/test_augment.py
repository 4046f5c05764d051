"""Chapter 6: the augmentation helper, the generator-argument mapping, the grading checks and the lesson's claims.

Oracles: Keras's own layers (a quarter turn of RandomRotation equals np.rot90, RandomFlip equals a NumPy mirror),
NumPy arithmetic, and the numbers the lesson's committed sample experiment glued.
"""

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnbook import augment, grading


def test_build_augmentation_makes_one_layer_per_nonzero_range():
    block = augment.build_augmentation({"flip": "horizontal", "rotation": 40, "width_shift": 0.2, "zoom": 0.0,
                                        "contrast": 0.1, "fill_mode": "nearest"}, seed=1)
    names = [type(layer).__name__ for layer in block.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomContrast"]
    rotation = block.layers[1]
    assert rotation.get_config()["factor"] == pytest.approx((-40 / 360, 40 / 360))
    assert rotation.get_config()["fill_mode"] == "nearest"


@pytest.mark.parametrize("ranges, key", [
    ({"rotation": 400}, "rotation"), ({"zoom": -0.1}, "zoom"), ({"width_shift": 1.0}, "width_shift"),
    ({"contrast": "lots"}, "contrast"), ({"flip": "diagonal"}, "flip"), ({"fill_mode": "mirror"}, "fill_mode"),
    ({"rotaton": 10}, "rotaton"), ({"brightness": True}, "brightness"),
])
def test_bad_ranges_raise_value_error_naming_the_key(ranges, key):
    with pytest.raises(ValueError, match=key):
        augment.build_augmentation(ranges)


def test_rotation_is_in_degrees_and_flip_mirrors():
    # Oracle: NumPy. A quarter turn (90 degrees) of a square image is np.rot90 (counter-clockwise).
    image = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    turn = keras.layers.RandomRotation((0.25, 0.25), interpolation="nearest")
    np.testing.assert_allclose(np.asarray(turn(image, training=True))[0, :, :, 0], np.rot90(image[0, :, :, 0]),
                               atol=1e-4)
    block = augment.build_augmentation({"rotation": 90}, seed=0)
    assert block.layers[0].get_config()["factor"] == pytest.approx((-0.25, 0.25))
    flip = keras.layers.RandomFlip("horizontal", seed=3)
    out = np.asarray(flip(np.repeat(image, 32, axis=0), training=True))
    mirrored = np.array([np.array_equal(o, image[0, :, ::-1]) for o in out])
    unchanged = np.array([np.array_equal(o, image[0]) for o in out])
    assert np.all(mirrored | unchanged) and mirrored.any() and unchanged.any()


def test_augmentation_is_identity_at_inference():
    block = augment.build_augmentation({"flip": "horizontal", "rotation": 30, "zoom": 0.2, "brightness": 0.2}, seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(block(x, training=False)), x)
    assert not np.allclose(np.asarray(block(x, training=True)), x)


def test_generator_args_from_the_sources_convert():
    # Chollet's configuration (source 001) and Olafenwa's (source 002).
    r = augment.generator_args_to_ranges(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                         shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
    assert r["rotation"] == 40 and r["flip"] == "horizontal" and r["fill_mode"] == "nearest"
    assert r["shear"] == pytest.approx(math.tan(math.radians(0.2)))  # 0.2 degrees: 0.35% of the image
    r = augment.generator_args_to_ranges(rotation_range=10, width_shift_range=5 / 32, height_shift_range=5 / 32,
                                         horizontal_flip=True)
    assert r["width_shift"] == pytest.approx(0.15625)
    with pytest.raises(ValueError, match="zca_whitening.*none"):
        augment.generator_args_to_ranges(zca_whitening=True)
    block = augment.from_generator_args(rotation_range=10, horizontal_flip=True, vertical_flip=True)
    assert block.layers[0].get_config()["mode"] == "horizontal_and_vertical"


def test_mapping_table_covers_every_argument_the_sources_use():
    used = {"rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range",
            "horizontal_flip", "fill_mode", "rescale", "featurewise_center", "featurewise_std_normalization",
            "preprocessing_function"}
    table = augment.equivalents_frame()
    assert used <= set(table["old argument"])
    for keras3 in table["Keras 3"]:  # every layer the table names exists in Keras 3
        for word in keras3.replace("(", " ").split():
            if word.startswith("Random") or word in ("Rescaling", "Normalization"):
                assert hasattr(keras.layers, word), word
    assert (table["Keras 3"].str.startswith("none")).sum() >= 2


# ------------------------------------------------------------------------------------------- grading checks


def _base():
    inputs = keras.Input((8, 8, 1))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))


def test_check_train_only_augmentation_accepts_random_layers_and_rejects_always_on():
    base = _base()
    x = np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 1)).astype("float32")
    inputs = keras.Input((8, 8, 1))
    good = keras.Model(inputs, base(keras.layers.RandomRotation(0.1, seed=0)(inputs)))
    assert grading.check_train_only_augmentation(good, base, x) is None
    always = keras.Model(inputs, base(keras.layers.Lambda(lambda t: t + tf.random.uniform(tf.shape(t)))(inputs)))
    with pytest.raises(AssertionError, match="two different answers"):
        grading.check_train_only_augmentation(always, base, x)
    with pytest.raises(AssertionError, match="does nothing in training"):
        grading.check_train_only_augmentation(base, base, x)


def _good_dataset(x, y, augment, batch_size):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(batch_size)
    return ds.map(lambda a, b: (augment(a, training=True), b)).prefetch(tf.data.AUTOTUNE)


def _misaligned_dataset(x, y, augment, batch_size):
    images = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=0)
    labels = tf.data.Dataset.from_tensor_slices(y).shuffle(len(y), seed=1)
    return tf.data.Dataset.zip((images, labels)).batch(batch_size).map(lambda a, b: (augment(a, training=True), b))


def test_check_aligned_pipeline():
    assert grading.check_aligned_pipeline(_good_dataset) is None
    with pytest.raises(AssertionError, match="no longer sit next to their own label"):
        grading.check_aligned_pipeline(_misaligned_dataset)
    with pytest.raises(AssertionError, match="unchanged"):
        grading.check_aligned_pipeline(lambda x, y, a, b: tf.data.Dataset.from_tensor_slices((x, y)).shuffle(100)
                                       .batch(b))


@pytest.mark.slow
def test_check_digit_augmentation_accepts_mild_and_rejects_flips_and_big_ranges():
    # the check lives with the grader: autograder/checks/ch06_augmentation.py
    from autograder import trusted

    check = trusted.load_checks("ch06_augmentation").check_ranges_dict
    assert check({"rotation": 10, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1}) is None
    for bad, message in [({"flip": "horizontal", "rotation": 10}, "leave flips out"),
                         ({"rotation": 90}, "too much"), ({}, "barely changes"),
                         ({"width_shift": 0.4, "height_shift": 0.4}, "recognises only"),
                         ({"zoom": -1}, "rejects")]:
        with pytest.raises(AssertionError, match=message):
            check(bad)


# ------------------------------------------------------------------------------------------- the lesson's claims


def _glued(lesson: Path) -> dict[str, str]:
    """The values a lesson glued (myst-nb `glue`, stored by papermill's record mime type) in its committed outputs."""
    import json

    found = {}
    for cell in json.loads(lesson.read_text())["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                found[name] = out["data"]["application/papermill.record/text/plain"].strip("'\"")
    return found


def test_sample_experiment_claims():
    """What section 6.6 of the lesson says of its experiment holds for the numbers it glued.

    Oracle: the committed (reviewed) run of book/ch06_augmentation.ipynb, which test_lessons checks against the
    runner's execution of the current sources, so the experiment is trained once per run of the suite, not twice.
    """
    glued = _glued(Path(__file__).parents[1] / "book" / "ch06_augmentation.ipynb")
    points = {k: float(glued[k].rstrip(" %")) for k in ("plain_val", "plain_val_sd", "plain_train", "plain_gap",
                                                         "aug_val", "aug_val_sd", "aug_train", "aug_gap")}
    assert points["plain_gap"] > 5, points  # the plain run overfits its training images (about 10 points)
    assert points["aug_gap"] < points["plain_gap"], points  # augmentation narrows the gap ...
    assert points["aug_train"] < points["plain_train"], points  # ... by lowering the training fit ...
    # ... and, at this size, ends below plain on validation by more than the spread over seeds (what the text says)
    assert points["plain_val"] - points["aug_val"] > max(points["plain_val_sd"], points["aug_val_sd"]), points
    assert 60 < points["plain_val"] < 90, points  # a real small-data Fashion-MNIST accuracy, far above chance (10)
    # the gap is the difference of the two accuracies it is glued beside (to the rounding of the glued values)
    assert abs(points["plain_train"] - points["plain_val"] - points["plain_gap"]) < 0.15, points


def test_seeded_experiment_draws_a_different_subset_per_seed(monkeypatch):
    from cnnbook.data import load

    seen = {}

    def fake(data, ranges, *, n_train, epochs, batch_size, seed):
        seen[seed] = data.x_train[:n_train].copy()
        return {"plain": {"loss": [1.0], "val_loss": [1.0], "accuracy": [0.5], "val_accuracy": [0.4 + seed / 10]}}
    monkeypatch.setattr(augment, "overfitting_experiment", fake)
    results = augment.seeded_experiment(load("fashion_mnist", verbose=False), {}, n_train=20, epochs=1,
                                        seeds=(0, 1, 2), verbose=False)
    assert not np.array_equal(seen[0], seen[1]) and seen[0].shape == (20, 28, 28)
    table = augment.seed_table(results)
    # Oracle: NumPy's mean and sample standard deviation of 0.4, 0.5, 0.6
    assert table.loc["plain", "val_accuracy mean"] == pytest.approx(0.5)
    assert table.loc["plain", "val_accuracy std"] == pytest.approx(np.std([0.4, 0.5, 0.6], ddof=1))


def test_old_zoom_range_zooms_the_axes_independently():
    # ImageDataGenerator drew zx and zy separately; RandomZoom(h) alone (width_factor=None) keeps the aspect ratio.
    block = augment.from_generator_args(zoom_range=0.2)
    config = block.layers[0].get_config()
    assert config["height_factor"] == pytest.approx(0.2) and config["width_factor"] == pytest.approx(0.2)
    assert keras.layers.RandomZoom(0.2).get_config()["width_factor"] is None
    # Oracle: a horizontal bar stays exactly as tall when one draw zooms both axes; independent draws change it.
    image = np.zeros((64, 33, 33, 1), "float32")
    image[:, 14:19, 4:29] = 255.0
    same = np.asarray(keras.layers.RandomZoom((-0.3, -0.3), seed=0, interpolation="nearest")(image, training=True))
    free = np.asarray(block.layers[0](image, training=True))
    def aspect(batch):
        rows, cols = (batch[..., 0] > 127).any(axis=2).sum(axis=1), (batch[..., 0] > 127).any(axis=1).sum(axis=1)
        return cols / np.maximum(rows, 1)
    assert np.allclose(aspect(same), aspect(same)[0]) and np.ptp(aspect(free)) > 0.5
    assert "width_factor=None" in augment.equivalents_frame().set_index("old argument").loc["zoom_range", "note"]


def test_random_crop_returns_the_image_unchanged_at_inference():
    # What the lesson says (issue 17): no centre crop at inference. Oracle: the input itself.
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 60, 3)).astype("float32")
    crop = keras.layers.RandomCrop(20, 20, seed=0)
    np.testing.assert_array_equal(np.asarray(crop(x, training=False)), x)
    assert np.asarray(crop(x, training=True)).shape == (2, 20, 20, 3)


def test_olafenwas_generator_sets_no_featurewise_flag():
    table = augment.equivalents_frame().set_index("old argument")
    assert "datagen.fit changes nothing" in table.loc["featurewise_center", "note"]
    assert not table.loc["featurewise_center", "value in the sources"].startswith("datagen.fit")


# ------------------------------------------------------------ issue 35: RandomCrop's batch draw and files on disk


def test_random_crop_draws_one_location_per_batch_the_other_layers_one_per_image():
    # Keras 3.15's RandomCrop picks one crop window for a whole batch (its docstring says so; its code draws one
    # h_start, w_start). Oracle: a batch of identical images gives identical crops, and so does the batched tf.data
    # map the lesson recommends; mapped image by image (before batch) the crops differ.
    image = np.random.default_rng(0).uniform(0, 255, (40, 60, 3)).astype("float32")
    crop = keras.layers.RandomCrop(20, 20, seed=1)
    assert augment.distinct_draws(crop, image, n=8) == 1
    assert augment.distinct_draws(keras.layers.RandomRotation(0.1, seed=1), image, n=8) == 8
    assert augment.distinct_draws(keras.layers.RandomZoom(0.3, seed=1), image, n=8) == 8
    copies = np.repeat(image[None], 8, axis=0)
    batched = tf.data.Dataset.from_tensor_slices(copies).batch(8).map(lambda b: crop(b, training=True))
    per_image = tf.data.Dataset.from_tensor_slices(copies).map(lambda i: crop(i, training=True)).batch(8)
    assert len({c.tobytes() for c in next(iter(batched)).numpy()}) == 1
    assert len({c.tobytes() for c in next(iter(per_image)).numpy()}) == 8


def test_random_crop_docstring_promises_a_centre_crop_that_inference_does_not_do():
    # The discrepancy the lesson names: the installed docstring (and keras.io) says inference "resized and cropped"
    # to the largest centred window; the code returns the input unchanged (oracle: the input itself).
    assert "At inference time" in keras.layers.RandomCrop.__doc__ and "cropped" in keras.layers.RandomCrop.__doc__
    x = np.random.default_rng(1).uniform(0, 255, (1, 30, 50, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(keras.layers.RandomCrop(20, 20)(x, training=False)), x)


def test_write_image_folders_round_trips_through_image_dataset_from_directory(tmp_path):
    # Oracle: the arrays written must come back pixel for pixel, with the labels the folder names give.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 10), dtype=np.uint8)
    labels = np.arange(12) % 3
    paths = augment.write_image_folders(images, labels, ["a", "b", "c"], tmp_path)
    assert len(paths) == 12 and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["00001.png", "00004.png",
                                                                                       "00007.png", "00010.png"]
    ds = keras.utils.image_dataset_from_directory(tmp_path, color_mode="grayscale", image_size=(8, 10),
                                                  batch_size=None, shuffle=False)
    assert ds.class_names == ["a", "b", "c"]
    back = {(int(y), np.asarray(x, "uint8")[..., 0].tobytes()) for x, y in ds}
    assert back == {(int(y), x.tobytes()) for x, y in zip(images, labels)}
    decoded = tf.io.decode_png(tf.io.read_file(str(paths[0])), channels=1).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, images[0])
    with pytest.raises(ValueError, match="uint8"):
        augment.write_image_folders(images.astype("float32"), labels, ["a", "b", "c"], tmp_path)
    with pytest.raises(ValueError, match="T-shirt/top"):
        augment.write_image_folders(images, labels, ["T-shirt/top", "b", "c"], tmp_path)


def test_chapter6_says_what_keras_does():
    import json
    lesson = Path(__file__).resolve().parents[1] / "book" / "ch06_augmentation.ipynb"
    nb = json.loads(lesson.read_text())
    prose = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    glued = _glued(lesson)
    assert "All four sources" not in prose and "builds a `tf.data` pipeline instead" in prose   # Géron, source 003
    assert "still draw a\nseparate change for each image of the batch." not in prose
    assert "**one crop window for the whole batch**" in prose
    image = np.zeros((10, 12, 3), "float32") + np.arange(12, dtype="float32")[None, :, None]
    assert glued["crop_draws"] == str(augment.distinct_draws(keras.layers.RandomCrop(5, 5, seed=1), image)) == "1"
    assert glued["keras_version"] == keras.__version__ and "centre\ncrop. The code does not do that" in prose
    table_cell = next(c for c in nb["cells"] if "equivalents_frame()" in "".join(c["source"]))
    assert "hide-cell" in table_cell["metadata"].get("tags", [])                 # the migration table is folded
