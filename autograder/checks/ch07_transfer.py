"""Trusted checks of chapter 7's exercises (autograder/PROTOCOL.md): the fine-tuned digit model of task 3.

Oracle: the held-out MNIST digits 5-9 of autograder/data (never in a student's kernel), relabelled 0-4 as in the
exercise, and the band autograder/calibrate.py derived from the reference solution (autograder/calibration.json).
The ``full`` profile is graded once ``calibrate.py --profile full`` has set its band (it needs the downloaded MNIST
and a private held-out split, book/instructors.md). Above the band,
a ceiling (``CEILING``) fails a model trained on more labelled digits than ``x_few`` (issue 13's wrong answer).
"""

import numpy as np

import trusted

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


CHECKS = {"test_fine_tune": trusted.band_check(
    ASSIGNMENT, TASK, 0, heldout_accuracy, expect=five_outputs,
    message="on the held-out digits 5-9 your fine-tuned model's accuracy is {value:.1%}; it needs {level:.1%}: "
            "train the new head first, then fine-tune the top block with a low learning rate",
    ceiling=CEILING,
    ceiling_message="on the held-out digits 5-9 your model's accuracy is {value:.1%}, above the {ceiling:.0%} that "
                    "the 50 labelled images of x_few allow with this base (the reference solution reaches 82-85 %, "
                    "the strongest honest answer we found 93 %): it was trained on more labels, such as x_new's "
                    "other digits or x_val. Train on x_few, y_few only and pass x_val, y_val as validation_data. If "
                    "you did, ask your instructor to review this task")}

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
