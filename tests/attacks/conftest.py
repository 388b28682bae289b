"""Fixtures of the attack suite: a private server per test, started with extra flags."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`start_server(*flags, env=...)`: a server of the test's own (no access log unless
    asked), with extra environment variables if given."""
    started: list[ServerProcess] = []

    def start(
        *flags: str, access_log: bool = False, env: dict[str, str] | None = None
    ) -> ServerProcess:
        extra = flags if access_log else ("--no-access-log", *flags)
        process = ServerProcess(tmp_path / f"data{len(started)}", *extra, env=env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A default-configured private server (attacks must not share one: RSS is measured)."""
    return start_server()
