"""The book site as a reader sees it: every page opened in headless chromium (Debian's package), served on 127.0.0.1.

Fails on a page that does not load, a JavaScript exception, a broken same-site link or image, math that MathJax did
not typeset, or an exercise page that shows a solution. Screenshots go to ``_build/screenshots`` (CI keeps them).
The site is built as tests/test_site.py builds it, from the lessons' committed outputs. Chromium is installed by
``make browser-deps`` (``make test`` runs it first). The internet is never used: the MathJax 3 that the pages ask
of their CDN is served from the ``django-static-mathjax`` package, every other outside address is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from browser_cdp import CHROMIUM, BrowserError, Chromium
from browser_site import pages_of, problems, serve, visit
from coursetools import release, site

# Without chromium the whole file is skipped with one line that says why; on CI (CI=true) each of its tests fails
# instead (the fixture below), so CI never skips the browser test and the rest of the suite still runs.
ON_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
if not CHROMIUM.exists() and not ON_CI:
    pytest.skip(f"chromium is not installed ({CHROMIUM}), so the browser test is skipped: `make browser-deps` "
                "installs it (Debian's package), or set CHROMIUM to a chromium binary", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def chromium_on_ci():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing, and CI must run the browser test: `make browser-deps` installs it",
                    pytrace=False)

SCREENSHOTS = "_build/screenshots"
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)


def toc_files(repo: Path) -> list[str]:
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def markdown_of(source: Path) -> str:
    """The prose of a page's source (markdown cells of a notebook, or a .md file), code removed."""
    if source.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(source.read_text())["cells"]
                         if c["cell_type"] == "markdown")
    else:
        text = source.read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def tex_commands(source: Path) -> list[str]:
    """The math of a source that uses a TeX command (raw text a reader must never see), e.g. ``C_\\text{in}``."""
    found = [(a or b).strip() for a, b in MATH.findall(markdown_of(source))]
    return [tex for tex in found if "\\" in tex]


@pytest.fixture(scope="module")
def built(repo, tmp_path_factory):
    """The HTML folder of the site, built like tests/test_site.py (with the runner's report if there is one)."""
    tmp = tmp_path_factory.mktemp("browser-site")
    executed = tmp / "executed"
    shutil.copytree(repo / "book", executed / "book")
    report = repo / "_build" / "reports" / "timings.json"
    index = site.build(repo, executed, tmp / "src", tmp / "out", report if report.exists() else None)
    return index.parent


@pytest.fixture(scope="module")
def browsed(repo, built):
    """Every page of the site as chromium loaded it, the problems found, and the screenshots taken."""
    shots = repo / SCREENSHOTS
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    wanted = {"book/intro.html", "book/timings.html", "book/bibliography.html"}
    wanted |= {f"{f}.html" for f in toc_files(repo) if (repo / f"{f}.ipynb").exists()}  # lessons, exercises
    with serve(built) as address, Chromium(address) as browser:
        pages, screenshots, explorer = {}, [], None
        for rel in pages_of(built):
            pages[rel] = visit(browser, f"{address}/{rel}")
            if rel.endswith("ch02_arithmetic.html") and not pages[rel].error:
                explorer = browser.evaluate(EXPLORER_JS)
            if rel in wanted and not pages[rel].error:
                screenshots.append(browser.screenshot(shots / (rel[:-5].replace("/", "__") + ".png")))
                if pages[rel].seen["math_total"]:  # and one of the first formula, as a reader scrolls to it
                    browser.evaluate("document.querySelector('.math').scrollIntoView({block: 'center'}); true")
                    screenshots.append(browser.screenshot(shots / (rel[:-5].replace("/", "__") + "__math.png")))
        yield {"pages": pages, "problems": problems(list(pages.values()), address), "screenshots": screenshots,
               "explorer": explorer}


#: Chapter 2's explorer: set i=28, s=1, p=0, d=1, then kernel 3 and kernel 5; returns the two outputs shown.
EXPLORER_JS = """(function () {
  var root = document.getElementById("conv-explorer");
  if (!root) { return null; }
  function pick(key, value) {
    var s = root.querySelector('select[data-key="' + key + '"]');
    s.value = value; s.dispatchEvent(new Event("change"));
  }
  pick("input_length", "28"); pick("strides", "1"); pick("padding", "0"); pick("dilation_rate", "1");
  pick("kernel_size", "3");
  var first = root.querySelector(".conv-explorer-output").textContent;
  pick("kernel_size", "5");
  return JSON.stringify([first, root.querySelector(".conv-explorer-output").textContent]);
})()"""


@pytest.mark.slow
def test_chapter2_explorer_updates_the_output_when_the_kernel_changes(browsed):
    # oracle: (28 - 3) / 1 + 1 = 26 and (28 - 5) / 1 + 1 = 24, the numbers cnnbook.arithmetic put in the table
    assert browsed["explorer"] is not None, "chapter 2's page has no #conv-explorer widget (or it did not load)"
    assert json.loads(browsed["explorer"]) == ["26", "24"]


@pytest.mark.slow
def test_every_page_of_the_table_of_contents_was_opened(repo, browsed):
    opened = {rel for rel, page in browsed["pages"].items() if page.seen}
    for f in toc_files(repo):
        assert f"{f}.html" in opened, f"{f}.html was not built or did not load"
    index = browsed["pages"]["index.html"].seen  # a redirect: probed before or after it moved on
    assert index["href"].endswith("/book/intro.html") or index["refresh"].endswith("book/intro.html"), index["refresh"]


@pytest.mark.slow
def test_no_page_fails_to_load_or_has_a_broken_link_image_or_formula(browsed):
    found = browsed["problems"]
    assert not found, f"{len(found)} problems a reader would meet:\n" + "\n".join(found)


@pytest.mark.slow
def test_math_is_typeset_wherever_a_source_has_math(repo, browsed):
    with_math = 0
    for rel, page in browsed["pages"].items():
        source = next((repo / rel.replace(".html", ext) for ext in (".ipynb", ".md")
                       if (repo / rel.replace(".html", ext)).exists()), None)
        if source is None or not MATH.search(markdown_of(source)):
            continue
        with_math += 1
        seen = page.seen
        assert seen["mathjax"], f"{rel}: its source has math but MathJax did not run"
        assert seen["math_total"] > 0, f"{rel}: its source has math but the page has no math element"
        assert not seen["math_unrendered"], f"{rel}: math left as text: {seen['math_unrendered'][:3]}"
        raw = [tex for tex in tex_commands(source) if tex in seen["visible_text"]]
        assert not raw, f"{rel}: a reader sees raw TeX: {raw[:3]}"
    assert with_math >= 1, "no page with math was checked (chapter 1 has some)"


@pytest.mark.slow
def test_exercise_pages_show_the_stubs_and_never_a_solution(repo, browsed):
    exercises = {rel: page for rel, page in browsed["pages"].items() if rel.startswith("notebooks/")}
    assert exercises, "the site has no exercise page"
    for rel, page in browsed["pages"].items():
        text = page.seen["all_text"]  # hidden and folded parts included
        assert not release.MARKERS.search(text), f"{rel} shows an nbgrader solution marker"
        source = repo / "solutions" / Path(rel).relative_to("notebooks").with_suffix(".ipynb") \
            if rel.startswith("notebooks/") else None
        shown = (release.secret_lines(source) if source else set()) & {line.strip() for line in text.splitlines()}
        assert not shown, f"{rel} shows solution code: {sorted(shown)[:2]}"
    for rel, page in exercises.items():
        assert "NotImplementedError" in page.seen["visible_text"], f"{rel} does not show the students' stubs"


@pytest.mark.slow
def test_timings_page_is_in_the_reference_part(repo, browsed):
    page = browsed["pages"]["book/timings.html"].seen
    assert page["title"].startswith("Timings")
    report = repo / "_build" / "reports" / "timings.json"
    if report.exists():
        for row in json.loads(report.read_text())["results"]:
            assert row["notebook"] in page["visible_text"], f"the Timings page misses {row['notebook']}"
    else:
        assert "No timing report was found" in page["visible_text"]
    intro = browsed["pages"]["book/intro.html"].seen
    assert any(link.endswith("/book/timings.html") for link in intro["links"]), "no link to the Timings page"


@pytest.mark.slow
def test_screenshots_show_the_pages(repo, browsed):
    shots = browsed["screenshots"]
    names = {p.name for p in shots}
    assert {"book__intro.png", "book__ch01_convolution.png", "book__ch01_convolution__math.png"} <= names, names
    assert any(n.startswith("notebooks__") for n in names), names
    for path in shots:
        with Image.open(path) as image:
            assert image.size == (1280, 900), (path, image.size)
            colours = image.convert("L").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 20, f"{path} is (nearly) blank"


def broken_site(folder: Path) -> None:
    """A two-page site with one of each problem the browser test must catch."""
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "not-a-picture.png").write_text("this is text, not a PNG")
    (folder / "index.html").write_text(
        "<html><head><title>Broken</title></head><body>"
        '<a href="missing.html">a missing page</a> <a href="other.html#nowhere">a missing anchor</a> '
        '<a href="other.html#here">a good anchor</a> <img src="img/missing.png"> <img src="img/not-a-picture.png">'
        '<span class="math notranslate nohighlight">\\(C_\\text{in}\\)</span>'
        "<script>window.undefinedFunctionOfTheCourse();</script></body></html>")
    (folder / "other.html").write_text('<html><head><title>Other</title></head><body><p id="here">x</p></body></html>')


@pytest.mark.slow
def test_the_checks_catch_each_kind_of_problem(tmp_path):
    broken_site(tmp_path)
    with serve(tmp_path) as address, Chromium(address) as browser:
        pages = [visit(browser, f"{address}/{rel}") for rel in pages_of(tmp_path)]
        found = "\n".join(problems(pages, address))
    assert "link /missing.html answered HTTP 404" in found
    assert "link /other.html#nowhere points to an anchor that is not on that page" in found
    assert "#here" not in found
    assert "/img/missing.png answered HTTP 404" in found
    assert "image /img/not-a-picture.png is broken" in found
    assert "math blocks but MathJax did not start" in found and "math not rendered by MathJax" in found
    assert "JavaScript exception: TypeError" in found
    assert "/other.html:" not in found  # the sound page has no problem


def test_a_missing_chromium_is_one_clear_error(tmp_path):
    with pytest.raises(BrowserError, match="make browser-deps"):
        Chromium("http://127.0.0.1:9", binary=tmp_path / "no-chromium")
