"""Run one answer cell alone, on the grader's inputs, in a fresh sandboxed interpreter (autograder/answer_rules).

    python autograder/answer_rules/rerun.py JOB.json RESULT.json     # run by the grader under autograder/sandbox.py

JOB: {"source": the answer cell, "setup": lines run first (the allowed imports), "calls": [[function, args, kwargs],
...]} ("=name" instead of a function reads a variable the cell sets), where an argument {"array": nested list}
becomes a float64 array and {"keras_model": config JSON} a Keras model rebuilt from its configuration. RESULT:
{"results": [{"value": ...} or {"error": "Type: message"}, ...]} or {"failed": "..."} when the cell itself does not
run. The grader reads RESULT as JSON only, and compares every value with references it computes itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _arg(value):
    if isinstance(value, dict) and "array" in value:
        import numpy as np

        return np.asarray(value["array"], dtype="float64")
    if isinstance(value, dict) and "keras_model" in value:
        import keras

        return keras.models.model_from_json(value["keras_model"])
    return value


def _plain(value):
    """JSON-able copy of a result: numbers, strings, lists, tuples as lists, arrays as nested lists."""
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        return {"array": value.tolist(), "shape": list(value.shape)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "__int__"):
        return int(value)
    raise TypeError(f"returned a {type(value).__name__}, not a number, tuple or array")


def _child(job_path: str, result_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    namespace: dict = {"__name__": "answer"}
    try:
        exec(compile("\n".join(job["setup"]), "<setup>", "exec"), namespace)
        exec(compile(job["source"], "<answer cell>", "exec"), namespace)
    except BaseException as exc:  # the cell does not run alone
        Path(result_path).write_text(json.dumps({"failed": f"{type(exc).__name__}: {exc}"[:500]}))
        return
    for name, filename in job.get("save", {}).items():   # a model the cell trained, for the grader to measure
        try:
            import keras

            keras.saving.save_model(namespace[name], Path(job_path).parent / filename)
        except BaseException as exc:
            what = f"`{name}` is not defined" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            Path(result_path).write_text(json.dumps({"failed": f"could not save {name}: {what}"[:500]}))
            return
    results = []
    for name, args, kwargs in job["calls"]:
        try:
            if name.startswith("="):   # a variable the cell sets
                out = namespace[name[1:]]
            else:
                out = namespace[name](*[_arg(a) for a in args], **{k: _arg(v) for k, v in kwargs.items()})
            results.append({"value": _plain(out)})
        except BaseException as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}"[:300]})
    Path(result_path).write_text(json.dumps({"results": results}))


def run(source: str, setup: list[str], calls: list, *, timeout: float = 120, memory_mb: int = 3072,
        hide: tuple = (), files: dict | None = None, save: dict | None = None, keep: Path | None = None,
        also_keep: tuple = (), file_mb: int = 16) -> dict:
    """Run ``source`` then ``calls`` in a sandboxed child; return its RESULT dict (never raises on student errors).

    ``files`` ({name: bytes}) are written beside the job first (the setup reads them by name, in the working folder);
    ``save`` ({variable: file name}) saves each Keras model the cell leaves with ``keras.saving.save_model``, and
    those files, and the files ``also_keep`` names, are copied to the folder ``keep`` (the grader loads them like any student model: vetted, safe mode).
    One thread of computation, so a re-run trains as the calibration's one-thread runs did."""
    from autograder import sandbox  # the same limits and isolation as the kernel

    with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        for name, data in (files or {}).items():
            (Path(tmp) / name).write_bytes(data)
        job.write_text(json.dumps({"source": source, "setup": setup, "calls": calls, "save": save or {}}))
        launcher = [sys.executable, str(HERE.parent / "sandbox.py"), "--memory-mb", str(memory_mb),
                    "--cpu-s", str(int(timeout * 2)), "--file-mb", str(file_mb), "--max-procs", "256"]
        if sandbox.namespaces_available():
            launcher += ["--writable", tmp] + [a for d in hide for a in ("--hide", str(d))]
        else:
            launcher += ["--no-namespaces"]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "TMPDIR": tmp, "PYTHONHASHSEED": "0",
               "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "KERAS_HOME": tmp,
               "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_DETERMINISTIC_OPS": "1"}
        cmd = launcher + ["--", sys.executable, "-I", str(Path(__file__).resolve()), str(job), str(result)]
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            return {"failed": f"your answer cell, run alone, took longer than {timeout:g} s"}
        finally:
            try:
                os.killpg(proc.pid, 9)   # nothing it started outlives it
            except OSError:
                pass
        try:
            out = json.loads(result.read_text())
        except (OSError, ValueError):
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no result"]
            return {"failed": f"your answer cell, run alone, stopped ({tail[0][:200]})"}
        if not isinstance(out, dict) or not ("failed" in out or isinstance(out.get("results"), list)):
            return {"failed": "your answer cell, run alone, wrote something other than results"}
        if keep is not None and "failed" not in out:
            keep.mkdir(parents=True, exist_ok=True)
            for filename in (*(save or {}).values(), *also_keep):
                saved = Path(tmp) / filename
                if saved.is_file() and not saved.is_symlink():
                    shutil.copyfile(saved, keep / filename)
        return out


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
