"""What every connection of one server shares: the interface, the limits, the clock, the log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from h2books.protocol.h1 import H1Config
from h2books.protocol.h2 import H2Config
from h2books.server.accesslog import AccessLog
from h2books.server.clock import WallClock
from h2books.server.config import ServerConfig

if TYPE_CHECKING:
    from h2books.server.connection import ServerConnection
    from h2books.server.exchange import Exchange

# What the runtime hands each request to: the native handler API, and next ASGI and WSGI.
Interface = Callable[["Exchange"], None]

_READ_BUFFER_SIZE = 256 * 1024


class ServerState:
    __slots__ = (
        "access_log",
        "alt_svc",
        "clock",
        "config",
        "connections",
        "h1_config",
        "h2_config",
        "interface",
        "last_reader",
        "loop",
        "previous_reader",
        "read_view",
        "server_name",
        "shutting_down",
    )

    def __init__(
        self,
        config: ServerConfig,
        interface: Interface,
        loop: asyncio.AbstractEventLoop,
        access_log: AccessLog | None,
        clock: WallClock,
    ) -> None:
        self.config = config
        self.interface = interface
        self.loop = loop
        self.access_log = access_log
        self.clock = clock
        self.server_name = config.server_name
        # `Alt-Svc: h3=":PORT"` on every response once the QUIC endpoint listens (None: off).
        self.alt_svc: bytes | None = None
        # The adapters (server/connection.py) of every live connection.
        self.connections: set[ServerConnection] = set()
        self.shutting_down = False
        # The connection of the last read, of any protocol (each adapter's read sets it),
        # and, as an HTTP/2 read begins, the one before it: when one connection has the
        # server to itself, its output is written during a long read (adapters/h2.py,
        # respond). They may keep two closed connections until the next reads.
        self.last_reader: ServerConnection | None = None
        self.previous_reader: ServerConnection | None = None
        # One read buffer for every connection of this loop: each read is handed on (as
        # bytes) before the next one can start, so sharing it costs nothing per connection.
        self.read_view = memoryview(bytearray(_READ_BUFFER_SIZE))
        limits, timeouts = config.limits, config.timeouts
        self.h2_config = H2Config(
            client_side=False,
            max_concurrent_streams=limits.max_concurrent_streams,
            initial_window_size=limits.initial_window_size,
            connection_window_size=limits.connection_window_size,
            max_frame_size=limits.max_frame_size,
            max_header_list_size=limits.max_header_list_size,
            max_header_count=limits.max_header_count,
            preface_timeout=timeouts.request_head,
            request_head_timeout=timeouts.request_head,
            idle_timeout=timeouts.keep_alive,
            stall_timeout=timeouts.stall,
            enable_push=config.push,
        )
        self.h1_config = H1Config(
            max_request_line=limits.max_request_line,
            max_header_bytes=limits.max_header_bytes,
            max_header_count=limits.max_header_count,
            max_body_size=limits.max_body_size,
            max_pipelined=limits.max_pipelined,
            request_head_timeout=timeouts.request_head,
            idle_timeout=timeouts.keep_alive,
            stall_timeout=timeouts.stall,
        )
