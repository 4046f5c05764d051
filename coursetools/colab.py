"""Rendered copies of the course's notebooks for Colab, Jupyter and the download button (issue 33).

The site shows a lesson through MyST: ``{glue:text}`name``` becomes the value a code cell glued, a
```` ```{note} ```` fence becomes a box. Jupyter and Colab know none of that and would show the raw source. So the site
build (``coursetools.site``) also writes, for every notebook page, a copy in which every glue role is replaced by
its value, formatted as myst-nb formats it (the same functions, on the same executed notebook the site was built
from), and every other MyST role or directive by plain Markdown or HTML. Outputs are kept; only papermill's glue
records, which no notebook front end displays, are dropped, as on the site.

Usage outside the site build: ``python -m coursetools.colab [NOTEBOOK ...] [--out DIR]`` renders notebooks (by
default the committed lessons, which are executed, and the student exercises) into ``_build/colab/`` for JupyterLab.

The copies go to ``colab/`` of the built site (published with it; the Pages workflow also pushes that folder as
the ``colab`` branch that the Colab buttons open) and replace the site's ``_sources/`` notebooks, which is what the
download button offers. They are generated, never edited: change the lesson and rebuild.
"""

from __future__ import annotations

import argparse
import base64
import copy
import re
import sys
from pathlib import Path

import nbformat

#: The subfolder of the built site holding the copies (also the content of the generated ``colab`` branch).
FOLDER = "colab"
#: A MyST role: ``{name}`content```; ``name`` may carry a domain (``glue:text``, ``cite:p``).
ROLE = re.compile(r"\{([A-Za-z][\w.+-]*(?::[\w.+-]*)?)\}`([^`]*)`")
#: Left to right, what starts first: a role, or a code span (whose text is code, never a role).
INLINE = re.compile(ROLE.pattern + r"|(?P<code>(?P<ticks>`+)[^`].*?(?<!`)(?P=ticks)(?!`))")
#: The opening line of a MyST directive fence: ```` ```{name} argument ```` or ``:::{name}`` (colon fence).
DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})\{(?P<name>[\w:.+-]+)\}[ \t]*(?P<arg>.*)$")
#: A plain code fence (no braces): its body is code and is left alone.
CODE_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
LABEL = re.compile(r"^\s*\([\w.:-]+\)=\s*$")  # ``(target)=`` before a heading
COMMENT = re.compile(r"^\s*%")  # ``% a comment`` line
BLOCK_BREAK = re.compile(r"^\s*\+\+\+")  # ``+++`` cell break of MyST Markdown notebooks
EQUATION_LABEL = re.compile(r"(\$\$)\s*\([\w.:-]+\)\s*$", re.M)  # ``$$ (label)`` after display math
GLUE_RECORD = "application/papermill.record/"

ADMONITIONS = {"note": "Note", "warning": "Warning", "tip": "Tip", "hint": "Hint", "important": "Important",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also", "admonition": "", "margin": "", "sidebar": "", "epigraph": "",
               "pull-quote": "", "highlights": "", "topic": ""}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode", "code-cell"}


class RenderError(Exception):
    """A notebook whose MyST cannot be rendered (an unknown glue name, say), reported as one line."""


# -- glue ------------------------------------------------------------------------------------------------------


def glue_data(nb) -> dict[str, dict]:
    """Return ``{name: mime bundle}`` of what the notebook's code cells glued, read the way myst-nb reads it."""
    from myst_nb.ext.glue import extract_glue_data_cell

    found: dict[str, dict] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for name, output in extract_glue_data_cell(copy.deepcopy(cell)):
                found[name] = dict(output["data"])
    return found


def paste_text(bundle: dict, spec: str) -> str:
    """Return what ``{glue:text}`name:spec``` shows on the site: myst-nb's own formatting of ``text/plain``."""
    from myst_nb.core.variables import format_plain_text

    text = bundle.get("text/plain")
    if text is None:
        raise RenderError("has no text/plain value")
    return format_plain_text("".join(text) if isinstance(text, list) else text, spec)


def paste_any(bundle: dict, inline: bool) -> str:
    """Return Markdown or HTML showing a glued output (``{glue}`` role or directive), best format first."""
    def joined(mime):
        value = bundle[mime]
        return "".join(value) if isinstance(value, list) else value

    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in bundle:
            return f'<img src="data:{mime};base64,{joined(mime).strip()}" alt="figure"/>'
    if "image/svg+xml" in bundle:
        return joined("image/svg+xml")
    if "text/markdown" in bundle:
        return joined("text/markdown")
    if "text/latex" in bundle:
        return joined("text/latex")
    if "text/html" in bundle:
        return joined("text/html")
    if "text/plain" in bundle:
        return f"`{joined('text/plain')}`" if inline else f"```\n{joined('text/plain')}\n```"
    raise RenderError("has no output a notebook can show")


def _glued(glue: dict, key: str) -> dict:
    if "::" in key:
        raise RenderError(f"glue from another notebook ({key!r}) is not supported in the Colab copies")
    if key not in glue:
        raise RenderError(f"no code cell glued {key!r} (is the notebook executed? run `make notebooks`)")
    return glue[key]


# -- roles -----------------------------------------------------------------------------------------------------


def _title_and_target(content: str) -> tuple[str, str]:
    """Split ``text <target>`` of a cross-reference role into its parts (no text: the target twice)."""
    m = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", content, re.S)
    return (m.group(1), m.group(2)) if m and m.group(1) else (content.strip(), content.strip())


def render_role(name: str, content: str, glue: dict, citations: dict[str, tuple[str, str]]) -> str:
    """Return plain Markdown/HTML for one MyST role."""
    if name == "glue:text":
        key, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
        bundle = _glued(glue, key)
        try:
            return paste_text(bundle, spec)
        except (RenderError, ValueError, TypeError) as exc:
            raise RenderError(f"glue {key!r} cannot be shown as {{glue:text}} with format {spec!r}: {exc}") from None
    if name in ("glue", "glue:", "glue:any"):
        return paste_any(_glued(glue, content), inline=True)
    if name == "glue:md":
        key = content.rsplit(":", 1)[0] if content.count(":") == 1 else content
        return paste_any({"text/markdown": _glued(glue, key).get("text/markdown", "")}, inline=True)
    if name == "math":
        return f"${content}$"
    if name.startswith("cite"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        unknown = [k for k in keys if k not in citations]
        if unknown:
            raise RenderError(f"cite: no entry {unknown[0]!r} in book/references.bib")
        if name == "cite:t":
            return "; ".join(f"{citations[k][0]} ({citations[k][1]})" for k in keys)
        return "(" + "; ".join(f"{citations[k][0]}, {citations[k][1]}" for k in keys) + ")"
    if name in ("sub", "subscript"):
        return f"<sub>{content}</sub>"
    if name in ("sup", "superscript"):
        return f"<sup>{content}</sup>"
    if name == "kbd":
        return f"<kbd>{content}</kbd>"
    if name == "eq":
        return f"({content})"
    if name in ("ref", "numref", "doc", "term", "download", "abbr", "any", "external", "guilabel", "menuselection",
                "file", "samp", "command", "program", "dfn"):
        text, _target = _title_and_target(re.sub(r"\s*\([^()]*\)\s*$", "", content) if name == "abbr" else content)
        return text.replace("{number}", "").replace("%s", "").strip() or _target
    if name in ("code", "literal"):
        return f"`{content}`"
    return content  # an unknown role: its text


def render_roles(text: str, glue: dict, citations: dict) -> str:
    """Replace every MyST role of a Markdown line with its rendering; code spans are left as they are."""
    def one(m):
        if m.group("code"):
            return m.group(0)
        return render_role(m.group(1), m.group(2), glue, citations)

    return INLINE.sub(one, text)


# -- directives -----------------------------------------------------------------------------------------------


def _options_and_body(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split a directive's content into its ``:option: value`` lines (or a ``---`` YAML block) and its body."""
    options: dict[str, str] = {}
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            for line in lines[1:end]:
                key, _, value = line.partition(":")
                options[key.strip()] = value.strip()
            i = end + 1
    while i < len(lines) and re.match(r"^\s*:[\w-]+:", lines[i]):
        key, value = re.match(r"^\s*:([\w-]+):\s*(.*)$", lines[i]).groups()
        options[key] = value
        i += 1
    body = lines[i:]
    while body and not body[0].strip():
        body = body[1:]
    return options, body


def render_directive(name: str, arg: str, lines: list[str], glue: dict, citations: dict) -> list[str]:
    """Return the Markdown lines that stand for one MyST directive (its body already rendered)."""
    options, body = _options_and_body(lines)
    if name in CODE_DIRECTIVES:
        return [f"```{arg.strip() or options.get('language', '')}", *body, "```"]
    if name == "math":
        return ["$$", *body, "$$"]
    if name.startswith("glue"):
        key = arg.strip()
        bundle = _glued(glue, key.rsplit(":", 1)[0] if name == "glue:md" and ":" in key else key)
        shown = [paste_any(bundle, inline=False)]
        caption = [line for line in body if line.strip()]
        return shown + ([""] + caption if caption else [])
    if name in ("figure", "image"):
        alt = options.get("alt", "")
        caption = [line for line in body if line.strip()]
        return [f"![{alt}]({arg.strip()})"] + ([""] + [f"*{' '.join(c.strip() for c in caption)}*"] if caption else [])
    if name in ("toggle", "dropdown") or "dropdown" in options.get("class", "").split():
        title = arg.strip() or ADMONITIONS.get(name, "") or "Show"
        return [f"<details><summary>{title}</summary>", "", *body, "", "</details>"]
    if name in ADMONITIONS:
        title = arg.strip() if name in ("admonition", "topic", "sidebar") or arg.strip() else ADMONITIONS[name]
        if name == "epigraph" and arg.strip():
            body, title = [arg.strip(), *body], ""
        head = [f"**{title}**", ""] if title else []
        return [f"> {line}" if line.strip() else ">" for line in [*head, *body]] if (head or body) else []
    if name in ("tableofcontents", "bibliography", "contents"):
        return []
    if name == "raw" and arg.strip() == "html":
        return body
    return ([f"**{arg.strip()}**", ""] if arg.strip() else []) + body  # any other directive: title and text


def render_markdown(text: str, glue: dict | None = None, citations: dict | None = None) -> str:
    """Return ``text`` (a MyST Markdown cell) as Markdown that Jupyter and Colab render, with glued values pasted."""
    glue, citations = glue or {}, citations or {}
    lines = text.split("\n")
    return "\n".join(_render_lines(lines, glue, citations))


def _render_lines(lines: list[str], glue: dict, citations: dict) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = DIRECTIVE.match(line)
        if opening:
            fence, indent = opening["fence"], opening["indent"]
            closing = re.compile(rf"^{re.escape(indent)}[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            j = i + 1
            depth = 0
            while j < len(lines):  # a nested fence of the same kind must be longer, or a colon fence with a name
                if DIRECTIVE.match(lines[j]) and DIRECTIVE.match(lines[j])["fence"] == fence:
                    depth += 1
                elif closing.match(lines[j]):
                    if depth == 0:
                        break
                    depth -= 1
                j += 1
            inner = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1:j]]
            name = opening["name"]
            if name not in CODE_DIRECTIVES and name != "math":
                options, body = _options_and_body(inner)
                prefix = [f":{k}: {v}" for k, v in options.items()]
                inner = prefix + _render_lines(body, glue, citations)
            shown = render_directive(name, opening["arg"], inner, glue, citations)
            if shown:  # blank lines around it, so that a following paragraph is not read as part of a quote
                out += ([""] if out and out[-1].strip() else []) + [indent + ln if ln else ln for ln in shown] + [""]
            i = j + 1
            continue
        plain = CODE_FENCE.match(line)
        if plain:
            j = i + 1
            while j < len(lines) and not re.match(rf"^[ \t]*{re.escape(plain.group(1))}\s*$", lines[j]):
                j += 1
            out += lines[i:j + 1]
            i = j + 1
            continue
        if LABEL.match(line) or COMMENT.match(line) or BLOCK_BREAK.match(line):
            i += 1
            continue
        out.append(EQUATION_LABEL.sub(r"\1", render_roles(line, glue, citations)))
        i += 1
    return out


# -- citations ------------------------------------------------------------------------------------------------


def load_citations(bib: Path) -> dict[str, tuple[str, str]]:
    """Return ``{key: (authors, year)}`` of a BibTeX file, authors as the site's author-year style names them."""
    if not bib.exists():
        return {}
    from pybtex.database import parse_file

    def plain(latex: str) -> str:
        try:
            import latexcodec  # noqa: F401  (registers the "latex" codec)
            latex = latex.encode("utf-8").decode("latex")
        except (ImportError, UnicodeError):
            pass
        return latex.replace("{", "").replace("}", "")

    found = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        who = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
               else f"{names[0]} et al." if names else key)
        found[key] = (who, plain(entry.fields.get("year", "n.d.")))
    return found


# -- pictures -------------------------------------------------------------------------------------------------

IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml"}


def embed_images(text: str, folder: Path | None) -> str:
    """Inline the pictures a Markdown cell shows from files beside its notebook (``![alt](fig.png)``) as data URIs.

    Colab opens a notebook alone, without the files beside it, so a relative picture would not load there.
    """
    if folder is None:
        return text

    def one(m):
        alt, target = m.groups()
        path = folder / target
        kind = IMAGE_TYPES.get(path.suffix.lower())
        if "://" in target or target.startswith("data:") or kind is None or not path.is_file():
            return m.group(0)
        return f"![{alt}](data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"

    return IMAGE.sub(one, text)


# -- notebooks ------------------------------------------------------------------------------------------------


def render_notebook(nb, citations: dict | None = None, source: str = "", folder: Path | None = None):
    """Return a rendered copy of an executed notebook: Markdown cells in plain Markdown, glue records dropped.

    ``folder`` is where the notebook's relative pictures are (its own folder); they are embedded in the copy.
    """
    out = copy.deepcopy(nb)
    glue = glue_data(nb)
    for index, cell in enumerate(out.cells):
        if cell.cell_type == "markdown":
            try:
                cell.source = embed_images(render_markdown(cell.source, glue, citations), folder)
            except RenderError as exc:
                raise RenderError(f"{source or 'notebook'}, cell {index}: {exc}") from None
        elif cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not o.get("metadata", {}).get("scrapbook", {}).get("mime_prefix")]
    meta = out.metadata.setdefault("cnnbook", {})
    meta["rendered_copy"] = (f"generated from {source or 'the course'} by coursetools.colab for Colab and Jupyter; "
                             "never edit it: edit the source and rebuild the site")
    return out


def prose(text: str) -> str:
    """Return a Markdown cell without its code (plain fenced blocks and code spans): what a reader reads as text."""
    kept, fence, directives = [], None, []
    for line in text.split("\n"):
        if fence:
            if re.match(rf"^[ \t]*{re.escape(fence)}\s*$", line):
                fence = None
            continue
        opening = DIRECTIVE.match(line)
        if opening:
            directives.append(opening["fence"])
        elif directives and re.match(rf"^[ \t]*{re.escape(directives[-1][0])}{{{len(directives[-1])},}}\s*$", line):
            directives.pop()
        elif re.match(r"^[ \t]*(`{3,}|~{3,})", line):
            fence = re.match(r"^[ \t]*(`{3,}|~{3,})", line).group(1)
            continue
        kept.append(INLINE.sub(lambda m: "" if m.group("code") else m.group(0), line))  # roles stay, code goes
    return "\n".join(kept)


def problems(nb) -> list[str]:
    """Return what Jupyter or Colab would show as raw MyST in a notebook's Markdown cells (empty when none).

    Code is not prose: a code span or a plain fenced block may show MyST as code (a lesson about the book itself).
    """
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = prose(cell.source)
        if "{glue" in text:
            found.append(f"cell {index}: a glue role or directive: {text[text.index('{glue'):][:40]!r}")
        for m in ROLE.finditer(text):
            found.append(f"cell {index}: a MyST role {m.group(0)[:40]!r}")
        for line in text.split("\n"):
            m = DIRECTIVE.match(line)
            if m:
                found.append(f"cell {index}: a MyST directive {line.strip()[:40]!r}")
            elif LABEL.match(line):
                found.append(f"cell {index}: a MyST target {line.strip()!r}")
    return found


def write_copies(staging: Path, html: Path, notebooks: list[str], citations: dict | None = None) -> list[Path]:
    """Render each staged notebook (paths relative to ``staging``) into ``html/colab/`` and over ``html/_sources/``.

    Return the copies written. Raises :class:`RenderError` naming the notebook and cell if one cannot be rendered
    or still holds raw MyST.
    """
    folder = html / FOLDER
    written = []
    for rel in notebooks:
        nb = nbformat.read(staging / rel, as_version=4)
        rendered = render_notebook(nb, citations, source=rel, folder=(staging / rel).parent)
        left = problems(rendered)
        if left:
            raise RenderError(f"{rel}: the Colab copy still holds MyST ({left[0]}): teach coursetools.colab that "
                              "syntax")
        for target in (folder / rel, html / "_sources" / rel):
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(rendered, target)
        written.append(folder / rel)
    (folder / "README.md").write_text(
        "# Rendered notebooks of the course\n\n"
        "Generated by the site build (`coursetools/colab.py`) from the executed lessons and the student exercises: "
        "every `{glue:text}` role is replaced by its value and every other MyST construct by plain Markdown, so "
        "that Colab and Jupyter show what the book site shows. Never edit these files: edit the course's sources "
        "on its main branch.\n")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: render notebooks of the checkout into a folder, keeping their paths (see the module docstring)."""
    from coursetools.course import repo_root

    root = repo_root()
    parser = argparse.ArgumentParser(prog="python -m coursetools.colab", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="executed notebooks of the checkout (default: book/*.ipynb and notebooks/*/*.ipynb)")
    parser.add_argument("--out", type=Path, default=root / "_build" / "colab", help="where the copies go")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(root.glob("book/*.ipynb")) + sorted(
        root.glob("notebooks/*/*.ipynb"))
    citations = load_citations(root / "book" / "references.bib")
    for path in paths:
        rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        try:
            rendered = render_notebook(nbformat.read(path, as_version=4), citations, source=str(rel),
                                       folder=path.parent)
        except RenderError as exc:
            print(f"colab: {exc}", file=sys.stderr)
            return 1
        (args.out / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(rendered, args.out / rel)
    print(f"{len(paths)} rendered notebooks in {args.out} (open them with: .venv/bin/jupyter lab {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
