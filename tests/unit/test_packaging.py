"""Files the package needs beside its modules are declared, so they ship in the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "durable_django"


def test_the_admin_templates_and_css_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["durable_django"]
    declared = {path for pattern in patterns for path in PACKAGE.glob(pattern)}
    needed = [path for folder in ("templates", "static") for path in (PACKAGE / folder).rglob("*") if path.is_file()]
    assert needed, "the admin has no templates or static files?"
    missing = sorted(str(path.relative_to(PACKAGE)) for path in needed if path not in declared)
    assert not missing, f"not in [tool.setuptools.package-data] of pyproject.toml, so not in the wheel: {missing}"


def test_the_license_is_an_spdx_expression_that_setuptools_reads():
    # The table form ({text = ...}) is deprecated by setuptools 77 and warns on every build.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["license"] == "MIT"
    assert "setuptools>=77" in config["build-system"]["requires"]
