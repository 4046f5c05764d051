"""A local test mirror of every file the ``full`` profile downloads, served on the loopback interface (issue 39).

The ``full`` profile downloads MNIST, Fashion-MNIST, CIFAR-10, the flowers photos, Microsoft's cats-vs-dogs zip and
Oxford-IIIT Pets. This workplace has no network, so those code paths (download, checksum, extraction, each
archive's own layout) are exercised against miniature archives written here **in the real formats and layouts**:

- ``mnist.npz`` as Keras publishes it, and Fashion-MNIST's four gzipped idx files, filled with real digits and
  clothes from the course's offline samples (``cnnbook/data``);
- CIFAR-10's ``cifar-10-python.tar.gz``: the python pickle batches (``data_batch_1..5``, ``test_batch``,
  ``batches.meta``) in their folder ``cifar-10-batches-py``;
- the flowers' ``flower_photos.tgz``: a folder of JPEGs per class and ``LICENSE.txt``;
- Microsoft's ``kagglecatsanddogs_5340.zip``: ``PetImages/{Cat,Dog}/N.jpg`` with a corrupt file and a ``Thumbs.db``
  in each folder, as the real zip has;
- Oxford-IIIT Pets' ``images.tar.gz`` and ``annotations.tar.gz`` (trimaps 1-3, ``list.txt``, a macOS ``._`` file);
- ``keras.applications``' VGG16 ImageNet weights (with and without the classifier), in Keras's legacy HDF5 layout
  (``layer_names``, ``weight_names``, one group per layer) with the real layer names and shapes and random values
  (a random block repeated, stored compressed, so that 138 million weights take a few hundred kilobytes).

The photos are crops of scikit-image's and scikit-learn's photos (real images, but not the datasets'); every archive
holds a ``TEST-MIRROR.txt`` saying so, and the mirror's folder is named ``cnnbook-test-mirror``. Its files have their
own checksums (``hashes.json``), which the test hands to the loader; ``tests/test_data.py`` still checks the course's
real checksum table against its published sources.

The course reads the mirror only when ``CNNBOOK_MIRROR`` is set (tests only; :func:`cnnbook.data.mirrored`): an
address on the loopback interface, and ``CNNBOOK_MIRROR_HASHES``, the path of the mirror's ``hashes.json``. A file
``https://host/path`` is served as ``$CNNBOOK_MIRROR/host/path``.

Usage (a shell for trying the full profile by hand)::

    python -m coursetools.mirror build /tmp/cnnbook-test-mirror
    python -m coursetools.mirror serve /tmp/cnnbook-test-mirror     # prints the two variables to export
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import json
import pickle
import struct
import tarfile
import tempfile
import threading
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np

NOTICE = ("TEST MIRROR of cnnbook (coursetools/mirror.py): a miniature archive in the real format and layout, for "
          "tests only. The images are the course's offline samples and crops of scikit-image/scikit-learn photos; "
          "this is not the published dataset.\n")
FOLDER_NAME = "cnnbook-test-mirror"


def relative_path(origin: str) -> str:
    """``https://host/a/b.tgz`` -> ``host/a/b.tgz``: where the mirror keeps the file downloaded from ``origin``."""
    parts = urllib.parse.urlsplit(origin)
    return parts.netloc + parts.path


# --------------------------------------------------------------------------------------------- the files' contents

def _photos(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` random crops (size, size, 3) uint8 of the offline photos (scikit-image's and scikit-learn's)."""
    from PIL import Image

    from cnnbook import pretrained

    pictures, _ = pretrained.photos(size=160)
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        photo = pictures[rng.integers(len(pictures))].astype(np.uint8)
        side = int(rng.integers(48, 160))
        top, left = (int(rng.integers(0, 160 - side + 1)) for _ in range(2))
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size))
        out[i] = np.asarray(crop)
    return out


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _idx(array: np.ndarray) -> bytes:
    """The idx format of LeCun's and Zalando's files: magic (0, 0, type 0x08, ndim), big-endian sizes, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _tar(members: dict[str, bytes], compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(payload), 1_700_000_000
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _mnist_like(name: str, per_split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from cnnbook import data

    splits = data.load(name, "sample", verbose=False)
    return (splits.x_train[:per_split], splits.y_train[:per_split], splits.x_test[:per_split // 2],
            splits.y_test[:per_split // 2])


def files(per_class: int = 6, seed: int = 0) -> dict[str, bytes]:
    """``{address: bytes}`` for every file the ``full`` profile downloads (``cnnbook.data._REMOTE`` and
    ``cnnbook.canvases.PETS``), as miniature archives in the real format."""
    from cnnbook import canvases, data

    made: dict[str, bytes] = {}
    remote = {path: origin for entries in data._REMOTE.values() for path, origin, _ in entries}

    x, y, xt, yt = _mnist_like("mnist", 20 * per_class)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=x, y_train=y, x_test=xt, y_test=yt)
    made[remote["mnist.npz"]] = buffer.getvalue()

    x, y, xt, yt = _mnist_like("fashion_mnist", 20 * per_class)
    for stem, array in (("train-labels-idx1-ubyte", y), ("train-images-idx3-ubyte", x),
                        ("t10k-labels-idx1-ubyte", yt), ("t10k-images-idx3-ubyte", xt)):
        made[remote[f"fashion-mnist/{stem}.gz"]] = gzip.compress(_idx(array), mtime=0)

    n_train, n_test = 10 * per_class, 5 * per_class     # CIFAR-10: 5 training batches and a test batch
    images = _photos(6 * n_train // 5 + n_test, 32, seed)
    members, offset = {"cifar-10-batches-py/TEST-MIRROR.txt": NOTICE.encode()}, 0
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        count = n_test if batch == "test_batch" else n_train // 5
        chunk = images[offset:offset + count]
        offset += count
        record = {b"batch_label": f"{batch} of the cnnbook test mirror".encode(),
                  b"labels": [int(i % 10) for i in range(count)],
                  b"data": chunk.transpose(0, 3, 1, 2).reshape(count, 3 * 32 * 32),   # channel-major rows
                  b"filenames": [f"mirror_{offset + i}.png".encode() for i in range(count)]}
        members[f"cifar-10-batches-py/{batch}"] = pickle.dumps(record, protocol=2)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES], b"num_cases_per_batch": n_train // 5,
         b"num_vis": 3072}, protocol=2)
    made[remote["cifar-10-batches-py-target"]] = _tar(members)

    photos = _photos(len(data.FLOWERS_CLASSES) * per_class, 64, seed + 1)
    members = {"flower_photos/LICENSE.txt": NOTICE.encode()}
    for i, image in enumerate(photos):
        members[f"flower_photos/{data.FLOWERS_CLASSES[i % 5]}/mirror_{i}.jpg"] = _jpeg(image)
    made[remote["flower_photos"]] = _tar(members)

    photos = _photos(2 * per_class, 64, seed + 2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("readme[1].txt", NOTICE)
        for i, image in enumerate(photos):
            zf.writestr(f"PetImages/{('Cat', 'Dog')[i % 2]}/{i // 2}.jpg", _jpeg(image))
        for animal in ("Cat", "Dog"):   # as Microsoft's zip: a Windows thumbnail cache and a file that is no JPEG
            zf.writestr(f"PetImages/{animal}/Thumbs.db", b"\xd0\xcf\x11\xe0 windows thumbnail cache")
            zf.writestr(f"PetImages/{animal}/{per_class + 1}.jpg", b"\x00" * 64)
    made[remote["cats_vs_dogs_petimages"]] = buffer.getvalue()

    photos = _photos(2 * per_class, 96, seed + 3)
    images = {"images/TEST-MIRROR.txt": NOTICE.encode()}
    notes = {"annotations/README": NOTICE.encode()}
    lines = ["#Image CLASS-ID SPECIES BREED ID"]
    for i, image in enumerate(photos):
        name = f"{('Abyssinian', 'beagle')[i % 2]}_{i // 2 + 1}"
        images[f"images/{name}.jpg"] = _jpeg(image)
        trimap = np.full((96, 96), 2, np.uint8)                       # 1 pet, 2 background, 3 border
        trimap[24:72, 24:72], trimap[26:70, 26:70] = 3, 1
        notes[f"annotations/trimaps/{name}.png"] = _png(trimap)
        lines.append(f"{name} {i % 2 + 1} {i % 2 + 1} 1")
    notes["annotations/trimaps/._Abyssinian_1.png"] = b"\x00\x05\x16\x07 AppleDouble"   # as the real tar has
    notes["annotations/list.txt"] = ("\n".join(lines) + "\n").encode()
    (_, images_url), (_, annotations_url) = canvases.PETS
    made[images_url], made[annotations_url] = _tar(images), _tar(notes)
    return made


def _legacy_weights(name: str, include_top: bool, seed: int) -> bytes:
    """The ImageNet weights file of ``keras.applications.<name>`` in Keras's legacy HDF5 layout, random values."""
    import h5py
    import keras

    model = getattr(keras.applications, name)(weights=None, include_top=include_top)
    rng = np.random.default_rng(seed)
    block = (rng.standard_normal(4096) * 0.01).astype("<f4")   # repeated: the file compresses to almost nothing
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.h5"
        with h5py.File(path, "w") as f:
            layers = [layer for layer in model.layers if layer.weights]
            f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
            f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
            for layer in layers:
                group = f.create_group(layer.name)
                names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
                group.attrs["weight_names"] = names
                for weight_name, weight in zip(names, layer.weights):
                    shape = tuple(weight.shape)
                    stored = group.create_dataset(weight_name.decode(), shape, "<f4", compression="gzip",
                                                  shuffle=True, compression_opts=1)
                    rows = max(1, 2 ** 22 // max(1, int(np.prod(shape[1:]))))    # slabs of about 16 MB
                    for start in range(0, shape[0], rows):
                        slab = (min(rows, shape[0] - start), *shape[1:])
                        stored[start:start + slab[0]] = np.resize(block, int(np.prod(slab))).reshape(slab)
            f.attrs["TEST-MIRROR"] = NOTICE
        return path.read_bytes()


def build(folder: Path, per_class: int = 6, seed: int = 0) -> dict[str, str]:
    """Write the mirror into ``folder`` (``host/path`` for each address) and ``folder/hashes.json``; return the
    mirror's own hashes, ``{cnnbook.data path: sha256}`` (the course's table keys), for the loader."""
    from cnnbook import canvases, data

    folder = Path(folder)
    by_origin = files(per_class, seed)
    keys = {origin: path for entries in data._REMOTE.values() for path, origin, _ in entries}
    keys.update({origin: path for path, origin in canvases.PETS})
    for (name, include_top), (path, origin) in data._WEIGHTS.items():
        by_origin[origin], keys[origin] = _legacy_weights(name, include_top, seed), path
    hashes = {}
    for origin, payload in by_origin.items():
        target = folder / relative_path(origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        hashes[keys[origin]] = hashlib.sha256(payload).hexdigest()
    (folder / "hashes.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))
    (folder / "TEST-MIRROR.txt").write_text(NOTICE)
    return hashes


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):   # the tests' output stays clean
        pass


@contextlib.contextmanager
def serve(folder: Path, delay: float = 0.0, stall: float = 0.0):
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yield its address. ``delay`` seconds before each
    reply (a slow network); ``stall`` seconds of silence after the headers and the first half of each file (a
    transfer that stalls half way; the server ends its stalls when it is closed)."""
    import time

    closing = threading.Event()

    class Handler(_Quiet):
        def do_GET(self):
            if delay:
                time.sleep(delay)
            if not stall:
                return super().do_GET()
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                return super().do_GET()
            payload = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[:len(payload) // 2])
            self.wfile.flush()
            closing.wait(stall)            # the rest never comes while the client waits

    Handler.protocol_version = "HTTP/1.0"

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        closing.set()
        server.shutdown()
        server.server_close()


def environment(address: str, folder: Path) -> dict[str, str]:
    """The two variables that point the course at the mirror (tests and the runner's ``full`` smoke run)."""
    return {"CNNBOOK_MIRROR": address, "CNNBOOK_MIRROR_HASHES": str(Path(folder) / "hashes.json")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursetools.mirror", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("build", "serve"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.action == "build":
        hashes = build(args.folder)
        print(f"wrote {len(hashes)} miniature archives under {args.folder}")
        return 0
    with serve(args.folder) as address:
        for name, value in environment(address, args.folder).items():
            print(f"export {name}={value}")
        print("serving on the loopback interface; Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
