"""The trusted step of grading: helpers for the chapters' checks, and the nbgrader preprocessor that runs them.

Everything here runs in the grader's own process after the student's kernel has finished; no student code runs.
The contract (where checks live, their signature, the hidden cells, calibration) is `autograder/PROTOCOL.md`.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import signal
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

AUTOGRADER = Path(__file__).resolve().parent
CHECKS_DIR = AUTOGRADER / "checks"
DATA_DIR = AUTOGRADER / "data"
CALIBRATION = AUTOGRADER / "calibration.json"
if str(AUTOGRADER) not in sys.path:
    sys.path.insert(0, str(AUTOGRADER))   # check modules `import trusted`

ARTIFACTS_ENV = "CNNBOOK_ARTIFACTS"        # the kernel's artifacts folder (same name as cnnbook.submit)
INPUTS_ENV = "CNNBOOK_INPUTS"              # the grader's inputs for function tests (read by cnnbook.submit)
HELDOUT_ENV = "AUTOGRADER_HELDOUT_DIR"     # an instructor's private held-out folder
PROFILE_ENV = "AUTOGRADER_PROFILE"         # the profile whose thresholds grade (default "sample")
REPORT_ENV = "AUTOGRADER_TRUSTED_REPORT"   # where the preprocessor writes its verdicts (trusted.json)
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
#: Keras classes that run code or load other formats: never accepted from a student's file.
REFUSED_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
REBUILD_HINT = ("rebuild it from standard Keras layers only: `layers.Rescaling(1 / 255)` instead of a Lambda that "
                "divides, `layers.Activation`, `layers.Add`, `layers.Multiply`, `layers.Reshape` for the rest, and no "
                "classes of your own")


def grading_profile() -> str:
    """The profile whose thresholds and held-out splits grade: $AUTOGRADER_PROFILE, default ``sample``."""
    return os.environ.get(PROFILE_ENV, "sample")


def heldout_dir() -> Path:
    """The folder of held-out splits: the instructor's private one if set, else autograder/data (PROTOCOL §4)."""
    private = os.environ.get(HELDOUT_ENV)
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


def vet_keras_file(path: Path) -> None:
    """Refuse a ``.keras`` file that is not a plain zip of standard Keras objects (before Keras reads it)."""
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
            raise AssertionError(f"{name}.npz could not be read as saved arrays: save plain numeric arrays with "
                                 "cnnbook.submit.save_outputs") from None

    def inputs(self, name: str) -> dict[str, np.ndarray]:
        """The inputs the grader chose for ``name`` (regenerated here, never read back from the kernel)."""
        if name not in self.inputs_source:
            raise KeyError(f"no INPUTS[{name!r}] in autograder/checks/{self.assignment}.py")
        return {k: np.asarray(v) for k, v in self.inputs_source[name]().items()}


# ------------------------------------------------------------------------------------------ measurements and checks


def _with_channels(model, x: np.ndarray) -> np.ndarray:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is not None and len(shape) == x.ndim + 1:
        x = x[..., None]
    return x


def predict(model, x, batch_size: int = 500) -> np.ndarray:
    """The loaded model's outputs on ``x`` in inference mode (adds a channel axis to (N, H, W) images)."""
    x = _with_channels(model, np.asarray(x, dtype="float32"))
    try:
        out = model.predict(x, batch_size=batch_size, verbose=0)
    except Exception as exc:
        raise AssertionError(f"your saved model could not be run on the grader's images of shape {x.shape[1:]} "
                             f"({type(exc).__name__}): give it the input shape the exercise asks for") from None
    return np.asarray(out)


def accuracy(model, x, y) -> float:
    """Top-1 accuracy (a fraction) of a loaded classifier on ``(x, y)``."""
    y = np.asarray(y).ravel()
    out = predict(model, x)
    if out.ndim != 2 or out.shape[0] != len(y) or out.shape[1] <= int(y.max()):
        raise AssertionError(f"your model's output has shape {out.shape[1:]}; a classifier of these images must "
                             f"return one score per class ({int(y.max()) + 1} classes)")
    return float(np.mean(out.argmax(axis=1) == y))


def params(model) -> int:
    """Parameters of the loaded model (read from the file, not from the kernel's object)."""
    return int(model.count_params())


def macs(model) -> int:
    """Multiply-accumulates per example of the loaded model (cnnbook.counting.count)."""
    from cnnbook.counting import count

    return int(count(model).macs)


def inbound(layer) -> list:
    """The layers whose outputs a layer of a loaded functional model reads (its graph, from Keras's nodes)."""
    return [t._keras_history.operation for node in getattr(layer, "_inbound_nodes", []) for t in node.input_tensors]


def expect_budget(model, max_params: int | None = None, max_macs: int | None = None, what: str = "your model") -> None:
    """Assert the loaded model fits its parameter and MAC budgets (limits inclusive)."""
    if max_params is not None and params(model) > max_params:
        raise AssertionError(f"{what} has {params(model):,} parameters; the budget is {max_params:,} — try fewer "
                             "filters, a GlobalAveragePooling2D head, or a smaller Dense layer")
    if max_macs is not None and macs(model) > max_macs:
        raise AssertionError(f"{what} costs {macs(model):,} multiply-accumulates per image; the budget is "
                             f"{max_macs:,} — downsample earlier (strides or pooling) or use fewer filters")


# cnnbook.grading is imported when first used, not when nbgrader loads this module (its Keras-using checks import
# Keras themselves): a chapter whose checks need no Keras (``KERAS = False``) never imports TensorFlow here.
def expect_array(*args, **kwargs):
    """Compare a saved output with a reference computed here within ``atol``, naming the first differing index: the
    comparison the visible tests make (cnnbook.grading.expect_array), run in this process on the loaded artifact."""
    from cnnbook import grading

    return grading.expect_array(*args, **kwargs)


def expect_train_only(*args, **kwargs):
    """Judge a train-only augmentation from the loaded model's and base's outputs (cnnbook.grading, chapter 6)."""
    from cnnbook import grading

    return grading.judge_train_only(*args, **kwargs)


def expect_pipeline(*args, **kwargs):
    """Judge a training pipeline from the batches the kernel handed in (cnnbook.grading, chapter 6)."""
    from cnnbook import grading

    return grading.judge_pipeline(*args, **kwargs)


# ------------------------------------------------------------------------------------------ thresholds and tasks

class BelowThreshold(AssertionError):
    """A measured quality (held-out accuracy, ...) under its threshold: the student's kernel cannot foresee it, so a
    kernel that passed the cell is not flagged as disagreeing (PROTOCOL §3)."""


MARGIN = 0.005   # every reference run clears every band by half a point of accuracy (PROTOCOL §6)
#: The derived top band sits this far under the worst reference run here: room for other CPUs and thread counts
#: (an AMD EPYC without AVX-512 scored 0.2 points under this machine's runs of the same seeded reference).
DERIVE_MARGIN = 0.01


@dataclass
class QualityTask:
    """A model-quality task that calibration trains and measures (PROTOCOL §6)."""

    cells: tuple[str, ...]                      # grade_ids of the solution cells that train the model, in order
    artifact: str                               # the variable saved after them (and the artifact's name)
    metric: Callable                            # loaded model -> float, higher is better
    fixed: tuple[float, ...] = ()               # the lower bands the chapter chooses
    derive_top: bool = True                     # calibration derives the top band
    weak: dict = field(default_factory=dict)    # grade_id -> source of a plausible weak solution
    weak_name: str = ""
    unit: str = "accuracy"
    ceiling: float | None = None                # the sample profile's ceiling, if the task has one (band_check)
    over: dict = field(default_factory=dict)    # name -> {grade_id: (old, new)}: the solution cell edited into an
                                                # answer trained on what it must not see; it must land above ceiling
    honest: dict = field(default_factory=dict)  # name -> {grade_id: source}: the strongest honest answers tried, on
                                                # the allowed data only; each must stay under the ceiling


def weak_mlp(name: str, data: str, hidden: int, epochs: int) -> str:
    """The source of a plausible weak answer for calibration: ``name`` = a multilayer perceptron on 28x28x1 images
    (Flatten, Dense(hidden), Dense(10)), no convolution, fit on ``data``'s training split."""
    return (f"inputs = keras.Input((28, 28, 1))\n"
            f"x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))\n"
            f"{name} = keras.Model(inputs, layers.Dense(10, activation='softmax')("
            f"layers.Dense({hidden}, activation='relu')(x)))\n"
            f"{name}.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
            f"history = {name}.fit({data}.x_train[..., None], {data}.y_train, batch_size=64, epochs={epochs}, "
            "verbose=0)\n")


def band_check(assignment: str, task: str, band: int, metric: Callable, message: str, *,
               artifact: str | None = None, expect: Callable | None = None,
               ceiling: dict | None = None, ceiling_message: str = ""):
    """The check of one calibrated band of ``task`` (PROTOCOL §3): load the artifact, ``expect(model)`` (shape,
    budget, layers: a plain AssertionError), measure ``metric(model)``; under the band, ``BelowThreshold``.

    ``message`` is formatted with ``value`` (the measure), ``level`` (the band's), ``band`` (1-based) and
    ``params`` (the saved model's parameter count); the bands come from calibration.json alone.
    ``ceiling`` (per profile) is the most an honest answer can reach; above it, an AssertionError with
    ``ceiling_message`` (formatted with ``value`` and ``ceiling``): the model was trained on what it must not see."""
    def check(art: Artifacts) -> None:
        model = art.model(artifact or task)
        if expect is not None:
            expect(model)
        level = thresholds(assignment, task, art.profile)[band]
        value = art.measure(artifact or task, metric)
        if value < level:
            raise BelowThreshold(message.format(value=value, level=level, band=band + 1, params=params(model)))
        top = (ceiling or {}).get(art.profile)
        if top is not None and value > top:
            raise AssertionError(ceiling_message.format(value=value, ceiling=top))
    check.__name__ = f"check_{task}_band{band + 1}"
    check.trained_model = True   # it measures a model the student trained (issue 13's share of the points)
    return check


def calibration() -> dict:
    """The calibration report (autograder/calibration.json), or {} before the first calibration."""
    return json.loads(CALIBRATION.read_text()) if CALIBRATION.exists() else {}


def thresholds(assignment: str, task: str, profile: str | None = None) -> tuple[float, ...]:
    """The calibrated bands of a task for a profile (autograder/calibration.json), or an error that says how to
    calibrate them: no band is set by hand (PROTOCOL §6)."""
    profile = profile or grading_profile()
    entry = calibration().get(assignment, {}).get(task, {}).get(profile)
    if entry and "bands" in entry:
        return tuple(float(b) for b in entry["bands"])
    option = "" if profile == "sample" else f" --profile {profile}"
    raise RuntimeError(f"autograder/calibration.json has no bands for {assignment}/{task} ({profile} profile): "
                       f"run `nice -n 10 .venv/bin/python autograder/calibrate.py {assignment}{option}`"
                       + ("" if profile == "sample" else " with the downloaded datasets and your private held-out "
                          f"split in ${HELDOUT_ENV} (book/instructors.md)"))


def load_checks(assignment: str):
    """Import autograder/checks/<assignment>.py, or return None when the assignment has no trusted checks."""
    path = CHECKS_DIR / f"{assignment}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"autograder_checks_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_inputs(module, folder: Path) -> None:
    """Write each INPUTS[name]() of a check module as ``folder/name.npz`` for the kernel (PROTOCOL §5)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in getattr(module, "INPUTS", {}).items():
        np.savez(folder / f"{name}.npz", **{k: np.asarray(v) for k, v in make().items()})


def run_check(check, art: Artifacts) -> tuple[str, float, str]:
    """Run one check: ("pass"|"partial"|"below"|"fail"|"error", fraction of the points, message)."""
    try:
        got = check(art)
    except BelowThreshold as exc:
        return "below", 0.0, str(exc).strip() or "under the threshold"
    except AssertionError as exc:
        return "fail", 0.0, str(exc).strip() or "the trusted check failed"
    except Exception as exc:  # the grader's bug, not the student's: flagged for the instructor
        return "error", 0.0, f"internal grader error ({type(exc).__name__}: {str(exc)[:300]}); the instructor is told"
    if got is None:
        return "pass", 1.0, ""
    fraction = min(1.0, max(0.0, float(got)))
    return ("pass" if fraction == 1.0 else "partial"), fraction, ""


def score(assignment: str, folder, gids, notebook=None) -> dict[str, tuple[str, float, str]]:
    """Run the trusted checks ``gids`` of an assignment on one submission's artifacts folder: {gid: run_check's
    verdict}. ``notebook`` is the executed submission, for checks of the answer cells' code."""
    module = load_checks(assignment)
    checks = getattr(module, "CHECKS", {}) if module else {}
    art = Artifacts(Path(folder), assignment, grading_profile(), getattr(module, "INPUTS", {}))
    art.notebook = notebook
    return {gid: run_check(checks[gid], art) for gid in gids}


# ------------------------------------------------------------------------------------------ the scorer of a batch

SCORER_ENV = "AUTOGRADER_SCORER"   # the socket of the batch's scorer (autograder/course.py starts it)
SCORE_SECONDS = 600                # a scoring child that runs longer is killed (SIGALRM); see score_remote


def serve(path: str) -> None:
    """The scorer of a batch: import Keras once, then score each request in a forked child (PROTOCOL §8).

    ``autograder/course.py autograde`` starts one per batch, on a socket in a folder that the kernels' sandbox hides.
    Every nbgrader process would otherwise import TensorFlow again (about 5 CPU-s a submission). Each request is
    scored by a child of its own, forked after the import and before any TensorFlow operation has run (a fork after
    one deadlocks the child), so submissions share nothing: a model that crashes or corrupts the process it is loaded
    in affects only its own child, as it did when each nbgrader process scored its own. Runs until killed."""
    import socket

    import keras  # noqa: F401  (the import every child inherits; nothing here may run an operation)
    import nbformat

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    while True:
        conn, _ = server.accept()
        while True:   # reap finished children (the default SIGCHLD: the children's own subprocesses need it)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if os.fork() == 0:
            server.close()
            signal.alarm(SCORE_SECONDS)
            code = 1
            try:
                request = json.loads(_receive(conn))
                notebook = nbformat.from_dict(request["notebook"]) if request.get("notebook") else None
                verdicts = score(request["assignment"], request["folder"], request["gids"], notebook)
                conn.sendall(json.dumps(verdicts).encode())
                code = 0
            finally:
                conn.close()
                os._exit(code)
        conn.close()


def _receive(conn) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def scorer_alive(path: str) -> bool:
    """Is the scorer of socket ``path`` still running? Read from the ``pid`` file that ``course.py`` writes beside the
    socket and from /proc (an exited scorer not yet reaped is a zombie, state Z); True when there is no pid file."""
    try:
        pid = int(open(os.path.join(os.path.dirname(path), "pid")).read())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True   # it exists (someone else's): not ours to judge
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True   # no readable /proc: it exists, so keep waiting as before
    return state not in ("Z", "X")


def score_remote(path: str, assignment: str, folder, gids, notebook=None, wait: float = 60) -> dict | None:
    """Ask the batch's scorer for ``score``'s verdicts; None when it cannot answer (not running, or its child died or
    was killed after SCORE_SECONDS): the nbgrader process then scores in its own process, within the notebook's time
    limit, as it did before there was a scorer. Waits up to ``wait`` seconds for the socket, which the scorer binds
    once Keras is imported, and not at all once the scorer has exited (``scorer_alive``)."""
    import socket
    import time

    request = {"assignment": assignment, "folder": str(folder), "gids": list(gids), "notebook": notebook}
    deadline = time.monotonic() + wait
    while not os.path.exists(path) and time.monotonic() < deadline:
        if not scorer_alive(path):
            return None   # it exited before binding its socket (its log: scorer.log in the batch's folder)
        time.sleep(0.2)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(SCORE_SECONDS + 30)
            conn.connect(path)
            conn.sendall(json.dumps(request).encode())
            conn.shutdown(socket.SHUT_WR)
            answer = _receive(conn)
    except OSError:
        return None
    if not answer:
        return None
    return {gid: tuple(verdict) for gid, verdict in json.loads(answer).items()}


# ------------------------------------------------------------------------------------------ the nbgrader step

try:
    from nbformat.v4 import new_output
    from nbgrader.preprocessors.base import NbGraderPreprocessor
except ImportError:  # calibration and the checks work without nbgrader
    NbGraderPreprocessor = object


def _kernel_verdict(cell) -> tuple[bool, str]:
    """Did the cell pass in the kernel (nbgrader's rule: no error, nothing on stderr), and its error line."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return False, f"{out.get('ename', '')}: {str(out.get('evalue', '')).strip().splitlines()[0][:200]}" \
                if str(out.get("evalue", "")).strip() else str(out.get("ename", ""))
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return False, "it wrote to stderr"
    return True, ""


class TrustedChecks(NbGraderPreprocessor):
    """Score every graded cell with a registered trusted check from that check's verdict (PROTOCOL §1, §8)."""

    def preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        module = load_checks(assignment)
        checks = getattr(module, "CHECKS", {}) if module else {}
        if not checks:
            return nb, resources
        import time

        started = time.perf_counter()
        folder = Path(os.environ.get(ARTIFACTS_ENV, "artifacts"))
        graded = [cell for cell in nb.cells if cell.get("cell_type") == "code"
                  and cell.get("metadata", {}).get("nbgrader", {}).get("grade")
                  and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in checks]
        gids = [cell.metadata.nbgrader.grade_id for cell in graded]
        # the submitted answer cells go along, for the answer rules (autograder/answer_rules)
        verdicts, where = None, "by the scorer"
        if os.environ.get(SCORER_ENV):
            verdicts = score_remote(os.environ[SCORER_ENV], assignment, folder, gids, nb)
            if verdicts is None:
                self.log.warning("TrustedChecks: the batch's scorer did not answer; scoring in this process")
        if verdicts is None:
            wait_for_keras()
            verdicts, where = score(assignment, folder, gids, nb), "in this process"
        records = {}
        for cell, gid in zip(graded, gids):
            meta = cell.metadata.nbgrader
            kernel_ok, kernel_why = _kernel_verdict(cell)
            status, fraction, message = verdicts[gid]
            trusted_ok = status in ("pass", "partial")
            # a quality under its threshold is not the kernel's to foresee: only the other failures disagree
            disagree = status == "error" or (kernel_ok != trusted_ok and not (kernel_ok and status == "below"))
            outputs = [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
            if not kernel_ok:
                outputs.append(new_output("stream", name="stdout", text=f"inside your notebook: {kernel_why}\n"))
            if disagree and status != "error":
                outputs.append(new_output("stream", name="stdout", text=(
                    "note: inside your notebook this cell " + ("passed" if kernel_ok else "failed")
                    + ", but the grader's own check " + ("passed" if trusted_ok else "failed")
                    + "; the grader's check gives the score, and the instructor is told\n")))
            if status == "pass":
                outputs.append(new_output("stream", name="stdout", text="trusted check passed\n"))
            elif status == "partial":
                points = float(meta.get("points", 0)) * fraction
                outputs.append(new_output("execute_result", data={"text/plain": f"{points:g}"}, execution_count=None))
            else:
                outputs.append(new_output("error", ename="AssertionError", evalue=message, traceback=[
                    f"AssertionError (the grader's trusted check): {message}"]))
            cell.outputs = outputs
            records[gid] = {"kernel": "pass" if kernel_ok else "fail", "trusted": status, "fraction": fraction,
                            "message": message, "disagree": disagree, "scored": where}
        self.log.info("TrustedChecks: %d cells scored %s in %.1f s", len(records), where, time.perf_counter() - started)
        report = os.environ.get(REPORT_ENV)
        if report:
            path = Path(report)
            old = json.loads(path.read_text()) if path.exists() else {}
            old[resources.get("nbgrader", {}).get("notebook", "notebook")] = records
            path.write_text(json.dumps(old, indent=1))
        return nb, resources


WARM_THREAD = "trusted-warm-keras"


def needs_keras(module) -> bool:
    """Does a check module have checks that load a model (its ``KERAS`` flag, default True; PROTOCOL §2)?"""
    return module is not None and bool(getattr(module, "CHECKS", None)) and getattr(module, "KERAS", True)


def warm_keras(module) -> threading.Thread | None:
    """Import Keras in a background thread while the kernel runs, for a check module that has checks.

    TensorFlow takes seconds to import; the trusted step needs it only after the kernel has finished, and meanwhile
    the grader's process only waits on the kernel. The checks call ``wait_for_keras`` first, and so does exit. A
    check module that sets ``KERAS = False`` (its checks load no model: chapter 1) is not warmed: its grading then
    costs no TensorFlow import at all. Nor is an nbgrader process of a batch that has a scorer ($AUTOGRADER_SCORER),
    which imported Keras once for the whole batch (``serve``)."""
    if not needs_keras(module) or "keras" in sys.modules or os.environ.get(SCORER_ENV):
        return None
    thread = threading.Thread(target=importlib.import_module, args=("keras",), name=WARM_THREAD, daemon=True)
    thread.start()
    atexit.register(wait_for_keras)   # a process that ends while TensorFlow is half imported aborts (C++ terminate)
    return thread


def wait_for_keras() -> None:
    """Let ``warm_keras``'s import finish before a check runs or the process ends: a process that ended while that
    thread was still importing TensorFlow aborted ("terminate called without an active exception"), and a check
    importing TensorFlow at the same time would contend with it for the same modules."""
    for thread in threading.enumerate():
        if thread.name == WARM_THREAD and thread is not threading.current_thread():
            thread.join()


class TrustedInputs(NbGraderPreprocessor):
    """Before the kernel starts: write the grader's inputs for function tests into $CNNBOOK_INPUTS (PROTOCOL §5),
    and start importing Keras for the trusted step (``warm_keras``)."""

    def preprocess(self, nb, resources):
        module = load_checks(resources.get("nbgrader", {}).get("assignment", ""))
        if module is not None and getattr(module, "INPUTS", None) and os.environ.get(INPUTS_ENV):
            write_inputs(module, Path(os.environ[INPUTS_ENV]))
        warm_keras(module)
        return nb, resources


if __name__ == "__main__":   # python autograder/trusted.py --serve SOCKET (autograder/course.py starts it)
    if sys.argv[1:2] != ["--serve"] or len(sys.argv) != 3:
        sys.exit("usage: python autograder/trusted.py --serve SOCKET (autograder/course.py starts it per batch)")
    sys.modules.setdefault("rfc3987_syntax", None)   # as autograder/course.py's NBGRADER: no IRI checker to build
    # The checks `import trusted`: serve from that module, not from this __main__ copy, or their BelowThreshold would
    # be another class than the one run_check tells apart from a failure.
    importlib.import_module("trusted").serve(sys.argv[2])
