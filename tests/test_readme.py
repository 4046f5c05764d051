"""The README is a user's guide (issue 33): the two commands first, then what a newcomer needs, and everything it
names exists (make targets, modules and their options, files). Measurements live in benchmarks/RESULTS.md."""

import importlib.util
import re
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def readme(repo):
    return (repo / "README.md").read_text()


def test_the_two_commands_come_first(readme):
    commands = re.findall(r"^make [\w-]+$", readme, re.M)  # the commands shown alone in a code block
    assert commands[:2] == ["make all", "make test"], commands
    first_section = re.findall(r"^## (.+)$", readme, re.M)[0]
    assert first_section == "The two commands"


def test_a_newcomer_finds_each_step(readme):
    for what, needle in [("prerequisites", "### What a machine needs"), ("disk", "| disk |"),
                         ("memory", "| memory |"), ("graphviz is optional", "optional: `graphviz`"),
                         ("opening the built site", "_build/site/_build/html/index.html"),
                         ("one notebook", "python -m coursetools.runner book/"), ("one test file", "pytest -q tests/"),
                         ("clearing the cache", "rm -rf _build/cache"), ("JupyterLab", "jupyter lab"),
                         ("checking exercises", "nbgrader validate"), ("instructors", "book/instructors.md"),
                         ("forks and releases", "Releases and\nforks")]:
        assert needle in readme, f"the README does not say {what} ({needle!r})"


def test_every_make_target_and_file_it_names_exists(repo, readme):
    targets = set(re.findall(r"^([\w-]+):", (repo / "Makefile").read_text(), re.M))
    for target in set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", readme, re.M)):
        assert target in targets, f"README: `make {target}` is not a target of the Makefile"
    for path in set(re.findall(r"`((?:book|benchmarks|autograder|tests|coursetools|notebooks)/[\w./-]+|"
                               r"[A-Z]+\.md)`", readme)):
        if "NN" not in path and not path.endswith("/"):
            assert (repo / path).exists(), f"README names {path}, which does not exist"
    for module in set(re.findall(r"python -m (coursetools\.\w+)", readme)):
        assert importlib.util.find_spec(module), f"README runs {module}, which does not exist"


def test_the_runner_option_it_names_exists(repo, readme):
    assert "--no-cache" in readme
    helptext = subprocess.run([sys.executable, "-m", "coursetools.runner", "--help"], cwd=repo,
                              capture_output=True, text=True).stdout
    assert "--no-cache" in helptext


def test_measurement_history_lives_in_results(repo, readme):
    assert not re.search(r"commit `[0-9a-f]{7}`", readme), "dated measurements belong in benchmarks/RESULTS.md"
    results = (repo / "benchmarks" / "RESULTS.md").read_text()
    assert "## Current figures" in results and "<!-- current-figures" in results
    current = results.split("<!-- current-figures")[1].split("<!-- /current-figures -->")[0]
    figures = [line for line in current.splitlines() if line.startswith("- ")]
    labels = [line.split(":")[0] for line in figures]
    assert len(figures) >= 5 and len(labels) == len(set(labels)), "one current line per figure"
