"""The figures a cell reports: median, and the spread as min-max."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Spread", "ratio", "spread"]


@dataclass(frozen=True, slots=True)
class Spread:
    median: float
    low: float
    high: float
    count: int

    def as_dict(self, digits: int = 6) -> dict[str, float | int]:
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "n": self.count,
        }


def spread(values: Iterable[float]) -> Spread | None:
    """Median and min-max of the values, or None when there are none."""
    data = sorted(values)
    if not data:
        return None
    return Spread(statistics.median(data), data[0], data[-1], len(data))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator
