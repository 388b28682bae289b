"""HTTP/1.1 request bodies in parts, backpressure and trailers, through the real server.

The server runs in a thread of this process (its own event loop, real sockets); the
interface is written against the exchange directly, as ASGI and WSGI are. Clients: raw
sockets (to watch a send block), h11, curl, and `h2books.Client` over h1 and h2.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import h11
import pytest

from h2books.client import Client
from h2books.http import Response
from h2books.interfaces import ServerInterface
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.config import Limits
from h2books.server.exchange import Exchange
from tests.threaded_server import ThreadedServer

BUDGET = 1 << 20  # max_buffered_body for these tests
UPLOAD = 64 << 20
READ_SLACK = 256 * 1024  # one read of the shared buffer may land on top of the budget

App = Callable[[Exchange], Coroutine[Any, Any, None]]


class ExchangeApp(ServerInterface):
    """Runs ``app(exchange)`` as a task per request; the test picks the app per path."""

    def __init__(self) -> None:
        self.routes: dict[bytes, App] = {}

    def handle(self, exchange: Exchange) -> None:
        app = self.routes[exchange.target]
        exchange.task = asyncio.get_running_loop().create_task(app(exchange))


@pytest.fixture(scope="module")
def app() -> ExchangeApp:
    return ExchangeApp()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, app: ExchangeApp) -> Iterator[ThreadedServer]:
    limits = Limits(max_body_size=UPLOAD * 2, max_buffered_body=BUDGET)
    with ThreadedServer(tmp_path_factory.mktemp("h1bodies"), app, limits=limits) as server:
        yield server


def raw(served: ThreadedServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.http_port), timeout=30)


def read_response(sock: socket.socket) -> tuple[h11.Response, bytes, list[tuple[bytes, bytes]]]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    client.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body = b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, body, [(bytes(n), bytes(v)) for n, v in event.headers]


# -- a big upload read slowly: the socket pauses, the held bytes stay bounded ---------------------


@pytest.mark.slow
def test_a_64_mib_upload_read_slowly_holds_the_budget_and_blocks_the_sender(
    served: ThreadedServer, app: ExchangeApp
) -> None:
    start_reading = threading.Event()
    held_seen: list[int] = []

    async def slow_reader(exchange: Exchange) -> None:
        adapter = exchange.adapter
        assert isinstance(adapter, H1ServerProtocol)
        while not start_reading.is_set():
            held_seen.append(adapter._held)  # the counter under test
            await asyncio.sleep(0.05)
        total = 0
        while True:
            held_seen.append(adapter._held)
            data = await exchange.receive()
            if not data:
                break
            total += len(data)
            await asyncio.sleep(0)  # a reader slower than the socket: one part per turn
        exchange.respond(Response(200, [], b"%d" % total))

    app.routes[b"/slow"] = slow_reader
    sent = 0
    sock = raw(served)
    head = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % UPLOAD

    def send_all() -> None:
        nonlocal sent
        sock.sendall(head)
        block = b"u" * 65536
        for _ in range(UPLOAD // len(block)):
            sock.sendall(block)
            sent += len(block)

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    # The app reads nothing: the sender must stop making progress once the budget and
    # the kernel's buffers are full.
    last, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < 1.0:
        if sent != last:
            last, still_since = sent, time.monotonic()
        time.sleep(0.05)
    assert sent < UPLOAD // 2, sent  # blocked: TCP backpressure, not a server buffering it all
    assert max(held_seen) <= BUDGET + READ_SLACK, max(held_seen)
    start_reading.set()
    sender.join(60)
    response, body, _ = read_response(sock)
    sock.close()
    assert response.status_code == 200 and body == b"%d" % UPLOAD
    assert max(held_seen) <= BUDGET + READ_SLACK, max(held_seen)


# -- request trailers ----------------------------------------------------------------------------


def test_request_trailers_reach_the_exchange(served: ThreadedServer, app: ExchangeApp) -> None:
    async def echo_trailers(exchange: Exchange) -> None:
        body = b""
        while data := await exchange.receive():
            body += data
        fields = b"".join(b"%s=%s;" % field for field in exchange.trailers or [])
        exchange.respond(Response(200, [], body + b"|" + fields))

    app.routes[b"/trailers"] = echo_trailers
    with raw(served) as sock:
        sock.sendall(b"POST /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n")  # the head and a part: the exchange reads in parts
        time.sleep(0.05)
        sock.sendall(b"6;ext=1\r\n world\r\n0\r\nX-Digest: abc\r\nX-Count: 11\r\n\r\n")
        response, body, _ = read_response(sock)
    assert response.status_code == 200
    assert body == b"hello world|x-digest=abc;x-count=11;"


def test_a_body_left_unread_does_not_break_the_next_request(
    served: ThreadedServer, app: ExchangeApp
) -> None:
    async def early(exchange: Exchange) -> None:
        exchange.respond(Response(200, [], b"early"))

    app.routes[b"/early"] = early
    with raw(served) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        first, body, _ = read_response(sock)
        assert body == b"early" and first.status_code == 200
        sock.sendall(b"b" * 990 + b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        _, body, _ = read_response(sock)
    assert body == b"early"


def _early(app: ExchangeApp) -> None:
    async def early(exchange: Exchange) -> None:
        exchange.respond(Response(200, [], b"early"))

    app.routes[b"/early"] = early


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_answer_to_a_long_unread_upload_survives_the_close(
    served: ThreadedServer, app: ExchangeApp, framing: str
) -> None:
    # The client sends its whole body before it reads (as httpx and requests do). The
    # server answers at once and closes, but reads and drops the rest meanwhile: a close
    # with unread input would reset the connection and could destroy the answer.
    _early(app)
    size = 4 << 20
    if framing == "chunked":
        head = b"POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"".join(b"10000\r\n" + b"u" * 0x10000 + b"\r\n" for _ in range(size >> 16))
        body += b"0\r\n\r\n"
    else:
        head = b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
        body = b"u" * size
    with raw(served) as sock:
        sock.sendall(head + body)  # would fail with a reset if the server stopped reading
        response, answer, _ = read_response(sock)
        assert response.status_code == 200 and answer == b"early"
        assert (b"connection", b"close") in response.headers
        assert sock.recv(100) == b""  # then the server closes


def test_a_lingering_close_ends_for_a_peer_that_never_stops_sending(
    served: ThreadedServer, app: ExchangeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import h2books.server.adapters.h1 as adapter

    monkeypatch.setattr(adapter, "LINGER_BYTES", 1 << 20)
    _early(app)
    with raw(served) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        sent = 0
        with pytest.raises(OSError):  # reset or broken pipe, once the linger is over
            while sent < 64 << 20:
                sock.sendall(b"u" * 65536)
                sent += 65536
        assert sent < 64 << 20


def test_a_lingering_close_ends_in_time_for_a_silent_peer(
    served: ThreadedServer, app: ExchangeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import h2books.server.adapters.h1 as adapter

    monkeypatch.setattr(adapter, "LINGER_SECONDS", 0.2)
    _early(app)
    with raw(served) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        _, answer, _ = read_response(sock)
        assert answer == b"early"
        sock.settimeout(10)
        assert sock.recv(100) == b""  # closed by the linger's deadline, not the idle timeout


def test_a_chunked_body_over_the_limit_is_413(served: ThreadedServer, app: ExchangeApp) -> None:
    seen: list[int] = []

    async def reader(exchange: Exchange) -> None:
        while data := await exchange.receive():
            seen.append(len(data))
        if not exchange.gone:
            exchange.respond(Response(200, [], b"read"))

    app.routes[b"/big"] = reader
    limit = served.config.limits.max_body_size
    with raw(served) as sock:
        sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"%x\r\n" % (limit + 1))
        response, _, _ = read_response(sock)
        assert sock.recv(10) == b""  # and the connection is closed
    assert response.status_code == 413
    assert sum(seen) == 0  # the app never saw a byte past the limit


# -- response trailers ---------------------------------------------------------------------------


async def _streamed() -> AsyncIterator[bytes]:
    yield b""  # never iterated: it marks the response as sent in parts (no content-length)


async def with_trailers(exchange: Exchange) -> None:
    while await exchange.receive():
        pass
    exchange.start(Response(200, [(b"content-type", b"application/grpc")], stream=_streamed()))
    exchange.write(b"message")
    exchange.end([(b"grpc-status", b"0"), (b"grpc-message", b"ok")])


def test_response_trailers_reach_an_h11_client(served: ThreadedServer, app: ExchangeApp) -> None:
    app.routes[b"/grpc"] = with_trailers
    with raw(served) as sock:
        sock.sendall(
            b"POST /grpc HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nContent-Length: 2\r\n\r\nhi"
        )
        response, body, trailers = read_response(sock)
    assert (dict(response.headers)[b"transfer-encoding"], body) == (b"chunked", b"message")
    assert trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]


def test_response_trailers_reach_curl(served: ThreadedServer, app: ExchangeApp) -> None:
    app.routes[b"/grpc"] = with_trailers
    done = subprocess.run(
        ["curl", "-s", "--raw", "-H", "TE: trailers", "-d", "hi", served.http_url + "/grpc"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == b"7\r\nmessage\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_response_trailers_reach_our_client(
    served: ThreadedServer, app: ExchangeApp, http2: bool
) -> None:
    app.routes[b"/grpc"] = with_trailers

    async def call() -> tuple[bytes, list[tuple[bytes, bytes]] | None]:
        url = f"https://localhost:{served.tls_port}"
        async with Client(url, http2=http2, cacert=served.ca, timeout=30) as client:
            response = await client.request("POST", "/grpc", body=b"hi")
            return response.content, response.trailers

    assert asyncio.run(call()) == (b"message", [(b"grpc-status", b"0"), (b"grpc-message", b"ok")])
