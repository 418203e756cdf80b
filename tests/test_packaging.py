"""The installed package carries every released table, however it was installed.

CI runs this against a wheel built from the source tree, a wheel built from the sdist, and an
editable install; a table missing from any of them fails here, loudly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
