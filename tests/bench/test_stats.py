from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from h2books.bench.stats import ratio, spread


def test_spread_of_nothing_is_none() -> None:
    assert spread([]) is None


def test_spread_median_and_range() -> None:
    result = spread([3.0, 1.0, 2.0, 10.0])
    assert result is not None
    assert (result.median, result.low, result.high, result.count) == (2.5, 1.0, 10.0, 4)


@given(st.lists(st.floats(min_value=0, max_value=1e9), min_size=1, max_size=20))
def test_median_lies_within_the_range(values: list[float]) -> None:
    result = spread(values)
    assert result is not None
    assert result.low <= result.median <= result.high


def test_ratio_needs_both_figures() -> None:
    assert ratio(10.0, 2.0) == 5.0
    assert ratio(None, 2.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None
