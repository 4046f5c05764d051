"""Numbers in a lesson's prose cannot drift: each figure is glued from code or allow-listed as a quotation.

The rule (also in CONTRIBUTING.md, "Numbers in prose"): after removing what is not prose (code spans and fenced
code, math, link targets, HTML tags, heading section numbers, list markers, section references), every number that
is a *figure* must be inserted with myst-nb glue (``{glue:text}`name```, code side ``cnnbook.prose.glue``) or be
covered by an entry of the notebook's allow-list ``metadata["cnnbook"]["allowed_numbers"]``
(``{"text": "1998", "why": "year of LeCun et al."}``). A number is a figure when it has three or more digits, a
decimal point, a thousands separator, or a unit right after it (``%``, k/K/M/G/T, B/kB/MB/GB, MAC(s), FLOP(s)).
Small structural integers (``3×3``, "two layers", "64 channels", "chapter 2") are not figures. Digits that belong
to a name (``ResNet-152``, ``VGG16``, ``float32``, ``B0``) are not numbers.

Oracle: the rule above, applied by hand to the examples in ``test_rule_*`` (each example was classified by reading
it, not by running the scanner).

Run on one notebook: ``.venv/bin/python tests/test_prose_numbers.py book/ch05_architectures.ipynb``
(prints every finding), or ``.venv/bin/python -m pytest -q tests/test_prose_numbers.py -k ch05``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "book").glob("ch*.ipynb"))
# A lesson is checked strictly once its metadata has the allow-list key (even an empty list) or it is named here;
# until then it is an expected failure. The lessons named here must have converted.
REQUIRED = {"ch01_convolution", "ch02_arithmetic", "ch03_counting", "ch05_architectures"}

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+?\$|\\\[.*?\\\]|\\\(.*?\\\)", re.S)
_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_ROLE = re.compile(r"\{[\w:-]+\}(?=`)")             # {glue:text}, {cite}, {math}: the span after them is code
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]*)\]\[[^\]]*\]")
_URL = re.compile(r"<?https?://[^\s>)]+>?")
_HTML = re.compile(r"<[^>\n]+>")
_HEADING_NUMBER = re.compile(r"^(#{1,6}\s+)\d+(?:\.\d+)*\.?(?=\s)", re.M)
_LIST_NUMBER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.M)
_SECTION_REF = re.compile(r"(?:§|\b[Ss]ections?)\s*\d+(?:\.\d+)*(?:\s*(?:and|,|–|-|to|or)\s*\d+(?:\.\d+)*)*")
_NUMBER = re.compile(
    r"(?<![\w.,])"                                   # not the middle of a word or of another number
    r"[-−+]?(?:\d{1,3}(?:[,\u202f\u2009\u00a0]\d{3})+|\d+)(?:\.\d+)?"
)
_UNIT = re.compile(r"\s?(?:%|per ?cent\b|[kKMGT](?:i?B|MACs?|FLOPs?|MAC|FLOP)?\b|[kMG]?B\b|MACs?\b|FLOPs?\b)")


@dataclass(frozen=True)
class Finding:
    """One number in a markdown cell that is neither glued nor allow-listed."""

    notebook: str
    cell: int
    number: str
    context: str

    def message(self) -> str:
        return (f"{self.notebook}, markdown cell {self.cell}: the number {self.number!r} in \"…{self.context}…\" "
                f"is typed by hand. Fix: print it from code with `glue(\"some_name\", f\"{{value:,}}\")` "
                f"(from cnnbook.prose import glue) and write {{glue:text}}`some_name` here; or, if it is a "
                f"quotation (a paper's figure, named as theirs) or a year, add "
                f"{{\"text\": {self.number!r}, \"why\": \"…\"}} to the notebook's "
                f"metadata[\"cnnbook\"][\"allowed_numbers\"].")


def _strip_fences(text: str) -> str:
    """Drop fenced code; keep the body of MyST directives (```{note}, ```{admonition}) minus their options."""
    out, fence, keep = [], None, False
    for line in text.splitlines():
        m = _FENCE.match(line.strip())
        if fence is None and m:
            fence = m.group(1)
            info = m.group(2).strip()
            keep = info.startswith("{") and not re.match(r"\{(code-cell|code-block|code|math|glue)", info)
            continue
        if fence is not None and line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
            fence = None
            continue
        if fence is None or (keep and not re.match(r"\s*:[\w-]+:", line)):
            out.append(line)
    return "\n".join(out)


def prose(markdown: str) -> str:
    """The text of a markdown cell that the scan reads: no code, math, link targets, tags or section numbers."""
    text = _strip_fences(markdown)
    text = _MATH.sub(" ", text)
    text = _ROLE.sub("", text)
    text = _CODE.sub(" ", text)
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _HTML.sub(" ", text)
    text = _HEADING_NUMBER.sub(r"\1", text)
    text = _LIST_NUMBER.sub(r"\1", text)
    return _SECTION_REF.sub(" ", text)


def is_figure(token: str, after: str) -> bool:
    """A figure: three or more digits, a decimal point, a thousands separator, or a unit right after it."""
    digits = sum(ch.isdigit() for ch in token)
    return digits >= 3 or "." in token or bool(re.search(r"[,\u202f\u2009\u00a0]", token)) or bool(
        _UNIT.match(after))


def numbers(text: str):
    """Yield (start, end, token) for every figure in cleaned prose; digits inside a name are skipped."""
    for m in _NUMBER.finditer(text):
        start, token = m.start(), m.group()
        before = text[max(0, start - 2):start]
        if re.search(r"[A-Za-z]-?\Z", before) and token[0] not in "+−":
            continue                                  # ResNet-152, VGG16, float32, B0, top-5
        if is_figure(token, text[m.end():m.end() + 8]):
            yield start, m.end(), token.lstrip("+")


def allowed_numbers(nb: dict) -> list[dict]:
    """The notebook's allow-list, ``metadata["cnnbook"]["allowed_numbers"]`` (empty if absent)."""
    return nb.get("metadata", {}).get("cnnbook", {}).get("allowed_numbers", [])


def scan(path: Path) -> tuple[list[Finding], list[str]]:
    """All findings of one notebook, and the problems of its allow-list (no reason, matches nothing)."""
    nb = json.loads(Path(path).read_text())
    allow = allowed_numbers(nb)
    problems = [f"{path.name}: allow-list entry {e!r} needs a non-empty 'text' and 'why'"
                for e in allow if not (isinstance(e, dict) and e.get("text") and e.get("why"))]
    texts = [e["text"] for e in allow if isinstance(e, dict) and e.get("text")]
    used = set()
    findings = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        covered = []
        for allowed in texts:
            for m in re.finditer(re.escape(allowed), text):
                covered.append((m.start(), m.end()))
                used.add(allowed)
        for start, end, token in numbers(text):
            if any(a <= start and end <= b for a, b in covered):
                continue
            context = " ".join(text[max(0, start - 40):end + 25].split())
            findings.append(Finding(Path(path).name, index, token, context))
    problems += [f"{path.name}: allow-list entry {t!r} matches no prose; remove it" for t in texts if t not in used]
    problems += glue_problems(nb, Path(path).name)
    return findings, problems


def glue_problems(nb: dict, name: str) -> list[str]:
    """Every ``{glue:text}`name``` in markdown must be glued by a code cell (its source or its stored outputs)."""
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    stored = set()
    for c in nb["cells"]:
        for out in c.get("outputs", []):
            stored.add(out.get("metadata", {}).get("scrapbook", {}).get("name"))
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for key in re.findall(r"\{glue(?::\w+)?\}`([^`<]+?)(?::[^`]*)?`", "".join(cell["source"])):
            if key not in stored and not re.search(rf"""glue\(\s*["']{re.escape(key)}["']""", code):
                problems.append(f"{name}, markdown cell {index}: {{glue}}`{key}` is never glued; add "
                                f"glue(\"{key}\", ...) to a code cell above it")
    return problems


# --- the rule, on examples classified by hand -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("a 3×3 kernel and two layers", []),
    ("64 channels, 10 classes, chapter 2", []),
    ("it has 62,378,344 parameters", ["62,378,344"]),
    ("about 1.5 G and 300 M MACs", ["1.5", "300"]),
    ("it adds 10 % to the parameters and 7 M", ["10", "7"]),
    ("12 MB for one image, 4 GB for a batch", ["12", "4"]),
    ("ResNet-152, VGG16, float32, EfficientNet B0 and top-5", []),
    ("from 1998 to 2017", ["1998", "2017"]),
    ("a 224×224 image", ["224", "224"]),
    ("dropout 0.5", ["0.5"]),
    ("see section 3.2 and 3.4, and sections 2.1", []),
])
def test_rule_classifies_numbers(text, expected):
    assert [token for _, _, token in numbers(prose(text))] == expected


@pytest.mark.parametrize("markdown", [
    "## 2.1 One formula",
    "1. first item\n2. second item",
    "the layer has `15200` weights, $o = 224 - 3 + 1$ and $$k^{1000}$$",
    "see [the paper](https://arxiv.org/abs/1512.03385) at <https://keras.io/api/applications/>",
    "it has {glue:text}`vgg16_params` parameters",
    "<details><summary>Answer</summary>\n\nFive.\n\n</details>",
    "```python\nx = 1234\n```",
])
def test_rule_ignores_what_is_not_prose(markdown):
    assert list(numbers(prose(markdown))) == []


def test_rule_reads_admonition_bodies():
    assert [t for *_, t in numbers(prose("```{note}\n:class: tip\nIt costs 1.58 G.\n```"))] == ["1.58"]


# --- every lesson ------------------------------------------------------------------------------------------------

def _marks(lesson: Path):
    nb = json.loads(lesson.read_text())
    if lesson.stem in REQUIRED or "allowed_numbers" in nb.get("metadata", {}).get("cnnbook", {}):
        return []
    return [pytest.mark.xfail(reason=f"{lesson.stem} not converted yet: glue its numbers, then add "
                                     "metadata cnnbook.allowed_numbers (even []) to make this strict",
                              strict=False)]


@pytest.mark.parametrize("lesson", [pytest.param(p, marks=_marks(p), id=p.stem) for p in LESSONS])
def test_lesson_prose_numbers_are_glued_or_allowed(lesson):
    findings, problems = scan(lesson)
    report = [f.message() for f in findings] + problems
    assert not report, f"{len(report)} problem(s):\n" + "\n".join(report)


# --- comparisons: a verdict over seeds is written by cnnbook.compare, never typed beside glued numbers ----------------
#
# The rule (issue 34, item 5): a markdown paragraph that states a comparison (one of COMPARISON_WORDS) and contains a
# {glue:text} role whose glued value is not a sentence made by cnnbook.compare.verdict states its verdict as fixed text
# beside computed numbers: the numbers can change and the words cannot. Glue the verdict's sentence instead
# (``verdict(a, b, "A", "B").glue("name")``). Chapters 1-3 are strict; the later chapters report their offenders
# (an expected failure listing each paragraph, to be rewritten with cnnbook.compare in issues 34/35/36).
# Oracle: the rule above, applied by hand to the examples in test_comparison_rule_*.

COMPARISON_WORDS = re.compile(
    r"\b(beats?|better|worse|outperform\w*|faster|slower|lowers?|raises?|improv\w*|hurts?|helps?|"
    r"trades?|lifts?|lifted|more accurate|less accurate|overfits? less|generalis\w* (?:better|worse))\b", re.I)
STRICT_COMPARISONS = {"ch01_convolution", "ch02_arithmetic", "ch03_counting", "ch04_training", "ch05_architectures",
                      "ch06_augmentation", "ch07_transfer", "ch08_inside", "ch09_detection"}   # every lesson
_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`<]+?)(?::[^`]*)?`")
_SENTENCE_END = re.compile(r"\n\s*\n")


def glued_values(nb: dict) -> dict[str, str]:
    """{name: text} of every value a notebook's stored outputs glue (the text myst-nb inserts)."""
    import ast

    values = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            text = out.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                try:
                    values[name] = str(ast.literal_eval(text))
                except (ValueError, SyntaxError):
                    values[name] = text
    return values


def comparison_findings(nb: dict, name: str = "") -> list[str]:
    """Paragraphs of a notebook's markdown that state a comparison in fixed words beside glued non-verdict values."""
    from cnnbook.compare import PATTERN

    values = glued_values(nb)
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in _SENTENCE_END.split(_strip_fences("".join(cell["source"]))):
            keys = _GLUE_ROLE.findall(sentence)
            numbers_glued = [k for k in keys if not PATTERN.match(values.get(k, ""))]
            words = COMPARISON_WORDS.findall(prose(sentence))
            if numbers_glued and words:
                found.append(f"{name}, markdown cell {index}: \"{' '.join(sentence.split())[:160]}\" says "
                             f"{', '.join(sorted(set(w.lower() for w in words)))!s} beside glued "
                             f"{', '.join(numbers_glued)}: glue a cnnbook.compare.verdict sentence instead")
    return found


def _nb(*markdown, glued=None):
    cells = [{"cell_type": "markdown", "source": m, "metadata": {}} for m in markdown]
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k}},
                "data": {"application/papermill.record/text/plain": repr(v)}} for k, v in (glued or {}).items()]
    cells.append({"cell_type": "code", "source": "", "metadata": {}, "outputs": outputs})
    return {"cells": cells}


@pytest.mark.parametrize("markdown, offending", [
    ("Dropout helps: accuracy {glue:text}`acc_drop` against {glue:text}`acc_plain`.", True),
    ("With augmentation the model is better ({glue:text}`acc_aug`).", True),
    ("Over three seeds, {glue:text}`drop_verdict`.", False),                  # the helper's sentence
    ("Pooling improves nothing here.\n\nThe map has {glue:text}`acc_drop` values.", False),   # two paragraphs
    ("Dropout helps. The model reaches {glue:text}`acc_drop`.", True),            # one paragraph
    ("The model reaches {glue:text}`acc_drop` on the test set.", False),       # a number, no comparison
    ("Dropout beats no dropout in `code {glue:text}`acc_drop``", True),
])
def test_comparison_rule_on_examples(markdown, offending):
    nb = _nb(markdown, glued={"acc_drop": "91.0 %", "acc_plain": "90.5 %", "acc_aug": "93 %",
                              "drop_verdict": "no difference between dropout and none beyond the spread over 3 "
                                              "seeds (mean gap in favour of dropout: 0.5 ± 0.4 points)"})
    assert bool(comparison_findings(nb, "x")) == offending


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_states_comparisons_with_cnnbook_compare(lesson):
    findings = comparison_findings(json.loads(lesson.read_text()), lesson.stem)
    if findings and lesson.stem not in STRICT_COMPARISONS:
        pytest.xfail(f"{len(findings)} paragraph(s) of {lesson.stem} to be rewritten with cnnbook.compare "
                     f"(issues 34/35/36):\n" + "\n".join(findings))
    assert not findings, f"{len(findings)} comparison(s) typed beside glued numbers:\n" + "\n".join(findings)


if __name__ == "__main__":
    total = 0
    for arg in sys.argv[1:] or [str(p) for p in LESSONS]:
        found, problems = scan(Path(arg))
        for f in found:
            print(f"{f.notebook} [{f.cell}] {f.number!r:>14}  …{f.context}…")
        for p in problems:
            print(p)
        total += len(found) + len(problems)
        print(f"{arg}: {len(found)} number(s), {len(problems)} other problem(s)")
    sys.exit(1 if total else 0)
