"""Trusted checks of exercise 3 (counting parameters and MACs, a trained model under budget), to PROTOCOL.md.

Oracles, in the grader's process: Keras's own ``count_params`` and trainable weights, ``cnnbook.counting.count``
(MACs), the loaded ``.keras`` file for the budget model, and held-out shapes (``autograder/data/shapes_heldout.npz``)
for its accuracy. Rule for the formulas and the two counters (answer_rules): no ``count_params``, no
``cnnbook.counting``, no reading of weights; the counters may use ``keras`` and ``layers`` for ``isinstance``. Each is
scored from its answer cell re-run alone in the sandbox, on random models the grader builds.
"""

from __future__ import annotations

import json
import math

import numpy as np

from autograder import answer_rules as rules
from autograder import trusted
from autograder.answer_rules import tasks
from cnnbook.counting import count

ASSIGNMENT = "ch03_counting"
#: Attributes that read a count or the weights instead of working it out from the configuration.
COUNTING_ATTRS = frozenset({"count_params", "weights", "trainable_weights", "non_trainable_weights", "get_weights",
                            "variables", "trainable_variables", "non_trainable_variables", "kernel", "bias",
                            "depthwise_kernel", "pointwise_kernel", "gamma", "beta", "moving_mean",
                            "moving_variance", "summary", "numpy", "counting"})
FORBIDDEN = ("work it out from each layer's configuration: no count_params(), no cnnbook.counting, no reading "
             "the weights")
FORMULAS = ("dense_params", "conv_params", "separable_params", "conv_macs")
BUDGET = dict(max_params=50_000, max_macs=5_000_000, min_convs=4)
SETUP_KERAS = ["import numpy as np", "import math", "import keras", "from keras import layers"]


def _rule(art, answer: str) -> rules.Rule:
    keras_ok = answer != "formulas"
    allowed = {"np", "numpy", "math"} | ({"keras", "layers"} if keras_ok else set())
    if answer != "formulas":
        try:
            allowed |= rules.defined_names(tasks.answer(art, "formulas"))
        except AssertionError:
            pass
    return rules.Rule(answer, FORBIDDEN, globals=frozenset(allowed),
                      imports=frozenset({"numpy", "math"} | ({"keras"} if keras_ok else set())),
                      packages=("numpy", "math") + (("keras",) if keras_ok else ()),
                      modules={"np": "numpy", "numpy": "numpy", "math": "math",
                               **({"keras": "keras", "layers": "keras.layers"} if keras_ok else {})},
                      attrs=COUNTING_ATTRS)


def _program(art, answer: str) -> str:
    own = tasks.enforce(art, answer, _rule(art, answer))
    if answer == "formulas":
        return own
    try:
        formulas = tasks.answer(art, "formulas")
    except AssertionError:
        return own
    return own if rules.violations(formulas, _rule(art, "formulas")) else formulas + "\n\n" + own


# ------------------------------------------------------------------------------------------- part 1: formulas


def formula_cases(seed: int, n: int) -> list[tuple]:
    """(function, args, Keras layer factory, input shape, what, kind) for ``n`` random sizes (the grader's choice)."""
    from keras import layers as L

    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        n_in, units = int(rng.integers(1, 300)), int(rng.integers(1, 200))
        k, c_in, c_out = int(rng.integers(1, 8)), int(rng.integers(1, 64)), int(rng.integers(1, 64))
        h, w, mult, bias = int(rng.integers(1, 30)), int(rng.integers(1, 30)), int(rng.integers(1, 4)), bool(
            rng.integers(2))
        cases += [
            ("dense_params", [n_in, units], lambda u=units: L.Dense(u), (n_in,), "params"),
            ("conv_params", [k, c_in, c_out, bias], lambda c=c_out, k=k, b=bias: L.Conv2D(c, k, use_bias=b),
             (k, k, c_in), "params"),
            ("separable_params", [k, c_in, c_out, mult, bias],
             lambda c=c_out, k=k, m=mult, b=bias: L.SeparableConv2D(c, k, depth_multiplier=m, use_bias=b),
             (k, k, c_in), "params"),
            ("conv_macs", [k, c_in, h, w, c_out], lambda c=c_out, k=k: L.Conv2D(c, k),
             (h + k - 1, w + k - 1, c_in), "macs"),
        ]
    return cases


def check_formulas(art) -> None:
    """The four formulas, run alone, vs Keras layers' count_params and the course counter, on random sizes."""
    import keras

    cases = formula_cases(303, 12)
    results = tasks.run_alone(_program(art, "formulas"), [[fn, args, {}] for fn, args, *_ in cases])
    for (fn, args, layer, shape, kind), result in zip(cases, results):
        model = keras.Sequential([keras.Input(shape), layer()])
        expected = model.count_params() if kind == "params" else count(model).macs
        got = tasks.value(result)
        what = f"{fn}({', '.join(map(repr, args))})"
        if isinstance(got, str):
            raise AssertionError(f"{what} raised {got}" if not got.startswith("NotImplementedError") else
                                 f"{fn} still raises NotImplementedError: replace the stub with your code")
        if got != expected:
            raise AssertionError(f"{what} returned {got!r}; Keras says {expected:,}")


# --------------------------------------------------------------------------------------- parts 2-3: counters


def random_sequential(rng, *, freeze: bool = True):
    """A random small Sequential image model of the layer types the exercise covers (the grader's inputs)."""
    import keras
    from keras import layers as L

    size = int(rng.integers(12, 33))
    stack = [keras.Input((size, size, int(rng.integers(1, 5))))]
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "depthwise", "separable"], p=[0.6, 0.2, 0.2])
        k, pad, bias = int(rng.choice([1, 3, 5])), str(rng.choice(["valid", "same"])), bool(rng.integers(2))
        stride = int(rng.choice([1, 2]))
        if size < k + 2:
            pad = "same"
        size = (size - k) // stride + 1 if pad == "valid" else -(-size // stride)
        if kind == "conv":
            stack.append(L.Conv2D(int(rng.integers(2, 24)), k, strides=stride, padding=pad, use_bias=bias))
        elif kind == "depthwise":
            stack.append(L.DepthwiseConv2D(k, strides=stride, padding=pad, use_bias=bias,
                                           depth_multiplier=int(rng.integers(1, 3))))
        else:
            stack.append(L.SeparableConv2D(int(rng.integers(2, 24)), k, strides=stride, padding=pad, use_bias=bias))
        if rng.random() < 0.5:
            stack.append(L.BatchNormalization())
        stack.append(L.Activation("relu"))
        if rng.random() < 0.4 and size >= 4:
            stack.append(L.MaxPooling2D(2) if rng.random() < 0.5 else L.AveragePooling2D(2, padding="same"))
            size //= 2
    stack.append(L.Flatten() if rng.random() < 0.5 else L.GlobalAveragePooling2D())
    if rng.random() < 0.5:
        stack += [L.Dense(int(rng.integers(4, 40)), activation="relu"), L.Dropout(0.3)]
    stack.append(L.Dense(int(rng.integers(2, 11)), activation="softmax", use_bias=bool(rng.integers(2))))
    model = keras.Sequential(stack)
    if freeze:
        for layer in model.layers:
            if rng.random() < 0.2:
                layer.trainable = False
    return model


#: counter -> (seed, number of random models, frozen layers?)
COUNTERS = {"count_params": (404, 12, True), "count_macs": (505, 12, False)}


def counter_models(task: str) -> list:
    seed, n, freeze = COUNTERS[task]
    rng = np.random.default_rng(seed)
    return [random_sequential(rng, freeze=freeze) for _ in range(n)]


def _models_input(task: str) -> dict:
    configs = [m.to_json() for m in counter_models(task)]
    return {"json": np.frombuffer(json.dumps(configs).encode(), dtype="uint8")}


def _describe(model) -> str:
    return " -> ".join(type(layer).__name__ for layer in model.layers)


def check_counter(art, task: str):
    """A counter, run alone on the grader's random models, vs Keras's counts (parameters) or the course counter."""
    models = counter_models(task)
    calls = [[task, [{"keras_model": m.to_json()}], {}] for m in models]
    results = tasks.run_alone(_program(art, task), calls, setup=SETUP_KERAS, timeout=120)
    trusted_out = {}
    for i, (model, result) in enumerate(zip(models, results), 1):
        got = tasks.value(result)
        if isinstance(got, str):
            raise AssertionError(f"{task} still raises NotImplementedError: replace the stub with your code"
                                 if got.startswith("NotImplementedError") else
                                 f"{task} on random model {i} ({_describe(model)}) raised {got}")
        if task == "count_params":
            expected = (int(model.count_params()), int(sum(math.prod(v.shape) for v in model.trainable_weights)))
            try:
                got = tuple(int(n) for n in got)
            except (TypeError, ValueError):
                raise AssertionError(f"count_params should return (total, trainable), got {got!r}") from None
            if got != expected:
                frozen = [layer.name for layer in model.layers if not layer.trainable]
                raise AssertionError(f"random model {i} ({_describe(model)}; frozen: {frozen or 'none'}): you count "
                                     f"{got[0]:,} parameters ({got[1]:,} trainable), Keras {expected[0]:,} "
                                     f"({expected[1]:,} trainable)")
        else:
            counts = count(model)
            if got != counts.macs:
                per_layer = ", ".join(f"{n}: {m:,}" for n, m in zip(counts.table["layer"], counts.table["macs"]) if m)
                raise AssertionError(f"random model {i} ({_describe(model)}): you count {got!r} MACs, expected "
                                     f"{counts.macs:,} (per layer: {per_layer})")
        trusted_out[f"out_{i - 1}"] = np.asarray(got, dtype="float64")
    art.notes = getattr(art, "notes", []) + tasks.disagreement(art, task, trusted_out)


# -------------------------------------------------------------------------------------- part 4: the budget model


def expect_budget_model(model, what: str) -> None:
    """Input 32x32x3, ten softmax outputs, at least 4 convolutions, the parameter and MAC budgets (the loaded file)."""
    if tuple(model.input_shape[1:]) != (32, 32, 3):
        raise AssertionError(f"{what}'s input is {tuple(model.input_shape[1:])}, expected (32, 32, 3)")
    if tuple(model.output_shape[1:]) != (10,):
        raise AssertionError(f"{what}'s output is {tuple(model.output_shape[1:])}, expected (10,): end with "
                             "Dense(10, activation='softmax')")
    counts = count(model)
    if counts.not_counted:
        raise AssertionError(f"the counter cannot count these layers of {what}: {counts.not_counted}; use standard "
                             "layers")
    convs = sum(t in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D") for t in counts.table["type"])
    if convs < BUDGET["min_convs"]:
        raise AssertionError(f"{what} has {convs} convolutional layers; use at least {BUDGET['min_convs']}")
    trusted.expect_budget(model, max_params=BUDGET["max_params"], max_macs=BUDGET["max_macs"], what=what)


def expect_softmax(model, x, what: str) -> None:
    """The outputs are class probabilities: non-negative, summing to 1 for every image."""
    out = trusted.predict(model, x[:64])
    if not (np.all(out >= -1e-6) and np.allclose(out.sum(axis=1), 1, atol=1e-3)):
        raise AssertionError(f"{what}'s outputs are not probabilities (they sum to {out.sum(axis=1)[0]:.3g} for the "
                             "first image): end with Dense(10, activation='softmax')")


def check_budget(art) -> None:
    """The architecture budget_model() returns (saved untrained by the test cell), read from the file."""
    model = art.model("budget_model")
    expect_budget_model(model, "budget_model()")
    expect_softmax(model, trusted.heldout("shapes")[0], "budget_model()")


def budget_accuracy(model) -> float:
    """Accuracy of a trained budget model on the held-out shapes (the calibration metric)."""
    return trusted.accuracy(model, *trusted.heldout("shapes"))


def expect_trained_model(model) -> None:
    """The trained budget model: within budget, with softmax outputs on the held-out shapes."""
    expect_budget_model(model, "your trained model")
    expect_softmax(model, trusted.heldout("shapes")[0], "your trained model")


#: The model trained in the notebook: within budget, softmax outputs, and an accuracy floor on held-out shapes.
check_trained_budget = trusted.band_check(
    ASSIGNMENT, "budget_trained", 0, budget_accuracy, expect=expect_trained_model,
    message="your trained model recognises {value:.1%} of the held-out shapes; it needs {level:.1%} (an untrained "
            "one gets about 10%): train it (model.fit) for the epochs the exercise gives, with Adam and "
            "sparse_categorical_crossentropy")


INPUTS = {task: (lambda task=task: _models_input(task)) for task in COUNTERS}
CHECKS = {
    "test_formulas": check_formulas,
    "test_count_params": lambda art: check_counter(art, "count_params"),
    "test_count_macs": lambda art: check_counter(art, "count_macs"),
    "test_budget": check_budget,
    "test_budget_trained": check_trained_budget,
}
TASKS = {"budget_trained": trusted.QualityTask(
    cells=("imports", "budget_model", "shapes_data", "train_budget"), artifact="budget_trained",
    metric=budget_accuracy, fixed=(0.35,), derive_top=False,
    weak={"train_budget": "budget_trained = budget_model()\nbudget_trained.compile(optimizer='adam', "
                          "loss='sparse_categorical_crossentropy')\n"},
    weak_name="the budget model compiled but never trained")}
