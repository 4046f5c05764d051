"""Chapter 5's blocks on the page are the package's code (issue 35, item 1; d2l's ``#@save``).

A code cell whose first line is ``# @save cnnbook.models.NAME`` defines ``NAME`` on the page; the package keeps the
same function for later chapters and the exercises' checks. Oracle: Python's own parser — the function parsed from
the lesson's cell and the one parsed from ``inspect.getsource`` of the package must give the same syntax tree
(``ast.dump``: comments and layout do not count, every name, argument, default, statement and docstring does), so
changing either side alone fails here. (tests/test_lesson_code.py checks chapters 7-8's ``#@save`` functions by
behaviour.)
"""

import ast
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
SAVE = re.compile(r"^#\s*@save\s+(cnnbook\.[\w.]+)\.(\w+)\s*$")

#: Which lesson writes which package functions on its page (the test fails if a tag disappears).
EXPECTED = {
    "ch05_architectures.ipynb": {"cnnbook.models." + name for name in (
        "nin_block", "inception_module", "residual_unit", "preact_residual_unit", "squeeze_excite",
        "separable_block")},
    "ch06_augmentation.ipynb": {"cnnbook.augment.random_resized_crop", "cnnbook.augment.augment_with_masks",
                                "cnnbook.files.file_dataset"},
    "ch08_inside.ipynb": {"cnnbook.inside." + name for name in (
        "fashion_cnn", "receptive_field", "saliency", "occlusion", "grad_cam", "mass_inside", "visualise", "fgsm",
        "gram_matrix", "stylise")},
}


def saved_functions(lesson: Path) -> dict[str, ast.FunctionDef]:
    """``{"module.name": FunctionDef}`` for every ``# @save module.name`` cell of a lesson."""
    found = {}
    for cell in json.loads(lesson.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or not source.strip():
            continue
        match = SAVE.match(source.splitlines()[0])
        if not match:
            continue
        module, name = match.groups()
        defs = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == name]
        assert len(defs) == 1, f"{lesson.name}: the cell tagged '# @save {module}.{name}' must define {name} once"
        found[f"{module}.{name}"] = defs[0]
    return found


def package_function(qualified: str) -> ast.FunctionDef:
    module, name = qualified.rsplit(".", 1)
    source = textwrap.dedent(inspect.getsource(getattr(importlib.import_module(module), name)))
    return ast.parse(source).body[0]


@pytest.mark.parametrize("lesson", sorted(EXPECTED))
def test_lesson_tags_every_block_it_writes(lesson):
    assert set(saved_functions(BOOK / lesson)) == EXPECTED[lesson]


@pytest.mark.parametrize("lesson, qualified", [(lesson, q) for lesson, names in sorted(EXPECTED.items())
                                               for q in sorted(names)])
def test_page_and_package_are_the_same_code(lesson, qualified):
    page = saved_functions(BOOK / lesson)[qualified]
    package = package_function(qualified)
    assert ast.dump(page) == ast.dump(package), (
        f"{qualified} on the page of {lesson} differs from the package's:\n--- page\n{ast.unparse(page)}\n"
        f"--- package\n{ast.unparse(package)}\nedit both (the page is the source; copy it into the package)")


@pytest.mark.parametrize("lesson", sorted(EXPECTED))
def test_blocks_on_the_page_are_short(lesson):
    for qualified, node in saved_functions(BOOK / lesson).items():
        assert node.end_lineno - node.lineno + 1 <= 17, f"{qualified} takes {node.end_lineno - node.lineno + 1} lines"


def test_the_comparison_sees_a_one_token_change():
    # The oracle itself: a changed default or an extra line changes the dump; a comment or re-wrap does not.
    base = "def f(x, k=3):\n    return x + k\n"
    assert ast.dump(ast.parse(base)) == ast.dump(ast.parse("def f(x,\n      k=3):  # note\n    return x + k\n"))
    assert ast.dump(ast.parse(base)) != ast.dump(ast.parse(base.replace("k=3", "k=5")))
    assert ast.dump(ast.parse(base)) != ast.dump(ast.parse(base.replace("    return", "    x = -x\n    return")))
