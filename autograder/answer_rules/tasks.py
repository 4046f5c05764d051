"""Rule-bearing function tasks in the trusted checks: the rule, the answer cell re-run alone, the comparison.

See the package docstring (autograder/answer_rules/__init__.py) for why it is done this way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autograder import answer_rules as rules
from autograder.answer_rules import rerun

AUTOGRADER = Path(__file__).resolve().parents[1]
#: Folders a re-run answer cell must not see (the same ones the kernel's sandbox hides).
HIDDEN = (AUTOGRADER / "data", AUTOGRADER.parent / "solutions")


def notebook(art) -> dict:
    """The submitted notebook the trusted step is grading (``art.notebook``, set by autograder/trusted.py)."""
    nb = getattr(art, "notebook", None)
    if not isinstance(nb, dict) and not hasattr(nb, "get"):
        raise RuntimeError("the trusted step gave this check no notebook (Artifacts.notebook): the answer rules "
                           "need the submitted answer cells")
    return nb


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _code_cells(art) -> list:
    return [c for c in notebook(art).get("cells", []) if c.get("cell_type") == "code"]


def answer(art, grade_id: str) -> str:
    """Source of the answer cell ``grade_id`` as submitted; AssertionError if it is missing."""
    for cell in _code_cells(art):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return _source(cell)
    raise AssertionError(f"your answer cell {grade_id!r} is missing from the notebook: start from a fresh copy "
                         "and paste your code into it")


def student_cells(art, except_ids=()) -> list[tuple[str, str]]:
    """(label, source) of every code cell the student could change, but for the answer cells ``except_ids``."""
    out = []
    for n, cell in enumerate(_code_cells(art), 1):
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if nbg.get("locked") or nbg.get("grade_id") in except_ids:
            continue
        out.append((f"cell {nbg.get('grade_id') or n}", _source(cell)))
    return out


def helper_cells(art, answer_id: str, source: str, rule: rules.Rule) -> list[tuple[str, str]]:
    """The student's own cells that define what the answer cell calls (a helper function, a constant), and the cells
    those need in turn, in notebook order: the grader runs them with the answer, under the same rule."""
    import builtins

    known = set(rule.globals) | rules.SAFE_BUILTINS | set(dir(builtins))
    needed = rules.free_names(source) - known
    cells = [(label, src) for label, src in student_cells(art, except_ids={answer_id})]
    chosen: dict[int, tuple[str, str]] = {}
    while needed:
        found = {i for i, (_, src) in enumerate(cells) if i not in chosen and rules.defined_names(src) & needed}
        if not found:
            break
        for i in found:
            chosen[i] = cells[i]
        needed = set().union(*(rules.free_names(cells[i][1]) for i in found)) - known - set().union(
            *(rules.defined_names(c[1]) for c in chosen.values()))
    return [chosen[i] for i in sorted(chosen)]


def enforce(art, answer_id: str, rule: rules.Rule, names: set[str] | None = None) -> str:
    """Check an answer cell's rule, with the student's own cells it calls (``helper_cells``); return the program the
    grader re-runs: those cells, then the answer cell (ch. 1-3).

    Another cell that binds the answer's name again, or could (``rules.rebinders``), is only flagged for the
    instructor: the score comes from the re-run of this program alone, which no other cell can reach (issue 32)."""
    source = answer(art, answer_id)
    helpers = helper_cells(art, answer_id, source, rule)
    program = "\n\n".join([f"# {label} (your cell, which the answer uses)\n{src}" for label, src in helpers]
                           + [source])
    found = rules.violations(program, rule)
    names = rules.defined_names(source) if names is None else names
    used = {label for label, _ in helpers}
    others = [(label, src) for label, src in student_cells(art, except_ids={answer_id}) if label not in used]
    for line in rules.rebinders(others, names):
        if hasattr(art, "flag"):
            art.flag(f"{rule.what}: {line} (no score changed: the grader re-runs the answer cell alone)")
    if found:
        raise AssertionError(f"this task scores 0 because its answer breaks the exercise's rule: {found[0]}"
                             + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    return program


def run_alone(source: str, calls: list, setup=("import numpy as np", "import math"), timeout: float = 60) -> list:
    """Re-run an answer cell alone on ``calls`` in a sandboxed interpreter; return one result dict a call."""
    from autograder import trusted

    out = rerun.run(source, list(setup), calls, timeout=timeout, hide=HIDDEN + (trusted.heldout_dir(),))
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


def value(result: dict):
    """A re-run's plain result: the value (lists as tuples), ValueError, or the error line."""
    if "error" in result:
        return ValueError if result["error"].startswith("ValueError") else result["error"]
    got = result["value"]
    return tuple(got) if isinstance(got, list) else got


def disagreement(art, name: str, trusted: dict[str, np.ndarray], atol: float = 1e-5,
                 equal_nan: bool = False) -> list[str]:
    """Instructor notes when the kernel's saved outputs differ from the trusted re-run's (flagged, not scored)."""
    try:
        kernel = art.outputs(name)
    except AssertionError:
        return [f"{name}: the kernel handed in no outputs, but the answer cell run alone passed"]
    for key, want in trusted.items():
        got = kernel.get(key)
        if got is None or got.shape != want.shape or not np.allclose(got.astype("float64"), want, atol=atol,
                                                                      equal_nan=equal_nan):
            return [f"{name}: the kernel's outputs differ from the answer cell run alone (case {key}): the kernel "
                    "may have been tampered with; the trusted re-run was scored"]
    return []
