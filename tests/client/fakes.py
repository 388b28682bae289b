"""Small bookstores that misbehave on purpose, for the client and crawl tests.

Each fake is a plain TCP server on 127.0.0.1 in background threads (one per
connection, blocking sockets), so the client under test runs in its own event
loop exactly as `h2books crawl` does. The HTTP/2 fakes speak through the `h2`
library (the test oracle), the HTTP/1.1 ones through hand-written bytes; neither
shares code with h2books.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import h2.config
import h2.connection
import h2.events
import h2.settings

BOOK_IDS = [str(i) for i in range(1, 31)]
INDEX_BODY = json.dumps(BOOK_IDS).encode()


def book_body(book_id: str) -> bytes:
    return json.dumps({"id": book_id, "title": f"Book {book_id}"}).encode()


def book_id_of(path: bytes) -> str | None:
    prefix = b"/book?id="
    return path[len(prefix) :].decode() if path.startswith(prefix) else None


def default_answer(path: bytes) -> tuple[int, bytes]:
    if path == b"/":
        return 200, INDEX_BODY
    book_id = book_id_of(path)
    if book_id in BOOK_IDS:
        return 200, book_body(book_id)
    return 404, b'{"error": "not found"}'


class CloseConnection(Exception):
    """Raised by a behaviour to drop the connection on the spot."""


class FakeServer:
    """Accepts connections and runs ``handler(sock, server)`` for each in a thread."""

    def __init__(self, handler: Callable[[socket.socket, FakeServer], None]) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.lock = threading.Lock()
        self.state: dict[str, object] = {}
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.handler(sock, self)
        except (CloseConnection, OSError):
            pass
        finally:
            with suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self.lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()


@contextmanager
def serving(handler: Callable[[socket.socket, FakeServer], None]) -> Iterator[FakeServer]:
    server = FakeServer(handler)
    try:
        yield server
    finally:
        server.close()


# -- HTTP/1.1 ---------------------------------------------------------------------------


def read_requests(sock: socket.socket) -> Iterator[tuple[bytes, bytes]]:
    """(method, target) of each request head on the connection (requests carry no body)."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
            yield method, target
            continue
        data = sock.recv(65536)
        if not data:
            return
        buffer += data


def h1_response(status: int, body: bytes, *fields: bytes) -> bytes:
    head = [b"HTTP/1.1 %d X" % status, b"content-length: %d" % len(body), *fields]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


H1Behaviour = Callable[[socket.socket, FakeServer, bytes], bool]


def h1_answer(target: bytes, status: int, body: bytes) -> H1Behaviour:
    """A behaviour answering `target` with `status` and `body`."""

    def behaviour(sock: socket.socket, server: FakeServer, requested: bytes) -> bool:
        if requested != target:
            return False
        sock.sendall(h1_response(status, body))
        return True

    return behaviour


def h1_bookstore(
    behaviour: H1Behaviour | None = None,
) -> Callable[[socket.socket, FakeServer], None]:
    """A keep-alive HTTP/1.1 bookstore; ``behaviour(sock, server, target)`` may take over
    a request (returning True) to misbehave."""

    def handler(sock: socket.socket, server: FakeServer) -> None:
        for _method, target in read_requests(sock):
            if behaviour is not None and behaviour(sock, server, target):
                continue
            status, body = default_answer(target)
            sock.sendall(h1_response(status, body, b"content-type: application/json"))

    return handler


# -- HTTP/2 -----------------------------------------------------------------------------


class H2Session:
    """One server-side `h2` connection over a blocking socket."""

    def __init__(self, sock: socket.socket, server: FakeServer, **settings: int) -> None:
        self.sock = sock
        self.server = server
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(
                {getattr(h2.settings.SettingCodes, name.upper()): v for name, v in settings.items()}
            )
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def answer(
        self, stream_id: int, status: int, body: bytes, *fields: tuple[bytes, bytes]
    ) -> None:
        headers = [(b":status", b"%d" % status), (b"content-length", b"%d" % len(body)), *fields]
        self.conn.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)

    def events(self) -> Iterator[h2.events.Event]:
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            if self.conn.state_machine.state == h2.connection.ConnectionState.CLOSED:
                continue  # after our GOAWAY: read (so the peer can finish), ignore
            yield from self.conn.receive_data(data)
            self.flush()


H2Behaviour = Callable[[H2Session, int, bytes], bool]


def h2_answer(path: bytes, status: int, body: bytes) -> H2Behaviour:
    """A behaviour answering `path` with `status` and `body`."""

    def behaviour(session: H2Session, stream_id: int, requested: bytes) -> bool:
        if requested != path:
            return False
        session.answer(stream_id, status, body)
        return True

    return behaviour


def h2_bookstore(
    behaviour: H2Behaviour | None = None, **settings: int
) -> Callable[[socket.socket, FakeServer], None]:
    """An h2c bookstore (prior knowledge); ``behaviour(session, stream_id, path)`` may take
    over a request (returning True) to misbehave."""

    def handler(sock: socket.socket, server: FakeServer) -> None:
        session = H2Session(sock, server, **settings)
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if behaviour is None or not behaviour(session, event.stream_id, path):
                    status, body = default_answer(path)
                    session.answer(event.stream_id, status, body)
            elif isinstance(event, h2.events.DataReceived):
                session.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            session.flush()

    return handler


def over_tls(
    handler: Callable[[socket.socket, FakeServer], None], context: ssl.SSLContext
) -> Callable[[socket.socket, FakeServer], None]:
    """`handler`, behind a TLS handshake with `context` (its ALPN protocols decide)."""

    def tls_handler(sock: socket.socket, server: FakeServer) -> None:
        try:
            tls = context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            handler(tls, server)

    return tls_handler


class H2LoopServer(asyncio.Protocol):
    """A server-side `h2` connection served by the test's own event loop (no thread): for
    tests that need the server's writes in a given order or size."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())
