"""Support for the WebSocket tests: a real server in a thread (real sockets, real TLS with
the local CA), the server's ASGI interface, and RFC 8441 / raw clients."""

from __future__ import annotations

import base64
import itertools
import os
import socket
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, TextMessage
from wsproto.events import Event as WsEvent
from wsproto.extensions import PerMessageDeflate

from h2books.http import Response
from h2books.interfaces.asgi import AsgiInterface
from h2books.interfaces.asgi_scope import AsgiApp
from tests.threaded_server import ThreadedServer

NOT_FOUND = Response(404, [(b"content-type", b"text/plain")], b"not found")


class ASGIWebSocketInterface(AsgiInterface):
    """The server's ASGI interface, lifespan off: the apps here serve WebSockets."""

    def __init__(self, app: AsgiApp) -> None:
        super().__init__(app, lifespan="off")


# -- an RFC 8441 client: the h2 library for HTTP/2, wsproto for the frames ---------------


class H2WebSocketClient:
    """One extended CONNECT over TLS: `h2` drives HTTP/2, wsproto (client role) frames."""

    def __init__(
        self,
        server: ThreadedServer,
        path: str = "/ws",
        extra: list[tuple[bytes, bytes]] | None = None,
        deflate: bool = False,
        version: bytes = b"13",
    ) -> None:
        context = server.client_context()
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self._flush()
        self.events: list[h2.events.Event] = []
        self._inbuf = b""
        self.goaway = False
        self.ws: Connection | None = None
        self.acknowledge = True  # give the server's DATA its window back as it comes
        self.early = bytearray()  # DATA that came with the response head
        while not self.h2.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL):
            self._read()
        self.stream_id = self.h2.get_next_available_stream_id()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", path.encode()),
            (b":authority", b"localhost"),
            (b"sec-websocket-version", version),
            *(extra or []),
        ]
        if deflate:
            fields.append((b"sec-websocket-extensions", b"permessage-deflate"))
        self.h2.send_headers(self.stream_id, fields)
        self._flush()
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.ended = False
        self.reset_code: int | None = None
        while not self.status:
            self._read()
        extensions = [PerMessageDeflate()] if b"sec-websocket-extensions" in self.headers else []
        if extensions:
            extensions[0].finalize(self.headers[b"sec-websocket-extensions"].decode())
        self.ws = Connection(ConnectionType.CLIENT, extensions)
        self.ws.receive_data(bytes(self.early))
        self.early.clear()
        self._pending: list[WsEvent] = []

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        # Frame by frame: the h2 library refuses anything after a GOAWAY (our graceful
        # shutdown's PING among it) and would drop the events before it in the same call.
        self._inbuf += data
        while len(self._inbuf) >= 9:
            size = int.from_bytes(self._inbuf[:3], "big") + 9
            if len(self._inbuf) < size:
                break
            frame, self._inbuf = self._inbuf[:size], self._inbuf[size:]
            try:
                self._on_events(self.h2.receive_data(frame))
            except h2.exceptions.ProtocolError:
                if not self.goaway:
                    raise
        self._flush()

    def _on_events(self, events: list[h2.events.Event]) -> None:
        for event in events:
            self.events.append(event)
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == self.stream_id:
                self.headers = dict(event.headers)
                self.status = int(self.headers[b":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == self.stream_id:
                if self.acknowledge:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if self.status == 200:
                    self.early += event.data
                    if self.ws is not None:
                        self.ws.receive_data(bytes(self.early))
                        self.early.clear()
                else:
                    self.body += event.data
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == self.stream_id:
                self.ended = True
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == self.stream_id:
                self.reset_code = event.error_code
                self.ended = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = True

    def send(self, event: WsEvent) -> None:
        assert self.ws is not None
        self.send_raw(self.ws.send(event))

    def send_raw(self, data: bytes) -> None:
        self.h2.send_data(self.stream_id, data)
        self._flush()

    def next_event(self) -> WsEvent:
        """The next frame event; a message's parts joined into one event."""
        parts: list[Any] = []
        while True:
            event = self._next_part()
            if not isinstance(event, (TextMessage, BytesMessage)):
                return event
            parts.append(event.data)
            if event.message_finished:
                data = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                return type(event)(data)

    def _next_part(self) -> WsEvent:
        assert self.ws is not None
        while True:
            for event in self.ws.events():
                self._pending.append(event)
            if self._pending:
                return self._pending.pop(0)
            if self.ended:
                raise ConnectionError("stream ended")
            self._read()

    def wait_ended(self) -> None:
        while not self.ended:
            self._read()

    def end_stream(self) -> None:
        self.h2.end_stream(self.stream_id)
        self._flush()

    def close(self) -> None:
        self.sock.close()


# -- a raw HTTP/1.1 client for frames no library will send ---------------------------


def raw_handshake(port: int, path: str = "/ws", extra: bytes = b"") -> tuple[socket.socket, bytes]:
    """Open a cleartext socket and send an opening handshake; returns it and the head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (path.encode(), key, extra)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def masked_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    """A client frame built by hand (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        head = bytes([first, (0x80 if mask else 0) | length])
    elif length < 1 << 16:
        head = bytes([first, (0x80 if mask else 0) | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, (0x80 if mask else 0) | 127]) + length.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def iter_frames(sock: socket.socket, initial: bytes = b"") -> Iterator[tuple[int, bytes]]:
    """Server frames (unmasked) as they arrive: their opcodes and payloads, until EOF."""
    data = initial
    while True:
        while len(data) >= 2:
            length = data[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = int.from_bytes(data[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(data[2:10], "big"), 10
            if len(data) < offset + length:
                break
            yield data[0] & 0x0F, data[offset : offset + length]
            data = data[offset + length :]
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk


def read_frames(sock: socket.socket, count: int, initial: bytes = b"") -> list[tuple[int, bytes]]:
    """Read `count` server frames (fewer if the socket ends first)."""
    return list(itertools.islice(iter_frames(sock, initial), count))


def read_close(sock: socket.socket, initial: bytes = b"") -> int | None:
    """Read server frames until a close frame; its code (None if the socket ended first)."""
    for opcode, payload in iter_frames(sock, initial):
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
    return None
