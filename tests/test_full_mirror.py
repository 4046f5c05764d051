"""The ``full`` profile's download, checksum, extraction and parsing, end to end against a local test mirror (issue 39).

``coursetools/mirror.py`` writes, for every file ``full`` downloads, a miniature archive in the real format and
layout and serves it on 127.0.0.1; ``$CNNBOOK_MIRROR`` points the course at it. Nothing is faked inside the course:
``keras.utils.get_file`` really downloads over HTTP, checks the mirror's sha256, extracts, and the course's own
readers parse each layout.

Oracles: the mirror's ``files()`` (what was written must be what is read back: the MNIST arrays byte for byte, the
numbers of images per class, the trimap values), Python's ``hashlib`` for the checksums, and the published layouts
named in the mirror's docstring. The course's real checksum table is checked against its published sources in
tests/test_data.py, not here.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from cnnbook import canvases, data
from coursetools import mirror

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp(mirror.FOLDER_NAME)
    return folder, mirror.build(folder, per_class=6)


@pytest.fixture
def served(built, monkeypatch):
    folder, hashes = built
    with mirror.serve(folder) as address:
        for name, value in mirror.environment(address, folder).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", folder / "no-debian-package")   # so Fashion-MNIST downloads
        yield address, hashes


def test_the_mirror_has_every_full_file_with_its_own_checksum(built):
    folder, hashes = built
    expected = {path for entries in data._REMOTE.values() for path, _, _ in entries} | {p for p, _ in canvases.PETS}
    expected |= {path for path, _ in data._WEIGHTS.values()}
    assert set(hashes) == expected
    for entries in data._REMOTE.values():
        for path, origin, _ in entries:
            written = folder / mirror.relative_path(origin)
            assert hashlib.sha256(written.read_bytes()).hexdigest() == hashes[path]
            assert hashes[path] != data._FILE_HASHES.get(path)    # a test mirror, never taken for the real file


def outward_address() -> str | None:
    """This machine's address on its outward interface (a UDP socket's own end once routed; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))      # TEST-NET-1: routed, never answered
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_it_listens_on_the_loopback_interface_only(built):
    outward = outward_address()
    if outward is None:
        pytest.skip("this machine has no interface but the loopback one")
    with mirror.serve(built[0]) as address:
        assert address.startswith("http://127.0.0.1:")
        port = int(address.rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=2).close()     # reachable here
        with pytest.raises(OSError):                                          # and not from outside
            socket.create_connection((outward, port), timeout=2).close()


def test_the_mirror_setting_refuses_an_address_off_the_machine(monkeypatch, built):
    monkeypatch.setenv(data.MIRROR_ENV, "http://example.org:8000")
    monkeypatch.setenv(data.MIRROR_HASHES_ENV, str(built[0] / "hashes.json"))
    with pytest.raises(ValueError, match="loopback"):
        data.mirrored(data._REMOTE["mnist"][0][1], "mnist.npz")
    monkeypatch.delenv(data.MIRROR_ENV)
    assert data.mirrored(data._REMOTE["mnist"][0][1], "mnist.npz") == (data._REMOTE["mnist"][0][1],
                                                                        data._FILE_HASHES["mnist.npz"])


def test_mnist_and_fashion_mnist_come_back_byte_for_byte(served, tmp_path):
    for name in ("mnist", "fashion_mnist"):
        sample = data.load(name, "sample", verbose=False)
        full = data.load(name, "full", cache_dir=tmp_path / "cache", verbose=False)
        n = 20 * 6
        everything = np.concatenate([full.x_train, full.x_val])     # full keeps 1/12 of train for validation
        assert len(everything) == n and len(full.x_test) == n // 2
        assert sorted(map(bytes, everything)) == sorted(map(bytes, sample.x_train[:n]))
        np.testing.assert_array_equal(full.x_test, sample.x_test[:n // 2])


def test_cifar10_pickle_batches_parse(served, tmp_path):
    full = data.load("cifar10", "full", cache_dir=tmp_path / "cache", verbose=False)
    assert full.x_train.shape[1:] == (32, 32, 3) and full.x_train.dtype == np.uint8
    assert sum(full.sizes.values()) == 6 * 10 + 6 * 5
    assert full.class_names == data.CIFAR10_CLASSES


def test_flowers_and_cats_vs_dogs_folders_parse_and_skip_what_is_not_a_photo(served, tmp_path):
    flowers = data.load("flowers", "full", image_size=24, cache_dir=tmp_path / "cache", verbose=False)
    assert sum(flowers.sizes.values()) == 5 * 6 and flowers.x_train.shape[1:] == (24, 24, 3)
    cats = data.load("cats_vs_dogs", "full", image_size=24, cache_dir=tmp_path / "cache", verbose=False)
    assert sum(cats.sizes.values()) == 2 * 6          # the corrupt .jpg and Thumbs.db of each folder are skipped


def test_oxford_pets_images_and_trimaps_parse(served, tmp_path):
    images, masks = canvases.load_pets(size=32, cache_dir=tmp_path / "cache")
    assert images.shape == (12, 32, 32, 3) and masks.shape == (12, 32, 32)
    assert set(np.unique(masks)) == {0, 1, 2}          # pet, background, border: the trimaps' 1-3 minus one
    assert masks[0, 16, 16] == 0 and masks[0, 1, 1] == 1


def test_no_server_names_the_file_the_address_the_profile_and_the_sample_profile(served, tmp_path, monkeypatch):
    with socket.socket() as probe:               # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(data.MIRROR_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(data.DownloadError) as error:
        data.load("mnist", "full", cache_dir=tmp_path / "cache", verbose=False)
    message = str(error.value)
    for needle in ("mnist.npz", f"127.0.0.1:{port}", "'full'", "'sample'", "no network"):
        assert needle in message, (needle, message)


def test_a_download_cut_half_way_is_detected_by_its_checksum_and_fetched_again(served, tmp_path, built):
    cache = tmp_path / "cache"
    partial = cache / "datasets" / "mnist.npz"
    partial.parent.mkdir(parents=True)
    whole = (built[0] / mirror.relative_path(data._REMOTE["mnist"][0][1])).read_bytes()
    partial.write_bytes(whole[:len(whole) // 2])
    full = data.load("mnist", "full", cache_dir=cache, verbose=False)
    assert partial.read_bytes() == whole and len(full.x_test) == 60


def test_a_corrupted_archive_is_an_error_that_says_so_and_the_next_run_fetches_it_again(served, tmp_path, built,
                                                                                        monkeypatch):
    folder, hashes = built
    bad = tmp_path / "hashes.json"
    bad.write_text(json.dumps({**hashes, "flower_photos": "0" * 64}))
    monkeypatch.setenv(data.MIRROR_HASHES_ENV, str(bad))
    with pytest.raises(data.DownloadError, match="corrupted"):
        data.load("flowers", "full", image_size=16, cache_dir=tmp_path / "cache", verbose=False)
    monkeypatch.setenv(data.MIRROR_HASHES_ENV, str(folder / "hashes.json"))
    assert sum(data.load("flowers", "full", image_size=16, cache_dir=tmp_path / "cache",
                         verbose=False).sizes.values()) == 30


def test_an_extraction_cut_short_is_redone(served, tmp_path):
    cache = tmp_path / "cache"
    data.load("flowers", "full", image_size=16, cache_dir=cache, verbose=False)
    extracted = cache / "datasets" / "flower_photos"
    (extracted.parent / "flower_photos.complete").unlink()          # as if the kernel died while extracting
    for photo in list(extracted.rglob("*.jpg"))[::2]:
        photo.unlink()
    again = data.load("flowers", "full", image_size=16, cache_dir=cache, verbose=False)
    assert sum(again.sizes.values()) == 30


def test_a_cache_folder_that_cannot_be_written_is_reported_not_replaced(served, tmp_path):
    unwritable = tmp_path / "ro"
    unwritable.mkdir()
    os.chmod(unwritable, 0o500)
    target = unwritable / "cache"
    if os.geteuid() == 0:          # root writes anywhere on a writable mount: use a read-only file system instead
        target = Path("/proc/cnnbook-cache")
    with pytest.raises(PermissionError) as error:
        data.load("mnist", "full", cache_dir=target, verbose=False)
    assert str(target) in str(error.value) and "CNNBOOK_CACHE" in str(error.value)


def test_a_stalled_transfer_times_out_and_names_the_file_the_address_the_profile_and_the_sample_profile(
        built, tmp_path, monkeypatch):
    # Oracle: the server sends the headers and half of the file, then nothing; the course's timeout must end the
    # wait (a download with no timeout would hang for the whole stall) and the next run must fetch the whole file
    folder, _ = built
    monkeypatch.setenv(data.TIMEOUT_ENV, "1")
    cache = tmp_path / "cache"
    with mirror.serve(folder, stall=60) as address:
        for name, value in mirror.environment(address, folder).items():
            monkeypatch.setenv(name, value)
        start = time.monotonic()
        with pytest.raises(data.DownloadError) as error:
            data.load("mnist", "full", cache_dir=cache, verbose=False)
        waited = time.monotonic() - start
    assert waited < 15, f"the stalled download was given up after {waited:.0f} s, not about 1 s"
    message = str(error.value)
    for needle in ("mnist.npz", address, "'full'", "'sample'", "stalled", data.TIMEOUT_ENV):
        assert needle in message, (needle, message)
    assert not (cache / "datasets" / "mnist.npz").exists()          # the half file is not kept as if whole
    with mirror.serve(folder) as address:
        monkeypatch.setenv(data.MIRROR_ENV, address)
        assert len(data.load("mnist", "full", cache_dir=cache, verbose=False).x_test) == 60


def test_the_timeout_setting_is_checked(monkeypatch):
    monkeypatch.setenv(data.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=data.TIMEOUT_ENV):
        data.download_timeout()
    monkeypatch.delenv(data.TIMEOUT_ENV)
    assert data.download_timeout() == data.DOWNLOAD_TIMEOUT


def test_keras_applications_weights_come_from_the_mirror_with_the_real_layer_names_and_shapes(served, built,
                                                                                                tmp_path):
    # Oracle: Keras's own VGG16 (weights=None) for the names and shapes, and h5py reading the mirror's file for the
    # values that loading must put into the model
    import h5py
    import keras

    path = data.application_weights("VGG16", include_top=False, cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    model = keras.applications.VGG16(weights=str(path), include_top=False)
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        assert names == [l.name for l in model.layers if l.weights]
        stored = f["block5_conv3"]["block5_conv3/kernel:0"][()]
    np.testing.assert_array_equal(model.get_layer("block5_conv3").get_weights()[0], stored)
    with pytest.raises(ValueError, match="VGG16"):
        data.application_weights("ResNet50")
