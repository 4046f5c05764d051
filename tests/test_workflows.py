"""The GitHub Actions workflows (issue 10): they cannot run here, so they are linted and read.

Two linters from PyPI that work offline: check-jsonschema with its bundled schema of GitHub workflows (syntax, keys,
types) and zizmor (security and correctness audits, `--offline`). Then the workflows are read to check that they do
what the README promises: tests, the sample profile and the site on every push; the full profile on a GPU runner on
a schedule; the site deployed to GitHub Pages from main.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
WORKFLOWS = ".github/workflows"
ROOT = Path(__file__).resolve().parent.parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def workflow_files(repo: Path) -> list[Path]:
    return sorted((repo / WORKFLOWS).glob("*.yml"))


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def schema_errors(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True)


def zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", *map(str, paths)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def workflows(repo):
    files = workflow_files(repo)
    assert files, f"no workflow in {WORKFLOWS}"
    return {p.stem: load(p) for p in files}


def test_workflows_match_the_github_workflow_schema(repo):
    result = schema_errors(*workflow_files(repo))
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_zizmor(repo):
    result = zizmor(*workflow_files(repo))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_reject_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  test:\n    runs_on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - run: make test\n")
    assert schema_errors(bad).returncode != 0, "check-jsonschema accepted `runs_on` (the key is `runs-on`)"
    bad.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - run: make test\n")
    found = zizmor(bad)
    assert found.returncode != 0 and "unpinned" in found.stdout + found.stderr


def test_every_action_is_pinned_to_a_commit(workflows):
    for name, workflow in workflows.items():
        for step in steps(workflow):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{name}: pin {step['uses']} to a full commit hash"


def test_every_push_runs_the_tests_the_sample_profile_and_the_site(workflows):
    ci = workflows["ci"]
    assert "push" in ci["on"]
    commands = [step.get("run", "") for step in steps(ci)]
    assert "make test" in commands, "CI must run the README's test command"
    assert "make all" in commands, "CI must run the sample profile and build the site (make all)"
    uploads = [step for step in steps(ci) if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert any("_build/screenshots" in step["with"]["path"] for step in uploads), "keep the screenshots"


def test_main_deploys_the_site_to_github_pages(workflows):
    ci = workflows["ci"]
    deploy = ci["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"] and "push" in deploy["if"]
    assert set(deploy["needs"]) == {"test", "book"}, "deploy only a site whose tests passed"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    pages = [s for s in ci["jobs"]["book"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert pages and pages[0]["with"]["path"] == "_build/site/_build/html"


def test_the_gpu_jobs_run_every_notebook_in_the_full_profile_on_tensorflow_and_on_jax(workflows):
    gpu = workflows["gpu"]
    assert "schedule" in gpu["on"] and "workflow_dispatch" in gpu["on"]
    jobs = gpu["jobs"]
    assert set(jobs) == {"full", "full-jax"}
    wanted = {"full": ("make notebooks PROFILE=full", "_build/executed/"),
              "full-jax": ("make compat STACK=jax BACKEND=jax PROFILE=full", "_build/compat-jax-jax-full/")}
    for name, job in jobs.items():
        command, kept = wanted[name]
        assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
        commands = "\n".join(step.get("run", "") for step in job["steps"])
        assert command in commands and "nvidia-smi" in commands
        assert not any(step.get("continue-on-error") for step in job["steps"]), "an error must fail the job"
        upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
        assert upload["if"] == "always()", "keep the executed notebooks of a failed run too"
        assert kept in upload["with"]["path"]
    assert "_build/reports/" in jobs["full"]["steps"][-1]["with"]["path"]
    assert jobs["full-jax"]["env"]["JAX_PLATFORMS"] == "cuda", "JAX must not fall back to the CPU silently"
    # the jax stack has no TensorFlow (coursetools/stacks.toml), so this job is what a runner with JAX alone runs
    assert tomllib.loads((ROOT / "coursetools" / "stacks.toml").read_text())["jax"]["tensorflow"] == "none"


def test_every_make_target_the_workflows_call_exists(repo, workflows):
    targets = set(re.findall(r"^([\w-]+):", (repo / "Makefile").read_text(), re.M))
    for name, workflow in workflows.items():
        for step in steps(workflow):
            for target in re.findall(r"\bmake ([\w-]+)", step.get("run", "")):
                assert target in targets, f"{name}: `make {target}` is not a target of the Makefile"


def test_every_test_has_a_time_limit(request):
    # issue 32: a hung kernel must fail its test, not spend CI's 90 minutes (pytest-timeout, pyproject.toml)
    assert request.config.pluginmanager.hasplugin("timeout")
    limit = float(request.config.getini("timeout"))
    assert 0 < limit <= 1800, limit
