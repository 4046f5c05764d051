"""The Colab setup cell: present and current everywhere, pinned, inert outside Colab, and right on Colab."""

import subprocess
import sys
import types

import tomllib

import nbformat
import pytest
import yaml

import cnnbook

from coursetools import course, setupcell


def test_every_notebook_has_the_current_setup_cell_first(repo):
    paths = setupcell.course_notebooks(repo) + sorted((repo / "notebooks").rglob("*.ipynb"))
    problems = [m for p in paths if (m := setupcell.check_setup_cell(p))]
    assert paths and not problems, "\n".join(problems)


def test_the_setup_cell_installs_the_release_tag_of_the_package_version(repo):
    # oracles: the version written in pyproject.toml and the repository written in _config.yml
    config = yaml.safe_load((repo / "_config.yml").read_text())
    version = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    assert cnnbook.__version__ == version
    assert course.COLAB_REF == f"v{version}", "the setup cell's ref is 'v' + the package version"
    assert course.REPOSITORY_URL == config["repository"]["url"]
    expected = f'"cnnbook @ git+{config["repository"]["url"]}@v{version}"'
    paths = setupcell.course_notebooks(repo) + sorted((repo / "notebooks").rglob("*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        assert expected in nb.cells[setupcell.find_setup_cell(nb)].source, f"{path}: run `make setup-cells`"


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(setupcell.setup_source(), {})
    assert calls == []


def test_setup_cell_on_colab_installs_the_pinned_package_once(monkeypatch, capsys):
    calls, real_run = [], subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd) if "pip" in cmd else real_run(cmd, *a, **k))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "cnnbook" else real_find_spec(n, *a))
    exec(setupcell.setup_source(), {})
    assert len(calls) == 1
    assert calls[0][-1] == f"cnnbook @ git+{course.REPOSITORY_URL}@{course.COLAB_REF}"
    assert "Keras 3" in capsys.readouterr().out


def test_setup_cell_refuses_keras_2_on_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(__version__="2.15.0"))
    with pytest.raises(RuntimeError, match="needs Keras 3"):
        exec(setupcell.setup_source(), {})
