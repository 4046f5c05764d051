"""The numbers chapter 4 teaches, read from the lesson's committed outputs and checked against independent oracles.

Oracles: the parameter count of each layer by formula (k·k·C_in·C_out for a bias-free convolution, 4·C for batch
normalisation, (n_in + 1)·n_out for a dense layer); ln 10 for the first loss of a ten-class network that gives every
class the same probability; SciPy's paired t-test (scipy.stats.ttest_rel) for whether a verdict over seeds may say
"beats"; the rule "a tenth of the rate of the lowest smoothed loss" applied to the glued rate; the printed learning
rates of ReduceLROnPlateau for the number of cuts the prose names.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest
from test_prose_numbers import glued_values

LESSON = Path(__file__).resolve().parent.parent / "book" / "ch04_training.ipynb"


@pytest.fixture(scope="module")
def nb():
    return json.loads(LESSON.read_text())


def _stdout(nb, marker: str) -> str:
    """The stdout of the one code cell whose source contains ``marker``."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(cells) == 1, f"{len(cells)} cells contain {marker!r}"
    return "".join("".join(o["text"]) for o in cells[0]["outputs"] if o.get("name") == "stdout")


def _prose(nb) -> str:
    """The lesson's markdown with every {glue:text} role replaced by its value (what the reader sees)."""
    values = glued_values(nb)
    text = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"\{glue:text\}`(\w+)`", lambda m: values[m.group(1)], text)


def test_parameter_list_has_every_row_and_each_row_matches_its_formula(nb):
    out = _stdout(nb, "rows = [layer for layer in model.layers")
    rows = dict(re.findall(r"^(\w+)\s+->.*?([\d,]+) parameters$", out, re.M))
    rows = {name: int(count.replace(",", "")) for name, count in rows.items()}
    expected = {"conv1": 3 * 3 * 1 * 32, "bn1": 4 * 32, "pool1": 0, "conv2": 3 * 3 * 32 * 64, "bn2": 4 * 64,
                "pool2": 0, "conv3": 3 * 3 * 64 * 128, "bn3": 4 * 128, "pool3": 0, "flatten": 0,
                "classes": (3 * 3 * 128 + 1) * 10}
    assert rows == expected
    total = int(re.search(r"total ([\d,]+) parameters", out).group(1).replace(",", ""))
    assert total == sum(expected.values()) == 104_874
    assert glued_values(nb)["main_params"] == "104,874"


def test_first_loss_of_the_zero_initialised_head_is_ln_10(nb):
    glued = glued_values(nb)
    assert glued["first_loss_zeros"] == glued["ln_classes"] == f"{math.log(10):.3f}"
    assert float(glued["first_loss_glorot"]) > math.log(10) + 0.5  # the problem the chapter fixes is visible


def test_the_range_tests_pick_is_the_rate_the_main_model_uses(nb):
    glued = glued_values(nb)
    assert float(glued["main_lr"]) == float(f"{float(glued['lr_lowest']) / 10:.0e}")
    source = "".join(next(c["source"] for c in nb["cells"] if "history = model.fit(x_main" in "".join(c["source"])))
    assert "CosineDecay(MAIN_LR" in source


def _check_verdict(sentence: str, a, b, higher_is_better: bool):
    from scipy.stats import ttest_rel

    differences = [x - y for x, y in zip(a, b)] if higher_is_better else [y - x for x, y in zip(a, b)]
    if len(set(differences)) == 1:  # no spread: any non-zero gap counts (cnnbook.compare's rule)
        beyond = differences[0] != 0
    else:
        beyond = ttest_rel(a, b).pvalue < 0.05
    assert sentence.startswith("no difference") != beyond, (sentence, a, b)


def test_bn_verdicts_agree_with_a_paired_t_test_on_the_printed_steps(nb):
    out = _stdout(nb, "bn_verdicts = [verdict(")
    glued = glued_values(nb)
    cap = int(glued["bn_steps_total"])
    steps = {}
    for rate, name, values in re.findall(r"^rate ([\d.]+), (.+?)\s*: steps to a loss of [\d.]+: (.+)$", out, re.M):
        steps[rate, name] = [cap if v == "never" else int(v) for v in values.split(", ")]
    assert len(steps) == 6
    for i, rate in enumerate(["0.01", "0.1"]):
        _check_verdict(glued[f"bn_verdict_{i}"], steps[rate, "BN before ReLU"], steps[rate, "no batch norm"], False)
        _check_verdict(glued[f"bn_place_verdict_{i}"], steps[rate, "BN before ReLU"], steps[rate, "BN after ReLU"],
                       False)


def test_head_verdicts_agree_with_a_paired_t_test(nb):
    # the seeds' accuracies are not printed one by one; the verdict's own mean and spread must match the printed means
    out = _stdout(nb, "verdict(head_acc[")
    means = {name.strip(): float(m) for name, m in re.findall(r"^(.+?): validation accuracy ([\d.]+) ±", out, re.M)}
    glued = glued_values(nb)
    gap = re.search(r"([\d.]+) ± ([\d.]+) points", glued["gap_verdict"])
    assert float(gap.group(1)) == pytest.approx(abs(means["GAP, Adam"] - means["flatten, Adam"]), abs=0.11)


def test_dead_units_and_plateau_cuts_are_worded_from_their_numbers(nb):
    prose = _prose(nb)
    assert "more than 0%" not in prose and "the red steps" not in prose
    fractions = [float(f) for f in re.findall(r"([\d.]+)% of its channels never fire", _stdout(nb, "dead_summary(dead)"))]
    dead = glued_values(nb)["dead_trained"]
    assert (dead == "no channel of any ReLU layer is dead") == (max(fractions) == 0)
    rates = _stdout(nb, "cuts = int(").split("learning rates used:")[1]
    cuts = len(ast.literal_eval(rates.strip())) - 1
    words = {0: "did not lower", 1: "once"}.get(cuts, f"{cuts} times")
    assert words in glued_values(nb)["cb_cuts"]


def test_keras_defaults_the_prose_names(nb):
    # oracle: Keras itself (also tests/test_keras_defaults.py); the prose must name the layer's 0.3 and the function's 0.2
    import inspect

    import keras

    prose = _prose(nb)
    layer = inspect.signature(keras.layers.LeakyReLU).parameters["negative_slope"].default
    function = inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default
    assert f"`keras.layers.LeakyReLU` defaults to a slope of {layer}" in prose
    assert f"`keras.activations.leaky_relu` to {function}" in " ".join(prose.split())
    assert "shared_axes" in prose
