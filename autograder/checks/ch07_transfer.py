"""Trusted checks of chapter 7's exercises (autograder/PROTOCOL.md): task 3's fine-tuned digit model, task 4's
EfficientNet-Lite0 classifier of Fashion-MNIST.

Task 3 limits what the model may be trained on (``x_few``'s 50 labelled digits; ``x_val`` only to watch), so the
grader does not grade the model the kernel trained (issue 32): it runs the student's three answer cells again, alone,
in a fresh sandboxed interpreter whose namespace holds only what the task allows (``base``, ``x_few``, ``y_few``,
``x_val``, ``y_val``, ``SEED``, NumPy, Keras and ``cnnbook.transfer``), under an allow-list of the names and imports
those cells may use (autograder/answer_rules), with the course's data folders hidden; and it grades the model that
re-run produces. An answer that reads any other data (``x_new``, ``x_val`` as training data is not detectable by
name and is left to the ceiling) scores 0 on the task whatever accuracy it lands at. The kernel's model only serves
to flag a disagreement for the instructor. ``base`` and the arrays come from the exercise's own locked setup cell,
run once per batch in the same sandbox with one thread (``trusted_setup``), so the re-run trains exactly as the
calibration's one-thread runs of the reference did; calibrate.py trains its bands on that same re-run (``RERUN``).
The re-run costs no TensorFlow import where a warm sandboxed interpreter is free (``answer_rules.rerun.Warm``), runs
while the check measures the kernel's models, and can start before the kernel does (``before_kernel``).

Oracle: the held-out MNIST digits 5-9 of autograder/data (never in a student's kernel), relabelled 0-4 as in the
exercise, and the band autograder/calibrate.py derived from the reference solution (autograder/calibration.json).
The ``full`` profile is graded once ``calibrate.py --profile full`` has set its band (it needs the downloaded MNIST
and a private held-out split, book/instructors.md). Above the band, a ceiling (``CEILING``) is a second signal: it
fails a model trained on more labelled digits than ``x_few`` (issue 13's wrong answer).

Task 4 puts a real ImageNet network to work: ``lite0_model`` is EfficientNet-Lite0 (``cnnbook.pretrained``, its
ImageNet weights) frozen under a new Dense(10) head, on Fashion-MNIST upsampled to 64 pixels. The task does not limit
what it trains on (any of the students' Fashion-MNIST splits), so the kernel's model is graded: the check loads it
(safe mode, standard layers only), checks that every weight of its EfficientNet-Lite0 is still ImageNet's (read here
from the weights package, ``pretrained.state_dict``: a base trained from scratch or fine-tuned fails) and measures it
on 1,000 held-out Fashion-MNIST images (100 a class, autograder/data, in no student split), against the band
calibrate.py derived from the reference solution.
"""

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
import types
from pathlib import Path

import numpy as np

from autograder import answer_rules, trusted
from autograder.answer_rules import rerun, tasks

ASSIGNMENT = "ch07_transfer"
TASK = "fine_tuned"
CLASSES = (5, 6, 7, 8, 9)

#: A plausible weak answer, for calibration: the new head trained for one epoch, the base never fine-tuned.
WEAK_SOURCE = """\
keras.utils.set_random_seed(SEED)
model = frozen_with_head(base, 5)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_few, y_few, epochs=1, batch_size=16, verbose=0)
"""


def heldout_accuracy(model) -> float:
    """Accuracy of a loaded model on the held-out digits 5-9, relabelled 0-4 (the calibration metric)."""
    x, y = trusted.heldout("mnist")
    keep = np.isin(y, CLASSES)
    return trusted.accuracy(model, x[keep], np.searchsorted(np.asarray(CLASSES), y[keep]))


def five_outputs(model) -> None:
    """The saved model classifies 28x28x1 digits into 5 classes."""
    if model.output_shape[-1] != 5:
        raise AssertionError(f"your fine-tuned model has {model.output_shape[-1]} outputs; it needs 5, one per "
                             "digit 5-9: build it with frozen_with_head(base, 5)")


#: The most that x_few's 50 labels allow (sample profile): a held-out accuracy above it means the model was trained
#: on more labelled digits than x_few. calibrate.py checks it each time (calibration.json, "ceiling"): the reference
#: runs must stay under it and the OVER answers land above it, by the margin (on 487 held-out digits: reference
#: 81.7-84.8 %, OVER 95.9-99.0 %). HONEST, the strongest honest answer we found, must stay under it by the margin too
#: (calibration.json, "ceiling"/"honest": 93.0 and 89.1 % on 2026-12-04). By hand, on an AMD EPYC: augmentation, 8
#: layers unfrozen, 140 epochs gave 89.5 and 90.3 %; x_few plus 500 more of x_new 96.7 %. Full profile: not set.
CEILING = {"sample": 0.94}
#: Answers trained on more labels than x_few (the reference's two fits on other arrays). The re-run's namespace has no
#: x_new (and the rule names it), so only the x_val answer can reach the re-run's model: calibration checks that it
#: lands above the ceiling, and the reference below it, by the margin (autograder/calibrate.py).
OVER = (("trained on every labelled digit of x_new", "x_new", "y_new"),
        ("trained on x_few plus x_val", "np.concatenate([x_few, x_val])", "np.concatenate([y_few, y_val])"))


BELOW = ("on the held-out digits 5-9 the model your cells train is {value:.1%} accurate (the grader ran them again, "
         "alone); it needs {level:.1%}: train the new head first, then fine-tune the top block with a low learning "
         "rate")
ABOVE = ("on the held-out digits 5-9 the model your cells train is {value:.1%} accurate, above the {ceiling:.0%} that "
         "the 50 labelled images of x_few allow with this base (the reference solution reaches 82-85 %, the "
         "strongest honest answer we found 93 %): it was trained on more labels, such as x_val. Train on x_few, "
         "y_few only and pass x_val, y_val as validation_data. If you did, ask your instructor to review this task")
#: The three answer cells the grader runs again, in this order, and what they may use besides what they define.
RERUN_CELLS = ("frozen_with_head", "unfreeze_top", "fine_tune")
RULE = answer_rules.Rule(
    what="fine-tuning (task 3)",
    forbidden=("the grader runs your three answer cells alone, and they may use only base, x_few, y_few (to train), "
               "x_val, y_val (to watch), SEED, np, keras and transfer: write any helper inside those cells"),
    globals=frozenset({"np", "numpy", "keras", "transfer", "base", "x_few", "y_few", "x_val", "y_val", "SEED",
                       "frozen_with_head", "unfreeze_top", "model"}),
    imports=frozenset({"numpy", "keras", "math", "cnnbook"}),
    packages=("numpy", "keras", "math", "cnnbook.transfer"),
    modules={"np": "numpy", "numpy": "numpy", "keras": "keras", "math": "math", "transfer": "cnnbook.transfer"},
    attrs=frozenset({"datasets", "get_file", "load_data", "image_dataset_from_directory", "x_new", "y_new"}))
#: What the re-run's namespace starts with: the arrays and the base that ``trusted_setup`` made, nothing else.
RERUN_SETUP = ["import numpy as np", "import keras", "from cnnbook import transfer",
               "with np.load('few.npz', allow_pickle=False) as arrays:",
               "    x_few, y_few, x_val, y_val = (arrays[k] for k in ('x_few', 'y_few', 'x_val', 'y_val'))",
               "base = keras.saving.load_model('base.keras', compile=False)", "del arrays"]
SETUP_SECONDS, RERUN_SECONDS = 240, 300
CALIBRATION_SECONDS = 1800   # calibration's strongest honest answer trains for minutes on a loaded machine
REPO = Path(__file__).resolve().parents[2]
SOLUTION = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}_exercises.ipynb"


def _solution_cell(grade_id: str) -> str:
    cells = json.loads(SOLUTION.read_text())["cells"]
    return next("".join(c["source"]) for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def trusted_setup(profile: str, cache: Path | None) -> tuple[Path, int]:
    """Run the exercise's locked setup cell (from solutions/, never the submission's copy) in the sandbox, one thread,
    and keep ``base`` (base.keras) and the task's arrays (few.npz) in a folder: ``cache``'s, shared by the batch and
    made once (a file lock keeps two scorers from making it at once), else a fresh one. Returns it and SEED."""
    params = _solution_cell("parameters").replace('PROFILE = "sample"', f"PROFILE = {profile!r}")
    seed = int(next(line.split("=")[1].split("#")[0] for line in params.splitlines() if line.startswith("SEED")))
    source = params + "\n" + _solution_cell("setup") + (
        "\nnp.savez('few.npz', x_few=x_few, y_few=y_few, x_val=x_val, y_val=y_val)\n")
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = (cache / f"ch07-setup-{key}") if cache else Path(tempfile.mkdtemp(prefix="ch07-setup-"))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "base.keras").is_file() or not (folder / "few.npz").is_file():
            out = rerun.run(source, [], [], timeout=SETUP_SECONDS, memory_mb=4096, save={"base": "base.keras"},
                            keep=folder, also_keep=("few.npz",), file_mb=64,
                            hide=tasks.HIDDEN + (trusted.heldout_dir(),))
            if "failed" in out:   # the grader's own code failed: an internal error, the instructor is told
                raise RuntimeError(f"the exercise's setup cell did not run in the grader's sandbox: {out['failed']}")
    return folder, seed


def prepare(cache: Path, profile: str = "sample") -> None:
    """Make the setup's base and arrays once, when the course is released (autograder/course.py release), so that
    grading a submission does not pay for it."""
    trusted_setup(profile, cache)


def heldout_model_accuracy(art, model) -> float:
    five_outputs(model)
    return heldout_accuracy(model)


#: What the re-run's warm interpreter imports before any job (answer_rules.rerun.Warm): RERUN_SETUP's imports.
WARM = ("numpy", "keras", "cnnbook.transfer")


def start_rerun(sources: list[str], profile: str, cache: Path | None, keep: Path, *, seed: int | None = None,
                threads: int = 1, timeout: float = RERUN_SECONDS) -> rerun.Pending:
    """Start the answer cells ``sources`` again, alone, in the sandbox, on the trusted setup (``trusted_setup``),
    saving the model they train in ``keep``; ``rerun_model`` waits for it. ``seed`` (default: the notebook's SEED)
    and ``threads`` are calibration's (autograder/calibrate.py, which measures exactly this model: what is scored).
    In a warm interpreter where one is free (``answer_rules.rerun.Warm``): the same sandbox, the same result."""
    folder, notebook_seed = trusted_setup(profile, cache)
    return rerun.start("\n\n".join(sources), RERUN_SETUP + [f"SEED = {notebook_seed if seed is None else seed}"],
                       [], timeout=timeout, memory_mb=4096, file_mb=64, save={"model": "model.keras"},
                       keep=keep, files={"base.keras": (folder / "base.keras").read_bytes(),
                                         "few.npz": (folder / "few.npz").read_bytes()},
                       hide=tasks.HIDDEN + (trusted.heldout_dir(), REPO / "cnnbook" / "data"), threads=threads,
                       warm=WARM if threads == 1 else ())


def rerun_model(pending: rerun.Pending, keep: Path) -> Path:
    """The path of the model a re-run (``start_rerun``) saved in ``keep``; AssertionError (the student's message)
    when the cells failed."""
    out = pending.result()
    if "failed" in out:
        raise AssertionError(f"your three answer cells, run again alone on x_few by the grader, failed: "
                             f"{out['failed']}. They must run on their own with only base, x_few, y_few, x_val, "
                             "y_val, SEED, np, keras and transfer (write any helper inside those cells)")
    return keep / "model.keras"


def calibration_model(cells: dict[str, str], seed: int, threads: int, profile: str, keep: Path,
                      cache: Path | None = None) -> Path:
    """What calibration trains for task 3 (``RERUN``): the answer cells ``cells`` (grade_id -> source, the solution's or
    an edited answer) run exactly as grading runs a submission's, with ``SEED = seed``."""
    return rerun_model(start_rerun([cells[gid] for gid in RERUN_CELLS], profile, cache, keep, seed=seed,
                                   threads=threads, timeout=CALIBRATION_SECONDS), keep)


#: Tasks whose scored model is the grader's re-run, not the kernel's: calibrate.py trains them with this (artifact ->
#: function), so that the bands are set on the model that is scored.
RERUN = {"model": calibration_model}


def _rerun_folder(cache: Path, sources: list[str], profile: str) -> Path:
    """Where the re-run of ``sources`` keeps its model and result in the course's trusted cache: named by a hash of
    everything it depends on (the cells, the setup, the profile), so that a re-run started before the kernel
    (``before_kernel``) is found by the check, and an identical program gives the identical model: submissions of a
    batch with identical cells share one re-run, and the folder goes when the last of them is checked (``_users``)."""
    setup, seed = trusted_setup(profile, cache)
    key = hashlib.sha256(json.dumps([sources, RERUN_SETUP, seed, profile, setup.name]).encode()).hexdigest()[:24]
    folder = cache / "ch07-rerun" / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _users(folder: Path, change: int) -> None:
    """Count the gradings that will read the re-run kept in ``folder`` (identical answer cells in one batch share it):
    ``before_kernel`` adds one, the check takes its one away and removes the folder when no grading is left."""
    with open(folder.parent.parent / "ch07-rerun-users.lock", "w") as lock:   # one for them all, held a moment
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "users"
        try:
            users = int(path.read_text())
        except (OSError, ValueError):
            users = 0
        users += change
        if users > 0:
            path.write_text(str(users))
        elif change < 0:
            shutil.rmtree(folder, ignore_errors=True)


def _kept(folder: Path) -> bool:
    """Does ``folder`` hold a finished re-run: its result, and the model it saved unless the cells failed?"""
    try:
        out = json.loads((folder / "out.json").read_text())
    except (OSError, ValueError):
        return False
    return not isinstance(out, dict) or "failed" in out or (folder / "model.keras").is_file()


def _keep(folder: Path, out) -> None:
    """Keep a finished re-run's result in ``folder`` for the gradings that read it (:func:`_kept`), whole or not at
    all: written beside and renamed into place."""
    (folder / "out.part").write_text(json.dumps(out))
    (folder / "out.part").replace(folder / "out.json")


def _early_rerun(sources: list[str], profile: str, cache: Path) -> None:
    folder = _rerun_folder(cache, sources, profile)
    _users(folder, +1)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # the check waits on it
        if not _kept(folder):
            _keep(folder, start_rerun(sources, profile, cache, folder).result())


#: The modules whose dotted names ``_quick_violations`` resolves: those cheap to import (not Keras).
QUICK_MODULES = {"np": "numpy", "numpy": "numpy", "math": "math"}


def _quick_violations(source: str) -> list[str]:
    """``answer_rules.violations`` as far as it goes without importing Keras (names, imports, forbidden attributes,
    NumPy's dotted names): what ``before_kernel`` checks in the nbgrader process, which must not import TensorFlow
    there (about 4 CPU-s, and the kernel's start waited for it). A cell that imports a module itself is left to the
    check, which always runs the full rule before it uses a re-run's model; a re-run of cells that break the rule in a
    way only the full rule sees is wasted work, never a score."""
    import ast
    import dataclasses

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ["does not parse"]
    if any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree)):
        return []
    return answer_rules.violations(source, dataclasses.replace(RULE, modules=dict(QUICK_MODULES)))


def before_kernel(notebook, cache: Path, profile: str = "sample"):
    """Start task 3's re-run in a background thread before the student's kernel starts (it needs only the answer
    cells' text and the trusted setup), so that it trains on the machine's other core while the kernel runs: the
    grader's step before the kernel calls it (``TrustedInputs``, with the course's trusted cache). The check then
    finds its result (``_rerun_folder``), or waits for it. Nothing starts for cells that break the rule as far as
    it can be read here without importing Keras (``_quick_violations``): the check applies the whole rule and reports
    it. Returns the thread, or None."""
    import threading
    import types

    art = types.SimpleNamespace(notebook=notebook)
    try:
        sources = [tasks.answer(art, gid) for gid in RERUN_CELLS]
    except AssertionError:
        return None
    if any(_quick_violations(source) for source in sources):
        return None
    thread = threading.Thread(target=_early_rerun, args=(sources, profile, Path(cache)), daemon=True,
                              name="ch07-early-rerun")
    thread.start()
    return thread


def check_fine_tune(art) -> None:
    """Task 3: grade the model that the student's three answer cells train when the grader runs them again, alone,
    on ``x_few`` only (see the module docstring); the kernel's saved model only serves to flag a disagreement."""
    sources = [tasks.answer(art, gid) for gid in RERUN_CELLS]
    found = [v for source in sources for v in answer_rules.violations(source, RULE)]
    if found:
        raise AssertionError("this task scores 0 because its cells use what the task does not allow: " + found[0]
                             + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    level = trusted.thresholds(ASSIGNMENT, TASK, art.profile)[0]
    top = CEILING.get(art.profile)
    with contextlib.ExitStack() as stack:
        if art.cache is not None:   # a re-run started before the kernel (before_kernel) left its result there
            folder = _rerun_folder(Path(art.cache), sources, art.profile)
            lock = stack.enter_context(open(folder / "lock", "w"))
            stack.callback(_users, folder, -1)   # removed once no other grading of the same cells needs it
            fcntl.flock(lock, fcntl.LOCK_EX)   # waits for that re-run if it is still training
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ch07-rerun-")))
        done = _kept(folder)
        pending = None if done else start_rerun(sources, art.profile, art.cache, folder)
        # while the sandbox trains (one core): the kernel's two models, measured now and kept in ``art`` for the
        # flag below and for task 4's check, which then finds its measure done (about 3 s off each submission)
        try:
            kernel = art.measure("fine_tuned", heldout_accuracy)
        except AssertionError as exc:
            kernel = exc
        try:
            art.measure(LITE0_ARTIFACT, lite0_metric)
        except Exception:   # noqa: BLE001 (not hidden: check_lite0 measures again and reports it on its own cell)
            pass
        if done:
            out = json.loads((folder / "out.json").read_text())
            pending = types.SimpleNamespace(result=lambda: out if isinstance(out, dict) else {"failed": "no result"})
        elif art.cache is not None:   # kept for another grading of the same cells that is still running
            _keep(folder, pending.result())
        model = trusted.load_model(rerun_model(pending, folder))
        value = heldout_model_accuracy(art, model)
    if isinstance(kernel, AssertionError):
        art.flag(f"the kernel's own model could not be measured ({str(kernel)[:150]}); the grader's re-run gave "
                 f"{value:.1%}")
    else:
        if abs(kernel - value) > 0.05 or (top is not None and kernel > top >= value):
            art.flag(f"the kernel's model scores {kernel:.1%} on the held-out digits, the grader's re-run of the same "
                     f"cells on x_few {value:.1%}: the kernel may have trained on more than x_few")
    if value < level:
        raise trusted.BelowThreshold(BELOW.format(value=value, level=level))
    if top is not None and value > top:
        raise AssertionError(ABOVE.format(value=value, ceiling=top))


check_fine_tune.trained_model = True   # it measures a model the student trained (issue 13's share of the points)


# ------------------------------------------------------------------------------------------ task 4: EfficientNet-Lite0

LITE0, LITE0_ARTIFACT = "lite0", "lite0_model"
LITE0_PER_CLASS = 100   # held-out images a class: 1,000 at 64 px cost about 1 CPU-second to classify


def lite0_heldout() -> tuple[np.ndarray, np.ndarray]:
    """The first ``LITE0_PER_CLASS`` held-out Fashion-MNIST images of each class (the calibration metric's data)."""
    x, y = trusted.heldout("fashion_mnist")
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:LITE0_PER_CLASS] for c in range(10)]))
    return x[keep], y[keep]


def lite0_accuracy(model) -> float:
    """Accuracy of a loaded model on the held-out Fashion-MNIST images of ``lite0_heldout``."""
    return trusted.accuracy(model, *lite0_heldout())


def _all_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def _imagenet_value(kind: str, state: dict, prefix: str) -> list:
    """The weights ``cnnbook.pretrained.load_weights`` puts in a layer of kind ``kind`` (the same axis orders)."""
    if kind == "BatchNormalization":
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    if kind == "DepthwiseConv2D":
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]


def expect_lite0(model) -> None:
    """The saved lite0_model takes Fashion-MNIST images, has 10 outputs, and holds EfficientNet-Lite0 with every
    weight still ImageNet's (frozen; BatchNormalization statistics included)."""
    from cnnbook import pretrained

    if tuple(model.input_shape[1:]) != (28, 28, 1):
        raise AssertionError(f"lite0_model takes inputs of shape {tuple(model.input_shape[1:])}; it needs "
                             "Fashion-MNIST images (28, 28, 1): resize and repeat the channel inside the model")
    if model.output_shape[-1] != 10:
        raise AssertionError(f"lite0_model has {model.output_shape[-1]} outputs; it needs 10, one per class")
    layers = {layer.name: layer for layer in _all_layers(model)}
    names = pretrained.torch_names(include_top=False)
    missing = [n for n in names if n not in layers]
    if missing:
        raise AssertionError(f"lite0_model has no EfficientNet-Lite0 inside (no layer {missing[0]!r}): build the base "
                             "with pretrained.efficientnet_lite0((SIZE, SIZE, 3), include_top=False, pooling=\"avg\")")
    state = pretrained.state_dict()
    for name, prefix in names.items():
        layer = layers[name]
        want = _imagenet_value(type(layer).__name__, state, prefix)
        got = layer.get_weights()
        if len(got) != len(want) or any(g.shape != w.shape or not np.allclose(g, w, atol=1e-6)
                                        for g, w in zip(got, want)):
            raise AssertionError(f"the weights of lite0_model's EfficientNet-Lite0 are not ImageNet's any more "
                                 f"(layer {name}): build it with its ImageNet weights, set base.trainable = False "
                                 "before anything trains, and train only the new head")


def lite0_metric(model) -> float:
    """The task-4 check's measure: the model vetted (``expect_lite0``), then its held-out accuracy."""
    expect_lite0(model)
    return lite0_accuracy(model)


LITE0_BELOW = ("lite0_model classifies {value:.1%} of the held-out Fashion-MNIST images; the task needs {level:.1%}: "
               "train the new head longer or on more images (features of 100 images a class take seconds to "
               "compute), with a learning rate near 3e-3, and keep the base frozen")


def check_lite0(art) -> None:
    """Task 4: the kernel's EfficientNet-Lite0 classifier, its base still ImageNet's, on held-out Fashion-MNIST."""
    value = art.measure(LITE0_ARTIFACT, lite0_metric)
    level = trusted.thresholds(ASSIGNMENT, LITE0, art.profile)[0]
    if value < level:
        raise trusted.BelowThreshold(LITE0_BELOW.format(value=value, level=level))


check_lite0.trained_model = True
CHECKS = {"test_fine_tune": check_fine_tune, "test_lite0": check_lite0}

#: The strongest honest answer we found, on x_few's 50 labels alone (x_val only for early stopping): twenty jittered
#: copies of each labelled digit (rotation, shift, zoom: chapter 6), the head trained, then the whole base fine-tuned
#: at a low learning rate. Calibration checks that it stays under the ceiling by the margin.
HONEST_SOURCE = """\
keras.utils.set_random_seed(SEED)
jitter = keras.Sequential([keras.layers.RandomRotation(0.06), keras.layers.RandomTranslation(0.1, 0.1),
                           keras.layers.RandomZoom(0.1)])
x_aug = np.concatenate([x_few.astype("float32")] + [keras.ops.convert_to_numpy(jitter(x_few.astype("float32"),
                                                                                      training=True))
                                                     for _ in range(20)])
y_aug = np.tile(y_few, 21)
model = frozen_with_head(base, 5)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_aug, y_aug, validation_data=(x_val, y_val), epochs=40, batch_size=32, verbose=0,
          callbacks=transfer.callbacks(patience=8))
unfreeze_top(model, base, len(base.layers), 3e-4)
model.fit(x_aug, y_aug, validation_data=(x_val, y_val), epochs=100, batch_size=32, verbose=0,
          callbacks=transfer.callbacks(patience=15))
"""

#: A plausible weak answer to task 4, for calibration: the right model, its head trained for one epoch at 1e-4.
LITE0_WEAK_SOURCE = """\
keras.utils.set_random_seed(SEED)
lite0_base = pretrained.efficientnet_lite0((SIZE, SIZE, 3), include_top=False, pooling="avg")
lite0_base.trainable = False
images = keras.Input((28, 28, 1))
x = keras.layers.Resizing(SIZE, SIZE)(images)
x = pretrained.preprocessing_layer()(keras.layers.Concatenate()([x, x, x]))
lite0_model = keras.Model(images, keras.layers.Dense(10, activation="softmax")(lite0_base(x)))
chosen = transfer.few_per_class(y_fashion, 100, seed=SEED)
lite0_model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
lite0_model.fit(x_fashion[chosen][..., None], y_fashion[chosen], epochs=1, batch_size=32, verbose=0)
"""

TASKS = {TASK: trusted.QualityTask(
    cells=("setup", "frozen_with_head", "unfreeze_top", "fine_tune"), artifact="model", metric=heldout_accuracy,
    fixed=(), derive_top=True, weak={"fine_tune": WEAK_SOURCE},
    weak_name="the new head trained for one epoch, never fine-tuned",
    ceiling=CEILING["sample"], over={name: {"fine_tune": ("model.fit(x_few, y_few,", f"model.fit({x}, {y},")}
                                     for name, x, y in OVER if "x_new" not in x},
    honest={"jittered copies of x_few, the whole base fine-tuned": {"fine_tune": HONEST_SOURCE}}),
    LITE0: trusted.QualityTask(
        cells=("setup", "lite0_data", "lite0_model"), artifact=LITE0_ARTIFACT, metric=lite0_metric, fixed=(),
        derive_top=True, weak={"lite0_model": LITE0_WEAK_SOURCE},
        weak_name="the head trained for one epoch at a low learning rate")}
