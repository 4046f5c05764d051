"""notebooks/ is exactly what nbgrader generates from solutions/, and leaks nothing (solutions, hidden tests)."""

import json
import shutil
import subprocess
import sys

import pytest

from coursetools import release


@pytest.mark.slow
def test_released_notebooks_are_current_and_leak_nothing(repo):
    proc = subprocess.run([sys.executable, "-m", "coursetools.release", "check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_assignment_is_released(repo):
    assert release.assignments(repo) == sorted(p.name for p in (repo / "notebooks").iterdir() if p.is_dir())


def test_released_notebooks_keep_stubs_and_parameters(repo):
    for path in (repo / "notebooks").rglob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        text = "".join("".join(c["source"]) for c in cells)
        assert "raise NotImplementedError()" in text, f"{path}: no stub for students"
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells), f"{path}: no parameters cell"


def test_leak_detector_catches_a_solution_line_and_a_marker(repo, tmp_path):
    fake = tmp_path / "notebooks"
    shutil.copytree(repo / "notebooks", fake)
    victim = next(fake.rglob("*.ipynb"))
    nb = json.loads(victim.read_text())
    secret = sorted(release.secret_lines(release.source_of(victim, fake, repo)))[0]
    nb["cells"][-1]["source"] = secret + "\n### END HIDDEN TESTS"
    victim.write_text(json.dumps(nb))
    problems = release.leaks(fake, repo)
    assert any("marker" in p for p in problems) and any("solution or hidden-test code" in p for p in problems)


def test_stale_release_is_detected(repo, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(repo / "notebooks", a)
    shutil.copytree(repo / "notebooks", b)
    victim = next(b.rglob("*.ipynb"))
    victim.write_text(victim.read_text().replace("conv2d", "conv2D", 1))
    (b / "extra.ipynb").write_text("{}")
    diffs = release.differences(a, b)
    assert any("differs" in d for d in diffs) and not any("missing from notebooks" in d for d in diffs)
    assert any("extra.ipynb: not produced by nbgrader" in d for d in diffs)


def test_every_exercise_task_has_a_collapsed_hint(repo):
    # Oracle: the task headings of each source notebook ("## 1.", "## Part 2", "## Task 3", "## The task"), read by eye
    import re

    heading = re.compile(r"^## (\d+\.|Part \d|Task \d|The task)")
    tasks, missing = 0, []
    for source in sorted((repo / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(source.read_text())["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and heading.match(text):
                tasks += 1
                if "<details><summary>Hint" not in text:
                    missing.append(f"{source.parent.name}: {text.splitlines()[0]}")
    assert tasks >= 25 and missing == []
