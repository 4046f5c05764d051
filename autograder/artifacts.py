"""Artifacts and held-out data of the trusted step: what a check reads, vetted before Keras sees it.

- the held-out splits (``heldout``), read only in the grader's processes, from ``autograder/data`` or the
  instructor's private folder (``$AUTOGRADER_HELDOUT_DIR``, the one documented override; book/instructors.md);
- the grading context (profile and held-out folder) that ``autograder.trusted.score`` sets for one submission;
- model vetting (``vet_keras_file``, ``load_model``): a student's ``.keras`` file is opened as a zip and refused
  unless it holds standard Keras objects only, then loaded with ``safe_mode=True``;
- ``Artifacts``: what each check receives (PROTOCOL §3).
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

AUTOGRADER = Path(__file__).resolve().parent
DATA_DIR = AUTOGRADER / "data"
HELDOUT_ENV = "AUTOGRADER_HELDOUT_DIR"     # an instructor's private held-out folder (documented override)
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024      # the largest artifact the grader reads
#: the sandbox's file-size limit (autograder/sandbox.py --file-mb, set by autograder/course.py): a file of exactly
#: this size was most likely cut short by it
FILE_LIMIT_BYTES = 64 * 1024 * 1024
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
#: Keras classes that run code or load other formats: never accepted from a student's file.
REFUSED_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
REBUILD_HINT = ("rebuild it from standard Keras layers only: `layers.Rescaling(1 / 255)` instead of a Lambda that "
                "divides, `layers.Activation`, `layers.Add`, `layers.Multiply`, `layers.Reshape` for the rest, and no "
                "classes of your own")



@dataclass
class GradingContext:
    """The profile whose thresholds and held-out splits grade, and the instructor's held-out folder (None: the
    default, ``$AUTOGRADER_HELDOUT_DIR`` or ``autograder/data``). Set per submission by ``trusted.score``."""

    profile: str = "sample"
    heldout: str | None = None


_context = GradingContext()


@contextlib.contextmanager
def grading_context(profile: str = "sample", heldout: str | None = None):
    """Grade with ``profile`` and the held-out folder ``heldout`` inside the block (calibration, scoring)."""
    global _context
    saved, _context = _context, GradingContext(profile or "sample", heldout or None)
    try:
        yield _context
    finally:
        _context = saved


def grading_profile() -> str:
    """The profile being graded (``grading_context``; ``sample`` outside one)."""
    return _context.profile


def heldout_dir() -> Path:
    """The folder of held-out splits: the context's, else $AUTOGRADER_HELDOUT_DIR, else autograder/data (PROTOCOL §4)."""
    private = _context.heldout or os.environ.get(HELDOUT_ENV)
    return Path(private) if private else DATA_DIR

@lru_cache(maxsize=8)
def _heldout(folder: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(folder) / f"{name}_heldout.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no held-out split {path}: put {name}_heldout.npz (arrays x, y) in "
                                f"{folder} (autograder/data/README.md), or unset {HELDOUT_ENV}")
    with np.load(path, allow_pickle=False) as f:
        return f["x"], f["y"]


#: Held-out splits of autograder/data cut from a real dataset that the ``full`` profile gives students whole.
PUBLIC_IN_FULL = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def heldout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)`` of the held-out split ``name`` (``<name>_heldout.npz``), read in the grader only.

    In the ``full`` profile students train on the whole real dataset, which holds the repository's digits and
    garments, so those splits must come from the instructor's private folder (book/instructors.md)."""
    profile = grading_profile()
    if profile != "sample" and name in PUBLIC_IN_FULL and heldout_dir() == DATA_DIR:
        raise RuntimeError(
            f"grading the {profile} profile needs a private held-out split: in that profile students train on all "
            f"of {PUBLIC_IN_FULL[name]}, which contains autograder/data/{name}_heldout.npz, so accuracy on it would "
            f"measure training images. Put {name}_heldout.npz (arrays x, y) made from images no student gets in a "
            f"folder and set {HELDOUT_ENV} to it (book/instructors.md, \"Held-out data, and your own private split\")")
    return _heldout(str(heldout_dir()), name)


# ------------------------------------------------------------------------------------------ models from artifacts


def _config_objects(node, found: list) -> None:
    """Collect every serialized object ({class_name, module, registered_name}) of a Keras config, depth first."""
    if isinstance(node, dict):
        if "class_name" in node:
            found.append(node)
        for value in node.values():
            _config_objects(value, found)
    elif isinstance(node, list):
        for value in node:
            _config_objects(value, found)


def cut_by_file_limit(path: Path, limit: int = FILE_LIMIT_BYTES) -> bool:
    """Is ``path`` as large as the sandbox's file-size limit? Then the kernel's write stopped there (SIGXFSZ)."""
    try:
        return path.stat().st_size >= limit
    except OSError:
        return False


def vet_keras_file(path: Path) -> None:
    """Refuse a ``.keras`` file that is not a plain zip of standard Keras objects (before Keras reads it)."""
    if cut_by_file_limit(path):
        raise AssertionError(f"{path.name} stops at {FILE_LIMIT_BYTES // 2**20} MB, the grader's file-size limit, so "
                             "it was cut short while it was written: make the model smaller (fewer filters or a "
                             "smaller Dense layer) so that its file stays under the limit")
    try:
        with zipfile.ZipFile(path) as archive:
            if sum(i.file_size for i in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise AssertionError(f"{path.name} unpacks to more than {MAX_UNZIPPED_BYTES // 2**20} MB: "
                                     "save a smaller model")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise AssertionError(f"{path.name} is not a Keras model file: save it with "
                             "cnnbook.submit.save_model(model, name), not by hand") from None
    objects: list = []
    _config_objects(config, objects)
    for obj in objects:
        name, module = str(obj.get("class_name")), obj.get("module")
        if name in REFUSED_CLASSES:
            raise AssertionError(f"your model uses a `{name}` layer, which runs code the grader does not load: "
                                 + REBUILD_HINT)
        if name in ("function", "__lambda__") or (module is not None and not str(module).startswith("keras")):
            what = f"{module}.{name}" if module else name
            raise AssertionError(f"your model uses `{what}`, which is not part of Keras, so the grader does not "
                                 "load it: " + REBUILD_HINT)
        registered = obj.get("registered_name")
        if registered not in (None, name) and not str(registered).startswith("keras"):
            raise AssertionError(f"your model uses the registered class `{registered}`: " + REBUILD_HINT)


def load_model(path: Path):
    """Load a student's ``.keras`` file with ``safe_mode=True`` after vetting it; AssertionError if refused."""
    import keras

    vet_keras_file(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise AssertionError(f"the grader could not load your saved model ({first}): " + REBUILD_HINT) from None


@dataclass
class Artifacts:
    """What a check receives: the kernel's artifacts folder, the assignment and the grading profile (PROTOCOL §3)."""

    folder: Path
    assignment: str
    profile: str = "sample"
    inputs_source: dict = field(default_factory=dict)   # artifact name -> INPUTS function of the check module
    notebook: object = None   # the executed submission (nbformat), for checks of the answer cells' code
    cache: Path | None = None   # a folder the grader's checks may share within a batch (None: nothing is kept)
    flags: list = field(default_factory=list)   # lines for the instructor from the check running now (no score)
    _models: dict = field(default_factory=dict, repr=False)
    _measures: dict = field(default_factory=dict, repr=False)

    def _file(self, name: str, suffix: str, made_by: str) -> Path:
        path = Path(self.folder) / f"{name}{suffix}"
        if not path.exists() and not path.is_symlink():
            raise AssertionError(f"no {name}{suffix} was handed in: the hidden test saves it with {made_by}, so run "
                                 "every cell from the top (Restart & Run All) and keep the names the exercise asks for")
        if path.is_symlink() or not path.is_file():
            raise AssertionError(f"{name}{suffix} is not a plain file: let {made_by} write it")
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            raise AssertionError(f"{name}{suffix} is {path.stat().st_size / 2**20:.0f} MB, over the "
                                 f"{MAX_ARTIFACT_BYTES // 2**20} MB the grader reads: make the model smaller")
        return path

    def flag(self, text: str) -> None:
        """Tell the instructor something about this task without changing its score (reports/ASSIGNMENT.csv)."""
        self.flags.append(str(text)[:500])

    def model(self, name: str):
        """The saved model ``name.keras``, loaded with safe_mode=True (cached)."""
        if name not in self._models:
            try:
                self._models[name] = load_model(self._file(name, ".keras", f"cnnbook.submit.save_model(model, {name!r})"))
            except AssertionError as exc:
                self._models[name] = exc
        if isinstance(self._models[name], AssertionError):
            raise AssertionError(str(self._models[name]))
        return self._models[name]

    def measure(self, name: str, metric: Callable) -> float:
        """``metric`` of the saved model ``name``, measured once per submission (each band of a task reads it)."""
        key = (name, metric)
        if key not in self._measures:
            try:
                self._measures[key] = metric(self.model(name))
            except AssertionError as exc:
                self._measures[key] = exc
        if isinstance(self._measures[key], AssertionError):
            raise AssertionError(str(self._measures[key]))
        return self._measures[key]

    def outputs(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of ``name.npz`` (saved by cnnbook.submit.save_outputs), read without pickle."""
        path = self._file(name, ".npz", f"cnnbook.submit.save_outputs({name!r}, ...)")
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except Exception:
            if cut_by_file_limit(path):
                raise AssertionError(f"{name}.npz stops at {FILE_LIMIT_BYTES // 2**20} MB, the grader's file-size "
                                     "limit, so it was cut short while it was written: save fewer or smaller "
                                     "arrays") from None
            raise AssertionError(f"{name}.npz could not be read as saved arrays: save plain numeric arrays with "
                                 "cnnbook.submit.save_outputs") from None

    def inputs(self, name: str) -> dict[str, np.ndarray]:
        """The inputs the grader chose for ``name`` (regenerated here, never read back from the kernel)."""
        if name not in self.inputs_source:
            raise KeyError(f"no INPUTS[{name!r}] in autograder/checks/{self.assignment}.py")
        return {k: np.asarray(v) for k, v in self.inputs_source[name]().items()}


