"""The papermill runner: bad input gets a one-line message; good notebooks run; student notebooks are judged."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursetools import runner


def write_nb(path, *sources, parameters=True):
    cells = [new_code_cell('PROFILE = "sample"', metadata={"tags": ["parameters"]})] if parameters else []
    cells += [new_code_cell(s) for s in sources]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coursetools.runner", *args], capture_output=True, text=True)


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


def test_unknown_backend_is_refused_naming_the_valid_ones(tmp_path):
    nb = write_nb(tmp_path / "book" / "x.ipynb", "print(1)")
    with pytest.raises(runner.RunnerError, match="use one of tensorflow, jax, torch"):
        runner.run([nb], "sample", tmp_path / "out", tmp_path / "r.json", 60, root=tmp_path, backend="mxnet")


def test_tensorflow_only_notebook_is_skipped_on_other_backends_with_its_reason(tmp_path):
    nb = write_nb(tmp_path / "book" / "tf.ipynb", "import tensorflow")
    data = json.loads(nb.read_text())
    data["metadata"]["cnnbook"] = {"backends": ["tensorflow"], "backends_why": "tf.data pipelines"}
    nb.write_text(json.dumps(data))
    [result] = runner.run([nb], "sample", tmp_path / "out", tmp_path / "r.json", 60, root=tmp_path, backend="jax")
    assert result.status == "skipped" and "tf.data pipelines" in result.message
    assert "1 skipped, 0 failed" in runner.format_table([result])


def test_cache_key_changes_with_notebook_package_data_profile_backend_and_threads(tmp_path):
    for folder in ("cnnbook", "autograder/data"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "cnnbook" / "m.py").write_text("x = 1\n")
    (tmp_path / "autograder" / "data" / "d.npz").write_bytes(b"1")
    nb = write_nb(tmp_path / "book" / "x.ipynb", "print(1)")
    key = runner.cache_key(nb, tmp_path, "sample", "tensorflow")
    assert key == runner.cache_key(nb, tmp_path, "sample", "tensorflow")
    assert key != runner.cache_key(nb, tmp_path, "full", "tensorflow")
    assert key != runner.cache_key(nb, tmp_path, "sample", "jax")
    assert key != runner.cache_key(nb, tmp_path, "sample", "tensorflow", threads=2)   # other numbers: another run
    changes = [lambda: (tmp_path / "cnnbook" / "m.py").write_text("x = 2\n"),
               lambda: (tmp_path / "autograder" / "data" / "d.npz").write_bytes(b"2"),
               lambda: write_nb(nb, "print(2)")]
    seen = {key}
    for change in changes:
        change()
        new = runner.cache_key(nb, tmp_path, "sample", "tensorflow")
        assert new not in seen
        seen.add(new)


@pytest.mark.slow
def test_second_run_comes_from_the_cache_and_a_change_runs_again(tmp_path):
    (tmp_path / "cnnbook").mkdir()
    nb = write_nb(tmp_path / "book" / "x.ipynb", "print('hello')")
    args = ("sample", tmp_path / "out", tmp_path / "r.json", 60)
    first = runner.run([nb], *args, root=tmp_path, cache=tmp_path / "cache")
    second = runner.run([nb], *args, root=tmp_path, cache=tmp_path / "cache")
    assert [r.cached for r in first + second] == [False, True] and second[0].status == "ok"
    write_nb(nb, "print('changed')")
    third = runner.run([nb], *args, root=tmp_path, cache=tmp_path / "cache")
    assert not third[0].cached
    executed = nbformat.read(tmp_path / "out" / "book" / "x.ipynb", as_version=4)
    assert "changed" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def test_kernel_computes_on_the_threads_asked_whatever_jobs_is(tmp_path):
    """Oracle: the environment the executed notebook printed. 1 thread by default at --jobs 2; --threads 2 asked."""
    show = "import os; print([os.environ[k] for k in ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', " \
           "'OMP_NUM_THREADS')])"
    seen = {}
    for threads in (1, 2):
        nb = write_nb(tmp_path / "book" / f"t{threads}.ipynb", show)
        [result] = runner.run([nb], "sample", tmp_path / "out", tmp_path / "r.json", 60, root=tmp_path, jobs=2,
                              **({} if threads == 1 else {"threads": 2}))
        assert result.status == "ok" and result.threads == threads
        executed = nbformat.read(tmp_path / "out" / "book" / nb.name, as_version=4)
        seen[threads] = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", [])).strip()
    assert seen == {1: "['1', '1', '1']", 2: "['2', '1', '2']"}
    assert "2 threads each" in runner.format_table([result])
    with pytest.raises(runner.RunnerError, match="at least 1 thread"):
        runner.run([nb], "sample", tmp_path / "out", tmp_path / "r.json", 60, root=tmp_path, threads=0)


def test_longest_notebooks_start_first_so_that_two_workers_end_together(tmp_path):
    # Oracle: the seconds given, sorted by hand; a notebook with no known time goes first.
    seconds = {"book/a.ipynb": 10, "book/b.ipynb": 200, "solutions/c/c.ipynb": 100, "notebooks/c/c.ipynb": 90}
    paths = [tmp_path / p for p in seconds] + [tmp_path / "book" / "new.ipynb"]
    order = runner.longest_first(paths, tmp_path, seconds)
    assert [p.relative_to(tmp_path).as_posix() for p in order] == [
        "book/new.ipynb", "book/b.ipynb", "solutions/c/c.ipynb", "notebooks/c/c.ipynb", "book/a.ipynb"]


def test_expected_seconds_are_the_committed_ones_updated_by_the_last_report(tmp_path):
    committed = json.loads(runner.RUNTIMES.read_text())
    assert set(committed) == {str(p.relative_to(runner.repo_root())) for p in runner.discover(runner.repo_root())}
    assert runner.expected_seconds(tmp_path / "none.json") == committed
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [
        {"notebook": "book/ch01_convolution.ipynb", "status": "ok", "seconds": 999.0, "cached": False},
        {"notebook": "book/ch02_arithmetic.ipynb", "status": "ok", "seconds": 55.0, "cached": True},
        {"notebook": "book/ch03_counting.ipynb", "status": "FAILED", "seconds": 1.0, "cached": False}]}))
    got = runner.expected_seconds(report)
    assert got["book/ch01_convolution.ipynb"] == 999.0      # measured last time
    assert got["book/ch02_arithmetic.ipynb"] == 55.0       # a cache hit keeps the seconds of its run
    assert got["book/ch03_counting.ipynb"] == committed["book/ch03_counting.ipynb"]       # a failure says nothing
