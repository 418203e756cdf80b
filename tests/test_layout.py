"""The layout holds the design: the core never imports a way in or out, nor the engine a heavy
library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import b12lab

PACKAGE = Path(b12lab.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "_core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_never_imports_a_way_in_or_out(path: Path) -> None:
    outward = {
        name
        for name in _imports(path)
        if name.startswith(("b12lab._io", "b12lab.dask", "b12lab.cli"))
    }
    assert not outward, f"{path.name} imports {sorted(outward)}"


@pytest.mark.parametrize("name", ["engine.py", "kidney.py"])
def test_the_engine_imports_no_heavy_library(name: str) -> None:
    heavy = ("pint", "pandas", "pydantic", "pyarrow")
    imported = _imports(PACKAGE / "_core" / name)
    assert not {name for name in imported if name.split(".")[0] in heavy}


def test_compiling_a_table_needs_nothing_of_the_pipeline_arrays() -> None:
    imported = _imports(PACKAGE / "_core" / "policy.py")
    assert not {n for n in imported if "observations" in n or "evaluation" in n or "cells" in n}


def test_the_public_api_is_what_all_says() -> None:
    public_modules = {"errors", "tables", "dask", "report", "omop", "fhir"}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        assert name.startswith("_") or name in public_modules, f"{name}.py should be private"
    for name in b12lab.__all__:
        assert hasattr(b12lab, name)
