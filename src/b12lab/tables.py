"""Versioned reference-range tables: find, verify and load them.

Shipped tables live in ``reference_ranges/<id>/<version>.toml`` and are listed, with their
SHA-256, in ``reference_ranges/SHA256SUMS``. A released file never changes: a changed threshold is
a new version, and the old one keeps loading. Tables are read lazily through
:mod:`importlib.resources`, never at import time, and a table id never becomes a path until it has
been matched against the manifest. Loading a user's own file is the separate call
:func:`load_file`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from b12lab.errors import TableIntegrityError, TableNotFoundError, TableValidationError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from b12lab._core.table_schema import TableModel

__all__ = [
    "DEFAULT_TABLE",
    "Table",
    "available",
    "json_schema",
    "load",
    "load_file",
    "validate",
]

DEFAULT_TABLE = "nice-ng239"
MANIFEST = "SHA256SUMS"
_SPEC = re.compile(r"^(?P<id>[a-z0-9][a-z0-9-]*[a-z0-9])(?:@(?P<version>[0-9]+(?:\.[0-9]+)*))?$")


@dataclass(frozen=True, eq=False)
class Table:
    """A validated table and the exact bytes it came from."""

    model: TableModel
    sha256: str
    origin: str

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def key(self) -> str:
        """``id@version``, the name a result cites."""
        return f"{self.model.id}@{self.model.version}"

    def __repr__(self) -> str:
        return f"<Table {self.key} sha256={self.sha256[:12]}…>"


def available() -> list[str]:
    """Every shipped table as ``id@version``, sorted by id then version."""
    return [f"{table_id}@{version}" for table_id, version in sorted(_manifest(), key=_sort_key)]


def load(spec: str = DEFAULT_TABLE) -> Table:
    """Load a shipped table by ``id`` (its newest version) or ``id@version``.

    A string that is not a table id (a path, say) is refused; use :func:`load_file` for files.
    """
    match = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise TableNotFoundError(
            f"{spec!r} is not a table id; expected 'id' or 'id@version', such as "
            f"'{DEFAULT_TABLE}'. To load a file of your own, use b12lab.tables.load_file(path)",
            table=str(spec),
        )
    table_id, version = match["id"], match["version"]
    versions = sorted((v for i, v in _manifest() if i == table_id), key=_version_key)
    if not versions:
        raise TableNotFoundError(
            f"no shipped table {table_id!r}; available: {', '.join(available())}",
            table=spec,
        )
    if version is None:
        version = versions[-1]
    elif version not in versions:
        raise TableNotFoundError(
            f"table {table_id!r} has no version {version!r}; available: {', '.join(versions)}",
            table=spec,
        )
    return _load_shipped(table_id, version)


def load_file(path: str | Path) -> Table:
    """Load a table file of your own (a laboratory's local ranges, say); it is not hash-checked."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise TableNotFoundError(
            f"cannot read table file {str(file)!r}: {exc.strerror}", table=str(file)
        ) from exc
    return _parse(data, origin=str(file))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a table file, for table authors and their editors."""
    from b12lab._core.table_schema import TableModel

    return TableModel.model_json_schema()


def _root() -> Traversable:
    packaged = resources.files("b12lab") / "reference_ranges"
    if packaged.is_dir():
        return packaged
    # An editable install or a source checkout: the tables sit at the repository root.
    checkout = Path(__file__).resolve().parents[2] / "reference_ranges"
    if (checkout / MANIFEST).is_file():
        return checkout
    raise TableIntegrityError(
        "b12lab's reference tables are missing from this installation; reinstall b12lab",
        table="",
    )


@functools.cache
def _manifest() -> dict[tuple[str, str], str]:
    entries: dict[tuple[str, str], str] = {}
    for line in (_root() / MANIFEST).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        table_id, _, file_name = name.lstrip("*").partition("/")
        entries[(table_id, file_name.removesuffix(".toml"))] = digest
    return entries


@functools.cache
def _load_shipped(table_id: str, version: str) -> Table:
    expected = _manifest()[(table_id, version)]
    file = _root() / table_id / f"{version}.toml"
    if not file.is_file():
        raise TableIntegrityError(
            f"table {table_id}@{version} is listed in the manifest but missing from this "
            "installation; reinstall b12lab",
            table=f"{table_id}@{version}",
        )
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise TableIntegrityError(
            f"table {table_id}@{version} does not match its released checksum "
            f"({digest[:12]}… != {expected[:12]}…); released tables never change",
            table=f"{table_id}@{version}",
        )
    table = _parse(data, origin=f"reference_ranges/{table_id}/{version}.toml")
    if (table.id, table.version) != (table_id, version):
        raise TableIntegrityError(
            f"{table.origin} declares {table.key}; the file name says {table_id}@{version}",
            table=f"{table_id}@{version}",
        )
    return table


def _parse(data: bytes, *, origin: str) -> Table:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TableValidationError(f"{origin}: not a valid TOML file: {exc}", table=origin) from exc
    except RecursionError as exc:
        raise TableValidationError(
            f"{origin}: nested too deeply to be a table file", table=origin
        ) from exc
    model = validate(raw, origin=origin)
    return Table(model=model, sha256=hashlib.sha256(data).hexdigest(), origin=origin)


def validate(raw: Any, *, origin: str = "(table)") -> TableModel:
    """Check parsed table data against the schema; every problem names its field.

    pydantic and the schema are imported here, not with the module, so that reading
    :data:`DEFAULT_TABLE` or the manifest stays cheap (the command line's help needs it).
    """
    import pydantic

    from b12lab._core.table_schema import TableModel, describe_error

    try:
        return TableModel.model_validate(raw)
    except RecursionError as exc:
        raise TableValidationError(f"{origin}: nested too deeply to be a table file") from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(describe_error(dict(e)) for e in exc.errors(include_url=False))
        raise TableValidationError(f"{origin}: {problems}", table=origin) from exc


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _sort_key(entry: tuple[str, str]) -> tuple[str, tuple[int, ...]]:
    return entry[0], _version_key(entry[1])


def schema_text() -> str:
    """The JSON Schema as the text committed to the docs."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
