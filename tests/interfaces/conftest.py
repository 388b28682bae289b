"""Shared by the interface tests: the threaded real server (tests/threaded_server.py), the
server's log records, the protocol parameter."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class LogRecords(logging.Handler):
    """The records of the server's loggers while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.ERROR) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def server_logs() -> Iterator[LogRecords]:
    handler = LogRecords()
    loggers = [logging.getLogger("h2books.asgi"), logging.getLogger("h2books.server")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(params=["h2", "h1"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)
