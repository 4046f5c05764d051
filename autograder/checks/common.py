"""Pieces the chapters' trusted checks share: rule-bearing function tasks, array comparison (autograder/checks)."""

from __future__ import annotations

import numpy as np

from . import rerun, rules
from . import Context, REPO

#: Folders a re-run answer cell must not see (the same ones the kernel's sandbox hides).
HIDDEN = (REPO / "autograder" / "data", REPO / "solutions")


def enforce(ctx: Context, answer_id: str, rule: rules.Rule, names: set[str] | None = None) -> str:
    """Check an answer cell's rule and that no other student cell rebinds its names; return its source (ch. 1-3)."""
    source = ctx.answer(answer_id)
    found = rules.violations(source, rule)
    names = rules.defined_names(source) if names is None else names
    found += rules.rebinders(ctx.student_cells(except_ids={answer_id}), names)
    if found:
        raise AssertionError(f"this task scores 0 because its answer breaks the exercise's rule: {found[0]}"
                             + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    return source


def run_alone(source: str, calls: list, setup=("import numpy as np", "import math"), timeout: float = 60) -> list:
    """Re-run an answer cell alone on ``calls`` in a sandboxed interpreter; return one result dict a call."""
    out = rerun.run(source, list(setup), calls, timeout=timeout, hide=HIDDEN)
    if "failed" in out:
        raise AssertionError(f"{out['failed']}: the answer cell must run on its own, with only what the exercise "
                             "allows (write any helper inside the answer cell)")
    if len(out["results"]) != len(calls):
        raise AssertionError("your answer cell, run alone, did not return a result for every case")
    return out["results"]


def as_array(result: dict, what: str) -> np.ndarray:
    """The array a re-run returned, or an AssertionError that says what went wrong."""
    if "error" in result:
        if result["error"].startswith("NotImplementedError"):
            raise AssertionError(f"{what}: your function still raises NotImplementedError: replace the stub")
        raise AssertionError(f"{what}: your function raised {result['error']}")
    value = result["value"]
    if isinstance(value, dict) and "array" in value:
        return np.asarray(value["array"], dtype="float64").reshape(value["shape"])
    if value is None:
        raise AssertionError(f"{what}: got None — does your function end with `return`?")
    try:
        return np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise AssertionError(f"{what}: expected a NumPy array, got {type(value).__name__}") from None


def expect_close(actual: np.ndarray, expected, what: str, atol: float = 1e-5) -> None:
    """Assert two arrays agree within ``atol``; name the first index that differs."""
    expected = np.asarray(expected, dtype="float64")
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: your output has shape {actual.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what}: your output contains NaN or infinity")
    diff = np.abs(actual - expected)
    if diff.size and diff.max() > atol:
        where = np.unravel_index(int(diff.argmax()), diff.shape)
        raise AssertionError(f"{what}: wrong value at index {tuple(int(i) for i in where)}: yours "
                             f"{actual[where]:.6g}, expected {expected[where]:.6g}")


def disagreement(ctx: Context, name: str, trusted: dict[str, np.ndarray], atol: float = 1e-5,
                 equal_nan: bool = False) -> list[str]:
    """Instructor notes when the kernel's saved outputs differ from the trusted re-run's (flagged, not scored)."""
    try:
        kernel = ctx.outputs(name)
    except AssertionError:
        return [f"{name}: the kernel handed in no outputs, but the answer cell run alone passed"]
    for key, value in trusted.items():
        got = kernel.get(key)
        if got is None or got.shape != value.shape or not np.allclose(got.astype("float64"), value, atol=atol,
                                                         equal_nan=equal_nan):
            return [f"{name}: the kernel's outputs differ from the answer cell run alone (case {key}): the kernel "
                    "may have been tampered with; the trusted re-run was scored"]
    return []
