"""Generate the student notebooks in ``notebooks/`` from the nbgrader sources in ``solutions/`` (CONTRIBUTING.md).

``python -m coursetools.release generate`` runs ``nbgrader generate_assignment`` for every assignment and replaces
``notebooks/``; ``python -m coursetools.release check`` regenerates into a temporary folder and fails if ``notebooks/``
differs (stale) or if any released notebook leaks a solution, a hidden test or an nbgrader marker.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from coursetools.course import repo_root

MARKERS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|BEGIN MARK SCHEME")


def assignments(root: Path) -> list[str]:
    """Return the assignment names: the folders of ``solutions/`` that hold a notebook."""
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_command() -> list[str]:
    """Return the command that runs the nbgrader of this Python environment."""
    return [sys.executable, "-m", "nbgrader"]


def generate(root: Path, dest: Path) -> None:
    """Run ``nbgrader generate_assignment`` for every assignment, writing the releases under ``dest``."""
    for name in assignments(root):
        cmd = nbgrader_command() + ["generate_assignment", name, "--force", "--no-db",
                                    f"--CourseDirectory.release_directory={dest}"]
        proc = subprocess.run(cmd, cwd=root / "autograder", capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{proc.stdout}{proc.stderr}")


def secret_lines(source: Path) -> set[str]:
    """Return the non-trivial lines found only inside solution regions or hidden tests of one source notebook."""
    secret, public = set(), set()
    for cell in json.loads(source.read_text())["cells"]:
        inside = False
        for line in "".join(cell["source"]).splitlines():
            if re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)", line):
                inside = True
            elif re.search(r"END (SOLUTION|HIDDEN TESTS)", line):
                inside = False
            elif len(line.strip()) >= 12:
                (secret if inside else public).add(line.strip())
    return secret - public  # a line the author also wrote in a public cell gives nothing away


def solution_answers(source: Path) -> dict[str, str]:
    """Return {grade_id: code} of every solution cell of a source notebook, markers removed (a perfect student)."""
    answers = {}
    for cell in json.loads(source.read_text())["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines(keepends=True)
            answers[meta["grade_id"]] = "".join(line for line in lines if not re.search(r"(BEGIN|END) SOLUTION", line))
    return answers


def fill_answers(released: dict, answers: dict[str, str]) -> dict:
    """Return a copy of a released notebook (as JSON) with the given cells' sources replaced, as a student would."""
    nb = json.loads(json.dumps(released))
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


def source_of(released: Path, release_root: Path, root: Path) -> Path:
    """Return the source notebook in solutions/ that a released notebook was generated from."""
    return root / "solutions" / released.relative_to(release_root)


def leaks(release: Path, root: Path) -> list[str]:
    """Return one line per released notebook that contains a marker or a line of its solutions or hidden tests."""
    problems = []
    for path in sorted(release.rglob("*.ipynb")):
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        if MARKERS.search(text):
            problems.append(f"{path}: contains an nbgrader BEGIN/END marker")
        source = source_of(path, release, root)
        public = {line.strip() for line in text.splitlines()}
        leaked = sorted(secret_lines(source) & public) if source.exists() else []
        if leaked:
            problems.append(f"{path}: contains solution or hidden-test code, e.g. {leaked[0]!r}")
    return problems


def differences(expected: Path, actual: Path) -> list[str]:
    """Return the relative paths that differ between two release trees (missing, extra or changed)."""
    diffs = []
    names = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    names |= {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    for rel in sorted(names):
        a, b = expected / rel, actual / rel
        if not a.exists():
            diffs.append(f"{rel}: not produced by nbgrader from solutions/ (delete it)")
        elif not b.exists():
            diffs.append(f"{rel}: missing from notebooks/")
        elif not filecmp.cmp(a, b, shallow=False):
            diffs.append(f"{rel}: differs from what nbgrader generates from solutions/")
    return diffs


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate`` or ``check`` the release (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.release", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["generate", "check"])
    args = parser.parse_args(argv)
    root = repo_root()
    released = root / "notebooks"
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "notebooks"
        generate(root, fresh)
        if args.action == "generate":
            problems = leaks(fresh, root)
            if problems:
                print("\n".join(problems), file=sys.stderr)
                return 1
            shutil.rmtree(released, ignore_errors=True)
            shutil.copytree(fresh, released)
            print(f"released {len(list(released.rglob('*.ipynb')))} notebooks into {released.relative_to(root)}/")
            return 0
        problems = [f"notebooks/{d}" for d in differences(fresh, released)] + leaks(released, root)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("run `make release` to regenerate notebooks/ from solutions/", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
