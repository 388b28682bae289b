"""Fixtures for the benchmark's tests: one prepared bookstore (data directory + certificate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from h2books.bench.workspace import Workspace, workspace

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
FAKE_SERVER = HERE / "fake_server.py"


@pytest.fixture(scope="session")
def bench_space() -> Iterator[Workspace]:
    with workspace() as space:
        yield space
