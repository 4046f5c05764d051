"""Shared fixtures of the course's tests."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Hypothesis (issue 18): the suite is the same suite every run. The default profile `ci` derandomises every property
# test (the examples come from a fixed seed derived from each test) and writes no example database; `make explore`
# picks the `explore` profile: fresh random examples, many more of them, and a database that replays failures.
# A case that exploration finds goes into the test as an explicit @example.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=1_000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    """The root of the course checkout."""
    return ROOT


@pytest.fixture(scope="session")
def built_site(repo, tmp_path_factory):
    """The book site built once from the committed (executed) lessons: {"html": its folder, "staging": its sources}
    (tests/test_site.py, tests/test_colab_copies.py)."""
    import shutil

    from coursetools import site

    tmp = tmp_path_factory.mktemp("site")
    executed = tmp / "executed"
    shutil.copytree(repo / "book", executed / "book")
    index = site.build(repo, executed, tmp / "src", tmp / "out")
    return {"html": index.parent, "staging": tmp / "src"}
