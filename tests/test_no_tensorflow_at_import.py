"""The `full` profile must run on a GPU runner with JAX and no TensorFlow (issue 18): importing any cnnbook module
must not import TensorFlow. Oracle: a child interpreter in which `import tensorflow` raises, on Keras's numpy backend."""

import subprocess
import sys

import pytest

CHILD = r"""
import importlib, pkgutil, sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"blocked: {name} imported at module import time")
sys.meta_path.insert(0, NoTensorFlow())
import cnnbook
names = sorted(m.name for m in pkgutil.iter_modules(cnnbook.__path__, "cnnbook."))
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_no_cnnbook_module_imports_tensorflow_when_imported():
    pytest.importorskip("jax", reason="needs JAX (the compat venv of `make compat BACKEND=jax` has it)")
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env={"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) >= 10
