"""Fixtures: a connection to the shared real server, before and after the handshake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.support import Conn
from tests.conftest import ServerProcess


@pytest.fixture
def raw_conn(server: ServerProcess) -> Iterator[Conn]:
    """A TLS connection (ALPN h2) on which nothing has been sent yet."""
    conn = Conn(server)
    yield conn
    conn.close()


@pytest.fixture
def conn(raw_conn: Conn) -> Conn:
    """A TLS connection past h2spec's handshake: prefaces exchanged, SETTINGS acknowledged."""
    raw_conn.handshake()
    return raw_conn
