"""The book's Timings page, written by coursetools.site from the runner's report (issue 10)."""

import json
from dataclasses import asdict

import pytest

from coursetools import site
from coursetools.runner import Result


def report_of(tmp_path, results, profile="full"):
    path = tmp_path / "reports" / "timings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"profile": profile, "results": [asdict(r) for r in results]}))
    return path


def test_page_is_a_table_of_the_runners_report(tmp_path):
    report = report_of(tmp_path, [Result("book/ch01_convolution.ipynb", "lesson", "full", "ok", 61.25, 2048.4),
                                  Result("notebooks/a|b.ipynb", "student", "full", "FAILED", 3.0, 700.6, "boom")])
    page = site.write_timings_page(report, tmp_path / "staging")
    assert page == tmp_path / "staging" / "book" / "timings.md"
    lines = page.read_text().splitlines()
    assert lines[0] == "# Timings"
    assert "Profile `full`: 2 notebooks, 1 failed, 64.2 s in all." in lines
    assert "| `book/ch01_convolution.ipynb` | lesson | full | ok | 61.2 | 2048 |" in lines
    assert "| `notebooks/a\\|b.ipynb` | student | full | FAILED | 3.0 | 701 |" in lines  # a pipe cannot split a row
    header = next(line for line in lines if line.startswith("| notebook"))
    assert "wall time (s)" in header and "peak memory (MB)" in header and "profile" in header


def test_without_a_report_the_page_says_how_to_make_one(tmp_path):
    page = site.write_timings_page(tmp_path / "nothing.json", tmp_path / "staging")
    text = page.read_text()
    assert "No timing report was found" in text and "make notebooks" in text and "|" not in text


def test_a_malformed_report_is_one_clear_error(tmp_path):
    bad = tmp_path / "timings.json"
    bad.write_text(json.dumps({"profile": "sample", "results": [{"notebook": "x.ipynb"}]}))
    with pytest.raises(site.SiteError, match="not a timing report.*make notebooks"):
        site.write_timings_page(bad, tmp_path / "staging")


def test_the_page_goes_to_the_staging_folder_only(repo, tmp_path):
    site.write_timings_page(tmp_path / "nothing.json", tmp_path / "staging")
    assert not (repo / site.TIMINGS_PAGE).exists(), "book/timings.md must not be written into the checkout"
    toc = (repo / "_toc.yml").read_text()
    assert "file: book/timings" in toc
