"""Checks a submitted notebook before nbgrader runs it, and explains to the student what was wrong (instructors.md).

`inspect(data, released)` returns a `Verdict`: either the notebook cannot be graded at all (not JSON, not this
assignment, too large) and scores 0, or a cleaned copy for nbgrader plus one feedback line per problem found.
nbgrader itself restores the locked test cells from the gradebook; this module only says so to the student.

The scan of the student's cells (``scan``) never changes a score (issue 32): the score comes from the trusted step,
which reads what the kernel saved from outside it, and from nbgrader's tests. What the scan finds is a flag for the
instructor (the cell and the line, in reports/ASSIGNMENT.csv): ordinary code trips it too (``sum = 0``,
``from IPython.display import display``, ``importlib.reload``), so it must not punish.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import uuid
from dataclasses import dataclass, field

MAX_BYTES = 100 * 1024 * 1024     # larger files are refused unread
NOTE_OUTPUTS_BYTES = 2 * 1024 * 1024
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")

# Modules whose import or use in a student cell could change how grading works (flagged for the instructor).
FORBIDDEN_MODULES = {"importlib", "builtins", "__builtin__", "IPython", "ipykernel", "ctypes", "gc", "nbgrader",
                     "nbclient", "nbformat", "jupyter_client", "atexit", "signal", "cffi", "traitlets"}
# Names whose use in a student cell can change how grading works.
FORBIDDEN_NAMES = {"get_ipython", "__builtins__", "__import__", "exec", "eval", "compile", "setattr", "delattr",
                   "globals", "breakpoint"}
# Attributes of `sys` that change how the interpreter reports errors or finds modules.
FORBIDDEN_SYS = {"modules", "excepthook", "displayhook", "settrace", "setprofile", "meta_path", "path_hooks",
                 "stdout", "stderr", "__excepthook__", "unraisablehook", "audit", "addaudithook"}
# The autograder's held-out split: a student cell that names it is trying to read the labels it is graded on.
HELDOUT = re.compile(r"held_?out|autograder[/\\]data", re.IGNORECASE)
PROTECTED_BUILTINS = {"AssertionError", "Exception", "BaseException", "NotImplementedError", "isinstance", "type",
                      "print", "len", "range", "float", "int", "abs", "max", "min", "sum"}


@dataclass
class Verdict:
    """What the grader makes of one submitted notebook."""

    notebook: dict | None                     # the cleaned notebook to grade, or None: not gradable, scores 0
    notes: list[str] = field(default_factory=list)   # feedback lines for the student, most important first
    flags: list[str] = field(default_factory=list)  # lines the instructor may want to read; they change no score


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    return meta.get("nbgrader", {}) if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict) else {}


def _python(source: str) -> str:
    """The Python that IPython runs for a cell (magics and `!` lines become get_ipython() calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # an unparsable cell is reported as the kernel's SyntaxError, not here
        return source


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def scan(source: str, protected: set[str]) -> list[str]:
    """Return the lines of one student cell that could change how grading works, with the reason for each."""
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    lines = source.splitlines()
    found = []

    def report(node: ast.AST, why: str) -> None:
        n = getattr(node, "lineno", 1)
        text = lines[n - 1].strip() if 0 < n <= len(lines) else ""
        found.append(f"line {n} `{text[:80]}`: {why}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for mod in mods:
                if mod.split(".")[0] in FORBIDDEN_MODULES:
                    report(node, f"imports `{mod}`, which can change how the grader runs")
            if isinstance(node, ast.ImportFrom) and (node.module or "") == "sys":
                for a in node.names:
                    if a.name in FORBIDDEN_SYS:
                        report(node, f"uses `sys.{a.name}`, which can hide errors or swap modules")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            report(node, f"uses `{node.id}`, which can change how the grader runs")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_SYS and _root_name(node) == "sys":
            report(node, f"uses `sys.{node.attr}`, which can hide errors or swap modules")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and HELDOUT.search(node.value)) or (
                isinstance(node, (ast.Name, ast.Attribute)) and HELDOUT.search(getattr(node, "id", "") or
                                                                 getattr(node, "attr", ""))):
            report(node, "reads the autograder's held-out data, which grades your model")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr in (
                "__code__", "__globals__", "__builtins__", "__class__", "__subclasses__", "__dict__"):
            report(node, f"uses `{node.attr}`, which can rewrite other code")
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in protected or node.name in PROTECTED_BUILTINS:
                report(node, f"redefines `{node.name}`, which the tests rely on")
        stack = list(targets)
        while stack:
            t = stack.pop()
            if isinstance(t, (ast.Tuple, ast.List)):
                stack += t.elts
            elif isinstance(t, ast.Starred):
                stack.append(t.value)
            elif isinstance(t, (ast.Attribute, ast.Subscript)) and _root_name(t) in protected | {"sys", "os"}:
                report(node, f"changes `{ast.unparse(t)}`, part of a library the tests rely on")
            elif isinstance(t, ast.Name) and (t.id in protected or t.id in PROTECTED_BUILTINS):
                report(node, f"rebinds `{t.id}`, which the tests rely on")
    return found


def _imported_names(source: str) -> set[str]:
    """Names bound by the imports of a (locked) cell: the tests rely on them."""
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
    return names


def inspect(data: bytes, released: dict, notebook_name: str) -> Verdict:
    """Check one submitted notebook against the released one; see the module docstring."""
    size_mb = len(data) / 1024 / 1024
    if len(data) > MAX_BYTES:
        return Verdict(None, [f"{notebook_name} is {size_mb:.0f} MB, over the {MAX_BYTES // 2**20} MB the grader "
                              "reads: clear all outputs (Edit > Clear outputs of all cells), save, and resubmit"])
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return Verdict(None, [f"{notebook_name} is not a notebook file{where}: in Jupyter or Colab use "
                              "File > Download > Download .ipynb, and submit that file"])
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        return Verdict(None, [f"{notebook_name} is JSON but not a Jupyter notebook (version 4): submit the "
                              ".ipynb file you worked in"])

    rel_cells = {_nbgrader(c)["grade_id"]: c for c in released["cells"] if _nbgrader(c).get("grade_id")}
    cells = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")]
    # Shared cells (title, setup, imports) have the same grader id in every exercise, and two exercises may share
    # a test's id: call it another notebook when fewer than half of this one's answer and test cells are in it.
    graded_ids = {g for g, c in rel_cells.items() if _nbgrader(c).get("grade") or _nbgrader(c).get("solution")}
    found = {_nbgrader(c).get("grade_id") for c in cells} & graded_ids
    if 2 * len(found) < len(graded_ids):
        return Verdict(None, [f"this is not the notebook of this assignment: only {len(found)} of the "
                              f"{len(graded_ids)} answer and test cells of {notebook_name} are in it. Did you upload "
                              f"another notebook? Submit {notebook_name}"])

    verdict = Verdict(nb)
    if size_mb * 1024 * 1024 > NOTE_OUTPUTS_BYTES:
        verdict.notes.append(f"your file is {size_mb:.0f} MB because of saved outputs; they were removed before "
                             "grading (the grader runs every cell again). Clear outputs before saving next time")

    clean = copy.deepcopy(nb)
    clean["cells"] = []
    seen_ids: set[str] = set()
    protected: set[str] = set()
    for rc in released["cells"]:
        if rc.get("cell_type") == "code" and _nbgrader(rc).get("locked"):
            protected |= _imported_names(_source(rc))
    protected -= {"sys", "os"}  # handled separately
    seen_grade_ids: set[str] = set()
    for cell in cells:
        cell = copy.deepcopy(cell)
        cell["source"] = _source(cell)
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        gid = _nbgrader(cell).get("grade_id")
        if gid and (gid not in rel_cells or gid in seen_grade_ids):
            what = "unknown" if gid not in rel_cells else "repeated"
            verdict.notes.append(f"a cell has the {what} grader id {gid!r} (changed or copied by hand?); it runs as "
                                 "your own code, not as a graded cell")
            cell["metadata"].pop("nbgrader", None)
            gid = None
        if gid:
            seen_grade_ids.add(gid)
            rel = rel_cells[gid]
            if _nbgrader(rel).get("locked") and _source(rel) != cell["source"]:
                verdict.notes.append(f"you changed the locked cell {gid!r}; the grader ran the original instead")
            if _nbgrader(cell) != _nbgrader(rel):
                cell["metadata"]["nbgrader"] = copy.deepcopy(_nbgrader(rel))
                if _nbgrader(rel).get("locked") or _nbgrader(rel).get("grade"):
                    verdict.notes.append(f"the grading data of cell {gid!r} was changed; the grader used the original")
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if not (gid and _nbgrader(rel_cells[gid]).get("locked")):
                verdict.flags += [f"cell {gid or len(clean['cells']) + 1}, {f}"
                                  for f in scan(cell["source"], protected)]
        cid = cell.get("id")
        if not isinstance(cid, str) or not CELL_ID.match(cid) or cid in seen_ids:
            cell["id"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{notebook_name}/{len(clean['cells'])}").hex[:8]
        seen_ids.add(cell["id"])
        clean["cells"].append(cell)
    clean["nbformat_minor"] = max(int(clean.get("nbformat_minor", 5) or 5), 5)
    for gid, rel in rel_cells.items():
        if gid in seen_grade_ids:
            continue
        points = _nbgrader(rel).get("points")
        if _nbgrader(rel).get("grade"):
            verdict.notes.append(f"the graded cell {gid!r} ({points} points) is missing from your notebook, so it "
                                 "scores 0: start from a fresh copy of the notebook and paste your code into it")
        elif _nbgrader(rel).get("solution"):
            verdict.notes.append(f"your answer cell {gid!r} is missing from your notebook; the tests that need it "
                                 "fail: start from a fresh copy of the notebook and paste your code into it")
    verdict.notebook = clean
    return verdict
