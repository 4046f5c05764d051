"""The book site: Jupyter Book 1 builds with warnings as errors, has Colab buttons, pictures, and no solutions.

Built from the lessons' committed outputs (the same cells the runner executes) to keep the suite fast.
"""

import html
import re

import pytest
import yaml

from coursetools import release, site


@pytest.fixture(scope="module")
def built(built_site):
    return built_site["html"]   # tests/conftest.py: the site is built once a session


def toc_files(repo):
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.mark.slow
def test_every_notebook_page_has_an_open_in_colab_button(repo, built):
    notebooks = [f for f in toc_files(repo) if (repo / f"{f}.ipynb").exists()]
    assert any(f.startswith("notebooks/") for f in notebooks) and any(f.startswith("book/") for f in notebooks)
    for f in notebooks:
        page = (built / f"{f}.html").read_text()
        # the generated branch of rendered copies (tests/test_colab_copies.py), named in _config.yml
        url = f"https://colab.research.google.com/github/deep-cv-keras/course/blob/colab/{f}.ipynb"
        assert url in page, f"{f}.html has no Colab button to {url}"


@pytest.mark.slow
def test_site_never_shows_a_solution_or_hidden_test(repo, built):
    for page in built.rglob("*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        shown = {line.strip() for line in text.splitlines()}
        source = repo / "solutions" / page.relative_to(built / "notebooks").with_suffix(".ipynb") \
            if page.is_relative_to(built / "notebooks") else None
        secrets = release.secret_lines(source) if source else set()
        assert not (secrets & shown), f"{page} shows solution code: {sorted(secrets & shown)[:1]}"
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert not list(built.rglob("solutions*"))


@pytest.mark.slow
def test_chapter_1_page_shows_the_feature_maps(built):
    page = (built / "book" / "ch01_convolution.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
    assert len(images) >= 3, images
    for src in images:
        assert (built / "book" / src).resolve().exists(), src
    assert "feature maps: (2, 427, 640, 2)" in page


def test_missing_executed_lesson_is_one_clear_error(repo, tmp_path):
    with pytest.raises(site.SiteError, match="make notebooks"):
        site.stage(repo, tmp_path / "nothing", tmp_path / "src")
