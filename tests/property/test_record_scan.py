"""Finding records in simply quoted text is a shortcut: it finds what the run analysis finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from b12lab._io.records import Records, _run_records, _simply_quoted, scan

PLAIN = st.text(alphabet="ab1 .,;\n\r", max_size=6)
QUOTED = st.text(alphabet='ab1 .,;\n\r"', max_size=6)
FIELDS = st.one_of(PLAIN, QUOTED.map(lambda text: f'"{text}"'), QUOTED)
WRITTEN = st.one_of(PLAIN, PLAIN.map(lambda text: f'"{text}"'))
"""Fields as a CSV writer quotes them: mostly the shortcut's."""


def _fields(record: list[str], delimiter: str) -> str:
    return delimiter.join(record)


@given(
    records=st.sampled_from([WRITTEN, FIELDS]).flatmap(
        lambda fields: st.lists(st.lists(fields, min_size=1, max_size=4), min_size=1, max_size=8)
    ),
    delimiter=st.sampled_from([",", ";"]),
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    final=st.booleans(),
    cut=st.floats(0, 1),
)
def test_simple_quotes_give_the_records_of_the_run_analysis(
    records: list[list[str]], delimiter: str, line_end: str, final: bool, cut: float
) -> None:
    """Also on text cut anywhere, as a block of a file is, which may end inside a field."""
    data = line_end.join(_fields(r, delimiter) for r in records).encode()
    data = data[: max(1, round(len(data) * cut))]
    delimiters = delimiter.encode()
    found = scan(data, delimiters, final=final)
    buffer = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buffer == ord('"'))
    expected = _run_records(buffer, quotes, found.line_ends, delimiters)
    _same(found, expected)


def test_writers_quoting_takes_the_shortcut() -> None:
    data = b'"S0","160 pg/mL",,"a, b"\n"S1","<50 pmol/L","x\ny",3\n'
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends_field = np.zeros(256, dtype=bool)
    ends_field[list(b",\n\r")] = True
    assert _simply_quoted(buffer, np.flatnonzero(buffer == ord('"')), ends_field)
    assert scan(data, b",", final=True).ends.tolist() == [data.index(b"\n"), len(data) - 1]


def _same(found: Records, expected: Records) -> None:
    assert found.ends.tolist() == expected.ends.tolist()
    assert found.line_ends.tolist() == expected.line_ends.tolist()
    assert found.open_quote == expected.open_quote
    assert found.longest_quoted == expected.longest_quoted
    assert found.stray_quote == expected.stray_quote
