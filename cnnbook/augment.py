"""Data augmentation with Keras 3 preprocessing layers (chapter 6).

:func:`build_augmentation` turns a plain dict of ranges into a ``keras.Sequential`` of random layers and rejects a
bad range with a ``ValueError`` that names the key. :data:`KERAS3_EQUIVALENTS` maps every argument of the old
``ImageDataGenerator`` class used by the course's sources to its Keras 3 replacement (or says there is none), and
:func:`from_generator_args` converts such arguments directly. The overfitting experiment of the chapter is
:func:`overfitting_experiment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Keys of :func:`build_augmentation`: (lowest, highest, whether the highest is allowed, what the number means).
RANGES = {
    "rotation": (0.0, 180.0, True, "the largest rotation in degrees, either way"),
    "width_shift": (0.0, 1.0, False, "the largest horizontal shift as a fraction of the width"),
    "height_shift": (0.0, 1.0, False, "the largest vertical shift as a fraction of the height"),
    "zoom": (0.0, 1.0, False, "the largest zoom as a fraction: 0.2 zooms between 80% and 120%"),
    "zoom_width": (0.0, 1.0, False, "the largest zoom of the width, drawn apart from the height's "
                                    "(without it one draw zooms both and keeps the aspect ratio)"),
    "shear": (0.0, 1.0, False, "the largest shear as a fraction of the image (Keras's RandomShear)"),
    "contrast": (0.0, 1.0, True, "the largest contrast change as a fraction"),
    "brightness": (0.0, 1.0, True, "the largest brightness change as a fraction of the value range"),
}
#: Keys that take a word instead of a number, with the words they accept.
CHOICES = {
    "flip": (None, "horizontal", "vertical", "horizontal_and_vertical"),
    "fill_mode": ("reflect", "nearest", "constant", "wrap"),
}


def check_ranges(ranges: dict) -> dict:
    """Return a copy of ``ranges`` with numbers as floats, or raise ``ValueError`` naming the bad key (chapter 6)."""
    if not isinstance(ranges, dict):
        raise TypeError(f"ranges must be a dict such as {{'rotation': 10, 'zoom': 0.1}}, got {type(ranges).__name__}")
    checked = {}
    for key, value in ranges.items():
        if key in CHOICES:
            if value not in CHOICES[key]:
                raise ValueError(f"{key}={value!r} is not allowed: use one of {', '.join(map(repr, CHOICES[key]))}")
            checked[key] = value
            continue
        if key not in RANGES:
            raise ValueError(f"unknown key {key!r}: use one of {', '.join(map(repr, (*RANGES, *CHOICES)))}")
        low, high, closed, meaning = RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{key}={value!r} must be a number: {meaning}")
        value = float(value)
        if not (low <= value <= high if closed else low <= value < high):
            bound = f"at most {high:g}" if closed else f"below {high:g}"
            raise ValueError(f"{key}={value:g} is out of range: it must be at least {low:g} and {bound} ({meaning})")
        checked[key] = value
    return checked


def build_augmentation(ranges: dict, *, value_range=(0, 255), seed: int | None = None,
                       name: str = "augmentation"):
    """Build a ``keras.Sequential`` of random layers from a dict of ranges, active only in training (chapter 6).

    Example: ``build_augmentation({"flip": "horizontal", "rotation": 10, "zoom": 0.1})``. Zero ranges add no layer;
    ``fill_mode`` (default ``"reflect"``) applies to every geometric layer; ``value_range`` is the pixel range the
    contrast and brightness layers assume. Without any range the block is a single ``Identity`` layer. With ``seed``, layer *i* gets ``seed + i``.
    """
    import keras

    r = check_ranges(ranges)
    fill = r.get("fill_mode", "reflect")
    seeds = iter(range(seed, seed + 16)) if seed is not None else iter([None] * 16)
    layers = []
    if r.get("flip"):
        layers.append(keras.layers.RandomFlip(r["flip"], seed=next(seeds)))
    if r.get("rotation"):
        layers.append(keras.layers.RandomRotation(r["rotation"] / 360, fill_mode=fill, seed=next(seeds)))
    if r.get("width_shift") or r.get("height_shift"):
        layers.append(keras.layers.RandomTranslation(r.get("height_shift", 0.0), r.get("width_shift", 0.0),
                                                     fill_mode=fill, seed=next(seeds)))
    if r.get("zoom") or r.get("zoom_width"):
        layers.append(keras.layers.RandomZoom(r.get("zoom", 0.0), r.get("zoom_width"), fill_mode=fill,
                                              seed=next(seeds)))
    if r.get("shear"):
        layers.append(keras.layers.RandomShear(r["shear"], r["shear"], fill_mode=fill, seed=next(seeds)))
    if r.get("contrast"):
        layers.append(keras.layers.RandomContrast(r["contrast"], value_range=value_range, seed=next(seeds)))
    if r.get("brightness"):
        layers.append(keras.layers.RandomBrightness(r["brightness"], value_range=value_range, seed=next(seeds)))
    return keras.Sequential(layers or [keras.layers.Identity()], name=name)  # an empty Sequential cannot be called


# ------------------------------------------------------------------------------ the old generator, argument by argument


@dataclass(frozen=True)
class Equivalent:
    """One argument of the removed ``ImageDataGenerator`` and what replaces it in Keras 3 (chapter 6)."""

    argument: str
    in_sources: str
    keras3: str
    note: str


#: Every generator argument the sources use (plus its close relatives), in the order the chapter discusses them.
KERAS3_EQUIVALENTS = (
    Equivalent("rotation_range", "40 (Chollet), 30 (Marques), 10 (Olafenwa)",
               "RandomRotation(degrees / 360)", "the factor is a fraction of a full turn, not degrees"),
    Equivalent("width_shift_range", "0.2, 5/32", "RandomTranslation(height_factor, width_factor)",
               "fractions as before; a whole number meant pixels: divide it by the width"),
    Equivalent("height_shift_range", "0.2, 5/32", "RandomTranslation(height_factor, width_factor)",
               "the same layer does both directions"),
    Equivalent("shear_range", "0.2", "RandomShear(x_factor, y_factor)",
               "the old argument was an angle in degrees (0.2 means 0.2°), the new one a fraction of the image"),
    Equivalent("zoom_range", "0.2", "RandomZoom(height_factor, width_factor)",
               "the old class drew the two zooms independently; RandomZoom(0.2) alone has width_factor=None, "
               "one draw for both axes that keeps the aspect ratio: pass width_factor=0.2 too for the old behaviour"),
    Equivalent("horizontal_flip", "True", "RandomFlip('horizontal')", "only when a mirror image keeps the label"),
    Equivalent("vertical_flip", "(not used)", "RandomFlip('vertical')", "'horizontal_and_vertical' does both"),
    Equivalent("fill_mode", "'nearest'", "fill_mode= of each geometric layer",
               "the default changed from 'nearest' to 'reflect' (RandomShear: 'constant')"),
    Equivalent("cval", "(not used)", "fill_value= of each geometric layer", "used with fill_mode='constant'"),
    Equivalent("brightness_range", "(not used)", "RandomBrightness(factor, value_range)",
               "additive in Keras 3, the old one multiplied"),
    Equivalent("rescale", "1./255", "Rescaling(1 / 255)", "a layer in the model, so inference gets it too"),
    Equivalent("featurewise_center", "(not set; Olafenwa calls datagen.fit without it)",
               "Normalization() then .adapt(training images)",
               "adapt on the training set only; without this flag or the next, datagen.fit changes nothing"),
    Equivalent("featurewise_std_normalization", "(not set)", "Normalization() then .adapt(...)",
               "one layer centres and scales"),
    Equivalent("samplewise_center", "(not used)", "none: a function in Dataset.map",
               "e.g. image - tf.reduce_mean(image)"),
    Equivalent("zca_whitening", "(not used)", "none", "no Keras 3 layer; compute it yourself if you need it"),
    Equivalent("channel_shift_range", "(not used)", "none", "RandomColorJitter/RandomHue are different operations"),
    Equivalent("preprocessing_function", "preprocess_input (Marques)", "Dataset.map(fn) or a layer in the model",
               "e.g. keras.applications.vgg16.preprocess_input"),
    Equivalent("flow_from_directory", "target_size=(150, 150)", "keras.utils.image_dataset_from_directory",
               "returns a tf.data.Dataset; image_size= replaces target_size="),
    Equivalent("fit_generator", "model.fit_generator(...)", "model.fit(dataset)", "fit takes datasets directly"),
)

#: Generator arguments that :func:`from_generator_args` converts, and the key of :func:`build_augmentation` they feed.
_CONVERTIBLE = {"rotation_range": "rotation", "width_shift_range": "width_shift",
                "height_shift_range": "height_shift", "fill_mode": "fill_mode"}


def equivalents_frame():
    """Return :data:`KERAS3_EQUIVALENTS` as a pandas DataFrame for display (chapter 6)."""
    import pandas as pd

    return pd.DataFrame([vars(e) for e in KERAS3_EQUIVALENTS]).rename(columns={
        "argument": "old argument", "in_sources": "value in the sources", "keras3": "Keras 3", "note": "note"})


def generator_args_to_ranges(**kwargs) -> dict:
    """Translate old generator augmentation arguments into :func:`build_augmentation` ranges (chapter 6).

    ``horizontal_flip``/``vertical_flip`` become ``flip``; ``shear_range`` (degrees) becomes a fraction (its
    tangent); ``zoom_range`` zooms height and width independently, as the old class did. Arguments without an equivalent raise ``ValueError`` saying what to do instead.
    """
    ranges = {}
    for arg, value in kwargs.items():
        if arg in _CONVERTIBLE:
            ranges[_CONVERTIBLE[arg]] = value
        elif arg == "zoom_range":
            ranges["zoom"] = ranges["zoom_width"] = value
        elif arg == "shear_range":
            ranges["shear"] = math.tan(math.radians(value))
        elif arg not in ("horizontal_flip", "vertical_flip"):
            known = {e.argument: e for e in KERAS3_EQUIVALENTS}
            hint = f"Keras 3: {known[arg].keras3} ({known[arg].note})" if arg in known else "not an augmentation"
            raise ValueError(f"{arg} is not converted to a random layer: {hint}")
    h, v = kwargs.get("horizontal_flip", False), kwargs.get("vertical_flip", False)
    if h or v:
        ranges["flip"] = "horizontal_and_vertical" if h and v else "horizontal" if h else "vertical"
    return check_ranges(ranges)


def from_generator_args(*, value_range=(0, 255), seed: int | None = None, **kwargs):
    """Build the Keras 3 augmentation block equivalent to old generator arguments, e.g. the sources' (chapter 6)."""
    return build_augmentation(generator_args_to_ranges(**kwargs), value_range=value_range, seed=seed)


# ------------------------------------------------------------------------------------------ pictures and experiment


def augmented_copies(layer, image, n: int = 8) -> np.ndarray:
    """Return ``n`` augmented versions of one image (H, W, C) as float32 (n, H, W, C), ``training=True`` (chapter 6)."""
    batch = np.repeat(np.asarray(image, "float32")[None], n, axis=0)
    return np.asarray(layer(batch, training=True))


def show_augmented(layer, image, n: int = 8, cols: int = 4, title: str = ""):
    """Plot the original image and ``n - 1`` augmented versions in a grid (chapter 6); return the figure."""
    import matplotlib.pyplot as plt

    image = np.asarray(image, "float32")
    pictures = np.concatenate([image[None], augmented_copies(layer, image, n - 1)])
    top = 255.0 if image.max() > 1.5 else 1.0
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            shown = np.clip(pictures[i] / top, 0, 1)
            ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray")
            ax.set_title("original" if i == 0 else f"augmented {i}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def small_cnn(input_shape, num_classes: int, augmentation=None, dropout: float = 0.0, name: str = "small_cnn"):
    """Return the chapter's small CNN: [augmentation] -> rescale -> 2x(conv, pool) -> [dropout] -> softmax (ch. 6)."""
    import keras

    inputs = keras.Input(input_shape)
    x = augmentation(inputs) if augmentation is not None else inputs
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


#: The three runs of the overfitting experiment: (name, augmented?, dropout rate).
RUNS = (("plain", False, 0.0), ("augmented", True, 0.0), ("augmented + dropout", True, 0.5))


def overfitting_experiment(data, ranges: dict, *, n_train: int, epochs: int, batch_size: int = 32,
                           seed: int = 0, verbose: int = 0) -> dict[str, dict[str, list[float]]]:
    """Train the small CNN plain, augmented, and augmented with dropout on ``n_train`` images (chapter 6).

    ``data`` is a :class:`cnnbook.data.Splits`; validation uses its whole, never augmented, validation split.
    Returns ``{run: history}`` with the per-epoch ``loss``, ``val_loss``, ``accuracy`` and ``val_accuracy``.
    """
    import keras

    def with_channel(images):
        images = np.asarray(images, "float32")
        return images[..., None] if images.ndim == 3 else images

    x, y = with_channel(data.x_train[:n_train]), np.asarray(data.y_train[:n_train])
    val = (with_channel(data.x_val), np.asarray(data.y_val))
    histories = {}
    for run, augmented, dropout in RUNS:  # NumPy arrays into fit: the same code on every Keras backend
        keras.utils.set_random_seed(seed)
        augmentation = build_augmentation(ranges, seed=seed) if augmented else None
        model = small_cnn(x.shape[1:], len(data.class_names), augmentation, dropout, name=run.replace(" + ", "_"))
        history = model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=val, epochs=epochs,
                            verbose=verbose)
        histories[run] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return histories


def seeded_experiment(data, ranges: dict, *, n_train: int, epochs: int, seeds=(0, 1, 2), batch_size: int = 32,
                      verbose: bool = True) -> dict[int, dict[str, dict[str, list[float]]]]:
    """Run :func:`overfitting_experiment` once per seed, each on its own seeded draw of ``n_train`` images (ch. 6).

    Prints one line per seed when ``verbose``. Returns ``{seed: {run: history}}``.
    """
    results = {}
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(data.y_train))[:n_train]
        subset = type(data)(data.name, data.profile, data.source, data.class_names, data.x_train[order],
                            data.y_train[order], data.x_val, data.y_val, data.x_test, data.y_test)
        results[seed] = overfitting_experiment(subset, ranges, n_train=n_train, epochs=epochs,
                                               batch_size=batch_size, seed=seed)
        if verbose:
            print(f"seed {seed}: " + " · ".join(f"{run} val acc {h['val_accuracy'][-1]:.3f}"
                                                for run, h in results[seed].items()), flush=True)
    return results


def seed_table(results: dict):
    """Return final train/validation loss and accuracy per run as mean and spread (std) over seeds (chapter 6)."""
    import pandas as pd

    rows = []
    for run in next(iter(results.values())):
        row = {"run": run}
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            values = np.array([results[seed][run][key][-1] for seed in results])
            row[f"{key} mean"], row[f"{key} std"] = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        row["best val_loss mean"] = np.mean([min(results[seed][run]["val_loss"]) for seed in results])
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def plot_seed_curves(results: dict, title: str = "", metric: str = "loss"):
    """Plot mean training and validation ``metric`` per epoch over seeds, shaded min-max, one panel per run (ch. 6)."""
    import matplotlib.pyplot as plt

    runs = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.3), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs):
        for key, label in ((metric, f"training {metric}"), (f"val_{metric}", f"validation {metric}")):
            curves = np.array([results[seed][run][key] for seed in results])
            epochs = np.arange(1, curves.shape[1] + 1)
            line, = ax.plot(epochs, curves.mean(axis=0), label=f"{label} (mean)")
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
        ax.set_title(f"{run} ({len(results)} seeds)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(histories: dict, title: str = "", metric: str = "loss"):
    """Plot training and validation ``metric`` of each run side by side, one panel per run (chapter 6)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.2), sharey=True, squeeze=False)
    for ax, (run, h) in zip(axes[0], histories.items()):
        epochs = np.arange(1, len(h[metric]) + 1)
        ax.plot(epochs, h[metric], label=f"training {metric}")
        ax.plot(epochs, h[f"val_{metric}"], label=f"validation {metric}")
        ax.set_title(run)
        ax.set_xlabel("epoch")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def final_summary(histories: dict) -> str:
    """Return one line per run with its last training and validation loss and accuracy (chapter 6)."""
    lines = []
    for run, h in histories.items():
        lines.append(f"{run:<20} train loss {h['loss'][-1]:.3f} acc {h['accuracy'][-1]:.3f} | "
                     f"val loss {h['val_loss'][-1]:.3f} (best {min(h['val_loss']):.3f}) "
                     f"acc {h['val_accuracy'][-1]:.3f}")
    return "\n".join(lines)


#: The ranges of the chapter's examples: digits keep their orientation (no flips); clothes may be mirrored
#: left-right (a mirrored shirt is still a shirt); the generated shapes may turn and mirror freely.
FASHION_RANGES = {"flip": "horizontal", "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1}
DIGIT_RANGES = {"rotation": 10, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1}
SHAPES_RANGES = {"flip": "horizontal", "rotation": 30, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1}


def distinct_draws(layer, image, n: int = 8) -> int:
    """How many different outputs a random layer gives for a batch of ``n`` copies of one image (chapter 6).

    ``n`` means one draw per image; 1 means one draw for the whole batch (``RandomCrop`` in Keras 3).
    """
    return len({copy.tobytes() for copy in augmented_copies(layer, image, n)})


def write_image_folders(images, labels, class_names, root) -> list:
    """Write images as PNG files in one folder per class, ``root/<class name>/<index>.png``; return the paths (ch. 6).

    ``images`` are uint8 arrays (H, W) or (H, W, C) with C = 1 or 3, in one array or a list (sizes may differ);
    ``labels`` index ``class_names``. This is the layout ``keras.utils.image_dataset_from_directory`` reads: the
    folder's name is the label.
    """
    from pathlib import Path

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
