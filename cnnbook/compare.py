"""The verdict of an experiment over seeds, stated from its numbers (chapters 3-8; issue 34).

A lesson that compares two settings (dropout or not, pretrained or not, ...) runs each over the same ``n`` seeds and
lets :func:`verdict` write the sentence, so the prose can never say "A helps" beside numbers that say it did not.

The rule (paired over seeds): seed ``i`` gives ``a[i]`` and ``b[i]``; ``d[i] = a[i] - b[i]``, or ``b[i] - a[i]``
when lower is better, so that a positive ``d`` always favours A. With the mean ``m`` of ``d`` and its standard
error ``se = std(d, ddof=1) / sqrt(n)``, the difference is *beyond the spread* when ``|m| > t se``, with ``t`` the
97.5 % quantile of Student's t with ``n - 1`` degrees of freedom (a paired t-test at the 5 % level: the 95 %
confidence interval of the mean difference excludes zero; ``t`` is 4.30 for 3 seeds, 2.78 for 5, and tends to 1.96);
with ``se = 0`` any non-zero ``m`` counts. Few seeds make ``t`` large: three seeds need a gap of more than 4.3
standard errors. Then the sentence is
"A beats B by |m| ± se <unit> over n seeds" (the winner first); otherwise "no difference between A and B beyond the
spread over n seeds (mean gap in favour of A: m ± se <unit>)". The ± is always the standard error of the mean
difference. A lesson glues the sentence, ``verdict(...).glue("dropout_verdict")``, and writes
``{glue:text}`dropout_verdict``` where its prose states the comparison (tests/test_prose_numbers.py checks this).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

#: The two-sided level of the paired t-test that decides "beyond the spread".
LEVEL = 0.05


def threshold(n: int) -> float:
    """How many standard errors the mean difference of ``n`` pairs must exceed: Student's t quantile 1 - LEVEL/2."""
    from scipy.stats import t

    return float(t.ppf(1 - LEVEL / 2, n - 1))
#: A sentence written by :func:`verdict` (tests/test_prose_numbers.py recognises glued verdicts by it).
PATTERN = re.compile(r"^(?:.+ beats .+ by .+ ± .+ over \d+ \w+|no difference between .+ beyond the spread over \d+ \w+.*)$")


@dataclass(frozen=True)
class Verdict:
    """A comparison of A with B over ``n`` paired runs; ``str()`` is the sentence to glue (chapters 4-8)."""

    a_name: str
    b_name: str
    difference: float      # mean of d (positive: A is better)
    spread: float          # standard error of that mean
    n: int
    beyond_spread: bool
    winner: str | None     # None when there is no difference beyond the spread
    sentence: str

    def __str__(self) -> str:
        return self.sentence

    def glue(self, name: str) -> str:
        """Record the sentence for ``{glue:text}`name``` (:func:`cnnbook.prose.glue`) and return it."""
        from cnnbook.prose import glue

        return glue(name, self.sentence)


def _fmt(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text   # "-0" and "-0.0" print as 0


def verdict(a_scores, b_scores, a_name: str, b_name: str, unit: str = "points", higher_is_better: bool = True,
            decimals: int = 1, over: str = "seeds") -> Verdict:
    """Compare paired scores of A and B (one pair per seed) and return the :class:`Verdict` (rule: module doc).

    ``unit`` follows the numbers ("points", "%", "ms"); ``decimals`` is how they are printed; ``over`` names what
    the pairs are ("seeds", "repeats").
    """
    a = np.asarray(a_scores, dtype="float64").ravel()
    b = np.asarray(b_scores, dtype="float64").ravel()
    if a.shape != b.shape:
        raise ValueError(f"need one score of each per seed, got {a.size} for {a_name} and {b.size} for {b_name}")
    if a.size < 2:
        raise ValueError(f"need at least 2 seeds to measure a spread, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite numbers")
    d = a - b if higher_is_better else b - a
    n = d.size
    m = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    beyond = abs(m) > threshold(n) * se if se > 0 else m != 0
    space = "" if unit in ("%",) else " "
    if beyond:
        winner, loser = (a_name, b_name) if m > 0 else (b_name, a_name)
        sentence = (f"{winner} beats {loser} by {_fmt(abs(m), decimals)} ± {_fmt(se, decimals)}{space}{unit} "
                    f"over {n} {over}")
    else:
        winner = None
        sentence = (f"no difference between {a_name} and {b_name} beyond the spread over {n} {over} "
                    f"(mean gap in favour of {a_name}: {_fmt(m, decimals)} ± {_fmt(se, decimals)}{space}{unit})")
    return Verdict(a_name, b_name, m, se, n, beyond, winner, sentence)
