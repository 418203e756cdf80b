"""Rows are decided once per distinct combination of band codes: the combinations must give
every row back its own codes, whether the key space is packed densely or renumbered."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from b12lab._core import engine

codes = arrays(np.int16, st.integers(0, 40), elements=st.integers(-3, 6))


@pytest.mark.parametrize("limit", [1, 7, engine.MAX_COMBINATIONS])
@given(columns=st.lists(codes, min_size=1, max_size=6))
def test_combinations_give_each_row_its_codes(columns: list[np.ndarray], limit: int) -> None:
    n = min(len(c) for c in columns)
    named = {f"v{i}": c[:n] for i, c in enumerate(columns)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "MAX_COMBINATIONS", limit)
        reduced, rows, size = engine.distinct_combinations(named, sorted(named), n)
    assert rows.shape == (n,)
    assert size == len({tuple(int(named[k][r]) for k in sorted(named)) for r in range(n)})
    for name, values in named.items():
        np.testing.assert_array_equal(reduced[name][rows], values)
