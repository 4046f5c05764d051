"""Answer rules of exercises 1-3, checked in the grader's own process on the submitted source (autograder/checks).

Why static analysis of the answer cell, plus a re-run of that cell alone (``rerun.py``), and not a scan of the
kernel: whatever runs in the student's kernel can be changed by the student's code (a module reached under another
alias and patched, a name computed at run time, ``cnnbook.submit`` replaced). Two things cannot be changed from
there: the text of the answer cell in the submitted notebook, and what that text computes when the grader runs it
alone in a fresh, sandboxed interpreter. So a rule-bearing task is scored like this:

1. **The rule, on the answer cell's syntax tree** (this module). It is an allow-list, not a deny-list: every name
   the cell reads but does not define must be one the exercise allows (``np``, ``math``, safe builtins; ``keras``
   and ``layers`` in chapter 3); every import must be of an allowed module; no attribute may start with ``_``; a
   dotted name rooted at an allowed module (``np.lib.stride_tricks``) is resolved here, on the real module, and must
   never pass through a module outside the allowed packages (``keras.src.backend.tensorflow.core.tf`` fails);
   attribute names that the exercise forbids (``count_params``, the weights) fail wherever they appear. ``eval``,
   ``exec``, ``vars``, ``globals`` and ``__import__`` are not allowed builtins, and ``getattr`` only with a literal
   name (checked like the attribute it reads), so no name can be computed at run time. A violation names the call
   and the line.
2. **No other cell rebinds the answer** (also here): a student cell outside the answer cell that binds the
   function's name, or uses a way to bind names indirectly (``vars()``, ``globals()``, ``__main__``, frames), is a
   violation.
3. **The outputs that count are the re-run's** (``rerun.py``): the answer cell's source alone, executed under the
   kernel's sandbox in a new interpreter on the grader's inputs. The outputs the kernel saved only serve to flag a
   disagreement for the instructor.

A student who writes helpers in another cell is told to move them into the answer cell.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import types
from dataclasses import dataclass, field

#: Builtins an answer may call: none of them reads or binds a name given as a string, imports, or opens files.
SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "int", "isinstance",
    "issubclass", "len", "list", "map", "max", "min", "pow", "print", "range", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "tuple", "zip", "None", "True", "False", "ValueError", "TypeError", "IndexError",
    "KeyError", "NotImplementedError", "ZeroDivisionError", "ArithmeticError", "Exception", "AssertionError",
    "hasattr", "repr", "format", "iter", "next", "object", "property", "staticmethod", "classmethod", "super",
})
#: Standard-library modules any answer (and its helpers) may import besides the rule's: none of them reads an
#: attribute or a module by a name given as a string, opens files or runs code.
SAFE_STDLIB = frozenset({"itertools", "functools", "collections"})
#: Names in any student cell that can bind the answer's name without naming it.
INDIRECT_BINDERS = frozenset({"vars", "globals", "locals", "setattr", "exec", "eval", "__import__", "get_ipython",
                              "__main__", "__builtins__", "compile", "delattr"})
INDIRECT_ATTRS = frozenset({"f_globals", "f_locals", "_getframe", "__dict__", "__globals__", "user_ns",
                            "__main__", "modules", "__code__"})


@dataclass(frozen=True)
class Rule:
    """What one task's answer cell may use (chapters 1-3)."""

    what: str                                   # e.g. "conv2d"; names the task in messages
    forbidden: str                              # what the exercise forbids, in words, for the message
    globals: frozenset = frozenset({"np", "numpy", "math"})      # free names allowed besides SAFE_BUILTINS
    imports: frozenset = frozenset({"numpy", "math"})            # modules the cell may import
    packages: tuple = ("numpy", "math")                         # modules a dotted name may pass through
    modules: dict = field(default_factory=lambda: {"np": "numpy", "numpy": "numpy", "math": "math"})
    attrs: frozenset = frozenset()              # attribute names forbidden anywhere in the cell


class _Scope(ast.NodeVisitor):
    """Collect the names a cell binds anywhere (functions, arguments, assignments, imports, loops, comprehensions)."""

    def __init__(self):
        self.bound: set[str] = set()

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.bound.add(node.id)

    def visit_FunctionDef(self, node):
        self.bound.add(node.name)
        a = node.args
        for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
            self.bound.add(arg.arg)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        a = node.args
        for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
            self.bound.add(arg.arg)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.bound.add(node.name)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_alias(self, node):
        self.bound.add((node.asname or node.name).split(".")[0])


def _line(source: str, node: ast.AST) -> str:
    n = getattr(node, "lineno", 1)
    lines = source.splitlines()
    text = lines[n - 1].strip() if 0 < n <= len(lines) else ""
    return f"line {n} `{text[:70]}`"


def _chain(node: ast.AST) -> list[str] | None:
    """['np', 'lib', 'stride_tricks'] for np.lib.stride_tricks; None when the root is not a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id] + parts[::-1]


def _allowed_module(module: types.ModuleType, rule: Rule) -> bool:
    name = getattr(module, "__name__", "") or ""
    return any(name == p or name.startswith(p + ".") for p in (*rule.packages, *SAFE_STDLIB))


def violations(source: str, rule: Rule) -> list[str]:
    """Return one line per use of something the answer rule forbids in one answer cell's source (chapters 1-3)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"{rule.what}: your answer cell does not parse ({exc.msg}, line {exc.lineno})"]
    scope = _Scope()
    scope.visit(tree)
    local_modules = dict(rule.modules)
    found: list[str] = []

    def bad(node, why):
        found.append(f"{rule.what}, {_line(source, node)}: {why}; {rule.forbidden}")

    # getattr(obj, "literal"[, default]) is obj.literal: allowed, and checked as that attribute
    literal_getattr = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and "getattr" not in scope.bound and len(node.args) in (2, 3)
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            literal_getattr.add(id(node.func))
            attr = node.args[1].value
            if attr.startswith("_") or attr in rule.attrs:
                bad(node, f"reads `{attr}` with getattr")
    for node in ast.walk(tree):
        if id(node) in literal_getattr:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                if mod.split(".")[0] not in rule.imports | SAFE_STDLIB:
                    bad(node, f"imports from `{mod}`")
                else:
                    for a in node.names:
                        target = getattr(importlib.import_module(mod), a.name, None)
                        if a.name in rule.attrs or a.name.startswith("_") or (
                                isinstance(target, types.ModuleType) and not _allowed_module(target, rule)):
                            bad(node, f"imports `{a.name}` from `{mod}`")
                        elif isinstance(target, types.ModuleType):
                            local_modules[a.asname or a.name] = target.__name__
            else:
                for a in node.names:
                    if a.name.split(".")[0] not in rule.imports | SAFE_STDLIB:
                        bad(node, f"imports `{a.name}`")
                    elif a.asname:
                        local_modules[a.asname] = a.name
                    else:
                        local_modules[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in scope.bound and node.id not in rule.globals and node.id not in SAFE_BUILTINS:
                kind = "a builtin the answer may not use" if hasattr(builtins, node.id) else \
                    "a name defined outside this cell"
                bad(node, f"uses `{node.id}`, {kind}")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                bad(node, f"uses the private attribute `{node.attr}`")
            elif node.attr in rule.attrs:
                bad(node, f"uses `.{node.attr}`")
    # dotted names rooted at a module: resolve them on the real module, outermost chains only
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        chain = _chain(node)
        if not chain or chain[0] not in local_modules or chain[0] in scope.bound - set(local_modules):
            continue
        try:
            obj = importlib.import_module(local_modules[chain[0]])
        except ImportError:
            continue
        for i, part in enumerate(chain[1:], start=1):
            obj = getattr(obj, part, None)
            if obj is None:
                break
            if isinstance(obj, types.ModuleType) and not _allowed_module(obj, rule):
                bad(node, f"reaches `{obj.__name__}` through `{'.'.join(chain[:i + 1])}`")
                break
    return list(dict.fromkeys(found))


def free_names(source: str) -> set[str]:
    """Names a cell reads that it never binds (what it needs from elsewhere), builtins included."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    scope = _Scope()
    scope.visit(tree)
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return read - scope.bound


def defined_names(source: str) -> set[str]:
    """Top-level names a cell binds (def, class, assignment, import)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        scope = _Scope()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        scope.visit(node)
        names |= scope.bound
    return names


def rebinders(cells: list[tuple[str, str]], names: set[str]) -> list[str]:
    """Lines of other student cells ``(label, source)`` that bind one of ``names`` or can bind names indirectly."""
    found = []
    for label, source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        scope = _Scope()
        scope.visit(tree)
        for name in sorted(scope.bound & names):
            found.append(f"{label} binds `{name}` again, outside its answer cell: keep one definition, in the "
                         "answer cell")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in INDIRECT_BINDERS:
                found.append(f"{label}, {_line(source, node)}: uses `{node.id}`, which can replace an answer "
                             "behind the grader's back")
            elif isinstance(node, ast.Attribute) and node.attr in INDIRECT_ATTRS:
                found.append(f"{label}, {_line(source, node)}: uses `.{node.attr}`, which can replace an answer "
                             "behind the grader's back")
            elif isinstance(node, ast.alias) and node.name.split(".")[0] in ("__main__", "builtins", "importlib"):
                found.append(f"{label}, {_line(source, node)}: imports `{node.name}`, which can replace an "
                             "answer behind the grader's back")
    return list(dict.fromkeys(found))
