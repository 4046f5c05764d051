"""Trusted checks of the exercises, one module a chapter: they run in the grader's process, never in the kernel.

Each ``chNN_slug.py`` has ``CHECKS = {grade_id: check}``; ``check(ctx)`` scores one test cell from what the kernel
handed in (``ctx.outputs(name)``, ``ctx.model(name)``: the files ``cnnbook.submit`` wrote) and from the submitted
notebook's answer cells (``ctx.answer(grade_id)``), with references it computes itself. It raises
``AssertionError`` with the student's feedback line when the cell earns nothing, and returns None, or a list of notes
for the instructor (a disagreement between the kernel's outputs and the trusted re-run), when it passes.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


class ArtifactError(AssertionError):
    """An artifact the check needs is missing or unreadable."""


@dataclass
class Context:
    """What a trusted check may read: the kernel's artifacts, the submitted notebook, the held-out data."""

    artifacts: Path
    notebook: dict
    heldout_dir: Path = REPO / "autograder" / "data"
    notes: list[str] = field(default_factory=list)

    def outputs(self, name: str) -> dict[str, np.ndarray]:
        """The arrays ``cnnbook.submit.save_outputs(name, ...)`` wrote (no pickles)."""
        path = self.artifacts / f"{name}.npz"
        if not path.is_file():
            raise ArtifactError(f"the grader found no outputs {name!r}: run every cell from the top "
                                "(Restart & Run All) so the test cells can hand in your results")
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"the outputs {name!r} cannot be read ({exc})") from None

    def model(self, name: str):
        """The model ``cnnbook.submit.save_model(model, name)`` wrote, loaded with ``safe_mode=True``."""
        import keras

        path = self.artifacts / f"{name}.keras"
        if not path.is_file():
            raise ArtifactError(f"the grader found no saved model {name!r}: run every cell from the top "
                                "(Restart & Run All) so the test cells can hand in your model")
        try:
            return keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:
            if "lambda" in str(exc).lower() or "custom" in str(exc).lower() or "unknown" in str(exc).lower():
                raise ArtifactError(f"your model {name!r} uses a Lambda or custom layer, which the grader does "
                                    "not load: rebuild it from standard Keras layers (keras.layers.*)") from None
            raise ArtifactError(f"your model {name!r} could not be loaded: {type(exc).__name__}: "
                                f"{str(exc)[:200]}") from None

    def json(self, name: str):
        """A JSON document the kernel saved as ``save_outputs(name, json=np.frombuffer(text.encode(), 'uint8'))``."""
        raw = self.outputs(name).get("json")
        if raw is None or raw.dtype != np.uint8:
            raise ArtifactError(f"the outputs {name!r} hold no JSON text")
        try:
            return json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArtifactError(f"the outputs {name!r} are not JSON ({exc})") from None

    def cells(self) -> list[dict]:
        return [c for c in self.notebook.get("cells", []) if c.get("cell_type") == "code"]

    def answer(self, grade_id: str) -> str:
        """Source of the answer cell ``grade_id`` as submitted."""
        for cell in self.cells():
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                src = cell.get("source", "")
                return "".join(src) if isinstance(src, list) else str(src)
        raise AssertionError(f"your answer cell {grade_id!r} is missing from the notebook")

    def student_cells(self, except_ids=()) -> list[tuple[str, str]]:
        """(label, source) of every code cell the student could change, but for the answer cells ``except_ids``."""
        out = []
        for n, cell in enumerate(self.cells(), 1):
            nbg = cell.get("metadata", {}).get("nbgrader", {})
            if nbg.get("locked") or nbg.get("grade_id") in except_ids:
                continue
            src = cell.get("source", "")
            out.append((f"cell {nbg.get('grade_id') or n}", "".join(src) if isinstance(src, list) else str(src)))
        return out


def chapter(assignment: str):
    """The checks module of an assignment (``ch01_convolution`` -> ``autograder.checks.ch01_convolution``)."""
    return importlib.import_module(f"{__name__}.{assignment}")


def score(assignment: str, grade_id: str, ctx: Context) -> tuple[bool, str]:
    """Run one trusted check: (passed, feedback line). Any exception is a failure with its message."""
    check = chapter(assignment).CHECKS[grade_id]
    try:
        notes = check(ctx)
    except AssertionError as exc:
        return False, str(exc)
    except Exception as exc:  # a broken artifact must not crash the grader
        return False, f"{type(exc).__name__}: {str(exc)[:300]}"
    ctx.notes += list(notes or [])
    return True, "passed"
