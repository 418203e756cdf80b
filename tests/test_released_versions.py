"""A released table version keeps its answers: the first versions, run on the example file, give
byte for byte the output they gave when they were the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from b12lab._io.cli import main

RELEASED = Path(__file__).parent / "fixtures" / "released"


@pytest.mark.parametrize("spec", ["nice-ng239@1", "bsh-2014@1", "generic-us-lab@1"])
def test_first_versions_give_their_released_output(spec: str, tmp_path: Path) -> None:
    out = tmp_path / f"{spec}.csv"
    code = main(
        ["classify", str(RELEASED / "patients.csv"), "--table", spec, "--explain", "-o", str(out)]
    )
    assert code == 0
    assert out.read_bytes() == (RELEASED / f"{spec}.csv").read_bytes()


def test_the_default_is_the_second_version(tmp_path: Path) -> None:
    out = tmp_path / "default.csv"
    assert main(["classify", str(RELEASED / "patients.csv"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "nice-ng239@2" in text
    assert "generic-us-lab@2" in text
    assert "nice-ng239@1" not in text
