"""Exercise 8 (Grad-CAM and FGSM): its plausible wrong answers fail their trusted checks, the author's answers pass,
and a submission of the author's solution earns every point through the real grading harness.

Oracles: the trusted checks' own references (autograder/checks/ch08_inside.py: Grad-CAM by Selvaraju et al.'s
definition with TensorFlow's gradient tape, the held-out Fashion-MNIST images of autograder/data classified by the
grader's copy of the model), the band of autograder/calibration.json, and nbgrader's max_score for the points.
Wrong answers: Grad-CAM from the gradient of the loss instead of the class score; FGSM with a sign error (a step down
the loss); a Grad-CAM that calls a library (cnnbook) instead of computing the map.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from coursetools.release import solution_answers
from test_autograder_wrong_answers import graded, run_kernel, source, submitted

REPO = Path(__file__).resolve().parent.parent
from autograder import trusted  # noqa: E402

ASSIGNMENT = "ch08_inside"
ANSWERS = solution_answers(source(ASSIGNMENT))
LOSS_SCORE = ("score = keras.losses.sparse_categorical_crossentropy(np.array([class_index]), scores, "
              "from_logits=True)[0]")
#: The issue's wrong Grad-CAM: the gradient of the loss of the class, not of its score.
GRAD_CAM_LOSS = ANSWERS["grad_cam"].replace("score = scores[0, class_index]", LOSS_SCORE)
GRAD_CAM_LIBRARY = ("def grad_cam(model, image, layer_name, class_index=None):\n"
                    "    from cnnbook import inside\n"
                    "    return inside.grad_cam(model, image, layer_name, class_index)\n")


def module():
    return trusted.load_checks(ASSIGNMENT)


def verdicts(nb: dict, folder: Path, gids=("test_grad_cam", "test_fgsm", "test_fgsm_band")) -> dict:
    """Each check's (status, message, flags), with one Artifacts for the submission as the grader makes it."""
    checks = module()
    art = trusted.Artifacts(folder, ASSIGNMENT, "sample", checks.INPUTS)
    art.notebook = nb
    out = {}
    for gid in gids:
        art.flags = []
        status, _, message = trusted.run_check(checks.CHECKS[gid], art)
        out[gid] = (status, message, list(art.flags))
    return out


def test_the_wrong_grad_cam_really_differs_on_the_graders_cases():
    # The grader's cases are chosen so that the loss's gradient gives another map: the classes it asks include ones
    # the model does not predict. Oracle: reference_cam, and the loss-gradient map computed here beside it.
    import keras
    import tensorflow as tf

    checks = module()
    folder = checks.trusted_setup("sample", None)
    cases = checks.cam_cases(folder)
    differ = 0
    for name, image, layer, cls in cases:
        model = trusted.load_model(folder / name)
        want = checks.reference_cam(model, image, layer, cls)
        assert want.max() == pytest.approx(1.0), (name, layer, cls)   # no case is a map of zeros
        inner = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])
        with tf.GradientTape() as tape:
            maps, scores = inner(image[None])
            c = int(tf.argmax(scores[0])) if cls is None else cls
            loss = keras.losses.sparse_categorical_crossentropy(np.array([c]), scores, from_logits=True)[0]
        cam = tf.nn.relu(tf.reduce_sum(maps[0] * tf.reduce_mean(tape.gradient(loss, maps)[0], axis=(0, 1)), -1))
        cam = cam.numpy() / cam.numpy().max() if cam.numpy().max() > 0 else cam.numpy()
        differ += not np.allclose(cam, want, atol=checks.CAM_ATOL)
    assert differ >= len(cases) - 1, f"the loss-gradient map matches the reference on {len(cases) - differ} cases"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The author's notebook run as the grader's kernel would run it, then scored by the trusted checks."""
    nb, folder = graded(ASSIGNMENT, tmp_path_factory.mktemp("ch08-ref"))
    return verdicts(nb, folder)


@pytest.mark.slow
def test_the_reference_passes_every_check_with_no_flag(reference):
    for gid, (status, message, flags) in reference.items():
        assert status == "pass" and flags == [], (gid, message, flags)


@pytest.mark.slow
def test_grad_cam_from_the_gradient_of_the_loss_fails_and_says_why(tmp_path):
    nb, folder = graded(ASSIGNMENT, tmp_path, {"grad_cam": GRAD_CAM_LOSS}, run=False)
    status, message, _ = verdicts(nb, folder, ("test_grad_cam",))["test_grad_cam"]
    assert status == "fail" and "class's score" in message and "not the loss" in message, message


def test_the_visible_test_catches_the_loss_gradient_too(tmp_path):
    # The student's own feedback, without the grader: the visible test cell, run on the wrong answer, fails with a
    # message naming the fix. Oracle: the hand-computed maps of the probe in the test cell.
    nb = submitted(ASSIGNMENT, {"grad_cam": GRAD_CAM_LOSS})
    errors = run_kernel(nb, tmp_path / "artifacts", skip=("fgsm", "test_fgsm", "test_fgsm_band"), inputs=module())
    assert "test_grad_cam" in errors and "not of the loss" in errors["test_grad_cam"], errors


@pytest.mark.slow
def test_fgsm_with_a_sign_error_fails_both_cells(tmp_path):
    nb, folder = graded(ASSIGNMENT, tmp_path, {"fgsm": module().sign_error_answer()}, run=False)
    got = verdicts(nb, folder, ("test_fgsm", "test_fgsm_band"))
    assert got["test_fgsm"][0] == "fail" and "Step *up* the loss" in got["test_fgsm"][1], got
    assert got["test_fgsm_band"][0] == "below", got


def test_a_grad_cam_from_a_library_scores_0_with_the_import_named(tmp_path):
    nb, folder = graded(ASSIGNMENT, tmp_path, {"grad_cam": GRAD_CAM_LIBRARY}, run=False)
    checks = module()
    art = trusted.Artifacts(folder, ASSIGNMENT, "sample", checks.INPUTS)
    art.notebook = nb
    from autograder.answer_rules import tasks

    with pytest.raises(AssertionError, match="imports from `cnnbook`"):
        tasks.enforce(art, "grad_cam", checks.RULE)


def test_the_notebook_states_the_graders_budget_and_band():
    # Oracle: EPS of the check module and the band of autograder/calibration.json (students on Colab see only the
    # notebook).
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads(source(ASSIGNMENT).read_text())["cells"]}
    assert float(re.search(r"^EPS = ([0-9.]+)", cells["setup"], re.M).group(1)) == module().EPS
    shown = re.search(r"sample=\(([^)]*)\)", cells["setup"]).group(1)
    assert tuple(float(v) for v in shown.split(",") if v.strip()) == trusted.thresholds(ASSIGNMENT, "fgsm", "sample")


def test_the_real_workflow_grades_this_exercise_with_the_others():
    # tests/test_autograder_chapters.py grades every exercise's solution and untouched notebook through the real
    # workflow (sandboxed kernels, nbgrader autograde, the trusted step); grading this one again here cost 111 s.
    from test_autograder_chapters import ASSIGNMENTS, points

    assert ASSIGNMENT in ASSIGNMENTS and points(source(ASSIGNMENT)) == 6
