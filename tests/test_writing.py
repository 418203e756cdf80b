"""Output is written whole or not at all, even when the output takes fewer bytes than given."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from b12lab._io.writing import write_all, write_whole, writer


class ShortWrites(io.RawIOBase):
    """An output that takes at most ``step`` bytes a write, as a pipe may when its reader goes
    away mid-write or a signal arrives."""

    def __init__(self, step: int = 1000) -> None:
        super().__init__()
        self.step = step
        self.taken = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(memoryview(data))[: self.step]  # type: ignore[arg-type]
        self.taken += chunk
        return len(chunk)


def _frame(rows: int = 20_000) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"S{i:06d}" for i in range(rows)], "value": range(rows)})


def test_every_byte_reaches_an_output_that_takes_few_at_a_time(tmp_path: Path) -> None:
    frame = _frame()
    expected = tmp_path / "whole.csv"
    with writer(expected, io.BytesIO) as output:
        output.write(frame)
    short = ShortWrites()
    with writer(None, lambda: short) as output:  # type: ignore[arg-type, return-value]
        output.write(frame)
    assert bytes(short.taken) == expected.read_bytes()


def test_a_short_write_is_finished() -> None:
    short = ShortWrites(step=7)
    assert write_all(short, b"x" * 100) == 100
    assert bytes(short.taken) == b"x" * 100


def test_an_output_that_takes_nothing_is_an_error() -> None:
    with pytest.raises(BlockingIOError):
        write_all(ShortWrites(step=0), b"data")


def test_a_whole_write_to_standard_output_is_finished() -> None:
    short = ShortWrites(step=10)
    write_whole(None, b"y" * 1000, lambda: short)  # type: ignore[arg-type, return-value]
    assert bytes(short.taken) == b"y" * 1000
