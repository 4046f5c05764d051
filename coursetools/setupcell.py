"""The Colab setup cell at the top of every notebook: one text, inserted and checked by code (see CONTRIBUTING.md).

Usage: ``python -m coursetools.setupcell write`` refreshes the cell in every notebook of the course;
``python -m coursetools.setupcell check`` exits non-zero if any notebook lacks the current cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from coursetools.course import COLAB_REF, REPOSITORY_URL, repo_root

TAG = "colab-setup"
#: Folders whose notebooks carry the cell (``notebooks/`` gets it through ``make release``).
NOTEBOOK_FOLDERS = ("book", "solutions")


def setup_source(repository_url: str = REPOSITORY_URL, ref: str = COLAB_REF) -> str:
    """Return the source of the Colab setup cell, pinned to ``ref`` (README, "Open in Colab")."""
    return f'''# Colab setup: on Google Colab, install what is missing; elsewhere this cell does nothing.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules:
    if importlib.util.find_spec("cnnbook") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "cnnbook @ git+{repository_url}@{ref}"], check=True)
    import keras, tensorflow as tf
    if int(keras.__version__.split(".")[0]) < 3:
        raise RuntimeError(f"this course needs Keras 3, Colab has {{keras.__version__}}: "
                           "Runtime > Disconnect and delete runtime, then run again")
    gpus = tf.config.list_physical_devices("GPU")
    print(f"Keras {{keras.__version__}}, TensorFlow {{tf.__version__}}, "
          f"GPU: {{gpus[0].name if gpus else 'none (Runtime > Change runtime type to add one)'}}")'''


def _cell_metadata(in_nbgrader_source: bool) -> dict:
    """Return the setup cell's metadata: tagged, and a locked read-only cell in nbgrader sources."""
    meta = {"tags": [TAG]}
    if in_nbgrader_source:
        meta["nbgrader"] = {"grade": False, "grade_id": "colab_setup", "locked": True,
                            "schema_version": 3, "solution": False, "task": False}
    return meta


def find_setup_cell(nb) -> int | None:
    """Return the index of the notebook's tagged setup cell, or None."""
    for i, cell in enumerate(nb.cells):
        if TAG in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def write_setup_cell(path: Path) -> bool:
    """Insert or refresh the setup cell right after the title cell; return True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    source = setup_source()
    meta = _cell_metadata(in_nbgrader_source="solutions" in path.parts)
    index = find_setup_cell(nb)
    if index is None:
        cell = nbformat.v4.new_code_cell(source, metadata=meta)
        position = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
        nb.cells.insert(position, cell)
    else:
        cell = nb.cells[index]
        if cell.source == source and cell.metadata == meta:
            return False
        cell.source, cell.metadata = source, meta
        cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    return True


def check_setup_cell(path: Path) -> str | None:
    """Return a one-line problem with the notebook's setup cell, or None if it is current."""
    nb = nbformat.read(path, as_version=4)
    index = find_setup_cell(nb)
    if index is None:
        return f"{path}: no cell tagged {TAG!r}; run `make setup-cells`"
    if nb.cells[index].source != setup_source():
        return f"{path}: the setup cell is out of date; run `make setup-cells`"
    if index > 1:
        return f"{path}: the setup cell is cell {index}, it must come first (after the title)"
    return None


def course_notebooks(root: Path) -> list[Path]:
    """Return every lesson and exercise-source notebook of the course."""
    return sorted(p for folder in NOTEBOOK_FOLDERS for p in (root / folder).rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``write`` or ``check`` the setup cell of every notebook."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.setupcell", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "check"])
    args = parser.parse_args(argv)
    paths = course_notebooks(repo_root())
    if args.action == "write":
        changed = [p for p in paths if write_setup_cell(p)]
        print(f"setup cell refreshed in {len(changed)} of {len(paths)} notebooks")
        return 0
    problems = [msg for p in paths if (msg := check_setup_cell(p))]
    for msg in problems:
        print(msg, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
