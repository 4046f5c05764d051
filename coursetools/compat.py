"""Run the course on a supported stack (coursetools/stacks.toml): ``python -m coursetools.compat STACK``.

Builds ``.venv-compat-STACK`` with that stack's TensorFlow and Keras, installs ``cnnbook`` on top the way the Colab
setup cell does (``pip install`` of the package alone, its own dependencies, nothing pinned), then executes every
lesson and every exercise's student notebook filled with the solution's answers (the release copy: hidden tests
stripped, so only the visible tests run) with the runner in that venv. ``--backend`` runs them on JAX or PyTorch
(installed into the same venv: ``pip install jax``, ``pip install torch==2.13.0`` CPU wheel). A stack whose
``tensorflow`` is ``"none"`` (``jax``) has no TensorFlow at all, like a GPU runner with JAX alone: there, a lesson
that imports TensorFlow outside a ``%%tensorflow_only`` cell fails instead of passing by accident.

``--profile full`` runs the same notebooks on the real datasets (a GPU runner with network: ``.github/workflows/gpu.yml``
runs ``make compat STACK=jax BACKEND=jax PROFILE=full COMPAT_EXTRA='jax[cuda13]'``, Keras on JAX with no TensorFlow);
``--extra`` adds pip requirements to the stack's venv (there, JAX's CUDA wheels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from coursetools.course import repo_root
from coursetools.release import fill_answers, solution_answers

#: What the runner itself needs in the stack's venv (not part of cnnbook; the Colab kernel has its own).
RUNNER_DEPS = ["papermill>=2,<3", "nbclient", "nbformat", "ipykernel", "pyyaml"]
BACKEND_PACKAGES = {"jax": ["jax"], "torch": ["torch==2.13.0"], "tensorflow": []}


def stacks(root: Path) -> dict:
    """Return {name: {"tensorflow": version, "keras": version}} from ``coursetools/stacks.toml``."""
    return tomllib.loads((root / "coursetools" / "stacks.toml").read_text())


def build_venv(root: Path, name: str, stack: dict, backend: str, extra: tuple[str, ...] = ()) -> Path:
    """Create (once) the stack's venv; return its python."""
    venv = root / f".venv-compat-{name}"
    python = venv / "bin" / "python"
    stamp = venv / f".installed-{stack['tensorflow']}-{stack['keras']}-{backend}"
    if extra:
        stamp = stamp.with_name(stamp.name + "-" + hashlib.sha256(" ".join(extra).encode()).hexdigest()[:8])
    pip = [str(python), "-m", "pip", "install", "-q"]
    if stamp.exists():  # the stack is there; cnnbook is reinstalled every time (it is what changes)
        subprocess.run(pip + ["--no-deps", "--force-reinstall", str(root)], check=True)
        shutil.rmtree(root / "build", ignore_errors=True)
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    framework = [] if stack["tensorflow"] == "none" else [f"tensorflow=={stack['tensorflow']}"]  # "none": JAX only
    subprocess.run(pip + framework + [f"keras=={stack['keras']}"], check=True)
    subprocess.run(pip + [str(root)], check=True)  # what the Colab setup cell does: the package, its own deps
    subprocess.run(pip + RUNNER_DEPS + BACKEND_PACKAGES[backend] + list(extra), check=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "coursetools.pth").write_text(f"{root}\n")  # the tooling only; cnnbook comes from site-packages
    shutil.rmtree(root / "build", ignore_errors=True)
    stamp.touch()
    return python


def filled_exercises(root: Path, dest: Path) -> list[Path]:
    """Write each released notebook with its solution's answers under ``dest/solutions/``; return their paths."""
    shutil.rmtree(dest, ignore_errors=True)
    paths = []
    for released in sorted((root / "notebooks").rglob("*.ipynb")):
        rel = released.relative_to(root / "notebooks")
        folder = dest / "solutions" / rel.parent
        shutil.copytree(released.parent, folder, dirs_exist_ok=True)
        answers = solution_answers(root / "solutions" / rel)
        target = dest / "solutions" / rel
        target.write_text(json.dumps(fill_answers(json.loads(released.read_text()), answers), indent=1))
        paths.append(target)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.compat", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="a stack of coursetools/stacks.toml: pinned, colab or latest")
    parser.add_argument("--backend", default="tensorflow", choices=sorted(BACKEND_PACKAGES))
    parser.add_argument("--only", default="", help="run only notebooks whose path contains this text (e.g. ch02)")
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--profile", default="sample", choices=("sample", "full"),
                        help="sample (offline) or full (real datasets and weights: needs the network)")
    parser.add_argument("--extra", nargs="*", default=[], help="more pip requirements for the venv, e.g. 'jax[cuda13]'")
    args = parser.parse_args(argv)
    root = repo_root()
    known = stacks(root)
    if args.stack not in known:
        print(f"compat: unknown stack {args.stack!r}: use one of {', '.join(known)}", file=sys.stderr)
        return 2
    python = build_venv(root, args.stack, known[args.stack], args.backend, tuple(args.extra))
    suffix = "" if args.profile == "sample" else f"-{args.profile}"
    out = root / "_build" / f"compat-{args.stack}-{args.backend}{suffix}"
    exercises = filled_exercises(root, out / "filled")
    lessons = sorted((root / "book").glob("*.ipynb"))
    status = 0
    for paths, nb_root in ((lessons, root), (exercises, out / "filled")):
        paths = [p for p in paths if args.only in str(p)]
        if not paths:
            continue
        code = (f"import sys; from pathlib import Path; from coursetools import runner; "
                f"rs = runner.run([Path(p) for p in sys.argv[1:]], {args.profile!r}, Path({str(out / 'executed')!r}), "
                f"Path({str(out / 'report.json')!r} + str(len(sys.argv))), 1200, Path({str(nb_root)!r}), "
                f"{args.backend!r}, None, {int(args.jobs)}); print(runner.format_table(rs)); "
                f"sys.exit(1 if any(r.status == 'FAILED' for r in rs) else 0)")
        status |= subprocess.run([str(python), "-c", code, *map(str, paths)], cwd=root).returncode
    print(f"compat {args.stack} ({known[args.stack]}) on {args.backend}, profile {args.profile}: "
          f"{'passed' if status == 0 else 'FAILED'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
