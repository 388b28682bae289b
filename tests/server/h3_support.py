"""HTTP/3 test support: an in-process server with --http3, and aioquic's client as an oracle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

from h2books.certs import ensure_certificates
from h2books.http import Handler
from h2books.interfaces import ServerInterface
from h2books.server.config import ServerConfig
from h2books.server.server import Server
from h2books.server.tls import create_server_ssl_context


@dataclass
class H3Answer:
    """One response as aioquic's client saw it."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None
    informational: list[int] = field(default_factory=list)
    reset_code: int | None = None

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


class OracleProtocol(QuicConnectionProtocol):
    """aioquic's own HTTP/3 client: requests as futures of `H3Answer`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.h3 = H3Connection(self._quic)
        self.answers: dict[int, tuple[H3Answer, asyncio.Future[H3Answer]]] = {}
        self.terminated: asyncio.Future[ConnectionTerminated] = (
            asyncio.get_running_loop().create_future()
        )
        self.goaway_seen = False

    def open(
        self,
        method: bytes,
        path: bytes,
        authority: bytes,
        headers: list[tuple[bytes, bytes]] = [],  # noqa: B006
        body: bytes | None = None,
        end: bool = True,
    ) -> tuple[int, asyncio.Future[H3Answer]]:
        stream_id = self._quic.get_next_available_stream_id()
        fields = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", path),
            *headers,
        ]
        self.h3.send_headers(stream_id, fields, end_stream=end and not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=end)
        future: asyncio.Future[H3Answer] = asyncio.get_running_loop().create_future()
        self.answers[stream_id] = (H3Answer(), future)
        self.transmit()
        return stream_id, future

    async def request(
        self, method: bytes, path: bytes, authority: bytes, **kwargs: object
    ) -> H3Answer:
        _, future = self.open(method, path, authority, **kwargs)  # type: ignore[arg-type]
        return await asyncio.wait_for(future, 10)

    def send_more(self, stream_id: int, data: bytes, end: bool) -> None:
        self.h3.send_data(stream_id, data, end_stream=end)
        self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated) and not self.terminated.done():
            self.terminated.set_result(event)
            for _, future in self.answers.values():
                if not future.done():
                    future.set_exception(ConnectionError(event.reason_phrase))
        if isinstance(event, StreamReset) and event.stream_id in self.answers:
            answer, future = self.answers[event.stream_id]
            answer.reset_code = event.error_code
            if not future.done():
                future.set_result(answer)
        for h3_event in self.h3.handle_event(event):
            self._on_h3(h3_event)

    def _on_h3(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived | DataReceived):
            return
        entry = self.answers.get(event.stream_id)
        if entry is None:
            return
        answer, future = entry
        if isinstance(event, HeadersReceived):
            headers = list(event.headers)
            status = next((v for k, v in headers if k == b":status"), None)
            if status is None:
                answer.trailers = headers
            elif int(status) < 200:
                answer.informational.append(int(status))
            else:
                answer.status = int(status)
                answer.headers = [(k, v) for k, v in headers if not k.startswith(b":")]
        else:
            answer.body += event.data
        if event.stream_ended and not future.done():
            future.set_result(answer)


def client_configuration(ca: Path, **options: object) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, **options)  # type: ignore[arg-type]
    configuration.load_verify_locations(str(ca))
    return configuration


@asynccontextmanager
async def oracle(
    port: int, ca: Path, *, wait_connected: bool = True, **options: object
) -> AsyncIterator[OracleProtocol]:
    async with connect(
        "localhost",
        port,
        configuration=client_configuration(ca, **options),
        create_protocol=OracleProtocol,
        wait_connected=wait_connected,
    ) as protocol:
        assert isinstance(protocol, OracleProtocol)
        yield protocol


@asynccontextmanager
async def h3_server(
    data_dir: Path,
    app: Handler | ServerInterface,
    configure: Callable[[ServerConfig], None] | None = None,
) -> AsyncIterator[tuple[Server, int, Path]]:
    """A Server with --http3 in this event loop: (server, port, CA certificate)."""
    paths = ensure_certificates(data_dir / "tls")
    config = ServerConfig(
        port=0,
        data_dir=data_dir,
        access_log=False,
        http3=True,
        certfile=paths.cert,
        keyfile=paths.key,
    )
    if configure is not None:
        configure(config)
    server = Server(config, app, create_server_ssl_context(paths.cert, paths.key))
    await server.start()
    try:
        yield server, server.sockets[0].getsockname()[1], paths.ca_cert
    finally:
        await server.shutdown()


def wait_udp_listening(port: int, timeout: float = 30.0) -> None:
    """Until a UDP socket is bound to `port` (a server process opens QUIC after its TCP
    listeners, which accept from the moment they are bound, before the worker runs)."""
    import time

    wanted = f":{port:04X} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                if any(wanted in line.split(None, 2)[1] + " " for line in list(lines)[1:]):
                    return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on UDP port {port}")
