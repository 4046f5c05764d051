"""Trusted checks of chapter 7's exercises (autograder/PROTOCOL.md): the fine-tuned digit model of task 3.

Task 3 limits what the model may be trained on (``x_few``'s 50 labelled digits; ``x_val`` only to watch), so the
grader does not grade the model the kernel trained (issue 32): it runs the student's three answer cells again, alone,
in a fresh sandboxed interpreter whose namespace holds only what the task allows (``base``, ``x_few``, ``y_few``,
``x_val``, ``y_val``, ``SEED``, NumPy, Keras and ``cnnbook.transfer``), under an allow-list of the names and imports
those cells may use (autograder/answer_rules), with the course's data folders hidden; and it grades the model that
re-run produces. An answer that reads any other data (``x_new``, ``x_val`` as training data is not detectable by
name and is left to the ceiling) scores 0 on the task whatever accuracy it lands at. The kernel's model only serves
to flag a disagreement for the instructor. ``base`` and the arrays come from the exercise's own locked setup cell,
run once per batch in the same sandbox with one thread (``trusted_setup``), so the re-run trains exactly as the
calibration's one-thread runs of the reference did.

Oracle: the held-out MNIST digits 5-9 of autograder/data (never in a student's kernel), relabelled 0-4 as in the
exercise, and the band autograder/calibrate.py derived from the reference solution (autograder/calibration.json).
The ``full`` profile is graded once ``calibrate.py --profile full`` has set its band (it needs the downloaded MNIST
and a private held-out split, book/instructors.md). Above the band, a ceiling (``CEILING``) is a second signal: it
fails a model trained on more labelled digits than ``x_few`` (issue 13's wrong answer).
"""

import fcntl
import hashlib
import json
import tempfile
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
#: Answers trained on more labels than x_few (the reference's two fits on other arrays): calibration checks that
#: each lands above the ceiling, and the reference below it, by the margin (autograder/calibrate.py).
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


def check_fine_tune(art) -> None:
    """Task 3: grade the model that the student's three answer cells train when the grader runs them again, alone,
    on ``x_few`` only (see the module docstring); the kernel's saved model only serves to flag a disagreement."""
    sources = [tasks.answer(art, gid) for gid in RERUN_CELLS]
    found = [v for source in sources for v in answer_rules.violations(source, RULE)]
    if found:
        raise AssertionError("this task scores 0 because its cells use what the task does not allow: " + found[0]
                             + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    folder, seed = trusted_setup(art.profile, art.cache)
    with tempfile.TemporaryDirectory(prefix="ch07-rerun-") as tmp:
        out = rerun.run("\n\n".join(sources), RERUN_SETUP + [f"SEED = {seed}"], [], timeout=RERUN_SECONDS,
                        memory_mb=4096, file_mb=64, save={"model": "model.keras"}, keep=Path(tmp),
                        files={"base.keras": (folder / "base.keras").read_bytes(),
                               "few.npz": (folder / "few.npz").read_bytes()},
                        hide=tasks.HIDDEN + (trusted.heldout_dir(), REPO / "cnnbook" / "data"))
        if "failed" in out:
            raise AssertionError(f"your three answer cells, run again alone on x_few by the grader, failed: "
                                 f"{out['failed']}. They must run on their own with only base, x_few, y_few, x_val, "
                                 "y_val, SEED, np, keras and transfer (write any helper inside those cells)")
        model = trusted.load_model(Path(tmp) / "model.keras")
        value = heldout_model_accuracy(art, model)
    level = trusted.thresholds(ASSIGNMENT, TASK, art.profile)[0]
    top = CEILING.get(art.profile)
    try:
        kernel = art.measure("fine_tuned", heldout_accuracy)
    except AssertionError as exc:
        art.flag(f"the kernel's own model could not be measured ({str(exc)[:150]}); the grader's re-run gave "
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
CHECKS = {"test_fine_tune": check_fine_tune}

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

TASKS = {TASK: trusted.QualityTask(
    cells=("setup", "frozen_with_head", "unfreeze_top", "fine_tune"), artifact="model", metric=heldout_accuracy,
    fixed=(), derive_top=True, weak={"fine_tune": WEAK_SOURCE},
    weak_name="the new head trained for one epoch, never fine-tuned",
    ceiling=CEILING["sample"], over={name: {"fine_tune": ("model.fit(x_few, y_few,", f"model.fit({x}, {y},")}
                                     for name, x, y in OVER},
    honest={"jittered copies of x_few, the whole base fine-tuned": {"fine_tune": HONEST_SOURCE}})}
