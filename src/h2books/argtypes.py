"""argparse value types shared by the sub-commands."""

from __future__ import annotations

import argparse
import re


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def seconds(text: str) -> float:
    """A non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "k": 1e3, "m": 1e6, "g": 1e9}
_MAX_DURATION = 60.0  # a longer RTT is a typo, not a network
_NUMBER_AND_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zµ%]*)\s*$")


def _number_and_unit(text: str, what: str) -> tuple[float, str]:
    match = _NUMBER_AND_UNIT.match(text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
    return float(match.group(1)), match.group(2)


def duration(text: str) -> float:
    """A delay such as ``50ms``, ``0.2s``, ``500us``; a bare number is milliseconds."""
    value, unit = _number_and_unit(text, "a duration (e.g. 50ms)")
    scale = _DURATION_UNITS.get(unit or "ms")
    if scale is None:
        raise argparse.ArgumentTypeError(f"unknown unit {unit!r} in {text!r}: use us, ms or s")
    seconds_value = value * scale
    if seconds_value > _MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text} is over {_MAX_DURATION:g} s")
    return seconds_value


def durations(text: str) -> list[float]:
    """A comma-separated sweep of durations: ``0,10,50,150`` (milliseconds) or ``10ms,1s``."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"no duration in {text!r}")
    return list(dict.fromkeys(duration(item) for item in items))


def bandwidth(text: str) -> float:
    """A rate in bits per second: ``20mbit``, ``512kbit``, ``1gbit`` (tc's units; k/m/g too)."""
    value, unit = _number_and_unit(text, "a bandwidth (e.g. 20mbit)")
    scale = _RATE_UNITS.get(unit)
    if scale is None:
        raise argparse.ArgumentTypeError(
            f"unknown unit {unit!r} in {text!r}: use bit, kbit, mbit or gbit"
        )
    rate = value * scale
    if rate < 8_000:  # below 1 kB/s a single full-size packet takes over a second
        raise argparse.ArgumentTypeError(f"{text} is below 8kbit")
    return rate


def percentage(text: str) -> float:
    """A share such as ``1%`` or ``0.5%`` (a bare number is a percentage too), as a fraction."""
    value, unit = _number_and_unit(text, "a percentage (e.g. 1%)")
    if unit not in ("", "%"):
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}")
    if value >= 100:
        raise argparse.ArgumentTypeError(f"must be below 100%, not {text}")
    return value / 100
