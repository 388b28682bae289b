from __future__ import annotations

import argparse

import pytest

from h2books.argtypes import positive_int, seconds


def test_positive_int() -> None:
    assert positive_int("3") == 3
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_seconds() -> None:
    assert seconds("0") == 0.0 and seconds("2.5") == 2.5
    for bad in ("-1", "soon"):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds(bad)


def test_duration() -> None:
    from h2books.argtypes import duration, durations

    assert duration("50ms") == pytest.approx(0.050)
    assert duration("50") == pytest.approx(0.050)  # a bare number is milliseconds
    assert duration("0.2s") == pytest.approx(0.2) and duration("500us") == pytest.approx(0.0005)
    assert durations("0,10,50,150") == pytest.approx([0.0, 0.010, 0.050, 0.150])
    for bad in ("-5ms", "fast", "5 parsecs", "61s", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            durations(bad) if bad == "" else duration(bad)


def test_bandwidth() -> None:
    from h2books.argtypes import bandwidth

    assert bandwidth("20mbit") == 20e6 and bandwidth("512kbit") == 512e3
    assert bandwidth("1gbit") == 1e9 and bandwidth("20M") == 20e6
    for bad in ("20", "20mbps", "1kbit", "-3mbit", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            bandwidth(bad)


def test_percentage() -> None:
    from h2books.argtypes import percentage

    assert percentage("1%") == pytest.approx(0.01) and percentage("0.5") == pytest.approx(0.005)
    for bad in ("100%", "-1%", "1x", "half"):
        with pytest.raises(argparse.ArgumentTypeError):
            percentage(bad)
