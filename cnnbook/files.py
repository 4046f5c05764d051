"""Pictures as files: one folder per class, written and read back (chapter 6).

:func:`write_image_folders` writes arrays as PNG files in the layout ``root/<class>/<n>.png`` that
``keras.utils.image_dataset_from_directory`` reads (the folder's name is the label). :func:`list_image_files` lists
such a folder (skipping files that are not really JPEG or PNG, as Microsoft's cats-and-dogs photos need), and
:func:`file_dataset`, written on the page of chapter 6, turns a list of files into a ``tf.data`` pipeline that reads,
decodes, caches, shuffles, batches and prefetches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The first bytes of the files :func:`list_image_files` accepts, and the formats they mean.
SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
EXTENSIONS = (".jpg", ".jpeg", ".png")


def write_image_folders(images, labels, class_names, root) -> list:
    """Write images as PNG files in one folder per class, ``root/<class name>/<index>.png``; return the paths (ch. 6).

    ``images`` are uint8 arrays (H, W) or (H, W, C) with C = 1 or 3, in one array or a list (sizes may differ);
    ``labels`` index ``class_names``. This is the layout ``keras.utils.image_dataset_from_directory`` reads: the
    folder's name is the label.
    """
    from PIL import Image

    labels = np.asarray(labels)
    bad = [name for name in class_names if "/" in str(name) or "\\" in str(name) or str(name) in ("", ".", "..")]
    if bad:
        raise ValueError(f"class names {bad} cannot be folder names: replace the slashes (e.g. 'T-shirt/top' -> "
                         "'T-shirt-top')")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    root = Path(root)
    paths = []
    for index, (image, label) in enumerate(zip(images, labels)):
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"images must be uint8 pixels 0-255, got {image.dtype}")
        folder = root / str(class_names[int(label)])
        folder.mkdir(parents=True, exist_ok=True)
        image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        path = folder / f"{index:05d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def is_image_file(path) -> bool:
    """Whether a file starts with the signature of a JPEG or a PNG (:data:`SIGNATURES`), whatever its name (ch. 6)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return any(head.startswith(signature) for signature in SIGNATURES)


def list_image_files(root, class_names=None) -> tuple[list[str], np.ndarray, list[str], int]:
    """List ``root/<class>/*.{jpg,jpeg,png}``: paths, labels (index of the folder), class names, files skipped (ch. 6).

    Classes are the sub-folders in alphabetical order (as ``image_dataset_from_directory`` orders them) unless
    ``class_names`` gives them. Files whose first bytes are not a JPEG or PNG signature are skipped and counted:
    a decoder would stop the whole pipeline on them.
    """
    root = Path(root)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if class_names is None else list(class_names)
    missing = [name for name in names if not (root / name).is_dir()]
    if missing or not names:
        raise FileNotFoundError(f"expected one sub-folder per class under {root}, missing: {missing or 'all'}")
    paths, labels, skipped = [], [], 0
    for label, name in enumerate(names):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            if is_image_file(path):
                paths.append(str(path))
                labels.append(label)
            else:
                skipped += 1
    return paths, np.array(labels, "int32"), names, skipped


def split_files(n: int, validation_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` once with ``seed`` and cut it: (training indices, validation indices), disjoint (ch. 6)."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be between 0 and 1")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * validation_fraction))
    return order[n_val:], order[:n_val]


def file_dataset(paths, labels, image_size, channels=1, batch_size=64, shuffle=False, seed=0):
    """A tf.data pipeline over image files: read, decode, resize, cache, [shuffle], batch, prefetch (chapter 6)."""
    import tensorflow as tf

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        return tf.image.resize(image, image_size), label   # float32; every file to one size

    ds = tf.data.Dataset.from_tensor_slices((list(paths), list(labels)))
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE).cache()   # read and decode once
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed)                         # a new order every epoch
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)             # next batch ready while training
