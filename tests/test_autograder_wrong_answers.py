"""Plausible wrong answers of chapters 1, 2, 3, 5, 6, 7 and 9, each kept as a submission that its trusted check must fail
(and the author's answer must pass), scored by the checks in autograder/checks/ exactly as the grader runs them.

How a submission is simulated: the solution notebook's code cells run in this process in order, hidden regions
included (as the grader's kernel runs them), with some answer cells replaced by the wrong answer; each cell may fail,
as in nbgrader. The artifacts they write go to a temporary folder; then the trusted check of one test cell reads
them and the submitted notebook, as `autograder/trusted.py` does. Oracle: each check's own references (TensorFlow,
Keras's counts, cnnbook.counting, held-out data) — see each check module's docstring.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from coursetools.release import solution_answers

REPO = Path(__file__).resolve().parent.parent
from autograder import trusted  # noqa: E402


def source(assignment: str) -> Path:
    return REPO / "solutions" / assignment / f"{assignment}_exercises.ipynb"


def submitted(assignment: str, replace: dict[str, str]) -> dict:
    """The solution notebook with answer cells replaced, as the student would hand it in."""
    nb = json.loads(source(assignment).read_text())
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in replace:
            cell["source"] = replace[gid]
        elif isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
    return nb


def run_kernel(nb: dict, folder: Path, skip=(), inputs: dict | None = None) -> dict:
    """Run the notebook's code cells here, each allowed to fail; artifacts go to ``folder``; return the errors."""
    folder.mkdir(parents=True, exist_ok=True)
    errors = {}
    env = {"CNNBOOK_ARTIFACTS": str(folder), "CNNBOOK_INPUTS": str(folder / "inputs")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    if inputs:
        trusted.write_inputs(inputs, folder / "inputs")
    namespace: dict = {"__name__": "__main__"}
    try:
        for cell in nb["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if cell["cell_type"] != "code" or gid in skip or "colab-setup" in cell["metadata"].get("tags", []):
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell["source"], f"<{gid}>", "exec"), namespace)
            except BaseException as exc:  # a failing cell, as in nbgrader
                errors[gid] = f"{type(exc).__name__}: {exc}"
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return errors


def verdict(assignment: str, grade_id: str, nb: dict, folder: Path) -> tuple[str, str]:
    """The trusted check's (status, message) for one test cell."""
    module = trusted.load_checks(assignment)
    art = trusted.Artifacts(folder, assignment, "sample", getattr(module, "INPUTS", {}))
    art.notebook = nb
    status, _, message = trusted.run_check(module.CHECKS[grade_id], art)
    return status, message


def graded(assignment, tmp_path, replace=None, skip=(), run=True):
    nb = submitted(assignment, replace or {})
    folder = tmp_path / "artifacts"
    if run:
        run_kernel(nb, folder, skip, trusted.load_checks(assignment))
    return nb, folder


# ------------------------------------------------------------------------------------- chapter 1: conv2d

CONV_TF = '''def conv2d(x, w, b=None, stride=1, padding="valid"):
    out = tf.nn.conv2d(x[None], w, strides=stride, padding=padding.upper()).numpy()[0]
    return out if b is None else out + b
'''
CONV_TF_ALIAS = CONV_TF.replace("def conv2d", "import tensorflow as numpy_helpers\ndef conv2d").replace(
    "tf.nn", "numpy_helpers.nn")
CONV_REFERENCE = "from cnnbook.grading import conv2d_outputs\nimport scipy.signal\ndef conv2d(x, w, b=None, " \
                 "stride=1, padding='valid'):\n    return scipy.signal.correlate(x, w[..., 0], mode='valid')\n"
CONV_RUNTIME_NAME = '''def conv2d(x, w, b=None, stride=1, padding="valid"):
    module = globals()["t" + "f"]
    return module.nn.conv2d(x[None], w, strides=stride, padding=padding.upper()).numpy()[0]
'''


@pytest.mark.slow
@pytest.mark.parametrize("wrong, phrase", [
    (CONV_TF, "uses `tf`"), (CONV_TF_ALIAS, "imports `tensorflow`"), (CONV_REFERENCE, "imports from `cnnbook"),
    (CONV_RUNTIME_NAME, "uses `globals`"),
])
def test_ch01_conv2d_that_calls_tensorflow_or_a_reference_scores_0_with_the_call_named(wrong, phrase, tmp_path):
    nb, folder = graded("ch01_convolution", tmp_path, {"conv2d": wrong}, run=False)
    for gid in ("test_valid_single_channel", "test_channels_and_bias"):
        status, message = verdict("ch01_convolution", gid, nb, folder)
        assert status == "fail" and phrase in message and "scores 0" in message, message


@pytest.mark.slow
def test_ch01_right_answer_passes_and_a_cell_rebinding_it_elsewhere_is_only_flagged(tmp_path):
    # issue 32: the score is the re-run of the answer cell alone, which no other cell can reach; another cell that
    # binds conv2d again changes only the kernel, and is a flag for the instructor
    nb, folder = graded("ch01_convolution", tmp_path)
    assert verdict("ch01_convolution", "test_channels_and_bias", nb, folder) == ("pass", "")
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": "conv2d = lambda *a, **k: 0\n"})
    module = trusted.load_checks("ch01_convolution")
    art = trusted.Artifacts(folder, "ch01_convolution", "sample", getattr(module, "INPUTS", {}))
    art.notebook = nb
    assert trusted.run_check(module.CHECKS["test_same_padding"], art)[0] == "pass"
    assert any("binds `conv2d` again" in flag for flag in art.flags), art.flags


@pytest.mark.slow
def test_ch01_a_helper_of_the_students_own_runs_with_the_answer_under_the_same_rule(tmp_path):
    helper = "import itertools\n\ndef flip(w):\n    return w[::-1, ::-1]\n"
    answer = ("def conv2d(x, w, b=None, stride=1, padding='valid'):\n"
              "    return ORIGINAL(x, flip(flip(w)), b, stride, padding)\n")
    perfect = solution_answers(source("ch01_convolution"))["conv2d"].replace("def conv2d(", "def ORIGINAL(")
    nb = submitted("ch01_convolution", {"conv2d": answer})
    at = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == "conv2d")
    nb["cells"][at:at] = [{"cell_type": "code", "metadata": {}, "source": helper},
                          {"cell_type": "code", "metadata": {}, "source": perfect}]
    folder = tmp_path / "artifacts"
    assert verdict("ch01_convolution", "test_same_padding", nb, folder) == ("pass", "")
    # the same helper reaching TensorFlow breaks the rule: it is part of the program the grader runs
    nb["cells"][at]["source"] = helper + "import tensorflow as tf\n"
    status, message = verdict("ch01_convolution", "test_same_padding", nb, folder)
    assert status == "fail" and "imports `tensorflow`" in message, message


# ------------------------------------------------------------------------------------- chapter 2: arithmetic


@pytest.mark.slow
def test_ch02_answers_from_cnnbook_arithmetic_score_0(tmp_path):
    wrong = {"same_padding": "from cnnbook import arithmetic\ndef same_padding(i, k, s=1):\n"
                             "    return tuple(arithmetic.same_padding(i, k, s))\n",
             "shapes": "shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]\n"}
    nb, folder = graded("ch02_arithmetic", tmp_path, wrong, run=False)
    status, message = verdict("ch02_arithmetic", "test_same_padding", nb, folder)
    assert status == "fail" and "cnnbook" in message
    status, message = verdict("ch02_arithmetic", "test_shapes", nb, folder)
    assert status == "fail" and "uses `model`" in message
    good, _ = graded("ch02_arithmetic", tmp_path, run=False)
    assert verdict("ch02_arithmetic", "test_receptive_field", good, folder)[0] == "pass"


# ------------------------------------------------------------------------------------- chapter 3: counting

COUNT_WITH_KERAS = '''def count_params(model):
    return model.count_params(), sum(math.prod(v.shape) for v in model.trainable_weights)
'''
COUNT_RUNTIME = '''def count_params(model):
    method = "count_" + "params"
    return getattr(model, method)(), 0
'''
NO_SOFTMAX = '''def budget_model():
    return keras.Sequential([
        keras.Input((32, 32, 3)), layers.Rescaling(1 / 255),
        layers.Conv2D(16, 3, strides=2, padding="same"), layers.ReLU(),
        layers.SeparableConv2D(32, 3, strides=2, padding="same"), layers.ReLU(),
        layers.SeparableConv2D(64, 3, strides=2, padding="same"), layers.ReLU(),
        layers.SeparableConv2D(64, 3, padding="same"), layers.ReLU(),
        layers.GlobalAveragePooling2D(), layers.Dense(10),
    ])
'''
NEVER_TRAINED = ("budget_trained = budget_model()\n"
                 "budget_trained.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n")


@pytest.mark.slow
@pytest.mark.parametrize("wrong, phrase", [(COUNT_WITH_KERAS, "`.count_params`"),
                                           (COUNT_WITH_KERAS.replace("model.count_params()", "1"), "trainable_weights"),
                                           (COUNT_RUNTIME, "getattr")])
def test_ch03_count_params_from_keras_scores_0(wrong, phrase, tmp_path):
    nb, folder = graded("ch03_counting", tmp_path, {"count_params": wrong}, run=False)
    status, message = verdict("ch03_counting", "test_count_params", nb, folder)
    assert status == "fail" and phrase in message, message


@pytest.fixture(scope="module")
def ch03_runs(tmp_path_factory):
    """The author's chapter 3 notebook, and one whose budget model is never trained and has no softmax."""
    runs = {}
    for label, replace in (("right", {}), ("wrong", {"train_budget": NEVER_TRAINED, "budget_model": NO_SOFTMAX})):
        runs[label] = graded("ch03_counting", tmp_path_factory.mktemp(label), replace,
                             skip=("test_count_params", "test_count_macs"))
    return runs


@pytest.mark.slow
def test_ch03_budget_model_untrained_or_without_softmax_fails_and_the_trained_one_passes(ch03_runs):
    assert verdict("ch03_counting", "test_budget", *ch03_runs["right"]) == ("pass", "")
    assert verdict("ch03_counting", "test_budget_trained", *ch03_runs["right"]) == ("pass", "")
    status, message = verdict("ch03_counting", "test_budget", *ch03_runs["wrong"])
    assert status == "fail" and "not probabilities" in message
    status, message = verdict("ch03_counting", "test_budget_trained", *ch03_runs["wrong"])
    assert status == "fail" and "not probabilities" in message


@pytest.mark.slow
def test_ch03_softmax_model_never_trained_misses_the_floor(tmp_path):
    nb, folder = graded("ch03_counting", tmp_path, {"train_budget": NEVER_TRAINED},
                        skip=("test_count_params", "test_count_macs", "test_formulas", "test_budget"))
    status, message = verdict("ch03_counting", "test_budget_trained", nb, folder)
    # under the floor: "below" (a measured quality the kernel cannot foresee, never flagged as a disagreement)
    assert status == "below" and "held-out shapes" in message, message


# ------------------------------------------------------------------------------------- chapter 5: blocks

ANSWERS5 = solution_answers(source("ch05_architectures"))
NO_RELU = ANSWERS5["inception"].replace(', activation="relu"', "")
AVG_POOL = ANSWERS5["inception"].replace("layers.MaxPooling2D(3", "layers.AveragePooling2D(3")
NO_FINAL_RELU = ANSWERS5["resnet"].replace('return layers.Activation("relu")(layers.Add()([y, shortcut]))',
                                           "return layers.Add()([y, shortcut])", 1)
ONE_CONV = ANSWERS5["resnet"].replace(
    '    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)\n    y = layers.BatchNormalization()(y)\n',
    "", 1)
RESNET18 = ANSWERS5["resnet"].replace("(3, 4, 6, 3)", "(2, 2, 2, 2)")
SKIP5 = ("bands", "best_model", "report", "test_quality_band1", "test_quality_band2", "test_quality_band3")


@pytest.fixture(scope="module")
def blocks():
    """The trusted checks of ch05's blocks (task 4's are the grading helper's pilot)."""
    from autograder.checks.parts import ch05_blocks

    return ch05_blocks


def block_verdict(blocks, grade_id, folder):
    art = trusted.Artifacts(folder, "ch05_architectures", "sample")
    return trusted.run_check(blocks.CHECKS[grade_id], art)


@pytest.mark.slow
@pytest.mark.parametrize("replace, grade_id, phrase", [
    ({}, None, None),
    ({"inception": NO_RELU}, "test_inception", "no ReLU"),
    ({"inception": AVG_POOL}, "test_inception", "average pooling"),
    ({"resnet": NO_FINAL_RELU}, "test_residual_unit", "negative values"),
    ({"resnet": ONE_CONV}, "test_residual_unit", "1 3x3 convolution"),
    ({"resnet": RESNET18}, "test_resnet34", "21.8 M"),
])
def test_ch05_plausible_wrong_blocks_fail_their_checks(blocks, replace, grade_id, phrase, tmp_path):
    nb, folder = graded("ch05_architectures", tmp_path, replace, skip=SKIP5, run=False)
    run_kernel(nb, folder, SKIP5)
    for gid in blocks.CHECKS:
        status, _, message = block_verdict(blocks, gid, folder)
        if gid == grade_id:
            assert status == "fail" and phrase in message, message
        elif grade_id is None or gid not in ("test_resnet34", "test_se"):
            assert status == "pass", (gid, message)


# ------------------------------------------------------------------------------------- chapter 6: augmentation

LAMBDA_BLOCK = '''def augmentation_block():
    return keras.Sequential([keras.layers.Lambda(lambda x: tf.image.random_flip_left_right(x))])


def with_augmentation(base, block):
    inputs = keras.Input((28, 28, 1))
    return keras.Model(inputs, base(block(inputs)))
'''
NO_AUGMENTATION = ("keras.utils.set_random_seed(SEED)\naugmented_model = small_cnn((28, 28, 1), 10)\n"
                   "augmented_model.fit(mnist.x_train[:N_TRAIN, ..., None], mnist.y_train[:N_TRAIN], "
                   "epochs=EPOCHS, batch_size=32, verbose=0)\n")
SPLIT_SHUFFLE = '''def make_dataset(x, y, augment, batch_size):
    images = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x))
    labels = tf.data.Dataset.from_tensor_slices(y).shuffle(len(y))
    ds = tf.data.Dataset.zip((images, labels)).batch(batch_size)
    return ds.map(lambda i, l: (augment(i, training=True), l)).prefetch(tf.data.AUTOTUNE)
'''


@pytest.mark.slow
@pytest.mark.parametrize("replace, failing", [
    ({}, set()),
    ({"augmentation_block": LAMBDA_BLOCK, "make_dataset": SPLIT_SHUFFLE,
      "digit_ranges": "DIGIT_RANGES = {'rotation': 10, 'flip': 'horizontal'}\n",
      "train_augmented": NO_AUGMENTATION},
     {"test_train_only", "test_pipeline", "test_digit_ranges", "test_beats_baseline"}),
])
def test_ch06_wrong_answers_fail_and_the_augmented_model_beats_the_baseline(replace, failing, tmp_path):
    nb, folder = graded("ch06_augmentation", tmp_path, replace)
    for gid in trusted.load_checks("ch06_augmentation").CHECKS:
        status, message = verdict("ch06_augmentation", gid, nb, folder)
        assert (status in ("fail", "below")) == (gid in failing), (gid, status, message)


# ------------------------------------------------------------------------------------- chapter 7: fine-tuning


def fine_tune_on(x: str, y: str) -> str:
    """The author's fine-tuning cell, trained on ``x, y`` instead of ``x_few, y_few``: the issue's wrong answer."""
    answer = solution_answers(source("ch07_transfer"))["fine_tune"]
    assert answer.count("model.fit(x_few, y_few,") == 2, answer
    return answer.replace("model.fit(x_few, y_few,", f"model.fit({x}, {y},")


@pytest.fixture(scope="module")
def ch07_cache(tmp_path_factory):
    """The grader's folder shared within a batch: the setup cell's base and arrays are made once for these tests."""
    return tmp_path_factory.mktemp("ch07-cache")


def ch07_verdict(nb, folder, cache) -> tuple[str, str, list]:
    module = trusted.load_checks("ch07_transfer")
    art = trusted.Artifacts(folder, "ch07_transfer", "sample", {})
    art.notebook, art.cache = nb, cache
    status, _, message = trusted.run_check(module.CHECKS["test_fine_tune"], art)
    return status, message, art.flags


@pytest.mark.slow
@pytest.mark.parametrize("x, y, phrase", [
    # issue 32's wrong answer: x_few plus 150 more labelled digits of x_new lands under the ceiling, so before the
    # re-run it earned every point; it reads x_new, which the re-run's namespace does not hold: 0 whatever it scores
    ("np.concatenate([x_few, x_new[:150]])", "np.concatenate([y_few, y_new[:150]])", "uses `x_new`"),
    ("x_new", "y_new", "uses `x_new`"),
    # x_val is in the namespace (to watch); trained on, it lifts the re-run's model above the ceiling
    ("np.concatenate([x_few, x_val])", "np.concatenate([y_few, y_val])", "trained on more labels")])
def test_ch07_a_model_trained_on_more_labels_than_x_few_fails(x, y, phrase, tmp_path, ch07_cache):
    nb, folder = graded("ch07_transfer", tmp_path, {"fine_tune": fine_tune_on(x, y)}, run=phrase != "uses `x_new`")
    status, message, _ = ch07_verdict(nb, folder, ch07_cache)
    assert status == "fail" and phrase in message, (status, message)


@pytest.mark.slow
def test_ch07_the_grader_grades_its_own_rerun_and_flags_a_kernel_trained_on_more(tmp_path, ch07_cache):
    # The kernel trains the honest cells, then an extra cell of the student's trains the same model on all of x_new
    # before the hidden test saves it. The grader's re-run of the three answer cells is the honest model: it passes,
    # and the kernel's model (above the ceiling) is a flag for the instructor, not a score.
    nb = submitted("ch07_transfer", {})
    at = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == "fine_tune")
    nb["cells"].insert(at + 1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                "source": "model.fit(x_new, y_new, epochs=3, batch_size=64, verbose=0)\n"})
    folder = tmp_path / "artifacts"
    module = trusted.load_checks("ch07_transfer")
    early = module.before_kernel(nb, ch07_cache)   # the re-run starts before the kernel, as the grader starts it
    run_kernel(nb, folder, (), module)
    early.join()
    # the check finds that re-run's model and trains nothing itself
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "start_rerun", lambda *a, **k: pytest.fail("the check ran the cells again"))
        status, message, flags = ch07_verdict(nb, folder, ch07_cache)
    assert status == "pass", message
    assert len(flags) == 1 and "may have trained on more than x_few" in flags[0], flags
    assert not any((ch07_cache / "ch07-rerun").iterdir())   # and leaves nothing behind in the course's cache


def test_ch07_the_check_before_the_kernel_imports_no_tensorflow_in_the_graders_process():
    # Oracle: sys.modules of a fresh interpreter after the pre-check, and the rule's own words for a cell reading
    # x_new (the names the exercise forbids, read in answer_rules.violations' messages)
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from autograder.checks import ch07_transfer as c\n"
        "from coursetools.release import solution_answers\n"
        f"answers = solution_answers(__import__('pathlib').Path({str(source('ch07_transfer'))!r}))\n"
        "honest = [c._quick_violations(answers[g]) for g in c.RERUN_CELLS]\n"
        "wrong = c._quick_violations(answers['fine_tune'].replace('model.fit(x_few, y_few,', "
        "'model.fit(x_new, y_new,'))\n"
        "print(json.dumps([honest, wrong, 'keras' in sys.modules, 'tensorflow' in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    honest, wrong, keras_in, tf_in = json.loads(out.stdout.strip().splitlines()[-1])
    assert honest == [[], [], []] and not keras_in and not tf_in, (honest, keras_in, tf_in)
    assert wrong and all("uses `x_new`" in w or "uses `y_new`" in w for w in wrong), wrong


def test_ch07_identical_answer_cells_share_one_rerun_folder_until_their_last_grading(tmp_path):
    # Oracle: the folder's presence after each grading's +1 (before the kernel) and -1 (after its check)
    module = trusted.load_checks("ch07_transfer")
    folder = tmp_path / "ch07-rerun" / "key"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"x")
    module._users(folder, +1)
    module._users(folder, +1)   # a second submission with the same cells
    module._users(folder, -1)
    assert (folder / "model.keras").exists()   # the second grading still needs it
    module._users(folder, -1)
    assert not folder.exists() and not any((tmp_path / "ch07-rerun").iterdir())
    folder.mkdir()
    module._users(folder, -1)   # a check with no re-run started before the kernel: removed at once
    assert not folder.exists()


@pytest.mark.skipif(not __import__("autograder.sandbox").sandbox.namespaces_available(),
                    reason="warm re-runs need the sandbox's namespaces")
def test_ch07_a_warm_interpreter_gone_just_before_a_job_is_started_again_not_replaced_by_a_cold_one(tmp_path):
    # Oracle: the value the job computes, and the launcher's process id (a fresh warm interpreter, not None)
    import signal
    import time

    from autograder.answer_rules import rerun

    warm = rerun.Warm(("numpy",), 1000, 120, 16, ())   # slots of its own (no other test's), a loaded machine's start
    out = warm.run("value = 1", [], [["=value", [], {}]], None, None, None, ())
    assert out["results"][0]["value"] == 1
    old = warm._pid(0)
    os.kill(old, signal.SIGKILL)   # it exits (as after WARM_IDLE_S idle), its socket file left behind
    for _ in range(100):
        if warm._pid(0) is None:
            break
        time.sleep(0.05)
    assert (warm.base / "0" / "sock").exists()
    seen = []
    real = rerun.Warm._pid
    with pytest.MonkeyPatch.context() as patch:   # the grader's check ran just before it exited: it looked alive
        patch.setattr(rerun.Warm, "_pid", lambda self, i: old if not seen.append(i) and len(seen) == 1
                      else real(self, i))
        out = warm.run("value = 2", [], [["=value", [], {}]], None, None, None, ())
    assert out is not None and out["results"][0]["value"] == 2
    assert warm._pid(0) not in (None, old)
    warm._kill(0)


#: Task 4's plausible wrong answers. The base left trainable and the whole model fit on the images: the ImageNet
#: weights (and BatchNormalization's statistics) move, so it is no longer an ImageNet network under a new head.
LITE0_UNFROZEN = """\
keras.utils.set_random_seed(SEED)
lite0_base = pretrained.efficientnet_lite0((SIZE, SIZE, 3), include_top=False, pooling="avg")
images = keras.Input((28, 28, 1))
x = keras.layers.Resizing(SIZE, SIZE)(images)
x = pretrained.preprocessing_layer()(keras.layers.Concatenate()([x, x, x]))
lite0_model = keras.Model(images, keras.layers.Dense(10, activation="softmax")(lite0_base(x)))
chosen = transfer.few_per_class(y_fashion, 20, seed=SEED)
lite0_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
lite0_model.fit(x_fashion[chosen][..., None], y_fashion[chosen], epochs=1, batch_size=50, verbose=0)
"""
#: The same network from random weights (weights=None), its head trained on its features: no ImageNet in it.
LITE0_RANDOM = solution_answers(source("ch07_transfer"))["lite0_model"].replace(
    'include_top=False, pooling="avg")', 'include_top=False, pooling="avg", weights=None)')
#: Task 4's cells the wrong answers need (the digit tasks' cells are skipped: they cost a minute of CPU).
LITE0_ONLY = ("frozen_with_head", "test_frozen_with_head", "unfreeze_top", "test_unfreeze_top", "fine_tune",
              "test_fine_tune")


@pytest.mark.slow
@pytest.mark.parametrize("answer, phrase", [
    (None, ""), (LITE0_UNFROZEN, "are not ImageNet's any more"), (LITE0_RANDOM, "are not ImageNet's any more")])
def test_ch07_an_efficientnet_whose_imagenet_weights_moved_or_never_were_fails(answer, phrase, tmp_path):
    # the author's answer passes its band; the same network trained whole, or built without ImageNet's weights, fails
    assert LITE0_RANDOM.count("weights=None") == 1
    nb, folder = graded("ch07_transfer", tmp_path, {"lite0_model": answer} if answer else {}, skip=LITE0_ONLY)
    status, message = verdict("ch07_transfer", "test_lite0", nb, folder)
    assert (status, message) == ("pass", "") if answer is None else (status == "fail" and phrase in message), message


# ------------------------------------------------------------------------------------- calibrated floors


@pytest.mark.parametrize("assignment, task, cell_id, name", [
    ("ch03_counting", "budget_trained", "shapes_data", "FLOOR"),
    ("ch06_augmentation", "augmented_model", "train_data", "LEVEL"),
])
def test_the_notebooks_show_the_calibrated_floor(assignment, task, cell_id, name):
    # Oracle: autograder/calibration.json, written by autograder/calibrate.py (students on Colab see the notebook).
    import re

    nb = json.loads(source(assignment).read_text())
    text = next("".join(c["source"]) for c in nb["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == cell_id)
    shown = float(re.search(rf"^{name} = ([0-9.]+)", text, re.M).group(1))
    assert (shown,) == trusted.thresholds(assignment, task, "sample")


# ------------------------------------------------------------------------------------- chapter 9: the U-Net

def unet_answer(**edits) -> str:
    """The solution's U-Net cell with some lines changed (each key must occur once)."""
    answer = solution_answers(source("ch09_detection"))["unet"]
    for old, new in edits.items():
        assert answer.count(old) == 1, (old, answer)
        answer = answer.replace(old, new)
    return answer


@pytest.mark.slow
@pytest.mark.parametrize("wrong, want, phrase", [
    # no skip connections: chapter 9's FCN head. Its mean IoU can reach the bands, so the check reads the layers,
    # before any metric: the verdict does not depend on the training, which is cut to one epoch to keep the suite fast
    ({"layers.Concatenate()([x, skip])": "x", "epochs=6,": "epochs=1,"}, "fail", "skip connections"),
    # a dodge of a layer count: the Concatenate layers are there, but each joins a map with itself (no skip)
    ({"layers.Concatenate()([x, skip])": "layers.Concatenate()([x, x])", "epochs=6,": "epochs=1,"}, "fail",
     "0 skip connections"),
    # the hint ignored: Keras's default Adam and no pixel weights. Background pixels dominate the loss, and six epochs
    # leave the mean IoU near the all-background answer's (no pixel weights alone, at 3e-3: 0.345 for seed 0, in band)
    ({"sample_weight=np.where(seg_train.masks > 0, 5.0, 1.0),\n": "",
      "keras.optimizers.Adam(3e-3)": '"adam"'}, "below", "mean IoU"),
])
def test_ch08_unet_without_skips_or_trained_without_the_hint_fails_the_top_band(wrong, want, phrase, tmp_path):
    skip = ("box_model", "box_report", "test_box_band1", "test_box_band2")
    nb, folder = graded("ch09_detection", tmp_path, {"unet": unet_answer(**wrong)}, skip=skip)
    status, message = verdict("ch09_detection", "test_unet_band2", nb, folder)
    assert status == want and phrase in message, (status, message)
