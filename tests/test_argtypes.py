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
