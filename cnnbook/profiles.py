"""The ``sample``/``full`` profiles of every notebook (see the course README, "Profiles").

``pick(PROFILE, sample=..., full=...)`` chooses every size, epoch count, dataset and threshold that differs between
the profiles; ``bands(PROFILE, sample=..., full=...)`` chooses the accuracy thresholds a notebook asserts.

**The smoke knob** (tests and CI only, issue 39): with ``CNNBOOK_SMOKE=1`` in the environment, a notebook run with
``PROFILE = "full"`` takes every ``full`` code path (downloads from the test mirror of ``coursetools/mirror.py``,
checksums, extraction, parsing, 32x32x3 and 224x224x3 models, training, evaluation) at no more than the ``sample``
profile's sizes, so that all of them fit CI:

- ``pick`` returns the ``full`` value with every whole number in it capped at the ``sample`` value in the same place
  (epochs, image counts, steps, image sides) and every sequence cut to the ``sample`` value's length (seeds);
  strings, floats, ``None`` and sequences holding a string stay those of ``full`` (which dataset, which colour mode
  and its channels, which weights), except a *selection*: a list of names whose ``sample`` value is a shorter part of
  the ``full`` one (chapter 3 counts 16 of the 40 ``keras.applications`` models in ``sample``, all 40 in ``full``)
  gives the ``sample`` names, the same code on fewer items;
- ``bands`` returns zeros: on the mirror's miniature data no accuracy means anything, so each threshold is printed
  (reported) and not asserted; the accuracy is still computed, so evaluation runs.

The knob is read here and nowhere else (:func:`smoke`); it does nothing in the ``sample`` profile.
"""

from __future__ import annotations

import os

from cnnbook.course import PROFILES

#: The environment variable of the smoke knob (README, "Profiles"): "1" turns it on.
SMOKE_ENV = "CNNBOOK_SMOKE"


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise ``ValueError`` naming the valid ones."""
    if profile not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r}: use one of {', '.join(map(repr, PROFILES))} "
            "(for example PROFILE = \"sample\" in the notebook's parameters cell, "
            "or --profile sample on the runner)"
        )
    return profile


def smoke() -> bool:
    """Whether the smoke knob ``$CNNBOOK_SMOKE`` is on (tests and CI: the ``full`` profile at sample sizes)."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in ("", "0", "no", "false"):
        return False
    if value in ("1", "yes", "true"):
        return True
    raise ValueError(f"{SMOKE_ENV}={value!r}: use 1 to run the full profile at smoke-test sizes, or unset it")


def pick(profile: str, *, sample, full):
    """Return the ``sample`` or the ``full`` value for ``profile`` (e.g. thresholds, epochs).

    Under the smoke knob (:func:`smoke`) the ``full`` value is capped at the ``sample`` one (:func:`capped`).
    """
    value = {"sample": sample, "full": full}[check_profile(profile)]
    return capped(full, sample) if profile == "full" and smoke() else value


def capped(full, sample):
    """``full`` with each whole number capped at ``sample``'s in the same place and each sequence cut to
    ``sample``'s length, and a selection of names (``_is_selection``) replaced by ``sample``'s; anything else
    (strings, floats, None, a different structure, a sequence holding a string such as ``("rgb", 3)``) is
    ``full``'s."""
    if isinstance(full, bool) or isinstance(sample, bool):
        return full
    if isinstance(full, int) and isinstance(sample, int):
        return min(full, sample)
    if isinstance(full, (tuple, list, range)) and isinstance(sample, (tuple, list, range)):
        if _is_selection(sample, full):
            return type(full)(sample)   # fewer of the same items: a size, as a count of names
        if _has_text(full) or _has_text(sample):
            return full   # a choice such as ("rgb", 3) goes together: its number is no size
        kept = [capped(f, s) for f, s in zip(full, sample)]
        return type(full)(kept) if isinstance(full, (tuple, list)) else tuple(kept)
    return full


def _is_selection(sample, full) -> bool:
    """Whether ``sample`` is a list of names taken from ``full``'s longer list of names (a selection, not a choice)."""
    names = all(isinstance(v, str) for v in sample) and all(isinstance(v, str) for v in full)
    return names and 0 < len(sample) < len(full) and set(sample) <= set(full)


def _has_text(value) -> bool:
    """Whether ``value`` is or holds a string (at any depth)."""
    if isinstance(value, str):
        return True
    return isinstance(value, (tuple, list)) and any(_has_text(v) for v in value)


def bands(profile: str, *, sample, full):
    """Return the accuracy thresholds (a number, a tuple of them, or None) a notebook asserts in ``profile``.

    Under the smoke knob (:func:`smoke`) the ``full`` thresholds are printed, not asserted: zeros are returned, so
    ``assert accuracy >= BANDS[0]`` holds and the cell still measures and prints the accuracy.
    """
    value = pick(profile, sample=sample, full=full)
    if profile != "full" or not smoke() or value is None:
        return value
    print(f"{SMOKE_ENV}: full-profile thresholds {value} are reported, not asserted (the test mirror's miniature "
          "data)")
    return type(value)(0.0 for _ in value) if isinstance(value, (tuple, list)) else 0.0
