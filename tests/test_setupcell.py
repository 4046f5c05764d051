"""The Colab setup cell: present and current everywhere, pinned, inert outside Colab, and right on Colab."""

import subprocess
import sys
import types

import pytest
import yaml

from coursetools import course, setupcell


def test_every_notebook_has_the_current_setup_cell_first(repo):
    paths = setupcell.course_notebooks(repo) + sorted((repo / "notebooks").rglob("*.ipynb"))
    problems = [m for p in paths if (m := setupcell.check_setup_cell(p))]
    assert paths and not problems, "\n".join(problems)


def test_config_and_package_agree_on_repository_and_branch(repo):
    config = yaml.safe_load((repo / "_config.yml").read_text())
    assert config["repository"]["url"] == course.REPOSITORY_URL
    assert config["repository"]["branch"] == course.BRANCH
    assert course.COLAB_REF not in ("main", "master", course.BRANCH), "pin Colab to a tag or commit, not a branch"


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
