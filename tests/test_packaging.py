"""The installed package carries every released table, however it was installed, and imports
cheaply.

CI runs this against a wheel built from the source tree, a wheel built from the sdist, and an
editable install; a table missing from any of them fails here, loudly. Import checks run in a
fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import b12lab
from b12lab import tables

ROOT = Path(__file__).resolve().parents[1]


def _repository_manifest() -> dict[str, str]:
    lines = (ROOT / "reference_ranges" / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line)}


def test_every_released_table_is_installed_and_intact() -> None:
    root = tables._root()
    for name, digest in _repository_manifest().items():
        installed = root / name
        assert installed.is_file(), f"{name} is missing from the installed package at {root}"
        assert hashlib.sha256(installed.read_bytes()).hexdigest() == digest
        table_id, version = name.removesuffix(".toml").split("/")
        assert tables.load(f"{table_id}@{version}").sha256 == digest


def test_installed_manifest_is_the_repository_manifest() -> None:
    installed = (tables._root() / "SHA256SUMS").read_text().splitlines()
    assert {line.split()[1] for line in installed if line} == set(_repository_manifest())


def test_a_wheel_reads_tables_from_inside_the_package() -> None:
    package = Path(b12lab.__file__).resolve().parent
    if package.is_relative_to(ROOT / "src"):
        return  # editable install or source checkout: the repository's own folder is used
    assert str(tables._root()).startswith(str(package))


def test_the_package_is_typed() -> None:
    assert (Path(b12lab.__file__).parent / "py.typed").is_file()


HEAVY = ("pandas", "pint", "pyarrow", "pydantic")
PUBLIC = [
    "ANALYTES",
    "Analyte",
    "B12LabError",
    "B12LabWarning",
    "Category",
    "Censoring",
    "ColumnError",
    "ConflictingContextError",
    "Diff",
    "DimensionError",
    "ErrorCode",
    "Flag",
    "ImplausibleValueError",
    "InputFileError",
    "Interpretation",
    "InvalidValueError",
    "MarkerResult",
    "Measurement",
    "MeasurementError",
    "MissingDependencyError",
    "Reason",
    "Result",
    "TableError",
    "TableIntegrityError",
    "TableNotFoundError",
    "TableRef",
    "TableValidationError",
    "UnknownAnalyteError",
    "UnknownUnitError",
    "UnusedColumnWarning",
    "__version__",
    "classify",
    "classify_frame",
    "classify_long",
    "diff",
    "fhir",
    "measure",
    "normalize",
    "omop",
    "registry",
    "report",
    "tables",
]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_import_loads_no_heavy_dependency() -> None:
    done = _python(
        f"import sys, b12lab, b12lab.errors, b12lab.tables\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert b12lab.tables.DEFAULT_TABLE\n"
    )
    assert done.returncode == 0, done.stderr


def test_a_public_name_loads_what_it_needs() -> None:
    done = _python(
        "import sys, b12lab\n"
        "assert 'pint' not in sys.modules\n"
        "assert b12lab.measure('160 pg/mL', analyte='b12').unit\n"
        "assert 'pint' not in sys.modules  # a unit of the precomputed factors\n"
        "assert b12lab.registry.Quantity(1.0, 'pmol/L').magnitude == 1.0\n"
        "assert 'pint' in sys.modules\n"
        "from b12lab import classify_frame, tables\n"
        "assert tables.load('nice-ng239').key == 'nice-ng239@2'\n"
    )
    assert done.returncode == 0, done.stderr


def test_public_names_are_unchanged_and_all_resolve() -> None:
    assert b12lab.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(b12lab, name) is not None
    assert set(PUBLIC) <= set(dir(b12lab))
    assert b12lab.tables is tables
    assert b12lab.B12LabError is __import__("b12lab.errors").errors.B12LabError
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = b12lab.nonsense  # type: ignore[attr-defined]


def test_star_import_gives_every_public_name() -> None:
    done = _python(
        f"from b12lab import *\nmissing = [n for n in {PUBLIC!r} if n not in globals()]\n"
        "assert not missing, missing\n"
    )
    assert done.returncode == 0, done.stderr


ACCESSOR_WORKS = (
    "frame = pd.DataFrame({'b12': ['160 pg/mL', '400 pmol/L']})\n"
    "got = frame.b12lab.classify()['b12lab_category'].tolist()\n"
    "assert got == ['deficiency_likely', 'deficiency_unlikely'], got\n"
)


def test_accessor_when_pandas_is_imported_after_b12lab() -> None:
    done = _python(
        "import sys, b12lab\n"
        "assert 'pandas' not in sys.modules\n"
        "import pandas as pd\n"
        "from b12lab._io.pandas_hook import _PandasFinder\n"
        "assert not any(isinstance(f, _PandasFinder) for f in sys.meta_path)\n"
        "assert 'exec_module' not in vars(pd.__spec__.loader)\n" + ACCESSOR_WORKS
    )
    assert done.returncode == 0, done.stderr


def test_accessor_when_pandas_is_looked_for_before_it_is_imported() -> None:
    done = _python(
        "import importlib.util, sys, b12lab\n"
        "assert importlib.util.find_spec('pandas') is not None\n"
        "assert 'pandas' not in sys.modules\n"
        "import pandas as pd\n" + ACCESSOR_WORKS
    )
    assert done.returncode == 0, done.stderr


def test_accessor_when_pandas_is_imported_before_b12lab() -> None:
    done = _python(
        "import sys, pandas as pd, b12lab\n"
        "from b12lab._io.pandas_hook import _PandasFinder\n"
        "assert not any(isinstance(f, _PandasFinder) for f in sys.meta_path)\n" + ACCESSOR_WORKS
    )
    assert done.returncode == 0, done.stderr


def test_accessor_when_only_pandas_api_is_imported_after_b12lab() -> None:
    done = _python(
        "import b12lab\nfrom pandas import DataFrame as D\nimport pandas as pd\n" + ACCESSOR_WORKS
    )
    assert done.returncode == 0, done.stderr
