"""Chapter 6: pictures as files, one folder per class (cnnbook.files and cnnbook.data.image_folder).

Oracles: the arrays written must come back pixel for pixel (PNG is lossless), the labels are the folder names as
Keras's own ``image_dataset_from_directory`` reads them, the bytes we write decide what is an image, and set
arithmetic decides whether a split is disjoint.
"""

import numpy as np
import pytest

from cnnbook import data, files


def test_write_image_folders_round_trips_through_image_dataset_from_directory(tmp_path):
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 10), dtype=np.uint8)
    labels = np.arange(12) % 3
    paths = files.write_image_folders(images, labels, ["a", "b", "c"], tmp_path)
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
        files.write_image_folders(images.astype("float32"), labels, ["a", "b", "c"], tmp_path)
    with pytest.raises(ValueError, match="T-shirt/top"):
        files.write_image_folders(images, labels, ["T-shirt/top", "b", "c"], tmp_path)


def test_list_image_files_labels_by_folder_and_skips_what_is_not_an_image(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8)
    files.write_image_folders(images, [0, 1, 0, 1, 0, 1], ["dog", "cat"], tmp_path)
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a picture at all")      # a .jpg that is not a JPEG
    (tmp_path / "cat" / "notes.txt").write_text("ignored: not an image extension")
    paths, labels, names, skipped = files.list_image_files(tmp_path)
    assert names == ["cat", "dog"] and skipped == 1 and len(paths) == 6          # alphabetical, as Keras orders
    assert all(names[label] in path for path, label in zip(paths, labels))
    assert list(labels).count(0) == 3 and not any("broken" in p for p in paths)
    paths2, labels2, names2, _ = files.list_image_files(tmp_path, class_names=["dog", "cat"])
    assert names2 == ["dog", "cat"] and all(names2[label] in path for path, label in zip(paths2, labels2))
    with pytest.raises(FileNotFoundError, match="bird"):
        files.list_image_files(tmp_path, class_names=["bird"])
    assert files.is_image_file(paths[0]) and not files.is_image_file(tmp_path / "cat" / "broken.jpg")


def test_split_files_is_a_disjoint_seeded_cover():
    train, val = files.split_files(103, 0.2, seed=4)
    assert len(val) == 21 and len(train) == 82 and not set(train) & set(val)
    assert set(train) | set(val) == set(range(103))
    again = files.split_files(103, 0.2, seed=4)
    assert np.array_equal(again[0], train) and not np.array_equal(files.split_files(103, 0.2, seed=5)[1], val)
    with pytest.raises(ValueError):
        files.split_files(10, 1.0)


def test_file_dataset_reads_decodes_and_batches_the_files_written(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (10, 6, 7), dtype=np.uint8)
    labels = np.arange(10) % 2
    files.write_image_folders(images, labels, ["even", "odd"], tmp_path)
    paths, found, names, _ = files.list_image_files(tmp_path)
    ds = files.file_dataset(paths, found, (6, 7), channels=1, batch_size=4)
    batches = list(ds)
    assert [tuple(x.shape) for x, _ in batches] == [(4, 6, 7, 1), (4, 6, 7, 1), (2, 6, 7, 1)]
    pixels = np.concatenate([x.numpy()[..., 0] for x, _ in batches]).round().astype("uint8")
    order = [int(p.rsplit("/", 1)[1][:5]) for p in paths]                        # the index in each file's name
    np.testing.assert_array_equal(pixels, images[order])                          # same size: no resampling
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), labels[order])
    shuffled = np.concatenate([y.numpy() for _, y in files.file_dataset(paths, found, (3, 3), shuffle=True, seed=1)])
    assert sorted(shuffled) == sorted(found)
    resized = next(iter(files.file_dataset(paths, found, (3, 3), batch_size=10)))[0]
    assert tuple(resized.shape) == (10, 3, 3, 1)


def test_image_folder_finds_the_class_folders_of_a_downloaded_dataset(tmp_path):
    # Oracle: a cache laid out as keras.utils.get_file leaves an extracted archive (with its completion marker).
    with pytest.raises(ValueError, match="sample"):
        data.image_folder("flowers", "sample")
    with pytest.raises(ValueError, match="flowers"):
        data.image_folder("mnist")
    extracted = tmp_path / "datasets" / "flower_photos"
    for species in data.FLOWERS_CLASSES:
        (extracted / "flower_photos" / species).mkdir(parents=True)
    (tmp_path / "datasets" / "flower_photos.complete").write_text("done\n")
    assert data.image_folder("flowers", cache_dir=tmp_path) == extracted / "flower_photos"
    pets = tmp_path / "datasets" / "cats_vs_dogs_petimages"
    for animal in ("Cat", "Dog"):
        (pets / "PetImages" / animal).mkdir(parents=True)
    (tmp_path / "datasets" / "cats_vs_dogs_petimages.complete").write_text("done\n")
    assert data.image_folder("cats_vs_dogs", cache_dir=tmp_path) == pets / "PetImages"
