"""Regression test of the lessons: re-execute each one and diff it with its committed outputs (pytest-notebook).

Oracle: the outputs committed in book/*.ipynb (made by `make regen-lessons` and reviewed). Numbers and tables are
compared exactly; pictures, stderr, counters and timings are masked (cnnbook.regression.DIFF_IGNORE).
"""

from pathlib import Path

import pytest
from pytest_notebook.nb_regression import NBRegressionFixture

from cnnbook.regression import DIFF_IGNORE

LESSONS = sorted((Path(__file__).resolve().parent.parent / "book").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_reproduces_its_committed_outputs(lesson, pytestconfig):
    fixture = NBRegressionFixture(
        exec_timeout=900,
        diff_ignore=DIFF_IGNORE,
        post_processors=("coalesce_streams", "cnnbook_drop_stderr"),
        force_regen=bool(pytestconfig.getoption("nb_force_regen")),
        diff_color_words=False,
    )
    fixture.check(str(lesson))
