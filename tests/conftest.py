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


#: The modules that cost minutes (measured, `make test` of 2026-12-07), heaviest first. pytest-xdist's `--dist
#: loadfile` gives each worker one module, and another whenever at most two of its tests are left; `make test` passes
#: --no-loadscope-reorder so that xdist keeps this order rather than sorting modules by their number of tests. So the
#: full-profile run (about 13 minutes of one worker) starts at once and the light modules fill the gaps at the end,
#: instead of a heavy module starting last and running alone.
HEAVY_FIRST = ("test_full_notebooks.py", "test_autograder_chapters.py", "test_autograder_corpus.py",
               "test_autograder_wrong_answers.py", "test_autograder.py", "test_autograder_class.py", "test_browser.py",
               "test_detection.py", "test_ch05_ablation.py", "test_autograder_steps.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: each module keeps its order
