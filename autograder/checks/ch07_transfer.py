"""Trusted checks of chapter 7's exercises (autograder/PROTOCOL.md): the fine-tuned digit model of task 3.

Oracle: the held-out MNIST digits 5-9 of autograder/data (never in a student's kernel), relabelled 0-4 as in the
exercise. The band is the exercise's own (sample 60 %, full 90 %), not yet derived by autograder/calibrate.py.
"""

import numpy as np

import trusted

ASSIGNMENT = "ch07_transfer"
CLASSES = (5, 6, 7, 8, 9)
MINIMUM = {"sample": 0.6, "full": 0.9}


def fine_tune(art: trusted.Artifacts) -> None:
    """The saved fine-tuned model classifies the held-out digits 5-9 at least as well as the band asks."""
    model = art.model("fine_tuned")
    x, y = trusted.heldout("mnist")
    keep = np.isin(y, CLASSES)
    x, y = x[keep], np.searchsorted(np.asarray(CLASSES), y[keep])
    acc = trusted.accuracy(model, x, y)
    minimum = MINIMUM[art.profile]
    if acc < minimum:
        raise trusted.BelowThreshold(
            f"on {len(y)} held-out digits 5-9 your fine-tuned model's accuracy is {acc:.1%}; this profile needs "
            f"{minimum:.0%}: train the new head first, then fine-tune with a low learning rate")


CHECKS = {"test_fine_tune": fine_tune}
