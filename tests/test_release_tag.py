"""A release Colab can install (issue 33): `make release-tag` checks that the version, the setup cell and the
changelog agree, and prints how to tag, without tagging or pushing anything itself."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat

import cnnbook
from coursetools import setupcell, versioning


def small_course(root: Path, version: str, ref: str, changelog: str) -> Path:
    """A course tree with one lesson, the package version, pyproject and a changelog."""
    (root / "cnnbook").mkdir(parents=True)
    (root / "cnnbook" / "__init__.py").write_text(f'"""x"""\n\n__version__ = "{version}"\n')
    (root / "pyproject.toml").write_text(f'[project]\nname = "cnnbook"\nversion = "{version}"\n')
    (root / "CHANGELOG.md").write_text(changelog)
    (root / "book").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lesson"),
                                         nbformat.v4.new_code_cell(setupcell.setup_source(ref=ref),
                                                                   metadata={"tags": [setupcell.TAG]})])
    nbformat.write(nb, root / "book" / "ch01_x.ipynb")
    return root


def test_the_course_as_committed_is_ready_to_tag(repo):
    version, problems = versioning.check(repo)
    assert version == cnnbook.__version__ and problems == [], problems
    assert set(versioning.setup_cell_refs(repo).values()) == {f"v{cnnbook.__version__}"}
    assert versioning.changelog_versions(repo)[0] == cnnbook.__version__


def test_agreeing_versions_pass(tmp_path):
    root = small_course(tmp_path, "0.2.0", "v0.2.0", "# Changelog\n\n## 0.2.0 — later\n\n- x\n\n## 0.1.0\n")
    assert versioning.check(root) == ("0.2.0", [])


def test_each_disagreement_is_named_with_its_fix(tmp_path):
    root = small_course(tmp_path, "0.2.0", "v0.1.0", "# Changelog\n\n## 0.1.0\n")
    (root / "pyproject.toml").write_text('[project]\nname = "cnnbook"\nversion = "0.1.0"\n')
    version, problems = versioning.check(root)
    assert version == "0.2.0" and len(problems) == 3, problems
    assert "pyproject.toml says version 0.1.0" in problems[0]
    assert "does not install v0.2.0" in problems[1] and "make setup-cells" in problems[1]
    assert "CHANGELOG.md has no section `## 0.2.0`" in problems[2]


def test_a_changelog_whose_newest_section_is_another_version_fails(tmp_path):
    root = small_course(tmp_path, "0.1.0", "v0.1.0", "## 0.2.0\n\n## 0.1.0\n")
    assert versioning.check(root)[1] == ["CHANGELOG.md's newest section is 0.2.0, the package is 0.1.0"]


def test_release_tag_prints_the_commands_and_creates_no_tag(repo):
    tags_before = subprocess.run(["git", "tag", "--list"], cwd=repo, capture_output=True, text=True).stdout
    proc = subprocess.run([sys.executable, "-m", "coursetools.versioning"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tag = f"v{cnnbook.__version__}"
    assert f'git tag -a {tag} -m "cnnbook {cnnbook.__version__}"' in proc.stdout or "exists already" in proc.stdout
    assert f"git push origin {tag}" in proc.stdout
    assert subprocess.run(["git", "tag", "--list"], cwd=repo, capture_output=True, text=True).stdout == tags_before


def test_the_makefile_target_runs_the_check(repo):
    makefile = (repo / "Makefile").read_text()
    recipe = re.search(r"^release-tag:.*\n\t(.+)$", makefile, re.M)
    assert recipe and recipe.group(1).strip() == "$(PY) -m coursetools.versioning"
