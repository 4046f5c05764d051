"""The notebooks that Colab, Jupyter and the download button open show what the site shows (issue 33).

The site build writes a rendered copy of every notebook page (coursetools.colab). Oracles: the built site's own
HTML (the values myst-nb pasted, the buttons' addresses), Python's ``format`` for the format specs, and hand-written
Markdown for each MyST construct. The site is built as tests/test_site.py builds it, from the committed lessons.
"""

import html
import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from coursetools import colab, course, site

# Independent of coursetools.colab: what Jupyter would show raw.
RAW_ROLE = re.compile(r"\{[A-Za-z][\w:.+-]*\}`")
RAW_DIRECTIVE = re.compile(r"^\s*(```+|~~~+|:::+)\s*\{", re.M)
GLUE_TEXT = re.compile(r"\{glue:text\}`([^`]*)`")
PASTED = re.compile(r'<span class="pasted-text">(.*?)</span>', re.S)


@pytest.fixture(scope="module")
def built(built_site):
    return built_site   # tests/conftest.py: the site is built once a session


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


#: Sphinx's smartquotes turns the site's straight quotes into typographic ones (in glued text too); the copies keep
#: the value as glued, so the comparison reads both with straight quotes.
SMART = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def plain_quotes(text: str) -> str:
    return text.translate(SMART)


def pages(built) -> list[str]:
    found = site.notebook_pages(built["staging"])
    assert sum(p.startswith("book/") for p in found) >= 8 and sum(p.startswith("notebooks/") for p in found) >= 8
    return found


@pytest.mark.slow
def test_no_copy_holds_raw_myst(built):
    for rel in pages(built):
        for copy in (built["html"] / colab.FOLDER / rel, built["html"] / "_sources" / rel):
            assert copy.exists(), f"no rendered copy {copy}"
            for index, text in markdown_cells(copy):
                text = colab.prose(text)  # code spans and plain code blocks may show MyST as code
                assert "{glue" not in text, f"{copy}, cell {index}: {text[text.index('{glue'):][:60]!r}"
                assert not RAW_ROLE.search(text), f"{copy}, cell {index}: raw role {RAW_ROLE.search(text).group(0)}"
                assert not RAW_DIRECTIVE.search(text), f"{copy}, cell {index}: raw directive"
            assert colab.problems(nbformat.read(copy, as_version=4)) == []


@pytest.mark.slow
def test_pasted_values_equal_the_values_the_site_shows(built):
    roles_seen = 0
    for rel in pages(built):
        source = built["staging"] / rel  # the executed copy the site was built from
        page = (built["html"] / rel).with_suffix(".html").read_text()
        shown = iter(plain_quotes(html.unescape(v)) for v in PASTED.findall(page))
        copy = dict(markdown_cells(built["html"] / colab.FOLDER / rel))
        for index, text in markdown_cells(source):
            roles = GLUE_TEXT.findall(text)
            if not roles:
                assert copy[index] == text or RAW_ROLE.search(text) or RAW_DIRECTIVE.search(text), \
                    f"{rel}, cell {index}: a cell without MyST was changed"
                continue
            roles_seen += len(roles)
            values = [next(shown, None) for _ in roles]
            assert None not in values, f"{rel}: the page shows fewer pasted values than the lesson has glue roles"
            it = iter(values)
            expected = GLUE_TEXT.sub(lambda m: next(it), text)
            if not RAW_ROLE.search(GLUE_TEXT.sub("", text)) and not RAW_DIRECTIVE.search(text):
                assert plain_quotes(copy[index]) == plain_quotes(expected), f"{rel}, cell {index}: the copy differs from the site's values"
            else:  # other MyST in the cell too: the values, in order
                position = 0
                for value in values:
                    position = plain_quotes(copy[index]).find(value, position)
                    assert position >= 0, f"{rel}, cell {index}: {value!r} is not in the copy where the site has it"
        assert next(shown, None) is None, f"{rel}: the page pastes a value the copy does not"
    assert roles_seen >= 150, f"only {roles_seen} glue roles were checked (the lessons have about 170)"


@pytest.mark.slow
def test_colab_and_download_buttons_open_the_rendered_copies(built):
    for rel in pages(built):
        page = (built["html"] / rel).with_suffix(".html")
        text = page.read_text()
        colab_links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', text)
        assert colab_links == [course.colab_url(rel)], f"{rel}: Colab button {colab_links}"
        assert f"/blob/{course.COLAB_BRANCH}/" in colab_links[0] and course.COLAB_BRANCH != "main"
        download = re.findall(r'<a href="([^"]+\.ipynb)"[^>]*\n?\s*class="[^"]*btn-download-source-button', text)
        assert len(download) == 1, f"{rel}: no .ipynb download button"
        target = (page.parent / download[0]).resolve()
        assert target.read_bytes() == (built["html"] / colab.FOLDER / rel).read_bytes(), \
            f"{rel}: the download button offers {target}, not the rendered copy"


@pytest.mark.slow
def test_copies_keep_the_outputs_and_the_setup_cell(built):
    rel = "book/ch01_convolution.ipynb"
    source = nbformat.read(built["staging"] / rel, as_version=4)
    copy = nbformat.read(built["html"] / colab.FOLDER / rel, as_version=4)
    assert [c.cell_type for c in copy.cells] == [c.cell_type for c in source.cells]
    images = sum("image/png" in o.get("data", {}) for c in copy.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 3
    assert "colab-setup" in copy.cells[1].metadata["tags"] and f"@{course.COLAB_REF}" in copy.cells[1].source
    records = [o for c in copy.cells if c.cell_type == "code" for o in c.outputs
               if any(k.startswith(colab.GLUE_RECORD) for k in o.get("data", {}))]
    assert records == [], "papermill's glue records (invisible in Jupyter) should not be in the copy"
    readme = (built["html"] / colab.FOLDER / "README.md").read_text()
    assert "Never edit" in readme


# -- the translation, on hand-written MyST (oracle: the Markdown a reader should see) ------------------------------

GLUE = {"params": {"text/plain": "'62,378,344'"}, "ratio": {"text/plain": "3.14159"},
        "count": {"text/plain": "1234567"}}
CITES = {"lecun1998": ("LeCun et al.", "1998")}


@pytest.mark.parametrize("myst, markdown", [
    ("It has {glue:text}`params` parameters.", "It has 62,378,344 parameters."),
    ("ratio {glue:text}`ratio:.2f`, {glue:text}`ratio:.1%`", "ratio 3.14, 314.2%"),
    ("{glue:text}`count:,d` weights", "1,234,567 weights"),
    ("code `{glue:text}` stays", "code `{glue:text}` stays"),
    ("as in {cite}`lecun1998`; {cite:t}`lecun1998` said", "as in (LeCun et al., 1998); LeCun et al. (1998) said"),
    ("see {numref}`the figure <fig-x>` and {math}`a^2`", "see the figure and $a^2$"),
    ("(sec-x)=\n# Title", "# Title"),
    ("% a comment\ntext", "text"),
    ("```{note}\nBody {glue:text}`params`.\n```\nAfter.", "> **Note**\n>\n> Body 62,378,344.\n\nAfter."),
    (":::{admonition} Why?\n:class: dropdown\nBecause.\n:::", "<details><summary>Why?</summary>\n\nBecause.\n\n</details>\n"),
    ("```{math}\n:label: eq-x\nx^2\n```", "$$\nx^2\n$$\n"),
    ("```python\n{glue:text}`params`\n```", "```python\n{glue:text}`params`\n```"),
    ("$C_\\text{in}$ and $$x$$ (eq-y)", "$C_\\text{in}$ and $$x$$"),
])
def test_each_myst_construct_becomes_plain_markdown(myst, markdown):
    assert colab.render_markdown(myst, GLUE, CITES) == markdown


def test_an_unknown_glue_name_is_one_clear_error():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("{glue:text}`nowhere`")])
    with pytest.raises(colab.RenderError, match=r"ch09\.ipynb, cell 0: no code cell glued 'nowhere'.*make notebooks"):
        colab.render_notebook(nb, source="ch09.ipynb")


def test_the_checker_finds_raw_myst_and_not_latex():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) for s in (
        "{glue:text}`x`", "```{note}\nx\n```", "see {ref}`sec`", "(label)=", "$C_\\text{in} = \\frac{a}{b}$")])
    found = colab.problems(nb)
    assert [f.split(":")[0] for f in found] == ["cell 0", "cell 0", "cell 1", "cell 2", "cell 3"], found


def test_prose_drops_code_and_keeps_roles_and_directives():
    text = "a `{glue:text}` b {ref}`y`\n```python\n{glue:text}`x`\n```\n```{note}\nN\n```\n:::{tip}\nz\n:::\nend"
    assert colab.prose(text) == "a  b {ref}`y`\n```{note}\nN\n```\n:::{tip}\nz\n:::\nend"


def test_citations_come_from_the_books_bibliography(repo):
    cites = colab.load_citations(repo / "book" / "references.bib")
    assert cites["geron2019"] == ("Géron", "2019")
    assert cites["olafenwa2018"] == ("Olafenwa and Olafenwa", "2018")


# -- the one setting and the README's links --------------------------------------------------------------------

def test_the_colab_branch_and_repository_are_the_config_settings(repo):
    config = yaml.safe_load((repo / "_config.yml").read_text())["repository"]
    assert course.REPOSITORY_URL == config["url"] and course.COLAB_BRANCH == config["branch"] == "colab"
    assert course.colab_url("book/ch01_convolution.ipynb") == (
        "https://colab.research.google.com/github/deep-cv-keras/course/blob/colab/book/ch01_convolution.ipynb")


def test_a_fork_changes_one_line(repo, tmp_path):
    text = (repo / "_config.yml").read_text().replace(course.REPOSITORY_URL, "https://github.com/someone/cv-course")
    (tmp_path / "_config.yml").write_text(text)
    settings = course.repository_settings(tmp_path)
    assert settings == {"url": "https://github.com/someone/cv-course", "branch": "colab"}
    assert course.colab_url("book/a.ipynb", url=settings["url"]).endswith("/github/someone/cv-course/blob/colab/book/a.ipynb")
    (tmp_path / "_config.yml").write_text(text.replace("https://github.com/someone/cv-course", "someone/cv-course"))
    with pytest.raises(ValueError, match="https://github.com/OWNER/NAME"):
        course.repository_settings(tmp_path)


def test_readme_colab_links_open_rendered_copies_of_real_notebooks(repo):
    links = re.findall(r"https://colab\.research\.google\.com/github/[^)\s`>]+", (repo / "README.md").read_text())
    assert len(links) >= 2, "the README should link a lesson and an exercise in Colab"
    for link in links:
        path = link.split(f"/blob/{course.COLAB_BRANCH}/", 1)
        assert link.startswith(course.colab_url("")) and len(path) == 2, f"{link} does not open the rendered branch"
        assert (repo / path[1]).exists() or "<" in path[1], f"{link}: no {path[1]} in the repository"


def test_main_pushes_the_rendered_copies_as_the_colab_branch(repo):
    ci = yaml.safe_load((repo / ".github" / "workflows" / "ci.yml").read_text())
    job = ci["jobs"]["colab-branch"]
    assert "refs/heads/main" in job["if"] and "push" in job["if"] and set(job["needs"]) == {"test", "book"}
    assert job["permissions"] == {"contents": "write"}
    upload = next(s for s in ci["jobs"]["book"]["steps"] if s.get("with", {}).get("name") == "colab-notebooks")
    assert upload["with"]["path"].rstrip("/") == f"_build/site/_build/html/{colab.FOLDER}"
    download = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["name"] == "colab-notebooks"
    script = next(s["run"] for s in job["steps"] if "run" in s)
    assert f"git init -q -b {course.COLAB_BRANCH}" in script and script.rstrip().endswith(f" {course.COLAB_BRANCH}")


def test_pictures_beside_a_lesson_are_embedded_for_colab(repo):
    import base64

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "![LeNet-5](lenet5.png) and ![web](https://example.org/a.png)\n\n```{figure} vgg_block.png\n:alt: VGG\nA block.\n```")])
    cell = colab.render_notebook(nb, folder=repo / "book").cells[0].source
    embedded = re.findall(r"!\[([^\]]*)\]\(data:image/png;base64,([^)]+)\)", cell)
    assert [alt for alt, _ in embedded] == ["LeNet-5", "VGG"]
    assert base64.b64decode(embedded[0][1]) == (repo / "book" / "lenet5.png").read_bytes()
    assert "![web](https://example.org/a.png)" in cell and "*A block.*" in cell


def test_the_command_line_renders_the_committed_lessons(repo, tmp_path):
    import ast

    from coursetools.colab import main

    lesson = repo / "book" / "ch03_counting.ipynb"
    assert main([str(lesson), "--out", str(tmp_path)]) == 0
    copy = nbformat.read(tmp_path / "book" / "ch03_counting.ipynb", as_version=4)
    assert colab.problems(copy) == []
    # oracle: the glue records stored in the lesson's outputs, read as plain JSON
    records = {o["metadata"]["scrapbook"]["name"]: ast.literal_eval(o["data"][colab.GLUE_RECORD + "text/plain"])
               for c in json.loads(lesson.read_text())["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    used = {m for _, text in markdown_cells(lesson) for m in GLUE_TEXT.findall(text) if ":" not in m}
    prose = "\n".join(c.source for c in copy.cells if c.cell_type == "markdown")
    assert used and all(str(records[name]) in prose for name in used)
