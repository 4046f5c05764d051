"""Canvases of real digits with boxes and masks for detection and segmentation, and the ``full`` pets set (chapter 9).

A canvas is a small grey image on which a few MNIST digits are pasted at random places and scales. Every label is
computed from the pasted pixels themselves: an object's box is the tight box of its own ink (its pixels of at least
``ink`` grey levels after resizing and placement, occluded ones included), and the mask gives each pixel the class
of the object whose ink is brightest there (``digit + 1``), or 0 for background. Same seed, same canvases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnnbook.profiles import check_profile

#: Mask value of the background; a digit d is d + 1.
BACKGROUND = 0


@dataclass(frozen=True)
class Canvases:
    """Canvases (n, size, size) uint8, per-canvas boxes/labels, and masks (n, size, size) uint8 (chapter 9)."""

    images: np.ndarray
    boxes: list  # per canvas: float32 (k, 4) corners (x_min, y_min, x_max, y_max), normalised to [0, 1]
    labels: list  # per canvas: int (k,) digit classes 0-9
    masks: np.ndarray  # 0 = background, 1 + digit elsewhere

    def __len__(self) -> int:
        return len(self.images)

    def single(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (boxes (n, 4), labels (n,)) of canvases that hold exactly one object each (chapter 9)."""
        counts = {len(b) for b in self.boxes}
        if counts != {1}:
            raise ValueError(f"single() needs one object per canvas, these have {sorted(counts)}: "
                             "make them with objects=(1, 1)")
        return np.stack([b[0] for b in self.boxes]), np.array([lab[0] for lab in self.labels])

    def summary(self) -> str:
        """One line: how many canvases, their size, objects and classes (chapter 9)."""
        k = np.array([len(b) for b in self.boxes])
        return (f"{len(self):,} canvases {self.images.shape[1]}x{self.images.shape[2]} · {k.sum():,} digits "
                f"({k.min()}-{k.max()} per canvas) · mask classes: background + 10 digits")


def make_canvases(images, labels, n: int, size: int = 64, objects=(1, 3), digit_sizes=(16, 32),
                  max_overlap: float = 0.25, ink: int = 1, seed: int = 0) -> Canvases:
    """Paste real digits on ``n`` canvases of ``size``x``size`` and label boxes and masks from their pixels (ch. 8).

    Each canvas draws 1-3 (``objects``) digits from ``images``/``labels``, each resized to a side in ``digit_sizes``,
    placed where its box overlaps earlier boxes by an IoU of at most ``max_overlap`` (so digits may overlap a bit).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"need images (N, h, w) and labels (N,), got {images.shape} and {labels.shape}")
    low, high = digit_sizes
    if not 4 <= low <= high <= size:
        raise ValueError(f"digit_sizes {digit_sizes} must lie between 4 and the canvas size {size}")
    rng = np.random.default_rng(seed)
    canvas = np.zeros((n, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    all_boxes, all_labels = [], []
    for i in range(n):
        brightest = np.zeros((size, size), np.uint8)
        boxes, classes = [], []
        for _ in range(rng.integers(objects[0], objects[1] + 1)):
            index = rng.integers(len(images))
            side = int(rng.integers(low, high + 1))
            digit = np.asarray(Image.fromarray(images[index]).resize((side, side), Image.BILINEAR))
            for _attempt in range(20):
                top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                layer = np.zeros((size, size), np.uint8)
                layer[top:top + side, left:left + side] = digit
                rows, cols = np.nonzero(layer >= ink)
                if len(rows) == 0:
                    break
                box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32) / size
                if not boxes or _iou_one(box, np.stack(boxes)).max() <= max_overlap:
                    mine = (layer >= ink) & (layer > brightest)
                    masks[i][mine] = labels[index] + 1
                    brightest = np.maximum(brightest, layer)
                    boxes.append(box)
                    classes.append(int(labels[index]))
                    break
        canvas[i] = brightest
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.array(classes, np.int64))
    return Canvases(canvas, all_boxes, all_labels, masks)


def _iou_one(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(others) - inter)


def load_canvases(profile: str = "sample", size: int = 64, sizes=(2000, 300, 300), verbose: bool = True,
                  **options) -> tuple[Canvases, Canvases, Canvases]:
    """Return train/validation/test canvases made from the train/val/test digits of ``cnnbook.data`` (chapter 9).

    ``sample`` uses the shipped MNIST digits; ``full`` downloads MNIST (and fails without network, naming
    ``sample``). ``options`` go to :func:`make_canvases`; the three splits never share a digit.
    """
    from cnnbook import data

    check_profile(profile)
    digits = data.load("mnist", profile=profile)
    splits = []
    for seed, (n, x, y) in enumerate(zip(sizes, (digits.x_train, digits.x_val, digits.x_test),
                                         (digits.y_train, digits.y_val, digits.y_test))):
        splits.append(make_canvases(x, y, n, size=size, seed=seed + 1, **options))
    if verbose:
        print(f"canvases [{profile}: real MNIST digits pasted at random places and scales] "
              + " · ".join(f"{name} {len(s):,}" for name, s in zip(("train", "val", "test"), splits))
              + f" · {size}x{size} uint8 · boxes and masks from the digits' own pixels")
    return tuple(splits)


# ------------------------------------------------------------------------------------------------ full profile
#: Oxford-IIIT Pets (Parkhi et al. 2012, CC BY-SA 4.0): images and trimaps, as keras.io's segmentation example.
PETS = (("oxford_pets/images", "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz"),
        ("oxford_pets/annotations", "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz"))


def load_pets(size: int = 128, limit: int | None = None, cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Download (once, cached) Oxford-IIIT Pets and return images (n, size, size, 3) and masks 0-2 (chapter 9, full).

    Masks: 0 pet, 1 background, 2 border (the trimaps' 1, 2, 3 minus one). Without network it raises
    ``cnnbook.data.DownloadError``, which names the ``sample`` profile.
    """
    from cnnbook import data

    cache = data.resolve_cache_dir(cache_dir)
    images_dir, annotations_dir = (data._download(rel, url, cache, extract=True) for rel, url in PETS)
    trimaps = sorted(p for p in annotations_dir.rglob("trimaps/*.png") if not p.name.startswith("."))
    trimaps = trimaps[:limit] if limit else trimaps
    pictures = {p.stem: p for p in images_dir.rglob("*.jpg")}
    xs, ys = [], []
    for trimap in trimaps:
        if trimap.stem not in pictures:
            continue
        xs.append(np.asarray(Image.open(pictures[trimap.stem]).convert("RGB").resize((size, size))))
        ys.append(np.asarray(Image.open(trimap).resize((size, size), Image.NEAREST)).astype(np.uint8) - 1)
    print(f"oxford_pets [full: Oxford-IIIT Pets via keras.utils.get_file, md5-checked, cached in {cache}] "
          f"{len(xs):,} images · {size}x{size}x3 uint8 · 3 mask classes (pet, background, border)")
    return np.stack(xs), np.stack(ys)
