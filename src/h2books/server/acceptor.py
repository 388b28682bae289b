"""Choosing the protocol of a new connection: ALPN on TLS, the preface on cleartext.

The listener's protocol object only decides; it then hands the transport to an
HTTP/1.1 or HTTP/2 protocol object with `transport.set_protocol`, so the per-read
path has no extra layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from h2books.protocol.h2 import CLIENT_PREFACE
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.state import ServerState


def _nothing() -> None:
    pass


class TLSAcceptor(asyncio.Protocol):
    """Runs once the TLS handshake is done, when ALPN has been agreed.

    `settled` is called once the connection is served (see `listener.Admission`).
    """

    def __init__(self, state: ServerState, settled: Callable[[], None] = _nothing) -> None:
        self.state = state
        self.settled = settled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, so cast rather than check.
        transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        protocol: H1ServerProtocol | H2ServerProtocol
        if alpn == "h2":
            protocol = H2ServerProtocol(self.state, "https")
        else:
            protocol = H1ServerProtocol(self.state, "https")
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self.settled()

    def data_received(self, data: bytes) -> None:  # pragma: no cover - replaced before any read
        raise RuntimeError("TLSAcceptor received data after handing over the transport")


class CleartextAcceptor(asyncio.Protocol):
    """Reads until the first bytes show HTTP/2 prior knowledge (h2c) or HTTP/1.x.

    Until then the connection is not in `state.connections`; `settled` is called once it
    is handed over or lost (see `listener.Admission`).
    """

    def __init__(self, state: ServerState, settled: Callable[[], None] = _nothing) -> None:
        self.state = state
        self.settled = settled
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, so cast rather than check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.timer = self.state.loop.call_later(
            self.state.config.timeouts.request_head, transport.abort
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        prefix = self.buffer[: len(CLIENT_PREFACE)]
        if CLIENT_PREFACE.startswith(prefix) and len(prefix) < len(CLIENT_PREFACE):
            return  # could still be either: wait for more
        protocol: H1ServerProtocol | H2ServerProtocol
        if prefix == CLIENT_PREFACE:
            protocol = H2ServerProtocol(self.state, "http")
        else:
            protocol = H1ServerProtocol(self.state, "http")
        self._hand_over(protocol)

    def eof_received(self) -> bool | None:
        if self.buffer:
            protocol = H1ServerProtocol(self.state, "http")
            self._hand_over(protocol)
            return protocol.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.settled()

    def _hand_over(self, protocol: H1ServerProtocol | H2ServerProtocol) -> None:
        assert self.transport is not None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        self.settled()
        data, self.buffer = self.buffer, b""
        protocol.data_received(data)
