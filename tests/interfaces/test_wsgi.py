"""WSGI through the real server: the environ, streamed request and response bodies with
flow control, close(), misbehaving apps, the thread pool's bound; then Flask and Django.

The server runs in a thread of this process (real sockets, real TLS); the clients are
httpx over HTTP/2 and HTTP/1.1, and curl.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from h2books.interfaces.wsgi import WsgiInterface, _server_of
from h2books.server.config import Limits, Timeouts
from tests.conftest import require_tool
from tests.interfaces import django_site
from tests.threaded_server import ThreadedServer

CHUNK = b"y" * 65536
THREADS = 4
WINDOW = Limits().initial_window_size  # the server's per-stream receive window (h2)


class Tracker:
    """What the app's iterables did, per request token: bytes produced, close() called."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.produced: dict[str, int] = {}
        self.closed: dict[str, threading.Event] = {}

    def closed_event(self, token: str) -> threading.Event:
        with self.lock:
            return self.closed.setdefault(token, threading.Event())

    def add(self, token: str, size: int) -> None:
        with self.lock:
            self.produced[token] = self.produced.get(token, 0) + size


TRACKER = Tracker()


class TrackedBody:
    """A response iterable that counts what it yields and records its close()."""

    def __init__(self, token: str, parts: Iterator[bytes]) -> None:
        self.token = token
        self.parts = parts

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            TRACKER.add(self.token, len(part))
            yield part

    def close(self) -> None:
        TRACKER.closed_event(self.token).set()


class PoolProbe:
    """How many requests run in the app at once (the thread pool's bound)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.full = threading.Event()
        self.release = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running == THREADS:
                self.full.set()

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


PROBE = PoolProbe()
ANSWERED: dict[str, threading.Event] = {}


def answered_event(token: str) -> threading.Event:
    return ANSWERED.setdefault(token, threading.Event())


class AnswerMarker:
    """One whole body; its close() (in the app's thread, after the answer was handed to the
    loop) asks the loop to mark the answer as taken, which the loop does after taking it."""

    def __init__(self, token: str, body: bytes) -> None:
        self.token = token
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        if self.token:
            SERVED[0].loop.call_soon_threadsafe(answered_event(self.token).set)


SERVED: list[ThreadedServer] = []


def _held_by_server(prefix: bytes) -> int:
    """On the server's loop: body bytes received for the request at `prefix` so far."""
    state = SERVED[0].server.state
    assert state is not None
    for connection in state.connections:
        for exchange in connection.live_exchanges():
            if exchange.target.startswith(prefix):
                return exchange.body_size
    return -1


def _json(start_response: Callable[..., Any], value: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def raw_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ["PATH_INFO"]
    query = dict(p.split("=", 1) for p in environ["QUERY_STRING"].split("&") if "=" in p)
    token = query.get("token", "")
    if path.startswith("/environ"):
        body = environ["wsgi.input"].read()
        shown = {k: v for k, v in environ.items() if isinstance(v, str | bool | tuple)}
        shown["body"] = body.decode("latin-1")
        return _json(start_response, shown)
    if path == "/ignore-body":
        return _json(start_response, {"ignored": True})  # the body is never read
    if path == "/echo":
        return _json(start_response, {"size": len(environ["wsgi.input"].read())})
    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        partial = stream.readline(3)
        rest = list(stream)
        return _json(start_response, [first.decode(), partial.decode(), [r.decode() for r in rest]])
    if path == "/slow-upload":
        stream = environ["wsgi.input"]
        consumed = len(stream.read(65536))
        most_held = 0
        deadline = time.monotonic() + 10
        # Stop reading until the peer's window is used up: the server holds what it let in.
        while time.monotonic() < deadline:
            held = SERVED[0].call(lambda: _held_by_server(b"/mount/slow-upload")) - consumed
            most_held = max(most_held, held)
            if held >= WINDOW - 65536:
                break
            time.sleep(0.01)
        time.sleep(0.3)  # had credit gone back unread, the peer would now send the rest
        held = SERVED[0].call(lambda: _held_by_server(b"/mount/slow-upload")) - consumed
        most_held = max(most_held, held)
        while part := stream.read(65536):
            consumed += len(part)
        return _json(start_response, {"consumed": consumed, "most_held": most_held})
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        count = int(query.get("n", "4"))
        return TrackedBody(token, (CHUNK for _ in range(count)))
    if path == "/raise-mid-stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def broken() -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("the body broke")

        return TrackedBody(token, broken())
    if path == "/raise-before-start":
        raise ValueError("app bug before start_response")
    if path == "/raise-after-start":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def failing() -> Iterator[bytes]:
            raise ValueError("app bug before the first byte")
            yield b""  # a generator

        return TrackedBody(token, failing())
    if path == "/no-start":
        return TrackedBody(token, iter([]))
    if path == "/bad-status":
        start_response("OK", [])
        return [b""]
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nset-cookie: stolen=1")])
        return [b"never"]
    if path == "/hop-by-hop":
        start_response("200 OK", [("Transfer-Encoding", "chunked")])
        return [b"never"]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"then ")
        return [b"returned"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("late failure")
        except KeyError:
            import sys

            start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
        return [b"sorry"]
    if path == "/file":
        wrapper = environ["wsgi.file_wrapper"]
        handle = open(query["name"], "rb")  # noqa: SIM115 (closed by the server via close())
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrapper(handle, 8192)
    if path == "/same-head":
        # The same head for every body (a template Response serves them all, one at a time).
        if "after" in query:  # answer once the loop has taken the other request's answer
            answered_event(query["after"]).wait(20)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return AnswerMarker(token, query["body"].encode())
    if path == "/pool":
        PROBE.enter()
        try:
            PROBE.release.wait(20)
        finally:
            PROBE.leave()
        return _json(start_response, {"token": token})
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return []


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wsgi")


@pytest.fixture(scope="module")
def served(tls_dir: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(
        tls_dir,
        lambda config: WsgiInterface(raw_app, config),
        root_path="/mount/",
        wsgi_threads=THREADS,
        limits=Limits(max_body_size=64 * 1024 * 1024),
    ) as server:
        SERVED[:] = [server]
        yield server
    SERVED.clear()


@pytest.fixture(params=["h2", "h1"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(served: ThreadedServer, version: str) -> Iterator[httpx.Client]:
    with served.client(version, timeout=30) as c:
        yield c


# -- the environ ------------------------------------------------------------------------


def test_environ_exact(served: ThreadedServer, client: httpx.Client, version: str) -> None:
    r = client.post(
        "/mount/environ/a%2Fb/%C3%A9?x=1&y=%20",
        content=b"k=v",
        headers=[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-multi", "1"),
            ("x-multi", "2"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x_under", "spoof"),
        ],
    )
    assert r.status_code == 200
    env = r.json()
    assert r.http_version == ("HTTP/2" if version == "h2" else "HTTP/1.1")
    expected = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/mount",
        # Percent-decoded, %2F included, as bytes read as latin-1 (PEP 3333).
        "PATH_INFO": "/environ/a/b/\u00c3\u00a9",
        "QUERY_STRING": "x=1&y=%20",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": "3",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": str(served.tls_port),
        "SERVER_PROTOCOL": "HTTP/2" if version == "h2" else "HTTP/1.1",
        "HTTP_HOST": f"localhost:{served.tls_port}",
        "HTTP_X_MULTI": "1, 2",
        "HTTP_COOKIE": "a=1; b=2",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "https",
        "wsgi.version": [1, 0],
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "body": "k=v",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert int(env["REMOTE_PORT"]) > 0
    # A field name with "_" would pass for its "-" twin once converted: dropped.
    assert not any("UNDER" in key for key in env)
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_path_outside_root_path_and_cleartext(served: ThreadedServer) -> None:
    # The proxy stripped the prefix: SCRIPT_NAME is the root path, PATH_INFO what came.
    with httpx.Client(base_url=f"http://127.0.0.1:{served.http_port}") as c:
        env = c.get("/environ").json()
    assert env["SCRIPT_NAME"] == "/mount" and env["PATH_INFO"] == "/environ"
    assert env["wsgi.url_scheme"] == "http" and env["SERVER_PORT"] == str(served.http_port)
    assert env["SERVER_NAME"] == "127.0.0.1"


def test_chunked_body_gets_a_content_length(client: httpx.Client, version: str) -> None:
    # No content-length on the wire (h1 chunked, h2 without it). A body that is whole when
    # the app starts gets its length; one still arriving (its last part comes in a later
    # read, on either protocol) is read to its end, as wsgi.input_terminated says.
    r = client.post("/mount/environ", content=iter([b"ab", b"cd"]))
    env = r.json()
    assert env["body"] == "abcd"
    assert env.get("CONTENT_LENGTH", "4") == "4"


def test_readline_and_iteration(client: httpx.Client) -> None:
    r = client.post("/mount/lines", content=iter([b"one\ntw", b"o\nthree\nfour"]))
    assert r.json() == ["one\n", "two", ["\n", "three\n", "four"]]


def test_curl_h2_and_h1(served: ThreadedServer) -> None:
    curl = require_tool("curl")
    for flag, protocol in (("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")):
        out = subprocess.run(
            [curl, "-sS", flag, "--cacert", str(served.ca), "-d", "name=value",
             "-H", "X-Multi: 1", "-H", "X-Multi: 2",
             f"{served.url}/mount/environ/x%2Fy?q=1"],
            capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        env = json.loads(out)
        assert env["SERVER_PROTOCOL"] == protocol
        assert env["PATH_INFO"] == "/environ/x/y" and env["QUERY_STRING"] == "q=1"
        assert env["body"] == "name=value" and env["CONTENT_LENGTH"] == "10"
        assert env["HTTP_X_MULTI"] == "1, 2"


# -- bodies, both ways ------------------------------------------------------------------


def test_upload_larger_than_the_window_is_not_buffered(served: ThreadedServer) -> None:
    size = 6 * 1024 * 1024

    def parts() -> Iterator[bytes]:
        for _ in range(size // 65536):
            yield CHUNK

    with served.client("h2", timeout=60) as c:
        r = c.post("/mount/slow-upload", content=parts())
    result = r.json()
    assert result["consumed"] == size
    # While the app did not read, the server held at most the stream's window: the peer's
    # credit comes back only as the app reads (else it would hold most of the 6 MiB).
    assert WINDOW // 2 <= result["most_held"] <= WINDOW + 65536


def test_unread_body_on_h1_is_discarded(served: ThreadedServer) -> None:
    with served.client("h1", timeout=30) as c:
        for _ in range(2):
            r = c.post("/mount/ignore-body", content=iter([CHUNK] * 40))  # 2.5 MiB
            assert r.json() == {"ignored": True}
        assert c.get("/mount/environ").status_code == 200


def test_unread_body_on_h2_ends_the_stream_and_the_connection_serves_on(
    served: ThreadedServer,
) -> None:
    # An answer that never read the body: the stream ends, RST_STREAM(NO_ERROR) asks the
    # peer to stop sending (RFC 9113 §8.1), and the connection goes on. (`h2` here: httpx
    # waits for window credit that cannot come, and curl 7.88 reports the reset as error.)
    import h2.config
    import h2.connection
    import h2.events

    context = ssl.create_default_context(cafile=str(served.ca))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", served.tls_port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        peer = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        peer.initiate_connection()
        head = [(":scheme", "https"), (":authority", "localhost")]
        peer.send_headers(
            1,
            [(":method", "POST"), (":path", "/mount/ignore-body"), *head,
             ("content-length", str(4 * WINDOW))],
        )  # fmt: skip
        peer.send_data(1, b"u" * 16000)
        peer.send_headers(3, [(":method", "GET"), (":path", "/mount/environ"), *head], True)
        sock.sendall(peer.data_to_send())
        seen: list[object] = []
        while not any(isinstance(e, h2.events.StreamEnded) and e.stream_id == 3 for e in seen):
            data = sock.recv(65536)
            assert data, f"connection closed; events: {seen}"
            seen.extend(peer.receive_data(data))
            sock.sendall(peer.data_to_send())
        while not any(isinstance(e, h2.events.StreamReset) for e in seen):
            seen.extend(peer.receive_data(sock.recv(65536)))
    bodies: dict[int, bytes] = {}
    for event in seen:
        if isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
    assert json.loads(bodies[1]) == {"ignored": True}
    assert json.loads(bodies[3])["PATH_INFO"] == "/environ"
    resets = [e for e in seen if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(1, 0)]


@pytest.mark.parametrize(
    ("authority", "scheme", "expected"),
    [
        (b"example.com:8443", "https", ("example.com", "8443")),
        (b"example.com", "https", ("example.com", "443")),
        (b"example.com", "http", ("example.com", "80")),
        (b"[::1]:8443", "https", ("[::1]", "8443")),
        (b"[::1]", "http", ("[::1]", "80")),
    ],
)
def test_server_name_and_port_from_the_authority(
    authority: bytes, scheme: str, expected: tuple[str, str]
) -> None:
    assert _server_of(authority, scheme) == expected


def test_big_upload_read_whole(client: httpx.Client) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB
    parts = [payload[i : i + 100000] for i in range(0, len(payload), 100000)]
    r = client.post("/mount/echo", content=iter(parts))
    assert r.json() == {"size": len(payload)}


def _wait_stable(token: str, seconds: float = 0.5, timeout: float = 20) -> int:
    """Bytes the app produced, once the count stopped moving (the generator is blocked)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = TRACKER.produced.get(token, 0)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return now
        time.sleep(0.05)
    raise AssertionError(f"the app kept producing: {last} bytes")


@pytest.mark.slow
def test_streamed_response_waits_for_a_slow_reader(served: ThreadedServer, version: str) -> None:
    token = f"backpressure-{version}"
    count = 512  # 32 MiB
    # httpx opens a 16 MiB window per h2 stream, so what holds the server back is the
    # kernel: a fixed receive buffer stops its autotuning from taking the whole body.
    small_buffer = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)]
    with (
        served.client(version, socket_options=small_buffer, timeout=60) as c,
        c.stream("GET", f"/mount/stream?n={count}&token={token}") as r,
    ):
        parts = r.iter_raw()
        first = next(parts)
        produced = _wait_stable(token)
        # The socket buffers (the server's send buffer grows to 4 MiB), the transport's
        # and the core's high-water marks, the pipe's: never the whole body.
        assert produced <= 8 * 1024 * 1024
        total = len(first) + sum(len(part) for part in parts)
    assert total == count * len(CHUNK)
    assert TRACKER.closed_event(token).wait(10)


def test_close_called_after_a_normal_stream(client: httpx.Client, version: str) -> None:
    token = f"normal-{version}"
    r = client.get(f"/mount/stream?n=3&token={token}")
    assert r.content == CHUNK * 3
    assert TRACKER.closed_event(token).wait(10)


def test_client_disconnect_stops_the_iterable(served: ThreadedServer, version: str) -> None:
    token = f"disconnect-{version}"
    with (
        served.client(version, timeout=30) as c,
        c.stream("GET", f"/mount/stream?n=100000&token={token}") as r,
    ):
        next(r.iter_raw())
    # The connection is gone: the generator stops being consumed, close() is called.
    assert TRACKER.closed_event(token).wait(10)
    stopped_at = TRACKER.produced[token]
    assert stopped_at < 100000 * len(CHUNK)
    assert _wait_stable(token) == stopped_at


# -- misbehaving apps -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/mount/raise-before-start", "app bug before start_response"),
        ("/mount/raise-after-start", "app bug before the first byte"),
        ("/mount/no-start", "without calling start_response"),
        ("/mount/bad-status", "invalid WSGI status 'OK'"),
        ("/mount/bad-header", "control character"),
        ("/mount/hop-by-hop", "hop-by-hop header 'Transfer-Encoding'"),
        ("/mount/short", "shorter than its content-length"),
    ],
)
def test_app_errors_before_the_head_are_500s(
    client: httpx.Client, version: str, caplog: pytest.LogCaptureFixture, path: str, logged: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="h2books.wsgi"):
        r = client.get(f"{path}?token={path}-{version}")
    assert r.status_code == 500
    assert "set-cookie" not in r.headers
    assert any(logged in record.getMessage() + (record.exc_text or "") for record in caplog.records)
    # The connection keeps serving.
    assert client.get("/mount/environ").status_code == 200


def test_raise_mid_stream_resets_and_closes(
    client: httpx.Client, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = f"mid-{version}"
    with caplog.at_level(logging.ERROR, logger="h2books.wsgi"), pytest.raises(httpx.HTTPError):
        client.get(f"/mount/raise-mid-stream?token={token}").read()
    assert TRACKER.closed_event(token).wait(10)
    assert any("WSGI app failed" in record.getMessage() for record in caplog.records)
    assert client.get("/mount/environ").status_code == 200  # h1: on a new connection


def test_write_callable(client: httpx.Client) -> None:
    assert client.get("/mount/write").text == "written then returned"


def test_exc_info_replaces_the_head_before_it_went_out(client: httpx.Client) -> None:
    r = client.get("/mount/exc-info")
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.text == "sorry"


def test_file_wrapper(client: httpx.Client, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert client.get(f"/mount/file?name={path}").content == data


def test_head_sends_no_body(client: httpx.Client) -> None:
    r = client.head("/mount/stream?n=2&token=head")
    assert r.status_code == 200 and r.content == b""
    r = client.head("/mount/environ")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 0


# -- the thread pool --------------------------------------------------------------------


def _client(served: ThreadedServer, version: str) -> httpx.AsyncClient:
    """httpx over `version` ("h2" or "h1") to the served app, trusting its CA."""
    return httpx.AsyncClient(
        http2=version == "h2",
        http1=version != "h2",
        verify=ssl.create_default_context(cafile=str(served.ca)),
        base_url=served.url,
        timeout=30,
    )


def test_answers_sharing_a_head_keep_their_own_bodies(served: ThreadedServer, version: str) -> None:
    # Every answer below has the same head, so the same template Response; many are in
    # flight at once, each must go out with its own body.
    bodies = [b"%04d" % i for i in range(40)]

    async def run() -> list[bytes]:
        async with _client(served, version) as c:
            answers = await asyncio.gather(
                *(c.get(f"/mount/same-head?body={b.decode()}") for b in bodies)
            )
            return [a.content for a in answers]

    assert asyncio.run(run()) == bodies


def test_a_pipelined_answer_held_back_keeps_its_body(served: ThreadedServer) -> None:
    # HTTP/1.1 pipelining: the second answer is taken by the loop before the first (its
    # app waits for that), so the adapter holds it until the first is out. Both share a
    # head; the held one must not lend its Response to the first.
    token = f"held-{time.monotonic_ns()}"
    with socket.create_connection(("127.0.0.1", served.http_port), timeout=20) as sock:
        sock.sendall(
            f"GET /mount/same-head?body=aaaa&after={token} HTTP/1.1\r\nHost: x\r\n\r\n"
            f"GET /mount/same-head?body=bbbb&token={token} HTTP/1.1\r\nHost: x\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    answers = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"aaaa", b"bbbb"]
    assert answered_event(token).is_set()


def test_pool_bound_queues_requests_and_loses_none(served: ThreadedServer, version: str) -> None:
    PROBE.__init__()  # type: ignore[misc]
    requests = THREADS * 3

    async def run() -> list[str]:
        async with _client(served, version) as c:
            pending = [
                asyncio.create_task(c.get(f"/mount/pool?token={i}")) for i in range(requests)
            ]
            await asyncio.to_thread(PROBE.full.wait, 20)
            await asyncio.sleep(0.2)  # room for a thread beyond the bound to start, if any
            running = PROBE.running
            PROBE.release.set()
            answers = await asyncio.gather(*pending)
            assert running == THREADS
            return [a.json()["token"] for a in answers]

    tokens = asyncio.run(run())
    assert sorted(tokens, key=int) == [str(i) for i in range(requests)]
    assert PROBE.most == THREADS


# -- Flask ------------------------------------------------------------------------------


def flask_app() -> Any:
    from flask import Flask, Response, jsonify, request, stream_with_context

    app = Flask("wsgi_test")

    @app.get("/hello/<name>")
    def hello(name: str) -> str:
        return f"hello {name}"

    @app.post("/json")
    def echo_json() -> Any:
        data = request.get_json()
        return jsonify(received=data, doubled=[2 * n for n in data["numbers"]])

    @app.post("/form")
    def form() -> Any:
        upload = request.files["upload"]
        content = upload.read()
        return jsonify(name=request.form["name"], filename=upload.filename, size=len(content))

    @app.get("/stream")
    def stream() -> Response:
        def lines() -> Iterator[str]:
            for i in range(5):
                yield f"line {i}\n"

        return Response(lines(), mimetype="text/plain")

    @app.get("/context-stream")
    def context_stream() -> Response:
        @stream_with_context
        def words() -> Iterator[str]:
            yield "who: "
            yield request.args["who"]  # the request context lives on while streaming

        return Response(words(), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("flask view bug")

    return app


@pytest.fixture(scope="module")
def flask_served(tls_dir: Path) -> Iterator[ThreadedServer]:
    app = flask_app()
    with ThreadedServer(tls_dir, lambda config: WsgiInterface(app, config)) as server:
        yield server


@pytest.fixture
def flask_client(flask_served: ThreadedServer, version: str) -> Iterator[httpx.Client]:
    with flask_served.client(version, timeout=30) as c:
        yield c


def test_flask_routes_json_and_errors(flask_client: httpx.Client) -> None:
    r = flask_client.get("/hello/world")
    assert r.status_code == 200 and r.text == "hello world"
    r = flask_client.post("/json", json={"numbers": [1, 2, 3]})
    assert r.json() == {"received": {"numbers": [1, 2, 3]}, "doubled": [2, 4, 6]}
    assert flask_client.get("/missing").status_code == 404
    assert flask_client.get("/boom").status_code == 500  # Flask's own error page


def test_flask_form_upload(flask_client: httpx.Client) -> None:
    blob = bytes(range(256)) * 2000
    r = flask_client.post(
        "/form", data={"name": "ada"}, files={"upload": ("notes.bin", blob, "application/x")}
    )
    assert r.json() == {"name": "ada", "filename": "notes.bin", "size": len(blob)}


def test_flask_streaming(flask_client: httpx.Client) -> None:
    r = flask_client.get("/stream")
    assert r.text == "".join(f"line {i}\n" for i in range(5))
    assert flask_client.get("/context-stream?who=grace").text == "who: grace"


# -- Django -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_served(tls_dir: Path) -> Iterator[ThreadedServer]:
    from django.core.wsgi import get_wsgi_application

    with django_site.configured():
        app = get_wsgi_application()
        with ThreadedServer(
            tls_dir, lambda config: WsgiInterface(app, config), root_path="/site"
        ) as server:
            yield server


@pytest.fixture
def django_client(django_served: ThreadedServer, version: str) -> Iterator[httpx.Client]:
    with django_served.client(version, timeout=30) as c:
        yield c


def test_django_views(django_client: httpx.Client, version: str) -> None:
    r = django_client.get("/site/hello")
    expected = "HTTP/2" if version == "h2" else "HTTP/1.1"
    assert r.status_code == 200 and r.text == f"hello from django over {expected}"
    assert django_client.get("/site/nowhere").status_code == 404
    assert django_client.get("/site/form").status_code == 405


def test_django_form_post(django_client: httpx.Client) -> None:
    r = django_client.post("/site/form", data={"name": "linus"})
    # request.path is SCRIPT_NAME + PATH_INFO: the mount point is kept.
    assert r.json() == {"name": "linus", "size": None, "path": "/site/form"}
    blob = b"z" * 300_000
    r = django_client.post("/site/form", data={"name": "up"}, files={"upload": ("z.bin", blob)})
    assert r.json() == {"name": "up", "size": len(blob), "path": "/site/form"}


def test_django_streaming_response(django_client: httpx.Client) -> None:
    r = django_client.get("/site/stream?n=50")
    assert r.text == "".join(f"chunk {i}\n" for i in range(50))


def test_shutdown_lets_running_requests_finish_then_ends_the_threads(tls_dir: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started.set()
        release.wait(20)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    server = ThreadedServer(tls_dir, lambda config: WsgiInterface(slow_app, config))
    with server:
        interface = server.interface
        assert isinstance(interface, WsgiInterface)
        pool = interface.pool
        assert pool is not None and pool.running == THREADS * 4  # the default: 16
        answers: list[httpx.Response] = []
        # h1: httpx's h2 state machine rejects the PING of our two-stage GOAWAY.
        with server.client("h1", timeout=30) as c:
            request = threading.Thread(target=lambda: answers.append(c.get("/slow")))
            request.start()
            assert started.wait(10)
            server.loop.call_soon_threadsafe(server.server.stop)
            release.set()
            request.join(30)
        server.thread.join(30)
        assert not server.thread.is_alive()
    assert answers and answers[0].text == "done"
    assert pool.running == 0


@pytest.mark.parametrize("version", ["h2", "h1"])
def test_an_app_that_does_not_answer_in_time_gets_a_503(
    tls_dir: Path, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """--response-timeout: the request gets a 503 and the connection serves on; what the
    app's thread sends later is dropped, and a streamed answer is stopped early."""
    release, closed = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path.startswith("/hang"):
            release.wait(20)
        if path == "/hang-stream":
            start_response("200 OK", [("Content-Type", "text/plain")])

            def parts() -> Iterator[bytes]:
                try:
                    for _ in range(500):
                        yield b"late"
                        time.sleep(0.01)
                except GeneratorExit:
                    closed.set()  # stopped early: its pipe broke
                    raise

            return parts()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = ThreadedServer(
        tls_dir, lambda config: WsgiInterface(app, config), timeouts=Timeouts(response=1.0)
    )
    with server, server.client(version, timeout=30) as c:
        for path in ("/hang", "/hang-stream"):
            r = c.get(path)
            assert r.status_code == 503, path
            assert r.json() == {"error": "the app did not answer in time"}
        release.set()
        assert closed.wait(10)  # the streamed answer stopped long before its 500 parts
        assert c.get("/quick").text == "ok"
    # Stopped quietly: no failed send, no reset of an exchange already answered.
    assert "sending a WSGI response failed" not in caplog.text
