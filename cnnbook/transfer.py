"""Transfer learning (chapter 7): reuse a convolutional base, freeze it, attach a new head, then fine-tune its top.

The same functions serve both profiles. In ``full`` the base is a ``keras.applications`` model with ImageNet weights;
in ``sample`` (no network) it is a CNN the course trains itself on another task, cut below its classifier with
:func:`feature_extractor`. Freezing and unfreezing print what changed and keep BatchNormalization layers frozen:
a BN layer whose ``trainable`` is False always runs in inference mode. Calling the base with ``training=False`` is not
enough in Keras 3 (3.15): ``fit`` calls the outer model with ``training=True`` and that value replaces the one recorded
for the nested base (keras-team/keras#20285), so a trainable BN layer inside it would use batch statistics.
"""

from __future__ import annotations

import math
from pathlib import Path

#: Chapter 7's exercise: the weights of the small CNN its setup cell trains on digits 0-4 (``sample`` profile), made
#: once by ``python -m coursetools.train_ch07_base`` from the same lines, seed and data; the cell loads them instead of
#: spending 7 CPU-seconds of every run and every graded submission on the same training.
DIGIT_SOURCE_WEIGHTS = Path(__file__).resolve().parent / "data" / "ch07_digit_source.weights.h5"

#: Backbones of the chapter: ``keras.applications`` name -> (module with ``preprocess_input``, default input shape).
BACKBONES = {
    "VGG16": ("vgg16", (224, 224, 3)),
    "VGG19": ("vgg19", (224, 224, 3)),
    "ResNet50": ("resnet50", (224, 224, 3)),
    "MobileNetV2": ("mobilenet_v2", (224, 224, 3)),
    "Xception": ("xception", (299, 299, 3)),
    "InceptionV3": ("inception_v3", (299, 299, 3)),
    "EfficientNetB0": ("efficientnet", (224, 224, 3)),
}


class WeightsUnavailable(ConnectionError):
    """Pretrained weights could not be downloaded (no network): the ``sample`` profile is the offline path."""


def _keras():
    import keras

    return keras


def backbone(name: str, input_shape=None, *, weights=None, include_top: bool = False):
    """Build ``keras.applications.<name>`` without its classifier; ``weights`` None (offline) or "imagenet" (ch. 7).

    Without network ``weights="imagenet"`` raises :class:`WeightsUnavailable`, which names the ``sample`` profile.
    """
    keras = _keras()
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: use one of {', '.join(BACKBONES)}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None (random, offline) or 'imagenet', not {weights!r}")
    kwargs = {"include_top": include_top, "weights": weights}
    if input_shape is not None or not include_top:
        kwargs["input_shape"] = tuple(input_shape or BACKBONES[name][1])
    try:
        return getattr(keras.applications, name)(**kwargs)
    except Exception as exc:  # keras.utils.get_file raises a bare Exception("URL fetch failure on ...")
        if weights is None or not _is_download_failure(exc):
            raise
        raise WeightsUnavailable(
            f"could not download the ImageNet weights of {name} ({exc}). They need network access (Colab, or the "
            "'full' profile on a connected machine). Offline, run the 'sample' profile: PROFILE = \"sample\" in the "
            "parameters cell, or `python -m coursetools.runner --profile sample`.") from exc


def _is_download_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) comes from a failed download rather than from a wrong argument."""
    import urllib.error

    while exc is not None:
        if isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError)) or "URL fetch failure" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def preprocess_name(name: str) -> str:
    """Return the ``keras.applications`` module whose ``preprocess_input`` matches backbone ``name`` (chapter 7)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: use one of {', '.join(BACKBONES)}")
    return BACKBONES[name][0]


def feature_extractor(model, layer=None, name: str = "base"):
    """Cut a trained classifier below its head: a model from its input to ``layer`` (default: the last pooling) (ch. 7)."""
    keras = _keras()
    if layer is None:
        pooled = [l for l in model.layers if "Pooling" in type(l).__name__ or type(l).__name__ == "Flatten"]
        if not pooled:
            raise ValueError(f"{model.name} has no pooling or Flatten layer: name the layer to cut at")
        layer = pooled[-1].name
    output = (model.get_layer(layer) if isinstance(layer, str) else model.layers[layer]).output
    return keras.Model(model.inputs, output, name=name)


def attach_head(base, num_classes: int, *, preprocess=None, dropout: float = 0.0, pool: bool = True,
                freeze_base: bool = True, name: str = "transfer"):
    """Stack a new classifier on ``base``: input, ``preprocess``, base(training=False), pooling, dropout, softmax (ch. 7).

    ``preprocess`` is a function (e.g. ``preprocess_input``) or None. The base is frozen unless ``freeze_base`` is False.
    """
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(base.input_shape[1:], name="image")
    x = inputs
    if preprocess is not None:
        x = layers.Lambda(preprocess, name="preprocess")(x)
    # training=False documents the intent; in Keras 3 fit() overrides it, so unfreeze() also keeps BN layers frozen
    x = base(x, training=False)
    if pool and len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif len(x.shape) > 2:
        x = layers.Flatten(name="head_flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="head_dense")(x)
    model = keras.Model(inputs, outputs, name=name)
    if freeze_base:
        freeze(base, verbose=False)
    return model


def transfer_model(name: str, num_classes: int, input_shape=None, *, weights=None, dropout: float = 0.0):
    """Return (model, base): backbone ``name`` frozen, its ``preprocess_input``, and a new head (chapter 7)."""
    keras = _keras()
    base = backbone(name, input_shape, weights=weights)
    preprocess = getattr(keras.applications, preprocess_name(name)).preprocess_input
    return attach_head(base, num_classes, preprocess=preprocess, dropout=dropout), base


def param_counts(model) -> dict[str, int]:
    """Return the trainable, non-trainable and total parameter counts of ``model``, as Keras counts them (ch. 7)."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    frozen = sum(math.prod(v.shape) for v in model.non_trainable_weights)
    return {"trainable": int(trainable), "non_trainable": int(frozen), "total": int(trainable + frozen)}


def is_batch_norm(layer) -> bool:
    """True for a BatchNormalization layer (also Keras' SyncBatchNormalization) (chapter 7)."""
    return "BatchNormalization" in type(layer).__name__


def freeze(base, *, verbose: bool = True) -> dict[str, int]:
    """Freeze every weight of ``base`` and print what changed; return :func:`param_counts` after (chapter 7)."""
    before = param_counts(base)
    base.trainable = False
    after = param_counts(base)
    if verbose:
        print(f"froze {base.name}: {_change(before, after)}")
    return after


def block_start(base, start) -> int:
    """Index in ``base.layers`` where the top part begins: an index (negative: top N), a layer name or a prefix (ch. 7)."""
    names = [l.name for l in base.layers]
    if isinstance(start, int):
        index = start + len(names) if start < 0 else start
        if not 0 <= index < len(names):
            raise ValueError(f"{base.name} has {len(names)} layers: index {start} is out of range")
        return index
    if start in names:
        return names.index(start)
    matches = [i for i, n in enumerate(names) if n.startswith(str(start))]
    if not matches:
        blocks = sorted({n.split("_")[0] for n in names if "_" in n})
        raise ValueError(f"{base.name} has no layer named or starting with {start!r}; its blocks: {', '.join(blocks)}")
    return matches[0]


def unfreeze(base, start, *, keep_batch_norm_frozen: bool = True, verbose: bool = True) -> dict[str, int]:
    """Make layers of ``base`` from ``start`` (see :func:`block_start`) to the top trainable, the rest frozen (ch. 7).

    BatchNormalization layers stay frozen (inference mode) unless ``keep_batch_norm_frozen`` is False. Prints the
    layers that changed and the counts before and after; returns :func:`param_counts` after. Recompile afterwards.
    """
    index = block_start(base, start)
    before = param_counts(base)
    base.trainable = True
    opened, kept = [], []
    for i, layer in enumerate(base.layers):
        top = i >= index
        if top and keep_batch_norm_frozen and is_batch_norm(layer):
            layer.trainable = False
            kept.append(layer.name)
        else:
            layer.trainable = top
            if top and layer.weights:
                opened.append(layer.name)
    after = param_counts(base)
    if verbose:
        shown = ", ".join(opened) if len(opened) <= 6 else f"{', '.join(opened[:3])}, …, {', '.join(opened[-2:])}"
        print(f"unfroze {len(opened)} layers with weights of {base.name} from {base.layers[index].name} "
              f"(index {index} of {len(base.layers)}): {shown or 'none'}")
        if kept:
            print(f"kept {len(kept)} BatchNormalization layers frozen (inference mode)")
        print(f"  {_change(before, after)}; recompile the model before training")
    return after


def _change(before: dict[str, int], after: dict[str, int]) -> str:
    """One line: trainable and non-trainable counts before -> after."""
    return (f"trainable {before['trainable']:,} -> {after['trainable']:,}, "
            f"non-trainable {before['non_trainable']:,} -> {after['non_trainable']:,}")


def batch_norm_in_inference(model, x) -> bool:
    """True when a training-mode forward pass on ``x`` leaves every BN moving statistic unchanged (chapter 7)."""
    import numpy as np
    from keras import ops

    bns = [l for l in _all_layers(model) if is_batch_norm(l)]
    before = [ops.convert_to_numpy(v) for l in bns for v in (l.moving_mean, l.moving_variance)]
    model(x, training=True)
    after = [ops.convert_to_numpy(v) for l in bns for v in (l.moving_mean, l.moving_variance)]
    changed = [a for a, b in zip(before, after) if not np.array_equal(a, b)]
    for var, value in zip([v for l in bns for v in (l.moving_mean, l.moving_variance)], before):
        var.assign(value)  # leave the model as it was
    return not changed


def _all_layers(model):
    """Every layer of ``model``, descending into nested models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def compile_for(model, learning_rate: float, *, metrics=("accuracy",)):
    """Compile ``model`` with Adam at ``learning_rate`` and sparse cross-entropy: call after (un)freezing (ch. 7)."""
    keras = _keras()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=list(metrics))
    return model


def callbacks(checkpoint_path=None, *, patience: int = 3, monitor: str = "val_accuracy"):
    """EarlyStopping (best weights restored) plus, with a path, ModelCheckpoint of the best epoch (chapter 7)."""
    keras = _keras()
    found = [keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)]
    if checkpoint_path is not None:
        found.append(keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor=monitor, save_best_only=True))
    return found


def few_per_class(labels, per_class: int, seed: int = 0):
    """Indices of ``per_class`` examples of each label, seeded and shuffled: the few-label training set (ch. 7)."""
    import numpy as np

    labels = np.asarray(labels).ravel()
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"label {label} has {len(members)} examples, fewer than {per_class}")
        chosen.append(rng.choice(members, per_class, replace=False))
    return rng.permutation(np.concatenate(chosen))


def confusion(y_true, y_pred, num_classes: int):
    """Confusion matrix: rows the true class, columns the predicted one (chapter 7)."""
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (np.asarray(y_true).ravel().astype(int), np.asarray(y_pred).ravel().astype(int)), 1)
    return matrix


def top_confusions(matrix, class_names, k: int = 4) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells as (true, predicted, count), largest first (chapter 7)."""
    import numpy as np

    off = np.array(matrix, dtype="int64")
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    cells = [np.unravel_index(i, off.shape) for i in order]
    return [(class_names[t], class_names[p], int(off[t, p])) for t, p in cells if off[t, p] > 0]


def subset(x, y, classes):
    """Keep the examples whose label is in ``classes`` and relabel them 0..k-1 in that order (chapter 7)."""
    import numpy as np

    classes = np.asarray(list(classes))
    keep = np.isin(np.asarray(y), classes)
    return np.asarray(x)[keep], np.searchsorted(classes, np.asarray(y)[keep]).astype("int64")


# --- EfficientNet-Lite0 on a small task (chapter 7, sample profile) -------------------------------------------------

def to_rgb(images, size: int):
    """Grey images (N, H, W) or (N, H, W, 1) in [0, 255] -> float32 (N, size, size, 3) for an ImageNet base (ch. 7)."""
    import numpy as np

    from cnnbook.data import resize

    images = np.asarray(images, dtype="float32")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"expected grey images (N, H, W), got shape {images.shape}")
    return np.repeat(resize(images, size)[..., None], 3, axis=-1)


def lite0_classifier(base, num_classes: int, *, head=None, dropout: float = 0.2, name: str = "lite0_transfer"):
    """Image -> ImageNet normalisation -> ``base`` (frozen, inference mode) -> dropout -> softmax ``head`` (ch. 7).

    ``base`` is ``pretrained.efficientnet_lite0(include_top=False, pooling="avg")``; ``head`` a Dense layer already
    trained on its cached features (see :func:`feature_head`), or None for a new one. Only standard layers, so the
    saved model reloads with ``safe_mode=True``.
    """
    keras = _keras()
    from cnnbook import pretrained

    inputs = keras.Input(base.input_shape[1:], name="image")
    x = pretrained.preprocessing_layer()(inputs)
    x = base(x, training=False)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    head = head or keras.layers.Dense(num_classes, activation="softmax", name="head_dense")
    model = keras.Model(inputs, head(x), name=name)
    freeze(base, verbose=False)
    return model


def feature_head(num_features: int, num_classes: int, *, dropout: float = 0.2, l2: float = 0.0):
    """Return (model, head): dropout and a softmax Dense (L2 weight ``l2``) on cached features, for the base later (ch. 7)."""
    keras = _keras()
    inputs = keras.Input((num_features,), name="features")
    regulariser = keras.regularizers.L2(l2) if l2 else None
    head = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regulariser, name="head_dense")
    return keras.Model(inputs, head(keras.layers.Dropout(dropout, name="head_dropout")(inputs)), name="head"), head


def continue_history(first: dict, second: dict) -> dict:
    """Join two ``History.history`` dicts: the second run's epochs numbered after the first's (chapter 7).

    Returns ``{"epoch": [...], key: [...]}`` for the keys both have, so a fine-tuning curve continues the frozen run.
    """
    n1 = len(next(iter(first.values())))
    n2 = len(next(iter(second.values())))
    joined = {"epoch": list(range(1, n1 + n2 + 1))}
    for key in first:
        if key in second:
            joined[key] = list(first[key]) + list(second[key])
    joined["boundary"] = n1
    return joined


def split_at(base, layer: str):
    """Return (bottom, top): ``base`` cut after ``layer``; both share its layers, so top(bottom(x)) == base(x) (ch. 7).

    With the bottom frozen, its outputs can be computed once and cached; fine-tuning then trains only the top.
    """
    keras = _keras()
    cut = base.get_layer(layer).output
    return keras.Model(base.inputs, cut, name=f"{base.name}_bottom"), keras.Model(cut, base.output,
                                                                                  name=f"{base.name}_top")


def lite0_classifier_top(top, head, *, dropout: float = 0.2, name: str = "lite0_top"):
    """Cached bottom activations -> ``top`` (inference mode) -> dropout -> ``head``: fine-tuning on a cache (ch. 7)."""
    keras = _keras()
    inputs = keras.Input(top.input_shape[1:], name="cached")
    x = keras.layers.Dropout(dropout, name="head_dropout")(top(inputs, training=False))
    return keras.Model(inputs, head(x), name=name)
