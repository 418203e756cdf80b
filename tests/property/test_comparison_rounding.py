"""Rounding for comparison with a table's edges is one pass, and gives the earlier bits."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from b12lab._core.engine import GUARD_DECIMALS, comparison_values


def _masked_rounding(values: np.ndarray, factor: float, decimals: int) -> np.ndarray:
    """The earlier rounding: non-finite values masked out before rounding."""
    with np.errstate(invalid="ignore", over="ignore"):
        converted = values * factor
        finite = np.isfinite(converted)
        rounded = np.round(np.where(finite, converted, 0.0), decimals + GUARD_DECIMALS)
    return np.where(finite & np.isfinite(rounded), rounded, converted)


@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=20),
    factor=st.sampled_from([1.0, 1.35537, 0.7378, 1000.0, 1e-3, 88.4, 1e300]),
    decimals=st.integers(0, 3),
)
def test_one_pass_rounding_gives_the_same_bits(
    values: list[float], factor: float, decimals: int
) -> None:
    array = np.asarray(values, dtype=np.float64)
    expected = _masked_rounding(array, factor, decimals)
    got = comparison_values(array, factor, decimals)
    assert got.view(np.int64).tolist() == expected.view(np.int64).tolist()
