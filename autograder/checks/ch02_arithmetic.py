"""Trusted checks of exercise 2 (convolution arithmetic); the rule and its checking: autograder/checks/rules.py.

Oracles: ``cnnbook.arithmetic`` and Keras's ``compute_output_shape``, in the grader's process. Rule: the answers use
Python, NumPy and ``math`` only — never ``cnnbook.arithmetic``; ``shapes`` is written without running the model
(it may call the student's own functions above); the Géron answer may build a Keras model to check itself.
Every answer cell is re-run alone (with the other answer cells that keep the rule, so one may call another).
"""

from __future__ import annotations

import json
import math
import random

import numpy as np

from autograder import answer_rules as rules
from autograder.answer_rules import tasks
from cnnbook import arithmetic as oracle

ANSWERS = ("conv_output_length", "same_padding", "conv_transpose_output_length", "receptive_field", "shapes", "geron")
FORBIDDEN = "use Python, NumPy and math only, never cnnbook.arithmetic: the point is to know the formulas"
GERON_NAMES = ("layer_params", "total_params", "feature_map_bytes", "prediction_bytes", "training_bytes")
#: task -> (grade_id of its test cell, seed, count): the hidden test cells save the same cases.
RANDOM = {"conv_output_length": ("test_conv_output_length", 2021, 400),
          "same_padding": ("test_same_padding", 2022, 400),
          "conv_transpose_output_length": ("test_conv_transpose_output_length", 2023, 300),
          "receptive_field": ("test_receptive_field", 2024, 200)}


def arithmetic_cases(task: str, seed: int, count: int) -> list[list]:
    """Seeded random arguments for a chapter 2 function (the grader's inputs of its hidden test)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        if task == "conv_output_length":
            i, k, s, d = rng.randint(1, 60), rng.randint(1, 7), rng.randint(1, 4), rng.choice([1, 1, 2, 3])
            cases.append([i, k, s, rng.choice(["valid", "same", 0, 1, 2, 3]), d])
        elif task == "same_padding":
            cases.append([rng.randint(1, 60), rng.randint(1, 8), rng.randint(1, 5)])
        elif task == "conv_transpose_output_length":
            i, k, s = rng.randint(1, 20), rng.randint(1, 7), rng.randint(1, 4)
            case = [i, k, s, rng.choice(["valid", "same"]), rng.choice([None, rng.randint(0, s - 1)])]
            if reference(task, case) is not ValueError:   # configurations TensorFlow cannot run are no question
                cases.append(case)
        else:
            cases.append([[[rng.randint(1, 5), rng.randint(1, 3), rng.choice([1, 1, 2, 3])]
                           for _ in range(rng.randint(0, 6))]])
    return cases


def _json_input(task: str) -> dict:
    _, seed, count = RANDOM[task]
    return {"json": np.frombuffer(json.dumps(arithmetic_cases(task, seed, count)).encode(), dtype="uint8")}


def _rule(art, answer: str) -> rules.Rule:
    others = set()
    for other in ANSWERS:
        if other != answer:
            try:
                others |= rules.defined_names(tasks.answer(art, other))
            except AssertionError:
                pass
    allowed = {"np", "numpy", "math"} | others | ({"keras"} if answer == "geron" else set())
    why = FORBIDDEN if answer != "shapes" else ("work the shapes out without running the model (your functions "
                                                "above, or pencil and paper)")
    return rules.Rule(answer, why, globals=frozenset(allowed),
                      imports=frozenset({"numpy", "math"} | ({"keras"} if answer == "geron" else set())),
                      packages=("numpy", "math") + (("keras",) if answer == "geron" else ()))


def _program(art, answer: str) -> tuple[str, list[str]]:
    """The task's answer cell after the other answer cells that keep the rule; checks the task's own cell."""
    own = tasks.enforce(art, answer, _rule(art, answer), rules.defined_names(tasks.answer(art, answer)))
    parts = []
    for other in ANSWERS:
        if other in (answer, "shapes", "geron"):
            continue
        try:
            src = tasks.answer(art, other)
        except AssertionError:
            continue
        if not rules.violations(src, _rule(art, other)):
            parts.append(src)
    setup = ["import numpy as np", "import math"] + (["import keras"] if "keras" in own else [])
    return "\n\n".join(parts + [own]), setup


def reference(task: str, case: tuple):
    """The oracle's answer, or ValueError (chapter 2)."""
    try:
        if task == "conv_output_length":
            return oracle.conv_output_length(*case)
        if task == "same_padding":
            return tuple(oracle.same_padding(*case))
        if task == "conv_transpose_output_length":
            return oracle.conv_transpose_output_length(*case)
        field = oracle.receptive_field([oracle.conv_layer(k, s, "valid", d) for k, s, d in case[0]])
        return field.size[0], field.stride[0]
    except ValueError:
        return ValueError


_value = tasks.value


def check_function(art, task: str):
    """The rule, then the answer run alone on the visible examples' kind of random cases vs the oracle."""
    grade_id, seed, count = RANDOM[task]
    cases = arithmetic_cases(task, seed, count)
    source, setup = _program(art, task)
    results = tasks.run_alone(source, setup=setup, calls=[[task, list(c), {}] for c in cases])
    for case, result in zip(cases, results):
        expected, got = reference(task, case), _value(result)
        if isinstance(got, str) and got.startswith("NotImplementedError"):
            raise AssertionError(f"{task} still raises NotImplementedError: replace the stub with your code")
        if got != expected:
            show = lambda v: "ValueError" if v is ValueError else repr(v)  # noqa: E731
            raise AssertionError(f"{task}{tuple(case)} gave {show(got)}, expected {show(expected)}")
    if task == "conv_output_length":
        import keras

        for i, k, s, p in [(31, 3, 2, "valid"), (31, 4, 3, "same"), (17, 5, 1, "same")]:
            assert keras.layers.Conv2D(1, k, strides=s, padding=p).compute_output_shape((None, i, i, 1))[1] == \
                reference(task, (i, k, s, p, 1))
    trusted = {f"out_{i}": np.asarray(np.nan if v is ValueError else v, dtype="float64")
               for i, v in enumerate(_value(r) for r in results)}
    art.notes = getattr(art, "notes", []) + tasks.disagreement(art, task, trusted, equal_nan=True)


def _shapes_model():
    import keras

    return keras.Sequential([
        keras.Input((64, 80, 3)),
        keras.layers.Conv2D(16, 5, strides=2, padding="same"),
        keras.layers.MaxPooling2D(3, strides=2),
        keras.layers.Conv2D(32, (3, 5), dilation_rate=2),
        keras.layers.AveragePooling2D(2, padding="same"),
        keras.layers.Conv2DTranspose(8, 3, strides=2),
        keras.layers.Conv2D(4, 1, strides=(2, 3), padding="same"),
    ])


def check_shapes(art):
    """``shapes`` from the answer cell run alone vs Keras's own output shapes of the exercise's model."""
    source, setup = _program(art, "shapes")
    got = _value(tasks.run_alone(source, setup=setup, calls=[["=shapes", [], {}]])[0])
    expected = [tuple(layer.output.shape[1:]) for layer in _shapes_model().layers]
    if not isinstance(got, tuple) or len(got) != 6:
        raise AssertionError(f"shapes must be a list of 6 tuples, one per layer; got {got!r}")
    for n, (mine, keras_shape) in enumerate(zip(got, expected), start=1):
        if tuple(mine) != keras_shape:
            raise AssertionError(f"layer {n}: you wrote {tuple(mine)}, Keras gives {keras_shape}")


def geron_reference() -> dict:
    """Géron's exercise computed from Keras's counts and shapes (chapter 2)."""
    import keras

    net = keras.Sequential([keras.Input((200, 300, 3))] +
                           [keras.layers.Conv2D(f, 3, strides=2, padding="same") for f in (100, 200, 400)])
    maps = [4 * math.prod(layer.output.shape[1:]) for layer in net.layers]
    sizes = [200 * 300 * 3 * 4] + maps
    return {"layer_params": [layer.count_params() for layer in net.layers], "total_params": net.count_params(),
            "feature_map_bytes": maps,
            "prediction_bytes": 4 * net.count_params() + max(a + b for a, b in zip(sizes, sizes[1:])),
            "training_bytes": 4 * net.count_params() + 50 * sum(sizes)}


def check_geron(art):
    """The five Géron variables from the answer cell run alone vs the Keras-derived reference."""
    source, setup = _program(art, "geron")
    results = tasks.run_alone(source, setup=setup, calls=[[f"={n}", [], {}] for n in GERON_NAMES], timeout=120)
    expected = geron_reference()
    for name, result in zip(GERON_NAMES, results):
        got = _value(result)
        want = expected[name]
        if (list(got) if isinstance(got, tuple) else got) != want:
            raise AssertionError(f"{name}: yours {got!r}, expected {want!r}")


INPUTS = {task: (lambda task=task: _json_input(task)) for task in RANDOM}
CHECKS = {grade_id: (lambda art, task=task: check_function(art, task)) for task, (grade_id, _, _) in RANDOM.items()}
CHECKS.update({"test_shapes": check_shapes, "test_geron": check_geron})
