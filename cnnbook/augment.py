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


#: The two runs of the chapter's experiment: the same network without and with the augmentation block.
RUNS = ("plain", "augmented")


def train_pair(x, y, val, ranges: dict, *, epochs: int, seed: int, batch_size: int = 32,
               validate: bool = True) -> dict[str, dict[str, list[float]]]:
    """Train :func:`small_cnn` plain and augmented on the same images, seed and epochs (chapter 6).

    ``x`` (N, H, W[, C]) uint8 or float pixels 0-255, ``val = (x_val, y_val)`` never augmented. Returns
    ``{run: history}``; with ``validate`` the histories have per-epoch ``val_loss``/``val_accuracy``, otherwise only
    the final ones (one evaluation at the end, cheaper).
    """
    import keras

    def with_channel(images):
        images = np.asarray(images, "float32")
        return images[..., None] if images.ndim == 3 else images

    x, y, xv, yv = with_channel(x), np.asarray(y), with_channel(val[0]), np.asarray(val[1])
    histories = {}
    for run in RUNS:  # NumPy arrays into fit: the same code on every Keras backend
        keras.utils.set_random_seed(seed)
        augmentation = build_augmentation(ranges, seed=seed) if run == "augmented" else None
        model = small_cnn(x.shape[1:], int(max(y.max(), yv.max())) + 1, augmentation, name=run)
        history = model.fit(x, y, batch_size=batch_size, shuffle=True, epochs=epochs, verbose=0,
                            validation_data=(xv, yv) if validate else None).history
        if not validate:
            history["val_loss"], history["val_accuracy"] = ([v] for v in model.evaluate(xv, yv, verbose=0))
        histories[run] = {k: [float(v) for v in vs] for k, vs in history.items()}
    return histories


def subset(data, n_train: int, seed: int):
    """The ``n_train`` training images and labels of a seeded draw from ``data`` (a cnnbook.data.Splits) (ch. 6)."""
    order = np.random.default_rng(seed).permutation(len(data.y_train))[:n_train]
    return data.x_train[order], data.y_train[order]


def augmentation_experiment(data, ranges: dict, *, n_train: int, epochs: int, seeds=(0, 1, 2),
                            validate: bool = True, verbose: bool = True) -> dict[int, dict[str, dict]]:
    """Run :func:`train_pair` once per seed, each on its own seeded draw of ``n_train`` images (chapter 6).

    Validation is ``data``'s whole validation split. Prints one line per seed when ``verbose``. Returns
    ``{seed: {run: history}}``.
    """
    results = {}
    for seed in seeds:
        x, y = subset(data, n_train, seed)
        results[seed] = train_pair(x, y, (data.x_val, data.y_val), ranges, epochs=epochs, seed=seed,
                                   validate=validate)
        if verbose:
            print(f"{n_train:>5} images, seed {seed}: " + " · ".join(
                f"{run} val acc {h['val_accuracy'][-1]:.3f}" for run, h in results[seed].items()), flush=True)
    return results


def final_scores(results: dict, key: str = "val_accuracy", best: bool = False) -> dict[str, np.ndarray]:
    """``{run: array over seeds}`` of the last (or, with ``best``, the highest) value of ``key`` (chapter 6)."""
    pick = max if best else (lambda values: values[-1])
    return {run: np.array([pick(results[seed][run][key]) for seed in results])
            for run in next(iter(results.values()))}


def plot_crossing(results: dict, title: str = ""):
    """Validation loss and accuracy per epoch, plain and augmented on the same axes: mean over seeds, band min-max,
    training loss dashed (chapter 6); return the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for run, colour in zip(RUNS, ("tab:red", "tab:blue")):
        for ax, key in zip(axes, ("val_loss", "val_accuracy")):
            curves = np.array([results[seed][run][key] for seed in results])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(axis=0), color=colour, label=f"{run}, validation")
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.2)
            if key == "val_loss":
                train = np.array([results[seed][run]["loss"] for seed in results]).mean(axis=0)
                ax.plot(epochs, train, color=colour, linestyle="--", label=f"{run}, training")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss (validation solid, training dashed)")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"mean of {len(results)} seeds, band: lowest to highest seed")
    fig.tight_layout()
    return fig


def crossing_epoch(results: dict, key: str = "val_accuracy") -> int | None:
    """The first epoch (from 1) after which the augmented mean of ``key`` stays above plain's, or None (ch. 6)."""
    mean = {run: np.mean([results[seed][run][key] for seed in results], axis=0) for run in RUNS}
    better = mean["augmented"] > mean["plain"] if key.endswith("accuracy") else mean["augmented"] < mean["plain"]
    if not better[-1]:
        return None
    worse = np.flatnonzero(~better)
    return int(worse[-1] + 2) if worse.size else 1


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


def random_resized_crop(image, size, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3), rng=None):
    """Cut a random window (area a fraction ``scale`` of the image, aspect ``ratio``) and resize it to ``size`` (ch. 6)."""
    import keras

    rng = np.random.default_rng(rng)
    h, w = image.shape[:2]
    for _ in range(10):  # redraw a window that does not fit, as Inception's recipe does
        area = rng.uniform(*scale) * h * w
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))   # width / height
        ch, cw = round(math.sqrt(area / aspect)), round(math.sqrt(area * aspect))
        if 0 < ch <= h and 0 < cw <= w:
            break
    else:
        ch = cw = min(h, w)   # fall back to the largest centred square
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    window = np.asarray(image, "float32")[top:top + ch, left:left + cw]
    return keras.ops.convert_to_numpy(keras.ops.image.resize(window[None], size, antialias=True))[0]


def augment_with_masks(block, images, masks):
    """Apply one random draw of ``block`` to images and their segmentation masks together (chapters 6, 9)."""
    out = block({"images": images, "segmentation_masks": masks}, training=True)
    return out["images"], np.asarray(out["segmentation_masks"]).astype(np.asarray(masks).dtype)


def size_sweep(data, ranges: dict, sizes, *, seen: int = 12_000, seeds=(0, 1, 2), known: dict | None = None,
               verbose: bool = True):
    """Final validation accuracy of plain and augmented training for each training-set size (chapter 6).

    Every size gets the same number of training steps: ``seen`` images in all (a set smaller than 1,000 images is
    repeated to about 1,000 per epoch, which only saves the per-epoch overhead). ``known`` maps a size already run
    (e.g. by :func:`augmentation_experiment`) to its ``{seed: {run: history}}``. Returns a DataFrame with one row per
    size and seed: ``n_train``, ``seed``, ``plain``, ``augmented`` (validation accuracies), ``gain`` (points).
    """
    import pandas as pd

    rows = []
    for n in sizes:
        if known and n in known:
            results = known[n]
        else:
            results = {}
            for seed in seeds:
                x, y = subset(data, n, seed)
                reps = max(1, 1000 // n)
                results[seed] = train_pair(np.tile(x, (reps,) + (1,) * (x.ndim - 1)), np.tile(y, reps),
                                           (data.x_val, data.y_val), ranges, epochs=max(1, seen // (n * reps)),
                                           seed=seed, validate=False)
        for seed, runs in results.items():
            plain, augmented = runs["plain"]["val_accuracy"][-1], runs["augmented"]["val_accuracy"][-1]
            rows.append({"n_train": n, "seed": seed, "plain": plain, "augmented": augmented,
                         "gain": 100 * (augmented - plain)})
        if verbose:
            gains = [r["gain"] for r in rows if r["n_train"] == n]
            print(f"{n:>5} images: gain {np.mean(gains):+.1f} points (seeds: {', '.join(f'{g:+.1f}' for g in gains)})",
                  flush=True)
    return pd.DataFrame(rows)
