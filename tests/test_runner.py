"""The papermill runner: bad input gets a one-line message; good notebooks run; student notebooks are judged."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from cnnbook import runner


def write_nb(path, *sources, parameters=True):
    cells = [new_code_cell('PROFILE = "sample"', metadata={"tags": ["parameters"]})] if parameters else []
    cells += [new_code_cell(s) for s in sources]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cnnbook.runner", *args], capture_output=True, text=True)


def test_unknown_profile_is_one_line_naming_the_valid_ones(repo):
    proc = cli("--profile", "huge", str(repo / "book" / "ch01_convolution.ipynb"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["runner: unknown profile 'huge': use one of sample, full"]


def test_missing_file_is_one_line(repo):
    proc = cli(str(repo / "book" / "no_such_chapter.ipynb"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no such file" in proc.stderr


def test_notebook_without_parameters_cell_is_refused_before_anything_runs(tmp_path):
    nb = write_nb(tmp_path / "book" / "x.ipynb", "print(1)", parameters=False)
    with pytest.raises(runner.RunnerError, match="no cell tagged 'parameters'"):
        runner.run([nb], "sample", tmp_path / "out", tmp_path / "r.json", 60, root=tmp_path)
    assert not (tmp_path / "out").exists()


def test_file_that_is_not_json_is_one_line(tmp_path):
    bad = tmp_path / "book" / "broken.ipynb"
    bad.parent.mkdir()
    bad.write_text("not json")
    with pytest.raises(runner.RunnerError, match="not a readable notebook"):
        runner.check_notebook(bad)


def test_notebook_outside_the_course_folders_is_refused(tmp_path):
    nb = write_nb(tmp_path / "elsewhere" / "x.ipynb", "print(1)")
    with pytest.raises(runner.RunnerError, match="book/, solutions/ or notebooks/"):
        runner.kind_of(nb, tmp_path)


def err(ename):
    return {"output_type": "error", "ename": ename, "evalue": "", "traceback": []}


@pytest.mark.parametrize("errors, verdict", [
    ([], "ran without any NotImplementedError"),
    ([err("NotImplementedError")], ""),
    ([err("NotImplementedError"), err("NameError"), err("NotImplementedError")], ""),
    ([err("ImportError")], "raised ImportError"),
    ([err("NotImplementedError"), err("ValueError")], "raised ValueError"),
])
def test_student_notebook_verdict(errors, verdict):
    nb = new_notebook(cells=[new_code_cell("x")])
    nb.cells[0].outputs = errors
    assert (runner.judge_student(nb) == "") if verdict == "" else (verdict in runner.judge_student(nb))


@pytest.mark.slow
def test_run_executes_injects_profile_and_reports(tmp_path):
    good = write_nb(tmp_path / "book" / "good.ipynb", "print('profile is', PROFILE)")
    bad = write_nb(tmp_path / "solutions" / "a" / "bad.ipynb", "1 / 0")
    student = write_nb(tmp_path / "notebooks" / "a" / "stub.ipynb", "raise NotImplementedError()", "print(answer)")
    report = tmp_path / "timings.json"
    results = runner.run([good, bad, student], "full", tmp_path / "out", report, 60, root=tmp_path)
    assert [r.status for r in results] == ["ok", "FAILED", "ok"]
    assert "ZeroDivisionError" in results[1].message
    executed = nbformat.read(tmp_path / "out" / "book" / "good.ipynb", as_version=4)
    assert "profile is full" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    data = json.loads(report.read_text())
    assert data["profile"] == "full" and len(data["results"]) == 3
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 10 for r in data["results"])
