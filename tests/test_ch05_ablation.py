"""Chapter 5's stored depth ablation (cnnbook/data/ch05_ablation.json) is what coursetools/ch05_ablation.py computes.

The lesson plots numbers that this script computed once (the full run costs more than the lesson's budget). Oracles:
the script itself, re-run here on its reduced configuration (seeded, TensorFlow op determinism, a few CPU-seconds) and
compared with the reduced numbers the same script stored beside the full ones; Keras's ``count_params`` of the
networks ``cnnbook.models.deep_cnn`` builds for the full configuration; and the issue's requirements on the full
run (four variants, three or more depths, the deepest with at least 20 weight layers, three or more seeds, shallow
networks that reach 98 % on MNIST or 88 % on Fashion-MNIST).
"""

import json

import numpy as np
import pytest

from coursetools import ch05_ablation as ablation

STORED = json.loads(ablation.OUT.read_text())


def test_full_run_is_complete_and_meets_the_issue():
    config, rows = STORED["config"], STORED["rows"]
    assert config == ablation.FULL, "the stored run is not the script's FULL configuration: re-run the script"
    cells = {(r["variant"], r["depth"], r["seed"]) for r in rows}
    assert cells == {(v, d, s) for v in ablation.VARIANTS for d in config["depths"] for s in config["seeds"]}
    assert len(rows) == len(cells)
    assert len(config["depths"]) >= 3 and len(config["seeds"]) >= 3 and max(config["depths"]) + 1 >= 20
    # the shallow networks do the task well: issue 35 asks for 98 % on MNIST or 88 % on Fashion-MNIST (mean of the seeds)
    target = {"mnist": 0.98, "fashion_mnist": 0.88}[config["data"]]
    shallow = min(config["depths"])
    for variant in ablation.VARIANTS:
        accuracy = np.mean([r["val_accuracy"] for r in rows if r["variant"] == variant and r["depth"] == shallow])
        assert accuracy >= target, f"{variant} at depth {shallow}: {accuracy:.3f} on the validation images"
    for r in rows:
        assert len(r["epoch_loss"]) == config["epochs"] and 0 <= r["train_accuracy"] <= 1


def test_stored_parameter_counts_are_the_networks_of_the_script():
    from cnnbook import models

    config = STORED["config"]
    for r in STORED["rows"]:
        if r["seed"] != config["seeds"][0]:
            continue
        residual, batch_norm = ablation.VARIANTS[r["variant"]]
        net = models.deep_cnn(r["depth"], (28, 28, 1), width=config["width"], residual=residual,
                              batch_norm=batch_norm, stem_pool=config["stem_pool"], head=config["head"])
        assert r["parameters"] == net.count_params()


def test_reduced_run_repeats_the_stored_numbers():
    stored = STORED["reduced"]
    assert stored["config"] == ablation.REDUCED
    rows, _ = ablation.run(ablation.REDUCED, log=lambda *_: None)
    assert [(r["variant"], r["depth"], r["seed"]) for r in rows] == \
        [(r["variant"], r["depth"], r["seed"]) for r in stored["rows"]]
    for new, old in zip(rows, stored["rows"]):
        for key in ("train_loss", "val_loss"):
            assert new[key] == pytest.approx(old[key], rel=0.02, abs=0.01), (new["variant"], new["depth"], key)
        for key in ("train_accuracy", "val_accuracy"):
            assert new[key] == pytest.approx(old[key], abs=0.02), (new["variant"], new["depth"], key)
