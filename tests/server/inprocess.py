"""In-process server protocols: a real ServerState and event loop, a transport that records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events
import h2.settings

from h2books.http import Request, Response
from h2books.interfaces.native import NativeInterface
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.clock import WallClock
from h2books.server.config import ServerConfig
from h2books.server.exchange import Exchange
from h2books.server.state import ServerState

P = TypeVar("P", bound=asyncio.Protocol)


class RecordingTransport:
    """Records writes; calls pause_writing past `high` buffered bytes until `drain()`."""

    def __init__(self, high: int | None = None) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.high = high
        self.protocol: asyncio.Protocol | None = None
        self.paused = False
        self.closed = False
        self.writelines_calls = 0

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def writelines(self, pieces: list[bytes | memoryview]) -> None:
        self.writelines_calls += 1
        self.write(b"".join(pieces))

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.buffered += len(data)
        if self.high is not None and self.buffered > self.high and not self.paused:
            self.paused = True
            assert self.protocol is not None
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        if self.paused:
            self.paused = False
            assert self.protocol is not None
            self.protocol.resume_writing()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


def connect(
    protocol_class: Callable[[ServerState, str], P],
    handler: Callable[[Request], Response | Awaitable[Response]],
    transport: RecordingTransport,
    scheme: str = "https",
) -> P:
    """A protocol of `protocol_class` serving `handler`, connected to `transport`."""
    return connect_interface(
        protocol_class, NativeInterface(handler).handle, transport, scheme=scheme
    )


def connect_interface(
    protocol_class: Callable[[ServerState, str], P],
    interface: Callable[[Exchange], None],
    transport: RecordingTransport,
    config: ServerConfig | None = None,
    scheme: str = "https",
) -> P:
    """A protocol of `protocol_class` handing its exchanges to `interface`; `scheme` says
    whether the connection is over TLS ("https") or cleartext ("http")."""
    loop = asyncio.get_running_loop()
    if config is None:
        config = ServerConfig(data_dir=Path("/nonexistent"), access_log=False)
    state = ServerState(config, interface, loop, None, WallClock())
    protocol = protocol_class(state, scheme)
    transport.protocol = protocol
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol


# -- driving an Exchange-level interface (as ASGI and WSGI will) --------------------

Handler = Callable[[Exchange], Coroutine[Any, Any, None]]


def task_interface(handler: Handler) -> Callable[[Exchange], None]:
    """Each exchange runs `handler` as a task, as an ASGI app would run."""

    def interface(exchange: Exchange) -> None:
        exchange.task = asyncio.get_running_loop().create_task(handler(exchange))

    return interface


def h2_client(window: int = 65535) -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    return client


def collecting_h2() -> tuple[
    H2ServerProtocol, RecordingTransport, list[Exchange], h2.connection.H2Connection
]:
    """An in-process HTTP/2 server connection whose interface only collects its exchanges
    (the test drives them), its transport, and an `h2` client; inside a running loop."""
    transport = RecordingTransport()
    exchanges: list[Exchange] = []
    protocol = connect_interface(H2ServerProtocol, exchanges.append, transport)
    return protocol, transport, exchanges, h2_client()


GET = [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", "/")]
POST = [(":method", "POST"), (":scheme", "https"), (":authority", "x"), (":path", "/up")]


async def pump(
    protocol: H2ServerProtocol, transport: RecordingTransport, client: h2.connection.H2Connection
) -> list[h2.events.Event]:
    """Let the loop run, then hand what the server wrote to the client (and its answer back)."""
    events: list[h2.events.Event] = []
    seen = 0
    for _ in range(50):
        await asyncio.sleep(0)
        data = b"".join(transport.writes[seen:])
        seen = len(transport.writes)
        if data:
            events += client.receive_data(data)
        reply = client.data_to_send()
        if reply:
            protocol.data_received(reply)
    transport.writes.clear()
    return events


def h1_request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def parts() -> AsyncIterator[bytes]:
    """The `stream` of a Response started by hand: the interface writes its parts itself."""
    return
    yield b""


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until `condition` holds (a test fails past `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met within the time limit")
        await asyncio.sleep(0)


def answer_one_h2_request(
    handler: Handler, headers: list[tuple[str, str]] = GET
) -> list[h2.events.Event]:
    """What an h2 client sees when `handler` answers one bodiless request."""

    async def main() -> list[h2.events.Event]:
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        client.send_headers(1, headers, end_stream=True)
        protocol.data_received(client.data_to_send())
        return await pump(protocol, transport, client)

    return asyncio.run(main())
