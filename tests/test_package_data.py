"""Every data file the package reads ships with it (pip and Colab install the package, not the repository).

Oracle: setuptools' own rule for ``[tool.setuptools.package-data]``: glob patterns relative to the package folder;
a file under ``cnnbook/data/`` that no pattern matches is left out of the wheel, and the lesson that reads it fails on
Colab (chapter 9's weights once did).
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_file_under_cnnbook_data_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cnnbook"]
    package = ROOT / "cnnbook"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    present = {p for p in (package / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert present - shipped == set(), f"add a pattern to pyproject.toml's package-data for {sorted(present - shipped)}"
