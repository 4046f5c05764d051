"""The trusted step of grading (autograder/trusted.py, autograder/PROTOCOL.md) and the kernel sandbox's bounds.

Oracles: Keras's own `count_params` and `Model.predict` on models built here; nbgrader's own `determine_grade` on the
cells the trusted step rewrites; the file system and /proc as seen from inside and outside the sandbox.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
from nbgrader.utils import determine_grade

REPO = Path(__file__).resolve().parent.parent
from autograder import calibrate, preprocessors, sandbox, scorer, trusted  # noqa: E402

SOLUTION = REPO / "solutions" / "ch05_architectures" / "ch05_architectures_exercises.ipynb"


def small_model(extra=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs) if extra is None else extra(inputs)
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3, strides=4)(x))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_a_standard_model_loads_with_the_kernels_parameters_and_outputs(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.keras")
    loaded = trusted.Artifacts(tmp_path, "x").model("m")
    x = np.random.default_rng(0).integers(0, 255, (5, 28, 28)).astype("float32")
    assert trusted.params(loaded) == model.count_params()                    # oracle: Keras's count_params
    np.testing.assert_allclose(trusted.predict(loaded, x), model.predict(x[..., None], verbose=0), atol=1e-6)
    assert trusted.macs(loaded) == 7 * 7 * 9 * 2 + 98 * 10                     # conv 7x7x2 outputs x 9, dense 98x10


def test_the_bands_of_a_task_measure_the_saved_model_once(tmp_path, monkeypatch):
    small_model().save(tmp_path / "m.keras")
    art, calls = trusted.Artifacts(tmp_path, "x"), []

    def metric(model):
        calls.append(model)
        return 0.5

    monkeypatch.setattr(trusted, "calibration", lambda: {"x": {"m": {"sample": {"bands": [0.1, 0.4, 0.9]}}}})
    bands = [trusted.band_check("x", "m", i, metric, "{value} < {level}") for i in range(3)]
    bands[0](art)
    bands[1](art)
    with pytest.raises(trusted.BelowThreshold, match="0.5 < 0.9"):
        bands[2](art)
    assert len(calls) == 1      # three bands, one prediction pass over the held-out data


def test_a_lambda_layer_is_refused_with_how_to_rebuild_it(tmp_path):
    small_model(lambda t: keras.layers.Lambda(lambda v: v / 255.0)(t)).save(tmp_path / "m.keras")
    with pytest.raises(AssertionError, match=r"`Lambda` layer.*Rescaling"):
        trusted.Artifacts(tmp_path, "x").model("m")


def test_a_custom_layer_is_refused_before_keras_reads_it(tmp_path):
    @keras.saving.register_keras_serializable(package="student")
    class Cheat(keras.layers.Layer):
        def call(self, v):
            return v

    try:
        small_model(lambda t: Cheat()(t)).save(tmp_path / "m.keras")
        with pytest.raises(AssertionError, match="not part of Keras|registered class"):
            trusted.Artifacts(tmp_path, "x").model("m")
    finally:
        keras.saving.get_custom_objects().pop("student>Cheat", None)


def test_missing_fake_and_linked_artifacts_are_told_apart(tmp_path):
    art = trusted.Artifacts(tmp_path, "x")
    with pytest.raises(AssertionError, match="no best_model.keras was handed in.*Restart & Run All"):
        art.model("best_model")
    (tmp_path / "fake.keras").write_text("not a zip")
    with pytest.raises(AssertionError, match="not a Keras model file"):
        art.model("fake")
    (tmp_path / "held.npz").symlink_to(REPO / "autograder" / "data" / "mnist_heldout.npz")
    with pytest.raises(AssertionError, match="not a plain file"):
        art.outputs("held")


def test_calibration_derives_the_top_band_and_enforces_margin_and_weak_rule():
    task = trusted.QualityTask(cells=(), artifact="m", metric=None, fixed=(0.955, 0.965))
    bands, problems = calibrate.derive(task, [0.982, 0.980, 0.9785], [0.94, 0.95])
    assert bands == [0.955, 0.965, 0.968] and problems == []    # 0.9785 - 0.01 = 0.9685, down to 0.1 point
    _, problems = calibrate.derive(task, [0.968, 0.99], [0.94])
    assert any("margin" in p for p in problems)                  # 0.968 clears 0.965 by 0.3 points only
    _, problems = calibrate.derive(task, [0.99, 0.99], [0.985])
    assert any("weak" in p for p in problems)
    capped = trusted.QualityTask(cells=(), artifact="m", metric=None, ceiling=0.94)   # chapter 7's rule
    assert calibrate.derive(capped, [0.82, 0.85], [0.5], [0.953, 0.986])[1] == []
    assert any("best reference run" in p for p in calibrate.derive(capped, [0.82, 0.937], [0.5], [0.99])[1])
    assert any("reaches only 0.9430" in p for p in calibrate.derive(capped, [0.82, 0.85], [0.5], [0.943, 0.99])[1])
    # an honest answer (allowed data only) must stay under the ceiling by the margin: 0.9302 does, 0.9370 does not
    assert calibrate.derive(capped, [0.82, 0.85], [0.5], [0.953, 0.986], [0.9302, 0.8912])[1] == []
    assert any("an honest answer" in p and "0.9370" in p
               for p in calibrate.derive(capped, [0.82, 0.85], [0.5], [0.953, 0.986], [0.9370])[1])


def test_a_full_profile_calibration_keeps_the_sample_entry_and_then_grades_full(monkeypatch):
    # Oracle: the report written by hand below
    report = {"ch07_transfer": {"fine_tuned": {"sample": {"bands": [0.807]}}}}
    calibrate.merge(report, "ch07_transfer", {"fine_tuned": {"full": {"bands": [0.912]}}}, "full", {"seeds": 5})
    assert report == {"ch07_transfer": {"fine_tuned": {"sample": {"bands": [0.807]},
                                                       "full": {"bands": [0.912], "seeds": 5}}}}
    monkeypatch.setattr(trusted, "calibration", lambda: report)
    assert trusted.thresholds("ch07_transfer", "fine_tuned", "full") == (0.912,)
    assert trusted.thresholds("ch07_transfer", "fine_tuned", "sample") == (0.807,)
    monkeypatch.setattr(trusted, "calibration", lambda: {})
    with pytest.raises(RuntimeError, match="--profile full` with the downloaded datasets"):
        trusted.thresholds("ch07_transfer", "fine_tuned", "full")


def test_calibration_runs_the_answers_on_both_sides_of_the_ceiling_in_the_sample_profile_only(monkeypatch):
    # Oracle: a stand-in trainer that returns the value each kind of answer was given by hand (no kernel runs)
    def trained(assignment, task, seed, threads, weak, over="", honest="", profile="sample"):
        return 0.97 if over else 0.93 if honest else 0.5 if weak else 0.82 + seed / 100
    monkeypatch.setattr(calibrate, "run_notebook", trained)
    entry, problems = calibrate.calibrate("ch07_transfer", 2, [1], quick=False)
    ceiling = entry["fine_tuned"]["sample"]["ceiling"]
    assert problems == [] and entry["fine_tuned"]["sample"]["bands"] == [0.81]
    # one answer over the ceiling, seeds 0 and 1: x_val (the re-run's namespace has no x_new, and the rule names it)
    assert [r["value"] for r in ceiling["over"]] == [0.97] * 2 and "x_val" in ceiling["over"][0]["name"]
    assert [r["value"] for r in ceiling["honest"]] == [0.93] * 2 and ceiling["honest"][0]["name"].startswith("jitter")
    entry, problems = calibrate.calibrate("ch07_transfer", 2, [1], quick=False, profile="full")
    assert problems == [] and set(entry["fine_tuned"]) == {"full"} and "ceiling" not in entry["fine_tuned"]["full"]


def test_ch07_calibration_trains_the_model_the_grader_scores_its_rerun(monkeypatch, tmp_path):
    # Oracle: a stand-in for the check module's re-run (RERUN) that records what it was asked and hands back a model
    # built here, whose held-out accuracy the check's own metric gives
    module = trusted.load_checks("ch07_transfer")
    task = module.TASKS["fine_tuned"]
    asked = []

    def train(cells, seed, threads, profile, keep, cache):
        asked.append((cells, seed, threads, profile))
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((28, 28, 1))
        model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs)))
        model.save(keep / "model.keras")
        return keep / "model.keras"

    monkeypatch.setitem(module.RERUN, "model", train)
    over = next(iter(task.over))
    value = calibrate.run_notebook("ch07_transfer", task, 3, 2, weak=False, over=over)
    cells, seed, threads, profile = asked[0]
    assert (seed, threads, profile) == (3, 2, "sample") and set(cells) == set(task.cells)
    assert "model.fit(np.concatenate([x_few, x_val])" in cells["fine_tune"]
    assert value == module.heldout_accuracy(trusted.load_model(train(cells, 3, 2, "sample", tmp_path, None)))
    calibrate.run_notebook("ch07_transfer", task, 0, 1, weak=True)
    assert asked[-1][0]["fine_tune"] == task.weak["fine_tune"]


@pytest.mark.skipif(not sandbox.namespaces_available(), reason="warm re-runs need the sandbox's namespaces")
def test_ch07_a_warm_rerun_interpreter_keeps_nothing_of_one_job_for_the_next(tmp_path):
    # Oracle: what each job computes by itself, and the launcher of the slot's interpreter (its pid file and /proc)
    from autograder.answer_rules import rerun

    warm = rerun.Warm(("numpy",), 1024, 20, 16, ())

    def job(source):
        out = warm.run(source, [], [["=value", [], {}]], None, None, None, ())
        assert out is not None, "no warm interpreter took the job"
        return out["results"][0].get("value"), warm._pid(0)

    hostile = textwrap.dedent("""\
        import os, signal, time
        here = os.path.abspath(".")
        if os.fork() == 0:            # left behind to plant a file in the next job's folder (the same path)
            os.setsid()
            for _ in range(3000):     # (until killed: the interpreter's end of job would wait for it)
                time.sleep(0.1)
                try:
                    open(os.path.join(here, "leftover"), "w").close()
                except OSError:
                    pass
            os._exit(0)
        for sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                os.kill(1, sig)           # the interpreter itself
            except OSError:
                pass
        value = os.getpid()
        """)
    first, pid = job(hostile)
    assert isinstance(first, int) and first != 1 and pid is not None
    second, same = job("import os, time\ntime.sleep(2)\nvalue = sorted(os.listdir('.'))\n")
    assert second == ["job.json", "stderr"] and same == pid          # the leftover process was killed; the interpreter lives on
    planted, _ = job("import os\nopen(os.path.join(os.environ['HOME'], '..', 'home', 'planted'), 'w').close()\n"
                     "value = 3\n")
    assert planted == 3 and warm._pid(0) is None           # the slot changed: that interpreter is gone
    fourth, fresh = job("value = 4\n")
    assert fourth == 4 and fresh not in (None, pid)
    assert not (warm.base / "0" / "home" / "planted").exists()
    warm._kill(0)


def test_a_cell_that_never_ends_is_run_once_and_a_call_that_hangs_is_not_remembered(monkeypatch):
    # Oracle: the re-runs actually launched (rerun._run_once, counted) and what each call returns by itself. Chapter 1's
    # corpus case `infiniteloop` re-ran for the full timeout once per test cell before this was remembered.
    from autograder.answer_rules import rerun

    launched = []
    real = rerun._run_once
    monkeypatch.setattr(rerun, "_run_once", lambda source, *a, **k: launched.append(source) or real(source, *a, **k))
    monkeypatch.setattr(rerun, "_NEVER_ENDED", {})
    never_ends = "def f(x):\n    return x\nwhile True:\n    pass\n"
    for calls in ([["f", [1], {}]], [["f", [2], {}]]):
        assert rerun.run(never_ends, [], calls, timeout=3) == {"failed": "your answer cell, run alone, took longer "
                                                                         "than 3 s"}
    assert launched == [never_ends]                  # the second job was answered without running it again
    hangs_on_one = "import time\ndef f(x):\n    if x:\n        time.sleep(60)\n    return x\n"
    assert "took longer than 3 s" in rerun.run(hangs_on_one, [], [["f", [1], {}]], timeout=3)["failed"]
    assert rerun.run(hangs_on_one, [], [["f", [0], {}]], timeout=3) == {"results": [{"value": 0}]}
    assert launched == [never_ends, hangs_on_one, hangs_on_one]   # a call that hangs is not the cell's fault


def test_chapter7_names_an_honest_answer_that_calibration_runs_on_x_few_alone():
    # Oracle: the exercise's rule (50 labels: x_few, y_few; x_val for validation only), read in the source below
    task = trusted.load_checks("ch07_transfer").TASKS["fine_tuned"]
    [(name, cells)] = task.honest.items()
    source = cells["fine_tune"]
    assert "x_new" not in source and "np.concatenate([x_few, x_val" not in source
    fits = [line for line in source.splitlines() if ".fit(" in line]
    assert fits and all("model.fit(x_aug, y_aug, validation_data=(x_val, y_val)" in f for f in fits)
    assert "np.tile(y_few" in source and "x_few" in source.split("x_aug =")[1].split("\n")[0]


def graded_cell(gid, outputs, points=1):
    cell = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": {"grade": True, "grade_id": gid, "points": points,
                                                                     "solution": False, "locked": True}})
    cell.outputs = outputs
    return cell


def test_the_trusted_verdict_sets_the_score_and_a_disagreement_is_told_and_recorded(tmp_path, monkeypatch):
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "demo.py").write_text(textwrap.dedent("""
        from autograder import trusted
        def passes(art):
            return None
        def fails(art):
            raise AssertionError("accuracy 91.0 %, the band needs 97.0 %")
        def half(art):
            return 0.5
        def broken(art):
            return 1 / 0
        def below(art):
            raise trusted.BelowThreshold("96.0 % on the held-out digits, band 3 needs 96.9 %")
        CHECKS = {"a": passes, "b": fails, "c": half, "d": broken, "e": lambda art: art.model("absent"), "f": below}
    """))
    monkeypatch.setattr(trusted, "CHECKS_DIR", checks)
    demo = types.ModuleType("autograder.checks.demo")
    exec(compile((checks / "demo.py").read_text(), str(checks / "demo.py"), "exec"), demo.__dict__)
    monkeypatch.setitem(sys.modules, "autograder.checks.demo", demo)   # what load_checks imports
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="visible check failed", traceback=[])
    ok = nbformat.v4.new_output("stream", name="stdout", text="fine\n")
    nb = nbformat.v4.new_notebook(cells=[graded_cell("a", [error]), graded_cell("b", [ok]), graded_cell("c", [], 2),
                                         graded_cell("d", []), graded_cell("e", []), graded_cell("f", [ok]),
                                         graded_cell("untouched", [ok])])
    step = preprocessors.TrustedChecks(artifacts_dir=str(tmp_path / "artifacts"), report=str(tmp_path / "trusted.json"))
    nb, _ = step(nb, {"nbgrader": {"assignment": "demo", "notebook": "demo"}})
    scores = [determine_grade(c)[0] for c in nb.cells]          # oracle: nbgrader's own scoring of a cell
    assert scores == [1, 0, 1, 0, 0, 0, 1]
    assert "the grader's own check passed" in nb.cells[0].outputs[-2].text
    assert nb.cells[1].outputs[-1].evalue == "accuracy 91.0 %, the band needs 97.0 %"
    assert "internal grader error" in nb.cells[3].outputs[-1].evalue
    assert "no absent.keras was handed in" in nb.cells[4].outputs[-1].evalue
    record = json.loads((tmp_path / "trusted.json").read_text())["demo"]
    assert {g: r["disagree"] for g, r in record.items()} == {"a": True, "b": True, "c": False, "d": True, "e": True,
                                                             "f": False}   # under a band: not the kernel's to know


def test_every_registered_check_names_a_graded_cell_of_its_assignment():
    for path in sorted(trusted.CHECKS_DIR.glob("ch*.py")):
        module = trusted.load_checks(path.stem)
        source = next((REPO / "solutions" / path.stem).glob("*.ipynb"))
        graded = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nbformat.read(source, 4).cells
                  if c.metadata.get("nbgrader", {}).get("grade")}
        assert set(module.CHECKS) <= graded, (path.name, set(module.CHECKS) - graded)
        assert all(callable(f) for f in module.CHECKS.values())
        for task in getattr(module, "TASKS", {}).values():
            ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nbformat.read(source, 4).cells}
            assert set(task.cells) <= ids


def test_at_least_40_percent_of_the_points_grade_a_model_the_student_trained():
    # Oracle: the points in the source notebooks (nbgrader's max_score), and the checks that measure a saved,
    # trained model on held-out data or read its budget from the file (marked trained_model in autograder/checks).
    total = trained = 0
    for source in sorted((REPO / "solutions").glob("*/*.ipynb")):
        module = trusted.load_checks(source.parent.name)
        checks = getattr(module, "CHECKS", {}) if module else {}
        for cell in nbformat.read(source, 4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                total += meta.get("points", 0)
                trained += meta.get("points", 0) if getattr(checks.get(meta["grade_id"]), "trained_model", False) else 0
    assert trained / total >= 0.40, f"{trained} of {total} points grade a trained model"


#: (assignment, task, the grade_id of the cell that shows the task's bands to the student)
SHOWN_BANDS = [("ch04_training", "fashion_model", "bands"), ("ch05_architectures", "best_model", "bands"),
               ("ch07_transfer", "fine_tuned", "setup"), ("ch07_transfer", "lite0", "lite0_data"),
               ("ch08_inside", "fgsm", "setup"),
               ("ch09_detection", "box_model", "box_bands"),
               ("ch09_detection", "unet", "unet_bands")]


@pytest.mark.parametrize("assignment, task, grade_id", SHOWN_BANDS)
def test_the_notebook_shows_the_graders_bands(assignment, task, grade_id):
    # Oracle: the bands the grader uses, calibration.json's; a profile not calibrated yet (full: it needs the downloaded
    # data) is not graded, and the grader says how to calibrate it
    source = next((REPO / "solutions" / assignment).glob("*.ipynb"))
    cell = next(c for c in nbformat.read(source, 4).cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    for profile in ("sample", "full"):
        calibrated = trusted.calibration().get(assignment, {}).get(task, {}).get(profile, {}).get("bands")
        if calibrated is None:
            assert profile != "sample", "every sample band is calibrated"
            with pytest.raises(RuntimeError, match=f"autograder.calibrate {assignment} --profile full"):
                trusted.thresholds(assignment, task, profile)
            continue
        expected = tuple(calibrated)
        assert trusted.thresholds(assignment, task, profile) == expected
        shown = re.search(rf"{profile}=\(([^)]*)\)", cell.source).group(1)
        assert tuple(float(v) for v in shown.split(",") if v.strip()) == expected, profile


def test_ch07_notebook_shows_the_graders_ceiling():
    # Oracle: CEILING of autograder/checks/ch07_transfer.py (students on Colab see only the notebook)
    ceiling = trusted.load_checks("ch07_transfer").CEILING
    source = REPO / "solutions" / "ch07_transfer" / "ch07_transfer_exercises.ipynb"
    cell = next(c for c in nbformat.read(source, 4).cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    shown = re.search(r"CEILING = pick\(PROFILE, sample=([0-9.]+), full=(None|[0-9.]+)\)", cell.source)
    assert float(shown.group(1)) == ceiling["sample"] and (shown.group(2) == "None") == ("full" not in ceiling)
    assert ceiling["sample"] > max(trusted.calibration()["ch07_transfer"]["fine_tuned"]["sample"]["bands"])


def test_hidden_model_cells_only_hand_in_the_model():
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(SOLUTION, 4).cells}
    for gid in ("test_quality_band1", "test_quality_band2", "test_quality_band3"):
        hidden = cells[gid].split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        assert hidden.strip().startswith("from cnnbook import submit; submit.save_model(best_model, \"best_model\")")
        assert "heldout" not in cells[gid] and "load_heldout" not in cells[gid]


needs_namespaces = pytest.mark.skipif(not sandbox.namespaces_available(), reason="no user namespaces here")


@needs_namespaces
def test_the_sandboxed_kernel_cannot_read_held_out_data_and_its_background_processes_end(tmp_path):
    heldout = REPO / "autograder" / "data" / "mnist_heldout.npz"
    work = tmp_path / "w"
    work.mkdir()
    marker = f"survivor-{os.getpid()}-{time.time_ns()}"
    probe = textwrap.dedent(f"""
        import os, subprocess, sys
        for path in ({str(heldout)!r}, "/proc/1/root" + {str(heldout)!r}, os.path.realpath({str(heldout)!r})):
            try:
                open(path, "rb").read(1)
                print("READ", path)
            except OSError as exc:
                print("refused", type(exc).__name__)
        subprocess.Popen(["sleep", "120", {marker!r}], start_new_session=True)   # a daemon, in its own session
        print("procs", len([p for p in os.listdir("/proc") if p.isdigit()]))
    """)
    proc = subprocess.run([sys.executable, str(REPO / "autograder" / "sandbox.py"), "--writable", str(work),
                           "--hide", str(heldout.parent), "--max-procs", "64", "--pids-cgroup", f"t{os.getpid()}",
                           "--", sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    sandbox.remove_pids_cgroup(f"t{os.getpid()}")
    assert proc.returncode == 0, proc.stderr
    assert "READ" not in proc.stdout and proc.stdout.count("refused") == 3, proc.stdout
    assert int(proc.stdout.split("procs")[1]) < 10             # only the namespace's own processes are visible
    time.sleep(0.5)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and marker in _cmdline(p)]
    assert alive == [], "a process started by the sandboxed program outlived it"


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@needs_namespaces
@pytest.mark.skipif(sandbox.pids_cgroup("probe") is None and os.getuid() == 0, reason="root without a pids cgroup")
def test_the_number_of_processes_is_bounded(tmp_path):
    fork = "import os\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            os.pause()\n" \
           "        n += 1\nexcept OSError:\n    pass\nprint('forked', n)\n"
    proc = subprocess.run([sys.executable, str(REPO / "autograder" / "sandbox.py"), "--max-procs", "20",
                           "--pids-cgroup", f"f{os.getpid()}", "--", sys.executable, "-c", fork],
                          capture_output=True, text=True, timeout=60)
    sandbox.remove_pids_cgroup(f"f{os.getpid()}")
    assert "forked" in proc.stdout, proc.stderr
    assert int(proc.stdout.split("forked")[1]) < 20


@pytest.mark.slow
def test_calibration_quick_mode_trains_the_reference_and_measures_it_in_the_grader(capsys):
    assert calibrate.main(["ch05_architectures", "--quick"]) == 0      # one seed, one thread, nothing written
    out = capsys.readouterr().out
    value = float(out.split("reference seed 0 threads 1: accuracy ")[1].split()[0])
    assert value >= trusted.thresholds("ch05_architectures", "best_model")[-1]   # the calibrated top band


def test_the_trusted_step_imports_keras_in_the_background_while_the_kernel_runs():
    """warm_keras starts no thread for a module without checks; otherwise its thread leaves Keras fully imported,
    and wait_for_keras returns once it has (checked in a fresh process, where Keras is not imported yet)."""
    from types import SimpleNamespace

    assert preprocessors.warm_keras(None) is None
    assert preprocessors.warm_keras(SimpleNamespace(CHECKS={})) is None
    code = textwrap.dedent("""
        import sys, types
        from autograder import preprocessors
        assert "keras" not in sys.modules
        thread = preprocessors.warm_keras(types.SimpleNamespace(CHECKS={"test_x": print}))
        preprocessors.wait_for_keras()   # what the trusted checks do first: a check never meets the import halfway
        assert not thread.is_alive() and "keras" in sys.modules
        import keras
        assert keras.Model is not None
        print("warm", keras.__version__)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0 and "warm" in out.stdout, out.stderr[-2000:]


def test_the_full_profile_refuses_the_public_held_out_split_and_reads_a_private_one(tmp_path, monkeypatch):
    # In `full`, students train on all of MNIST, which holds autograder/data's digits: the grader must not score them.
    monkeypatch.delenv(trusted.HELDOUT_ENV, raising=False)
    with trusted.grading_context("full"):
        with pytest.raises(RuntimeError, match=f"set {trusted.HELDOUT_ENV}"):
            trusted.heldout("mnist")
        assert len(trusted.heldout("shapes")[1]) == 500   # generated shapes: no student gets these in any profile
    x, y = np.zeros((3, 28, 28), "uint8"), np.array([1, 2, 3], "uint8")
    np.savez(tmp_path / "mnist_heldout.npz", x=x, y=y)
    monkeypatch.setenv(trusted.HELDOUT_ENV, str(tmp_path))   # the documented override
    with trusted.grading_context("full"):
        assert trusted.heldout("mnist")[1].tolist() == [1, 2, 3]
    monkeypatch.delenv(trusted.HELDOUT_ENV)
    with trusted.grading_context("full", heldout=str(tmp_path)):   # what c.TrustedChecks.heldout_dir sets
        assert trusted.heldout("mnist")[1].tolist() == [1, 2, 3]
    assert trusted.grading_profile() == "sample"   # outside a context
    assert len(trusted.heldout("mnist")[1]) == 1000


def test_the_unet_check_counts_skip_connections_from_the_saved_graph_not_concatenate_layers(tmp_path):
    """Oracle: how each model below is built. A U-Net's two skips span a pooling; a map joined with itself, or with a
    1x1 convolution of itself, is no skip though a Concatenate layer is there (the dodge of a layer count)."""
    from keras import layers

    checks = trusted.load_checks("ch09_detection")

    def unet(join):
        inputs = keras.Input((64, 64, 1))
        x, saved = inputs, []
        for width in (4, 8):
            x = layers.Conv2D(width, 3, padding="same")(x)
            saved.append(x)
            x = layers.MaxPooling2D()(x)
        for width, skip in zip((8, 4), saved[::-1]):
            x = layers.Conv2D(width, 3, padding="same")(join(layers.Conv2DTranspose(width, 3, strides=2,
                                                                                    padding="same")(x), skip))
        return keras.Model(inputs, layers.Conv2D(11, 1, activation="softmax")(x))

    joins = {"skip": (lambda x, skip: layers.Concatenate()([x, skip]), 2),
             "itself": (lambda x, skip: layers.Concatenate()([x, x]), 0),
             "same resolution": (lambda x, skip: layers.Concatenate()([x, layers.Conv2D(2, 1)(x)]), 0)}
    for name, (join, expected) in joins.items():
        path = tmp_path / f"{name}.keras"
        unet(join).save(path)
        model = keras.models.load_model(path, safe_mode=True)
        assert checks.skip_connections(model) == expected, name
        if expected < 2:
            with pytest.raises(AssertionError, match=f"{expected} skip connections"):
                checks.expect_unet(model)
    checks.expect_unet(keras.models.load_model(tmp_path / "skip.keras", safe_mode=True))


def test_the_batch_scorer_gives_the_verdicts_of_scoring_in_process(tmp_path):
    """Oracle: ``trusted.score`` run in this process on the same artifacts. The scorer (``python -m autograder.scorer``,
    one per batch) must answer exactly that, for a loadable model below every band and for missing artifacts; a
    request its child cannot score, and a socket nobody serves, give None (the grader then scores in-process)."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    small_model().save(artifacts / "best_model.keras")
    gids = [gid for gid in trusted.load_checks("ch05_architectures").CHECKS]
    expected = trusted.score("ch05_architectures", artifacts, gids)
    assert {v[0] for v in expected.values()} >= {"below", "fail"}   # both kinds of verdict are compared
    socket_path = str(tmp_path / "s")
    server = subprocess.Popen([sys.executable, "-m", "autograder.scorer", socket_path], cwd=REPO,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        got = scorer.score_remote(socket_path, "ch05_architectures", artifacts, gids, wait=180)
        assert got == expected
        twice = scorer.score_remote(socket_path, "ch05_architectures", artifacts, gids[:2])  # a second child
        assert twice == {gid: expected[gid] for gid in gids[:2]}
        assert scorer.score_remote(socket_path, "no_such_assignment", artifacts, gids) is None
        assert server.poll() is None   # a child's failure is not the scorer's
    finally:
        os.killpg(server.pid, 9)
        server.wait()
    assert scorer.score_remote(str(tmp_path / "nobody"), "ch05_architectures", artifacts, gids, wait=0) is None


def _exited_unreaped(tmp_path, code: str) -> subprocess.Popen:
    """A child process that has exited and is not reaped yet (a zombie), as a dead scorer is until the batch ends."""
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=(tmp_path / "scorer.log").open("w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return proc
        time.sleep(0.05)
    raise AssertionError("the child did not exit")


def test_a_scorer_that_exited_is_not_waited_for(tmp_path):
    """Oracle: the child's own state in /proc (Z once it exited, before it is reaped). A scorer that dies before it
    binds its socket made every nbgrader process of the batch wait ``wait`` seconds before scoring in-process; now
    score_remote answers None at once, and the batch prints the scorer's exit code and the end of its log."""
    from autograder import course

    folder = tmp_path / "scorer"
    folder.mkdir()
    socket_path = str(folder / "s")
    assert scorer.scorer_alive(socket_path)            # no pid file: nothing known, keep waiting
    (folder / "pid").write_text(str(os.getpid()))
    assert scorer.scorer_alive(socket_path)            # a running process
    dead = _exited_unreaped(tmp_path, "import sys; print('ImportError: no module named keras', file=sys.stderr); "
                                      "sys.exit(3)")
    (folder / "pid").write_text(str(dead.pid))
    assert not scorer.scorer_alive(socket_path)
    start = time.monotonic()
    assert scorer.score_remote(socket_path, "ch05_architectures", tmp_path, ["g"], wait=120) is None
    assert time.monotonic() - start < 60                # it did not wait for the socket of a dead scorer
    warning = course._scorer_warning(dead, tmp_path / "scorer.log")
    assert "exited with 3" in warning and "ImportError: no module named keras" in warning, warning
    assert not scorer.scorer_alive(socket_path)        # reaped now (poll): no such process at all
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert course._scorer_warning(running, tmp_path / "scorer.log") is None
    finally:
        running.kill()
        running.wait()
