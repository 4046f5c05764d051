"""Optional system packages stay optional (issue 33): graphviz and chromium.

`make graphviz-deps` (part of `make setup`, so of `make all`) is run for real on the Makefile with a PATH that holds
only what each case needs (fake `dot`, `apt-get`, `id`): it must never fail, try apt-get only where it may, and say
once how to get the diagrams. Without chromium the browser test is skipped with its reason, except on CI.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MAKE = shutil.which("make")
LOST = "chapter 5 prints each network's text summary instead of its diagram"


def fake_bin(folder: Path, uid: int = 1000, apt: bool = True, dot: bool = False) -> Path:
    """A PATH folder with bash and env, a fake `id -u`, and (optionally) a failing apt-get that logs its calls."""
    folder.mkdir()
    for tool in ("bash", "env"):
        (folder / tool).symlink_to(shutil.which(tool))
    scripts = {"id": f"echo {uid}"}
    if apt:
        scripts["apt-get"] = f'echo "$@" >> {folder / "apt.log"}; exit 100'
    if dot:
        scripts["dot"] = "exit 0"
    for name, body in scripts.items():
        (folder / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def make_graphviz_deps(repo: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "-s", "-C", str(repo), "graphviz-deps"], capture_output=True, text=True,
                          env={"PATH": str(path), "HOME": os.environ.get("HOME", "/tmp")})


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_without_apt_get_setup_says_how_to_get_the_diagrams_and_succeeds(repo, tmp_path):
    proc = make_graphviz_deps(repo, fake_bin(tmp_path / "bin", apt=False))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("sudo apt-get install graphviz") == 1 and LOST in proc.stdout, proc.stdout


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_without_the_right_to_install_apt_get_is_not_tried(repo, tmp_path):
    folder = fake_bin(tmp_path / "bin", uid=1000, apt=True)  # not root, and no sudo on this PATH
    proc = make_graphviz_deps(repo, folder)
    assert proc.returncode == 0 and "sudo apt-get install graphviz" in proc.stdout, proc.stdout + proc.stderr
    assert not (folder / "apt.log").exists(), "apt-get was run without root or sudo"


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_a_failed_install_as_root_does_not_fail_setup(repo, tmp_path):
    folder = fake_bin(tmp_path / "bin", uid=0, apt=True)
    proc = make_graphviz_deps(repo, folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (folder / "apt.log").read_text().splitlines()[0] == "update -qq"  # it tried, as root may
    assert "could not install graphviz" in proc.stdout and "sudo apt-get install graphviz" in proc.stdout


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_with_graphviz_setup_is_silent(repo, tmp_path):
    folder = fake_bin(tmp_path / "bin", uid=0, apt=True, dot=True)
    proc = make_graphviz_deps(repo, folder)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout
    assert not (folder / "apt.log").exists()


def test_a_required_package_fails_where_it_cannot_be_had(repo, tmp_path):
    # how CI uses the same script for chromium: `required` turns the note into an error
    folder = fake_bin(tmp_path / "bin", apt=False)
    proc = subprocess.run([shutil.which("bash"), str(repo / "coursetools" / "optional_apt.sh"), "chromium",
                           str(tmp_path / "no-chromium"), "the browser test is skipped", "required"],
                          capture_output=True, text=True, env={"PATH": str(folder)})
    assert proc.returncode == 1 and "chromium is required here" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_chapter_5_diagrams_fall_back_to_a_summary_without_graphviz(monkeypatch, capsys):
    keras = pytest.importorskip("keras")
    from cnnbook import models

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, name="dense")], name="tiny")
    assert models.diagram(model) is None
    out = capsys.readouterr().out
    assert "apt-get install graphviz" in out and "Total params: 27" in out  # 8*3 + 3 weights


def browser_test_run(repo: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CHROMIUM"] = "/nonexistent/chromium"
    if ci:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_browser.py"], cwd=repo, capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_without_chromium_only_the_browser_test_is_skipped_with_its_reason(repo):
    proc = browser_test_run(repo, ci=None)
    assert proc.returncode in (0, 5), proc.stdout[-2000:]  # 5: the file alone, all of it skipped
    assert "chromium is not installed (/nonexistent/chromium), so the browser test is skipped" in proc.stdout
    assert "1 skipped" in proc.stdout and "failed" not in proc.stdout and "error" not in proc.stdout


@pytest.mark.slow
def test_on_ci_a_missing_chromium_fails_the_browser_test(repo):
    proc = browser_test_run(repo, ci="true")
    assert proc.returncode != 0 and "CI must run the browser test" in proc.stdout, proc.stdout[-2000:]
    assert "skipped" not in proc.stdout.split("short test summary")[-1].lower()
    assert "Interrupted" not in proc.stdout, "a collection error would stop the rest of the suite"
