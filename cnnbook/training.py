"""Helpers of chapter 4 (training a CNN): progress, curves, confusion matrix, mistakes, LR range test, dead ReLUs."""

from __future__ import annotations

import math
import time

import keras
import matplotlib.pyplot as plt
import numpy as np

#: Activations that chapter 4 plots, by their ``keras.activations`` names.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu")


# ------------------------------------------------------------------------------------------------------- progress


class Progress(keras.callbacks.Callback):
    """One line per run that updates in place while ``fit`` runs and stays as a summary (chapter 4)."""

    def __init__(self, name: str, every: float = 0.5):
        super().__init__()
        self.name, self.every = name, every
        self._handle = None
        self._last = 0.0

    def _show(self, text: str) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # plain Python: print the final line only
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._epochs = self.params.get("epochs", 0)
        self._steps = self.params.get("steps") or 0
        self._epoch = 0
        self.line = f"{self.name}: starting"
        self._show(self.line)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            done = int(20 * (batch + 1) / self._steps) if self._steps else 0
            self._show(f"{self.name}: epoch {self._epoch}/{self._epochs} [{'=' * done:<20}] "
                       f"loss {logs.get('loss', float('nan')):.4f}")

    def on_epoch_end(self, epoch, logs=None):
        self.line = format_epoch(self.name, epoch + 1, self._epochs, logs or {},
                                 time.perf_counter() - self._start)
        self._show(self.line)

    def on_train_end(self, logs=None):
        self._show(self.line)
        if self._handle is None:
            print(self.line)


def format_epoch(name: str, epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    """Format one summary line: run name, epoch, every metric of ``logs`` and the seconds so far (chapter 4)."""
    metrics = " · ".join(f"{key} {value:.4f}" for key, value in sorted(logs.items())
                         if isinstance(value, (int, float, np.floating)) and key != "learning_rate")
    return f"{name}: epoch {epoch}/{epochs} · {metrics} · {seconds:.0f} s"


# --------------------------------------------------------------------------------------------------------- curves


def plot_history(histories: dict, metrics=("loss", "accuracy"), title: str = ""):
    """Plot training (solid) and validation (dashed) curves of one or more runs, one panel per metric (chapter 4)."""
    if not histories:
        raise ValueError("plot_history needs at least one run, e.g. plot_history({'baseline': history})")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, history), colour in zip(histories.items(), colours * 3):
        logs = getattr(history, "history", history)
        for ax, metric in zip(axes[0], metrics):
            if metric not in logs:
                raise KeyError(f"run {name!r} has no metric {metric!r}; it has {sorted(logs)}")
            epochs = np.arange(1, len(logs[metric]) + 1)
            ax.plot(epochs, logs[metric], color=colour, label=f"{name} (train)")
            if f"val_{metric}" in logs:
                ax.plot(epochs, logs[f"val_{metric}"], color=colour, linestyle="--", label=f"{name} (validation)")
    for ax, metric in zip(axes[0], metrics):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------- confusion and mistakes


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Count (true class, predicted class) pairs: row i, column j = images of class i predicted as j (chapter 4)."""
    y_true, y_pred = np.asarray(y_true).astype(int).ravel(), np.asarray(y_pred).astype(int).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} and {y_pred.shape[0]}")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def plot_confusion(matrix, class_names, title: str = ""):
    """Draw a confusion matrix with its counts, true classes down, predictions across (chapter 4)."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(matrix, cmap="Blues")
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confident_mistakes(probabilities, y_true, k: int = 10) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest probability, most confident first (chapter 4)."""
    probabilities, y_true = np.asarray(probabilities), np.asarray(y_true).astype(int).ravel()
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


def plot_mistakes(images, probabilities, y_true, class_names, indices, columns: int = 6):
    """Show the images at ``indices`` titled with prediction, its probability and the true class (chapter 4)."""
    images = np.asarray(images)
    rows = math.ceil(len(indices) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        image = images[i]
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image.astype("uint8"), cmap="gray_r")
        p = np.asarray(probabilities[i])
        ax.set_title(f"{class_names[p.argmax()]} {p.max():.0%}\n(true: {class_names[int(y_true[i])]})", fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ activations


def activation_curves(names=ACTIVATIONS, x=None, prelu_alpha: float = 0.25) -> dict:
    """Values and central-difference derivatives of ``keras.activations`` (plus PReLU) on a grid (chapter 4)."""
    x = np.linspace(-4, 4, 801, dtype="float64") if x is None else np.asarray(x, "float64")
    h = 1e-4
    curves = {}
    for name in names:
        f = getattr(keras.activations, name)

        def value(v, f=f):
            return keras.ops.convert_to_numpy(f(keras.ops.convert_to_tensor(v.astype("float32")))).astype("float64")

        curves[name] = (value(x), (value(x + h) - value(x - h)) / (2 * h))
    prelu = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(prelu_alpha))
    p = lambda v: keras.ops.convert_to_numpy(prelu(v.astype("float32")[:, None]))[:, 0].astype("float64")
    curves[f"prelu (a={prelu_alpha:g})"] = (p(x), (p(x + h) - p(x - h)) / (2 * h))
    return {"x": x, **curves}


def plot_activations(curves: dict):
    """Plot each activation and its derivative side by side (chapter 4)."""
    x = curves["x"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    for name, (value, derivative) in ((k, v) for k, v in curves.items() if k != "x"):
        left.plot(x, value, label=name)
        right.plot(x, derivative, label=name)
    left.set_ylim(-2, 4)
    right.set_ylim(-0.2, 1.9)
    for ax, what in ((left, "f(x)"), (right, "f'(x)")):
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("x")
        ax.set_title(what)
        ax.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _is_relu(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.relu or getattr(activation, "__name__", "") == "relu"


def dead_relu_fraction(model, x, batch_size: int = 256, training: bool = False) -> dict:
    """Fraction of each ReLU layer's channels that are zero for every position of every image in ``x`` (chapter 4).

    ``training=True`` runs the model as ``fit`` does (batch statistics in batch normalisation), which is the state in
    which a unit gets no gradient; ``training=False`` as ``predict`` does (moving statistics).
    """
    relus = [layer for layer in model.layers if _is_relu(layer)]
    if not relus:
        raise ValueError(f"model {model.name!r} has no ReLU layer (layers.ReLU() or activation='relu')")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [layer.output for layer in relus])
    alive = [None] * len(relus)
    for start in range(0, len(x), batch_size):
        outputs = probe(x[start:start + batch_size], training=training)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, out in enumerate(outputs):
            out = keras.ops.convert_to_numpy(out)
            positive = (out > 0).reshape(-1, out.shape[-1]).any(axis=0)
            alive[i] = positive if alive[i] is None else alive[i] | positive
    return {layer.name: float(1 - a.mean()) for layer, a in zip(relus, alive)}


class BatchLosses(keras.callbacks.Callback):
    """Record the loss of every training batch (not Keras's running mean over the epoch) in ``.losses`` (chapter 4)."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the mean loss since the epoch began; with equal batches the batch's own loss is the difference
        mean = float(logs["loss"])
        self.losses.append((batch + 1) * mean - batch * self._previous)
        self._previous = mean


def steps_to_target(losses, target: float, beta: float = 0.9) -> int | None:
    """First step (counted from 1) at which the smoothed loss is at or below ``target``, or None (chapter 4)."""
    below = np.flatnonzero(smooth(losses, beta) <= target)
    return int(below[0]) + 1 if below.size else None


def plot_band(ax, x, runs, label: str, color=None, **line):
    """Draw the mean of ``runs`` (one row per seed) as a line and mean ± one standard deviation as a band (chapter 4)."""
    runs = np.asarray(runs, "float64")
    mean, spread = runs.mean(axis=0), runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(runs.shape[1])
    (drawn,) = ax.plot(x, mean, label=f"{label} (mean of {len(runs)})", color=color, **line)
    ax.fill_between(x, mean - spread, mean + spread, color=drawn.get_color(), alpha=0.2, linewidth=0)
    return mean, spread


# --------------------------------------------------------------------------------------- learning-rate range test


class _RangeTest(keras.callbacks.Callback):
    def __init__(self, rates):
        super().__init__()
        self.rates, self.losses = rates, []
        self._previous = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(float(self.rates[batch]))

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the mean loss since the epoch began; with equal batches the batch's own loss is the difference
        mean = float(logs["loss"])
        self.losses.append((batch + 1) * mean - batch * self._previous)
        self._previous = mean
        if not math.isfinite(mean) or mean > 1e3:
            self.model.stop_training = True


def lr_range_test(model, x, y, min_lr: float = 1e-5, max_lr: float = 1.0, steps: int = 100,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Train ``steps`` batches with the learning rate growing geometrically; return rates and batch losses (chapter 4).

    ``model`` must be compiled with an optimizer whose learning rate is a number (not a schedule); it is trained.
    """
    if steps * batch_size > len(x):
        raise ValueError(f"{steps} steps of {batch_size} need {steps * batch_size:,} examples, got {len(x):,}: "
                         "lower steps or batch_size")
    rates = np.geomspace(min_lr, max_lr, steps)
    test = _RangeTest(rates)
    model.fit(x[:steps * batch_size], y[:steps * batch_size], batch_size=batch_size, epochs=1, shuffle=False,
              verbose=0, callbacks=[test])
    return rates[:len(test.losses)], np.asarray(test.losses)


def smooth(values, beta: float = 0.9) -> np.ndarray:
    """Exponential moving average with bias correction, as range-test plots draw the loss (chapter 4)."""
    out, average = [], 0.0
    for i, v in enumerate(np.asarray(values, "float64"), start=1):
        average = beta * average + (1 - beta) * v
        out.append(average / (1 - beta ** i))
    return np.asarray(out)


def plot_lr_range(rates, losses, suggestion: float | None = None):
    """Plot batch loss (raw and smoothed) against the learning rate on a log axis (chapter 4)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(rates, losses, color="lightgrey", label="loss of each batch")
    smoothed = smooth(losses)
    ax.plot(rates, smoothed, color="tab:blue", label="smoothed")
    ax.set_xscale("log")
    ax.set_ylim(0, min(np.nanmax(smoothed[np.isfinite(smoothed)]), 3 * smoothed[0]) * 1.1)
    if suggestion:
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"chosen: {suggestion:.0e}")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
