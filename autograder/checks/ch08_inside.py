"""Trusted checks of chapter 8's exercises (autograder/PROTOCOL.md): Grad-CAM and an FGSM attack.

Both tasks are functions, and both are graded on what the grader chooses, never on what the kernel computed: the
grader runs the student's two answer cells again, alone, in one fresh sandboxed interpreter (autograder/answer_rules,
as chapters 1-3 and 7 do), whose namespace holds only NumPy, Keras and TensorFlow, under an allow-list of the names
and imports those cells may use (no ``cnnbook``: its lesson module has a Grad-CAM; no other library either), and calls

- ``grad_cam(model, image, layer_name, class_index)`` on the grader's cases: two models (the exercise's Fashion-MNIST
  CNN trained by the grader, and a functional colour model with fixed seeded weights that the student never saw),
  layers near the input and near the output, the top class and classes the model does not predict (where the
  gradient of the loss, a plausible wrong answer, gives another map than the gradient of the class score);
- ``fgsm(model, x, y, EPS)`` on ``ATTACKED`` held-out Fashion-MNIST images of autograder/data (never in a kernel).

Oracles, in the grader's process: its own Grad-CAM (``reference_cam``: Selvaraju et al. 2017's definition, TensorFlow's
gradient tape) compared map by map; for the attack, the grader's own copy of the model classifies the perturbed
images after the ε budget and the pixel range are checked, against a random ±ε perturbation of the same size and the
band autograder/calibrate.py derived from the reference solution (autograder/calibration.json).

The grader's models come from the exercise's own locked setup cell (the Fashion-MNIST CNN) and from ``PROBE_SOURCE``,
run once per course in the sandbox with one thread (``trusted_setup``; ``prepare`` makes them at release time).
The hidden test cells hand in the kernel's own model and its functions' outputs on public test images: they are only
compared with the grader's results on that model to flag a kernel whose function was not its answer cell.

Calibration (``TASKS``): calibrate.py trains the setup cell's model for each seed and thread count and runs the fgsm
cell (the reference, or the sign error as the weak answer); ``attack_metric`` then runs that cell again alone in the
sandbox against the model, exactly as grading does (the task sets ``metric_reads_answers``, so calibrate.py hands
the metric the cells it ran beside the model). Sample profile on 2026-12-06: flip rate 0.485 to
0.578 over 5 seeds at 1 and 2 threads, the sign error 0.000; band 0.474.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np

from autograder import answer_rules, trusted
from autograder.answer_rules import rerun, tasks

ASSIGNMENT = "ch08_inside"
TASK = "fgsm"
EPS = 0.1              # the attack's budget (the notebook's EPS; tests check they agree)
ATTACKED = 500         # held-out images attacked
CAM_ATOL = 0.01        # maps are normalised to a maximum of 1
BUDGET_ATOL = 1e-4     # float32 rounding of x + eps
SETUP_SECONDS, RERUN_SECONDS = 240, 120
REPO = Path(__file__).resolve().parents[2]
SOLUTION = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}_exercises.ipynb"

#: What the two answer cells may use: NumPy, Keras and TensorFlow (the gradient tape), nothing of cnnbook.
RULE = answer_rules.Rule(
    what="grad_cam and fgsm",
    forbidden=("your answer cells may use only np, keras, layers and tf (write any helper inside them): no library's "
               "Grad-CAM or attack, and nothing of cnnbook"),
    globals=frozenset({"np", "numpy", "keras", "layers", "tf", "tensorflow", "math"}),
    imports=frozenset({"numpy", "keras", "tensorflow", "math"}),
    packages=("numpy", "keras", "tensorflow", "math"),
    modules={"np": "numpy", "numpy": "numpy", "keras": "keras", "layers": "keras.layers", "tf": "tensorflow",
             "tensorflow": "tensorflow", "math": "math"},
    attrs=frozenset({"load_data", "get_file", "datasets"}))
ANSWERS = {"grad_cam": "test_grad_cam", "fgsm": "test_fgsm"}   # answer cell -> its test cell

#: The grader's second Grad-CAM model: colour 32x32 inputs, a strided convolution, a batch normalisation and a
#: global-average head over 6 classes, functional API; fixed seeded weights (nothing of it is trained).
PROBE_SOURCE = """\
keras.utils.set_random_seed(2026)
probe_in = keras.Input((32, 32, 3), name="picture")
h = layers.Conv2D(8, 3, activation="relu", name="edges")(probe_in)
h = layers.Conv2D(12, 3, strides=2, activation="relu", name="parts")(h)
h = layers.BatchNormalization(name="norm")(h)
h = layers.Conv2D(16, 3, activation="relu", name="objects")(h)
probe = keras.Model(probe_in, layers.Dense(6, name="scores")(layers.GlobalAveragePooling2D()(h)), name="probe")
"""


def _solution_cell(grade_id: str) -> str:
    cells = json.loads(SOLUTION.read_text())["cells"]
    return next("".join(c["source"]) for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


_MADE: dict = {}   # without a batch cache: the setup made once per process


def trusted_setup(profile: str, cache: Path | None) -> Path:
    """Run the exercise's locked imports and setup cells (from solutions/, never the submission's) and PROBE_SOURCE
    in the sandbox, one thread; keep the Fashion-MNIST model (model.keras) and the probe (probe.keras) in a folder:
    ``cache``'s, shared by the batch and made once under a file lock, else one made once per process."""
    params = _solution_cell("parameters").replace('PROFILE = "sample"', f"PROFILE = {profile!r}")
    source = "\n".join([params, _solution_cell("imports"), _solution_cell("setup"), PROBE_SOURCE])
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    if cache is None and key in _MADE:
        return _MADE[key]
    folder = (cache / f"ch08-setup-{key}") if cache else Path(tempfile.mkdtemp(prefix="ch08-setup-"))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "model.keras").is_file() or not (folder / "probe.keras").is_file():
            out = rerun.run(source, [], [], timeout=SETUP_SECONDS, memory_mb=4096, keep=folder, file_mb=64,
                            save={"model": "model.keras", "probe": "probe.keras"},
                            hide=tasks.HIDDEN + (trusted.heldout_dir(),))
            if "failed" in out:   # the grader's own code failed: an internal error, the instructor is told
                raise RuntimeError(f"the exercise's setup cell did not run in the grader's sandbox: {out['failed']}")
    if cache is None:
        _MADE[key] = folder
    return folder


def prepare(cache: Path, profile: str = "sample") -> None:
    """Make the grader's models once, when the course is released (autograder/course.py release)."""
    trusted_setup(profile, cache)


def as_images(x) -> np.ndarray:
    """Held-out uint8 images (N, 28, 28) as the exercise's model reads them: float32 in [0, 1], (N, 28, 28, 1)."""
    return np.asarray(x, dtype="float32")[..., None] / 255.0


def attack_set() -> tuple[np.ndarray, np.ndarray]:
    """The first ATTACKED held-out Fashion-MNIST images and labels (autograder/data or the instructor's folder)."""
    x, y = trusted.heldout("fashion_mnist")
    return as_images(x[:ATTACKED]), np.asarray(y[:ATTACKED]).astype("int64")


# ------------------------------------------------------------------------------------------------ Grad-CAM

def reference_cam(model, image, layer_name, class_index=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): the layer's maps weighted by the spatial mean of the class score's gradient,
    summed over channels, ReLU, divided by the maximum (a map that is zero everywhere stays zero)."""
    import keras
    import tensorflow as tf

    inner = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
    x = tf.convert_to_tensor(np.asarray(image, dtype="float32")[None])
    with tf.GradientTape() as tape:
        maps, scores = inner(x, training=False)
        c = int(tf.argmax(scores[0])) if class_index is None else int(class_index)
        score = scores[0, c]
    weights = tf.reduce_mean(tape.gradient(score, maps)[0], axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1)).numpy().astype("float64")
    return cam / cam.max() if cam.max() > 0 else cam


def cam_cases(folder: Path) -> list[tuple[str, np.ndarray, str, int | None]]:
    """(model file, image, layer, class or None for the top class) of the grader's Grad-CAM cases, chosen on its
    own models: the top class and other classes (the second best; the true class of an image the model gets wrong;
    a class the model does not predict), near the input and near the output."""
    model = trusted.load_model(folder / "model.keras")
    x, y = trusted.heldout("fashion_mnist")
    pool = as_images(x[ATTACKED:ATTACKED + 200])
    truth = np.asarray(y[ATTACKED:ATTACKED + 200]).astype(int)
    scores = trusted.predict(model, pool)
    top = scores.argmax(1)
    second = np.argsort(scores, axis=1)[:, -2]
    wanted = [(top == truth, "conv2", lambda i: None), (top != truth, "conv2", lambda i: int(truth[i])),
              (top == truth, "conv2", lambda i: int(second[i])), (top == truth, "conv1", lambda i: None)]
    cases, used = [], set()
    for among, layer, cls in wanted:   # the first image of each kind whose map is not zero everywhere
        i = next(i for i in np.flatnonzero(among) if i not in used
                 and reference_cam(model, pool[i], layer, cls(i)).max() > 0)
        used.add(int(i))
        cases.append(("model.keras", pool[i], layer, cls(i)))
    probe, rng = trusted.load_model(folder / "probe.keras"), np.random.default_rng(808)
    for layer, cls in (("objects", None), ("objects", 4), ("parts", 1)):
        for _ in range(50):   # blotchy colour pictures, until the map is not zero everywhere
            smooth = rng.uniform(0, 1, size=(8, 8, 3)).repeat(4, axis=0).repeat(4, axis=1)
            image = (0.7 * smooth + 0.3 * rng.uniform(0, 1, size=(32, 32, 3))).astype("float32")
            if reference_cam(probe, image, layer, cls).max() > 0:
                break
        cases.append(("probe.keras", image, layer, cls))
    return cases


# ------------------------------------------------------------------------------------------ the re-run

PROGRAM = """\
CH08_FAILED = {{}}
for CH08_NAME, CH08_SOURCE in {sources!r}:
    try:
        exec(compile(CH08_SOURCE, "<your " + CH08_NAME + " cell>", "exec"))
    except BaseException as CH08_EXC:
        CH08_FAILED[CH08_NAME] = (type(CH08_EXC).__name__ + ": " + str(CH08_EXC))[:300]
CH08_FAILED_LINES = [CH08_NAME + " | " + CH08_FAILED[CH08_NAME] for CH08_NAME in sorted(CH08_FAILED)]
CH08_MODELS = {{}}


def ch08_model(name):
    if name not in CH08_MODELS:
        CH08_MODELS[name] = keras.saving.load_model(name, compile=False)
    return CH08_MODELS[name]


def ch08_cam(i):
    with np.load("cams.npz", allow_pickle=False) as f:
        cls = int(f["classes"][i])
        return grad_cam(ch08_model(str(f["models"][i])), f["image" + str(i)].copy(), str(f["layers"][i]),
                        None if cls < 0 else cls)


def ch08_fgsm():
    with np.load("attack.npz", allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    adv = np.asarray(fgsm(ch08_model("model.keras"), x.copy(), y.copy(), {eps!r}), dtype="float32")
    np.save("adv.npy", adv)
    return list(adv.shape)
"""
SETUP = ["import numpy as np", "import keras", "from keras import layers", "import tensorflow as tf"]


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def run_answers(sources: dict[str, str], folder: Path, cases=None, attack=None) -> tuple[dict, dict]:
    """Run the answer programs ``sources`` ({"grad_cam": ..., "fgsm": ...}) once, alone, in the sandbox, on the
    grader's Grad-CAM ``cases`` and its ``attack`` images (x, y); return ({task: why it did not run}, outputs):
    outputs {"cams": one re-run result a case, "adv": the perturbed images or None}."""
    files = {"model.keras": (folder / "model.keras").read_bytes(), "probe.keras": (folder / "probe.keras").read_bytes()}
    calls = [["=CH08_FAILED_LINES", [], {}]]
    if "grad_cam" in sources:
        files["cams.npz"] = _npz(models=np.array([c[0] for c in cases]), layers=np.array([c[2] for c in cases]),
                                 classes=np.array([-1 if c[3] is None else c[3] for c in cases]),
                                 **{f"image{i}": c[1] for i, c in enumerate(cases)})
        calls += [["ch08_cam", [i], {}] for i in range(len(cases))]
    if "fgsm" in sources:
        files["attack.npz"] = _npz(x=attack[0], y=attack[1])
        calls.append(["ch08_fgsm", [], {}])
    program = PROGRAM.format(sources=list(sources.items()), eps=EPS)
    with tempfile.TemporaryDirectory(prefix="ch08-rerun-") as tmp:
        out = rerun.run(program, SETUP, calls, timeout=RERUN_SECONDS, memory_mb=4096, file_mb=64, files=files,
                        keep=Path(tmp), also_keep=("adv.npy",),
                        hide=tasks.HIDDEN + (trusted.heldout_dir(), REPO / "cnnbook" / "data"))
        path = Path(tmp) / "adv.npy"
        adv = None
        if "fgsm" in sources and path.is_file() and not path.is_symlink():
            try:
                adv = np.load(path, allow_pickle=False)
            except ValueError:
                adv = None
    if "failed" in out:
        return {task: out["failed"] for task in sources}, {"cams": [], "adv": None}
    results = out["results"]
    failed = {}
    for line in results[0].get("value") or []:
        task, _, why = str(line).partition(" | ")
        failed[task] = why
    cams = results[1:1 + len(cases)] if "grad_cam" in sources else []
    if "fgsm" in sources and "fgsm" not in failed and "error" in results[-1]:
        failed["fgsm"] = results[-1]["error"]
    return failed, {"cams": cams, "adv": adv}


def graded_run(art) -> dict:
    """The rule on both answer cells, then one re-run of those that keep it; made once per submission (the checks
    of both tasks read it). {"violations": {task: message}, "failed": {...}, "cams": [...], "adv": ..., "cases",
    "attack", "folder"}."""
    memo = getattr(art, "_ch08", None)
    if memo is not None:
        return memo
    folder = trusted_setup(art.profile, art.cache)
    violations, sources = {}, {}
    for answer in ANSWERS:
        try:
            sources[answer] = tasks.enforce(art, answer, RULE)
        except AssertionError as exc:
            violations[answer] = str(exc)
    cases, attack = cam_cases(folder), attack_set()
    failed, outputs = run_answers(sources, folder, cases, attack) if sources else ({}, {"cams": [], "adv": None})
    memo = {"violations": violations, "failed": failed, "cases": cases, "attack": attack, "folder": folder,
            **outputs}
    art._ch08 = memo
    return memo


def _ran(run: dict, task: str) -> None:
    if task in run["violations"]:
        raise AssertionError(run["violations"][task])
    if task in run["failed"]:
        why = run["failed"][task]
        if why.startswith("NotImplementedError"):
            raise AssertionError(f"{task}: your function still raises NotImplementedError: replace the stub")
        raise AssertionError(f"{task}: your answer cell, run again alone by the grader on its own models and images, "
                             f"failed: {why}. It must run on its own with only np, keras, layers and tf (write any "
                             "helper inside the answer cell)")


def check_grad_cam(art) -> None:
    """Task 1: the student's grad_cam on the grader's cases, map by map against ``reference_cam``."""
    run = graded_run(art)
    _ran(run, "grad_cam")
    models = {}
    for i, ((name, image, layer, cls), result) in enumerate(zip(run["cases"], run["cams"])):
        if name not in models:
            models[name] = trusted.load_model(run["folder"] / name)
        want = reference_cam(models[name], image, layer, cls)
        what = (f"grad_cam on the grader's case {i + 1} (a {image.shape[0]}x{image.shape[1]}x{image.shape[2]} image, "
                f"layer {layer!r}, " + ("the top class" if cls is None else f"class_index={cls}") + ")")
        got = tasks.as_array(result, what)
        if got.shape != want.shape:
            raise AssertionError(f"{what}: your map has shape {got.shape}, the layer's maps are {want.shape}: return "
                                 "one value a position of the layer's feature map (height, width), not resized")
        if not np.allclose(got, want, atol=CAM_ATOL):
            worst = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
            raise AssertionError(f"{what}: at position {tuple(int(v) for v in worst)} your map has "
                                 f"{got[worst]:.3f}, Grad-CAM gives {want[worst]:.3f}. Weigh each channel by the "
                                 "mean gradient of the class's score (the model's output for that class, not the "
                                 "loss), sum over channels, ReLU, then divide by the maximum")
    _flag_kernel(art, "grad_cam")


def _flip_rate(model, x, y, adv) -> float:
    """Fraction of the images the model classifies correctly that it misclassifies once perturbed."""
    right = trusted.predict(model, x).argmax(1) == y
    return float(np.mean(trusted.predict(model, adv[right]).argmax(1) != y[right]))


def _valid_adv(run: dict) -> np.ndarray:
    _ran(run, "fgsm")
    x, _ = run["attack"]
    adv = run["adv"]
    what = f"fgsm on the grader's {len(x)} held-out images at eps={EPS}"
    if adv is None:
        raise AssertionError(f"{what}: it returned nothing the grader could read: return a NumPy array (or tensor) "
                             "of the perturbed images")
    if adv.shape != x.shape:
        raise AssertionError(f"{what}: returned shape {adv.shape}, the images are {x.shape}: return one perturbed "
                             "image for each image, same shape")
    if not np.all(np.isfinite(adv)):
        raise AssertionError(f"{what}: the perturbed images hold NaN or infinite values")
    step = float(np.max(np.abs(adv.astype("float64") - x)))
    if step > EPS + BUDGET_ATOL:
        raise AssertionError(f"{what}: a pixel moved by {step:.4f}, over the budget eps={EPS}: step by exactly "
                             "eps times the sign of the gradient")
    if adv.min() < -BUDGET_ATOL or adv.max() > 1 + BUDGET_ATOL:
        raise AssertionError(f"{what}: pixel values from {adv.min():.3f} to {adv.max():.3f}; images hold values "
                             "in [0, 1]: clip the perturbed images with np.clip(..., 0, 1)")
    return adv


def check_fgsm(art) -> None:
    """Task 2: the perturbed held-out images keep the budget and the pixel range, and fool the grader's model more
    often than a random +-eps perturbation of the same size does."""
    run = graded_run(art)
    adv = _valid_adv(run)
    x, y = run["attack"]
    model = trusted.load_model(run["folder"] / "model.keras")
    rate = _flip_rate(model, x, y, adv)
    noise = np.sign(np.random.default_rng(7).standard_normal(x.shape)).astype("float32")
    chance = _flip_rate(model, x, y, np.clip(x + EPS * noise, 0, 1))
    if rate <= chance + 0.05:
        raise AssertionError(f"fgsm: your perturbed images fool the grader's model on {rate:.1%} of the held-out "
                             f"images it got right; random +-eps noise fools it on {chance:.1%}. Step *up* the "
                             "loss: x + eps * sign(gradient of the loss with respect to x), with the true labels y")
    run["rate"] = rate
    _flag_kernel(art, "fgsm")


def check_fgsm_band(art) -> None:
    """Task 2's calibrated band: how often the attack flips the grader's model on held-out images it got right."""
    run = graded_run(art)
    adv = _valid_adv(run)
    x, y = run["attack"]
    rate = run.get("rate")
    if rate is None:
        rate = _flip_rate(trusted.load_model(run["folder"] / "model.keras"), x, y, adv)
    level = trusted.thresholds(ASSIGNMENT, TASK, art.profile)[0]
    if rate < level:
        raise trusted.BelowThreshold(f"fgsm: at eps={EPS} your attack flips {rate:.1%} of the held-out images the "
                                     f"grader's model got right; the band needs {level:.1%}: take the gradient of "
                                     "the cross-entropy of the model's logits (from_logits=True) with respect to the "
                                     "images, and step by eps times its sign")


# ------------------------------------------------------------------------------ the kernel's own outputs (flags)

def _public_test_images(n: int):
    """Fashion-MNIST images of the students' own test split (public: the kernel may see them)."""
    from cnnbook import data

    test = data.load("fashion_mnist", profile="sample", verbose=False)
    return as_images(test.x_test[-n:]), np.asarray(test.y_test[-n:]).astype("int64")


def grad_cam_inputs() -> dict:
    images, labels = _public_test_images(3)
    return {"images": images, "classes": np.array([labels[0], (labels[1] + 3) % 10, labels[2]])}


def fgsm_inputs() -> dict:
    x, y = _public_test_images(50)
    return {"x": x, "y": y}


INPUTS = {"grad_cam": grad_cam_inputs, "fgsm": fgsm_inputs}


def _flag_kernel(art, task: str) -> None:
    """After a passing re-run: flag (no score changes) a kernel whose own outputs on its own model differ from what
    the grader computes on that model, i.e. a kernel whose function was not the answer cell."""
    try:
        model, saved, cases = art.model("kernel_model"), art.outputs(task), art.inputs(task)
        if task == "grad_cam":
            same = all(np.allclose(saved[f"cam{i}"], reference_cam(model, image, "conv2", int(c)), atol=CAM_ATOL)
                       for i, (image, c) in enumerate(zip(cases["images"], cases["classes"])))
        else:
            same = np.mean(np.abs(saved["adv"] - reference_fgsm(model, cases["x"], cases["y"], EPS)) > 1e-4) < 0.01
    except (AssertionError, KeyError, ValueError) as exc:
        art.flag(f"{task}: the kernel's own outputs could not be compared ({str(exc)[:150]}); the grader's re-run "
                 "of the answer cell was scored")
        return
    if not same:
        art.flag(f"{task}: the kernel's outputs on its own model differ from the grader's on that model, while the "
                 "answer cell run alone passed: the kernel may have used another function; the re-run was scored")


def reference_fgsm(model, x, y, eps) -> np.ndarray:
    """One FGSM step (Goodfellow et al. 2015) on the cross-entropy of the model's logits, clipped to [0, 1]."""
    import keras
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=False), from_logits=True)
    return np.clip((x + eps * tf.sign(tape.gradient(loss, x))).numpy(), 0.0, 1.0)


CHECKS = {"test_grad_cam": check_grad_cam, "test_fgsm": check_fgsm, "test_fgsm_band": check_fgsm_band}


# ------------------------------------------------------------------------------------------ calibration

def attack_metric(model, answers: dict[str, str]) -> float:
    """Calibration's metric: the calibrated notebook's fgsm cell (``answers``, which autograder/calibrate.py passes
    because the task sets ``metric_reads_answers``), run again alone in the sandbox (as grading does)
    against the model that notebook trained, on the held-out images; the share of those it classified correctly
    that the attack flips."""
    import keras

    with tempfile.TemporaryDirectory(prefix="ch08-calib-") as tmp:
        folder = Path(tmp)
        keras.saving.save_model(model, folder / "model.keras")
        (folder / "probe.keras").write_bytes(b"")
        attack = attack_set()
        failed, outputs = run_answers({"fgsm": answers["fgsm"]}, folder, attack=attack)
    if failed:
        raise RuntimeError(f"the calibrated fgsm answer did not run: {failed}")
    return _flip_rate(model, *attack, outputs["adv"])


#: A plausible weak answer for calibration: the sign error (a step down the loss), the reference cell edited.
SIGN_ERROR = ("x + eps * tf.sign(", "x - eps * tf.sign(")


def sign_error_answer() -> str:
    answer = _solution_cell("fgsm")
    if answer.count(SIGN_ERROR[0]) != 1:
        raise RuntimeError(f"the fgsm solution cell has no single {SIGN_ERROR[0]!r} to turn into the sign error")
    return answer.replace(*SIGN_ERROR)


TASKS = {TASK: trusted.QualityTask(
    cells=("imports", "setup", "fgsm"), artifact="model", metric=attack_metric, metric_reads_answers=True,
    fixed=(), derive_top=True,
    weak={"fgsm": sign_error_answer()}, weak_name="the sign error: x - eps * sign(gradient)", unit="flip rate")}
