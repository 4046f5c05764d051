"""Tests of cnnbook.training (chapter 4), each against a named oracle: scikit-learn, pandas, closed-form formulas,
NumPy cross-entropy, and layers whose dead channels are known by construction."""

import inspect
import math

import keras
import matplotlib
import numpy as np
import pandas as pd
import pytest
from keras import layers
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from cnnbook import training

matplotlib.use("Agg")


# ------------------------------------------------------------------------------------------- confusion, mistakes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = sklearn_confusion_matrix(y_true, y_pred, labels=range(7))  # oracle: scikit-learn
    np.testing.assert_array_equal(training.confusion_matrix(y_true, y_pred, 7), expected)


def test_confusion_matrix_keeps_absent_classes_and_refuses_bad_labels():
    m = training.confusion_matrix([0, 0, 2], [0, 2, 2], 4)
    np.testing.assert_array_equal(m, [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])  # row: true, column: predicted
    with pytest.raises(ValueError, match="0..3"):
        training.confusion_matrix([0, 4], [0, 1], 4)
    with pytest.raises(ValueError, match="differ in length"):
        training.confusion_matrix([0, 1], [0], 4)


def test_confident_mistakes_match_a_brute_force_ranking():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, 5)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 5, 300)
    # oracle: every wrong prediction, ranked by its probability with Python's sorted
    wrong = [(-probabilities[i].max(), i) for i in range(300) if probabilities[i].argmax() != y_true[i]]
    expected = [i for _, i in sorted(wrong)[:15]]
    assert training.confident_mistakes(probabilities, y_true, k=15).tolist() == expected


def test_confident_mistakes_of_a_perfect_model_is_empty():
    probabilities = np.eye(4)[[0, 1, 2, 3]]
    assert training.confident_mistakes(probabilities, [0, 1, 2, 3]).size == 0


# ------------------------------------------------------------------------------------------------ activations


def test_activation_curves_follow_their_closed_forms():
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    curves = training.activation_curves(x=x)
    value, slope = curves["relu"]
    np.testing.assert_allclose(value, np.maximum(x, 0), atol=1e-6)
    np.testing.assert_allclose(slope, (x > 0).astype(float), atol=1e-3)
    value, slope = curves["elu"]  # oracle: e^x - 1 and its derivative e^x for x <= 0
    np.testing.assert_allclose(value, np.where(x > 0, x, np.expm1(x)), atol=1e-6)
    np.testing.assert_allclose(slope, np.where(x > 0, 1, np.exp(x)), atol=2e-2)
    value, _ = curves["leaky_relu"]  # Keras's documented default slope 0.2
    np.testing.assert_allclose(value, np.where(x > 0, x, 0.2 * x), atol=1e-6)
    gelu = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]  # oracle: x * Phi(x) with math.erf
    np.testing.assert_allclose(curves["gelu"][0], gelu, atol=1e-5)
    lam, alpha = 1.0507009873554805, 1.6732632423543772  # Klambauer et al. (2017)
    np.testing.assert_allclose(curves["selu"][0], np.where(x > 0, lam * x, lam * alpha * np.expm1(x)), rtol=1e-5)
    np.testing.assert_allclose(curves["prelu (a=0.25)"][0], np.where(x > 0, x, 0.25 * x), atol=1e-6)


def test_plot_activations_draws_a_value_and_a_derivative_per_activation():
    fig = training.plot_activations(training.activation_curves())
    left, right = fig.axes
    assert len(left.get_lines()) == len(training.ACTIVATIONS) + 1 + 2  # + PReLU, + the two axis lines
    assert len(right.get_lines()) == len(left.get_lines())


# ---------------------------------------------------------------------------------------------------- dead ReLUs


def _conv_with_dead_channels(dead, channels=8, activation_layer=True):
    inputs = keras.Input((6, 6, 1))
    conv = layers.Conv2D(channels, 3, activation=None if activation_layer else "relu", name="conv")
    x = conv(inputs)
    if activation_layer:
        x = layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
    kernel = np.full((3, 3, 1, channels), 0.1, "float32")
    bias = np.zeros(channels, "float32")
    bias[list(dead)] = -1e4  # inputs lie in [0, 1]: these channels are negative everywhere, by construction
    conv.set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("activation_layer", [True, False])
def test_dead_relu_fraction_counts_channels_dead_by_construction(activation_layer):
    model = _conv_with_dead_channels(dead=[1, 4, 6], activation_layer=activation_layer)
    x = np.random.default_rng(0).random((20, 6, 6, 1)).astype("float32")
    fractions = training.dead_relu_fraction(model, x, batch_size=7)
    assert fractions == {("relu" if activation_layer else "conv"): pytest.approx(3 / 8)}


def test_dead_relu_fraction_refuses_a_model_without_relu():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh")])
    with pytest.raises(ValueError, match="no ReLU"):
        training.dead_relu_fraction(model, np.zeros((2, 4), "float32"))


def test_leaky_relu_is_not_counted_as_relu():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.ReLU(negative_slope=0.1),
                              layers.Dense(2, activation="relu")])
    assert list(training.dead_relu_fraction(model, np.ones((2, 4), "float32"))) == [model.layers[-1].name]


def test_dead_relu_fraction_in_training_mode_uses_batch_statistics():
    # Oracle, by construction: a BatchNormalization whose moving mean is 100 maps inputs in [0, 1] below zero at
    # inference (every channel dead), while in training mode it centres each channel on the batch (about half of the
    # values positive, so no channel dead).
    model = keras.Sequential([keras.Input((5, 5, 2)), layers.BatchNormalization(), layers.ReLU(name="relu")])
    bn = model.layers[0]
    bn.set_weights([np.ones(2, "float32"), np.zeros(2, "float32"), np.full(2, 100.0, "float32"),
                    np.ones(2, "float32")])
    x = np.random.default_rng(1).random((8, 5, 5, 2)).astype("float32")
    assert training.dead_relu_fraction(model, x) == {"relu": 1.0}
    assert training.dead_relu_fraction(model, x, training=True) == {"relu": 0.0}


# ------------------------------------------------------------------------------------ batch losses, bands, targets


def test_batch_losses_records_the_loss_of_each_batch():
    # Oracle: with a learning rate of 0 the weights never move, so each batch's loss is what model.evaluate gives
    # on that batch alone (no dropout, no batch normalisation); two epochs check the reset at each epoch.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), layers.Dense(4, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 4, 40)
    batches = training.BatchLosses()
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, callbacks=[batches])
    expected = [model.evaluate(x[i:i + 10], y[i:i + 10], verbose=0) for i in range(0, 40, 10)] * 2
    np.testing.assert_allclose(batches.losses, expected, rtol=1e-4)


@pytest.mark.parametrize("losses, target, expected", [
    ([2.0, 2.0, 2.0], 2.0, 1),            # bias-corrected smoothing of a constant is the constant: step 1
    ([3.0, 3.0, 3.0], 1.0, None),         # never reached
    ([3.0, 0.0, 0.0, 0.0], 1.0, 3),       # smoothed: 3, 3 * 0.09 / 0.19 = 1.42, 3 * 0.081 / 0.271 = 0.897
])
def test_steps_to_target_counts_from_one_on_the_smoothed_loss(losses, target, expected):
    # Oracle: the smoothed values worked out by hand in the comments (beta 0.9, bias-corrected)
    assert training.steps_to_target(losses, target) == expected


def test_plot_band_draws_the_mean_and_one_standard_deviation():
    import matplotlib.pyplot as plt

    runs = np.array([[1.0, 2.0, 4.0], [3.0, 2.0, 0.0], [2.0, 5.0, 2.0]])
    fig, ax = plt.subplots()
    mean, spread = training.plot_band(ax, [1, 2, 3], runs, "runs")
    np.testing.assert_allclose(mean, [2.0, 3.0, 2.0])                    # by hand
    np.testing.assert_allclose(spread, [1.0, math.sqrt(3.0), 2.0])       # sample std (ddof 1), by hand
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.0) and band.max() == pytest.approx(3.0 + math.sqrt(3.0))
    assert "mean of 3" in ax.lines[0].get_label()
    plt.close(fig)


# ------------------------------------------------------------------------------------------ learning-rate range


def test_lr_range_test_returns_each_batch_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 5)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(1e-12), loss="sparse_categorical_crossentropy")
    p = keras.ops.convert_to_numpy(model(x))
    # oracle: NumPy cross-entropy of each batch of 16 (a learning rate of 1e-12 leaves the weights unchanged)
    expected = [-np.log(p[i:i + 16][np.arange(16), y[i:i + 16]]).mean() for i in range(0, 96, 16)]
    rates, losses = training.lr_range_test(model, x, y, min_lr=1e-12, max_lr=1e-12, steps=6, batch_size=16)
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    np.testing.assert_allclose(rates, np.full(6, 1e-12))


def test_lr_range_test_rates_grow_geometrically_and_stop_on_divergence():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 5)).astype("float32") * 10, rng.integers(0, 3, 400)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(16, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy")
    rates, losses = training.lr_range_test(model, x, y, min_lr=1e-4, max_lr=1e6, steps=40, batch_size=10)
    np.testing.assert_allclose(rates, np.geomspace(1e-4, 1e6, 40)[:len(rates)])  # oracle: numpy.geomspace
    assert len(rates) == len(losses) and len(rates) < 40  # the loss exploded and the test stopped early


def test_lr_range_test_refuses_too_few_examples():
    model = keras.Sequential([keras.Input((2,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="need 640"):
        training.lr_range_test(model, np.zeros((100, 2)), np.zeros(100), steps=10, batch_size=64)


def test_smooth_equals_pandas_adjusted_ewm():
    values = np.random.default_rng(2).normal(size=50)
    expected = pd.Series(values).ewm(alpha=0.1, adjust=True).mean().to_numpy()  # oracle: pandas
    np.testing.assert_allclose(training.smooth(values, beta=0.9), expected, rtol=1e-12)


# ----------------------------------------------------------------------------------------- progress and curves


def test_progress_prints_one_line_per_run_outside_ipython(capsys):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 2)), np.zeros(8), epochs=3, verbose=0, callbacks=[training.Progress("tiny")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiny: epoch 3/3 · loss 0.0000 ·")


def test_format_epoch_lists_metrics_in_order_without_the_learning_rate():
    line = training.format_epoch("run", 2, 5, {"val_loss": 0.5, "loss": 0.25, "learning_rate": 1e-3}, 12.4)
    assert line == "run: epoch 2/5 · loss 0.2500 · val_loss 0.5000 · 12 s"


def test_plot_history_draws_train_and_validation_curves():
    logs = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]}
    fig = training.plot_history({"a": logs, "b": {"loss": [2, 1], "accuracy": [0.1, 0.2]}})
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]
    with pytest.raises(KeyError, match="no metric 'auc'"):
        training.plot_history({"a": logs}, metrics=("auc",))


def test_plot_confusion_and_mistakes_draw_one_panel_per_image():
    fig = training.plot_confusion(np.eye(3, dtype=int) * 5, ["a", "b", "c"])
    assert len(fig.axes[0].texts) == 9
    images = np.zeros((5, 4, 4, 1))
    fig = training.plot_mistakes(images, np.eye(3)[[0, 1, 2, 0, 1]], [1, 1, 1, 1, 1], ["a", "b", "c"], [0, 2, 3],
                                 columns=2)
    assert [bool(ax.get_title()) for ax in fig.axes] == [True, True, True, False]


def test_every_public_helper_names_chapter_4():
    for name, obj in inspect.getmembers(training):
        if not name.startswith("_") and getattr(obj, "__module__", "") == training.__name__:
            assert "chapter 4" in (obj.__doc__ or "").splitlines()[0], name


# ------------------------------------------------------------- chapter 4's trusted checks (autograder/checks)
# Oracle for the references: keras.layers.BatchNormalization. Each plausible wrong answer is kept here and must fail.

from autograder import trusted  # noqa: E402
from autograder.checks import ch04_training as checks  # noqa: E402


def _keras_bn(x, gamma, beta, mean, var, training, momentum, epsilon):
    layer = layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    layer.build(x.shape)
    layer.set_weights([gamma, beta, mean, var])
    y = keras.ops.convert_to_numpy(layer(x, training=training))
    return y, keras.ops.convert_to_numpy(layer.moving_mean), keras.ops.convert_to_numpy(layer.moving_variance)


def test_reference_batch_norm_equals_keras_on_every_grading_case():
    cases = checks.bn_inputs()
    for i in range(int(cases["count"])):
        args = [cases[f"{k}{i}"] for k in ("x", "gamma", "beta", "mean", "var")]
        options = dict(training=bool(cases[f"training{i}"]), momentum=float(cases[f"momentum{i}"]),
                       epsilon=float(cases[f"epsilon{i}"]))
        for ours, keras_value in zip(checks.reference_batch_norm(*args, **options), _keras_bn(*args, **options)):
            np.testing.assert_allclose(ours, keras_value, atol=1e-4, rtol=1e-5)  # Keras rounds in float32


def _artifacts(tmp_path, name, **arrays):
    np.savez(tmp_path / f"{name}.npz", **arrays)
    return trusted.Artifacts(folder=tmp_path, assignment=checks.ASSIGNMENT, inputs_source=checks.INPUTS)


def _run_bn(tmp_path, fn):
    cases, outputs = checks.bn_inputs(), {}
    for i in range(int(cases["count"])):
        y, m, v = fn(*[cases[f"{k}{i}"] for k in ("x", "gamma", "beta", "mean", "var")],
                     training=bool(cases[f"training{i}"]), momentum=float(cases[f"momentum{i}"]),
                     epsilon=float(cases[f"epsilon{i}"]))
        outputs.update({f"y{i}": y, f"mean{i}": m, f"var{i}": v})
    art = _artifacts(tmp_path, "batch_norm", **outputs)
    return [trusted.run_check(checks.CHECKS[g], art)[0] for g in ("test_bn_training", "test_bn_inference")]


def _bn(variance=np.var, eps_sign=1, pytorch_momentum=False, batch_stats_at_inference=False, axes_first_only=False,
        update_at_inference=False):
    def forward(x, gamma, beta, mean, var, training, momentum, epsilon):
        axes = (0,) if axes_first_only else tuple(range(x.ndim - 1))
        m = 1 - momentum if pytorch_momentum else momentum
        if training or batch_stats_at_inference:
            mu, sigma2 = x.mean(axis=axes), variance(x, axis=axes)
            new_mean, new_var = m * mean + (1 - m) * mu, m * var + (1 - m) * sigma2
            if not training and not update_at_inference:
                new_mean, new_var = mean, var
        else:
            mu, sigma2, new_mean, new_var = mean, var, mean, var
            if update_at_inference:
                new_mean = m * mean + (1 - m) * x.mean(axis=axes)
        with np.errstate(invalid="ignore"):
            return gamma * (x - mu) / np.sqrt(sigma2 + eps_sign * epsilon) + beta, new_mean, new_var
    return forward


def test_the_reference_batch_norm_passes_both_checks(tmp_path):
    assert _run_bn(tmp_path, checks.reference_batch_norm) == ["pass", "pass"]


@pytest.mark.parametrize("wrong, fails", [
    (_bn(eps_sign=0), "training"),                                  # no epsilon: the constant channel divides by 0
    (_bn(eps_sign=-1), "training"),                                 # Olafenwa's misprint: sqrt(var - eps)
    (_bn(variance=lambda x, axis: x.var(axis=axis, ddof=1)), "training"),  # unbiased variance
    (_bn(pytorch_momentum=True), "training"),                       # momentum read as PyTorch's (1 - m)
    (_bn(axes_first_only=True), "training"),                        # statistics over the batch axis only
    (_bn(batch_stats_at_inference=True), "inference"),              # batch statistics at inference
    (_bn(update_at_inference=True), "inference"),                   # moving statistics updated at inference
])
def test_wrong_batch_norms_fail(tmp_path, wrong, fails):
    verdicts = dict(zip(("training", "inference"), _run_bn(tmp_path, wrong)))
    assert verdicts[fails] == "fail", verdicts


def _run_dropout(tmp_path, fn):
    cases, outputs = checks.dropout_inputs(), {}
    for i in range(int(cases["count"])):
        rng = np.random.default_rng(int(cases[f"seed{i}"]))
        outputs[f"train{i}"] = fn(cases[f"x{i}"], float(cases[f"rate{i}"]), True, rng)
        outputs[f"infer{i}"] = fn(cases[f"x{i}"], float(cases[f"rate{i}"]), False, rng)
    art = _artifacts(tmp_path, "dropout", **outputs)
    return [trusted.run_check(checks.CHECKS[g], art)[0] for g in ("test_dropout_training", "test_dropout_inference")]


def _good_dropout(x, rate, training, rng):
    return np.where(rng.random(x.shape) >= rate, x / (1 - rate), 0.0) if training else x


def test_the_reference_dropout_and_keras_dropout_pass(tmp_path):
    assert _run_dropout(tmp_path, _good_dropout) == ["pass", "pass"]

    def keras_dropout(x, rate, training, rng):  # oracle: Keras's own layer must pass the trusted checks
        return keras.ops.convert_to_numpy(layers.Dropout(rate, seed=int(rng.integers(1e6)))(x, training=training))
    assert _run_dropout(tmp_path, keras_dropout) == ["pass", "pass"]


@pytest.mark.parametrize("wrong, fails", [
    (lambda x, r, t, g: np.where(g.random(x.shape) >= r, x, 0.0) if t else x, "training"),          # no rescaling
    (lambda x, r, t, g: np.where(g.random(x.shape) >= r, x * (1 - r), 0.0) if t else x, "training"),  # scaled down
    (lambda x, r, t, g: np.where(g.random(x.shape) < r, x / (1 - r), 0.0) if t else x, "training"),  # keeps p = rate
    (lambda x, r, t, g: np.where(np.arange(x.size).reshape(x.shape) >= r * x.size, x / (1 - r), 0.0) if t else x,
     "training"),                                                                                      # fixed mask
    (lambda x, r, t, g: np.where(g.random(x.shape) >= r, x / (1 - r), 0.0), "inference"),           # active at inference
    (lambda x, r, t, g: np.where(g.random(x.shape) >= r, x / (1 - r), 0.0) if t else x * (1 - r), "inference"),
])
def test_wrong_dropouts_fail(tmp_path, wrong, fails):
    verdicts = dict(zip(("training", "inference"), _run_dropout(tmp_path, wrong)))
    assert verdicts[fails] == "fail", verdicts


def test_budget_check_refuses_a_model_over_budget_or_of_the_wrong_shape(tmp_path):
    def art_for(model):
        folder = tmp_path / model.name
        folder.mkdir()
        model.save(folder / "fashion_model.keras")
        return trusted.Artifacts(folder=folder, assignment=checks.ASSIGNMENT)

    small = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")],
                             name="small")
    big = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(64), layers.Dense(10)], name="big")
    flat = keras.Sequential([keras.Input((784,)), layers.Dense(10)], name="flat")
    verdicts = {m.name: trusted.run_check(checks.check_budget, art_for(m)) for m in (small, big, flat)}
    assert verdicts["small"][0] == "pass"
    assert verdicts["big"][0] == "fail" and "50,000" in verdicts["big"][2].replace("49,999", "50,000")
    assert verdicts["flat"][0] == "fail" and "(28, 28, 1)" in verdicts["flat"][2]
