"""Convert Debian's Fashion-MNIST (package ``dataset-fashion-mnist``) into the course's sample and held-out files.

Run once from the repository root (the outputs are committed; see cnnbook/data/README.md):

    apt-get install -y dataset-fashion-mnist          # the four idx files under /usr/share/datasets/fashion-mnist/
    python tools/convert_debian_fashion_mnist.py      # or --source FOLDER holding the same four .gz files

The script checks the sha256 of each file Debian ships and the md5 of its decompressed content against the md5s
published for the original idx files (Debian recompressed the .gz files, so their own md5s differ from Zalando's,
but the content is byte for byte the original). It then draws, with the course seed and exactly balanced classes:

* ``cnnbook/data/fashion_mnist_sample.npz`` (shipped to students): train 10,000 and validation 1,000 from the
  original training set, test 2,000 from the original test set;
* ``autograder/data/fashion_mnist_heldout.npz`` (autograder only): 2,000 other images of the original test set.

Each file also stores the indices of its images in the original files (``i_train`` ..., ``i``), so anyone can check
where every image came from and that the held-out images are not in the sample.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnnbook.data import SEED  # noqa: E402

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_VERSION = "0.0~git20200523.55506a9-1"
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
#: sha256 of the .gz files in the Debian package (version above), measured when the sample was made.
DEBIAN_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
#: md5 of the decompressed idx files, as published for the original Fashion-MNIST (the same as Debian's content).
CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
}
#: Images per class in each split (ten classes): train 10,000, val 1,000, test 2,000, held-out 2,000.
TRAIN, VAL, TEST, HELDOUT = 1000, 100, 200, 200


def read(folder: Path, name: str) -> np.ndarray:
    """Check one Debian file (sha256 of the .gz, md5 of its content) and return it as a uint8 array."""
    packed = (folder / name).read_bytes()
    digest = hashlib.sha256(packed).hexdigest()
    if digest != DEBIAN_SHA256[name]:
        sys.exit(f"{folder / name}: sha256 {digest}, expected {DEBIAN_SHA256[name]} ({DEBIAN_PACKAGE} "
                 f"{DEBIAN_VERSION}); another package version needs its checksums re-measured and checked")
    raw = gzip.decompress(packed)
    content = hashlib.md5(raw).hexdigest()
    if content != CONTENT_MD5[name]:
        sys.exit(f"{folder / name}: content md5 {content} is not the original Fashion-MNIST's {CONTENT_MD5[name]}")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def balanced(labels: np.ndarray, per_class: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Draw disjoint index sets with exactly ``per_class[k]`` images of every class each, each set shuffled."""
    parts: list[list[np.ndarray]] = [[] for _ in per_class]
    for label in range(10):
        members = rng.permutation(np.flatnonzero(labels == label))
        for k, chunk in enumerate(np.split(members[:sum(per_class)], np.cumsum(per_class)[:-1])):
            parts[k].append(chunk)
    return [rng.permutation(np.concatenate(p)).astype("uint16") for p in parts]


def main() -> None:
    """Check the Debian files, draw the balanced splits with the course seed, and write the two .npz files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEBIAN_FOLDER, help=f"default {DEBIAN_FOLDER}")
    args = parser.parse_args()
    x_train, y_train, x_test, y_test = (read(args.source, f"{part}-{kind}-idx{d}-ubyte.gz")
                                        for part in ("train", "t10k") for kind, d in (("images", 3), ("labels", 1)))
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert (np.bincount(y_train) == 6000).all() and (np.bincount(y_test) == 1000).all()
    rng = np.random.default_rng(SEED)
    train, val = balanced(y_train, (TRAIN, VAL), rng)
    test, heldout = balanced(y_test, (TEST, HELDOUT), rng)
    sample = ROOT / "cnnbook" / "data" / "fashion_mnist_sample.npz"
    np.savez_compressed(sample, x_train=x_train[train], y_train=y_train[train], x_val=x_train[val],
                        y_val=y_train[val], x_test=x_test[test], y_test=y_test[test],
                        i_train=train, i_val=val, i_test=test)
    graded = ROOT / "autograder" / "data" / "fashion_mnist_heldout.npz"
    graded.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(graded, x=x_test[heldout], y=y_test[heldout], i=heldout)
    print(f"{DEBIAN_PACKAGE} {DEBIAN_VERSION}: checksums match")
    for path in (sample, graded):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes, "
              f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
    print(f"train {len(train):,} · val {len(val):,} · test {len(test):,} · held-out {len(heldout):,}")


if __name__ == "__main__":
    main()
