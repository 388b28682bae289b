"""ASGI HTTP through the real server: scope, bodies both ways, extensions, misbehaving apps.

Real TLS, real clients: httpx over HTTP/2 and HTTP/1.1, curl, and a raw HTTP/2 client
(tests/server/h2wire.py) where a client library hides what is checked (trailers, windows).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import subprocess
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hpack
import httpx
import pytest

from h2books.interfaces.asgi import AsgiInterface
from h2books.interfaces.asgi_scope import ScopeSettings, request_parts
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.config import ServerConfig
from tests.conftest import require_tool
from tests.interfaces.asgi_apps import CHUNK, CHUNKS, SEEN, raw_app
from tests.interfaces.conftest import LogRecords
from tests.server import h2wire
from tests.threaded_server import ThreadedServer


def asgi(app: Any, **options: Any) -> Callable[[ServerConfig], AsgiInterface]:
    """What ThreadedServer takes: the interface built from the server's config."""
    return lambda config: AsgiInterface(app, config, **options)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    def make(config: ServerConfig) -> AsgiInterface:
        config.timeouts.response = 0.5  # /never is answered with a 503 after this
        return AsgiInterface(raw_app, config)

    with ThreadedServer(tmp_path_factory.mktemp("asgi"), make) as running:
        yield running


@pytest.fixture
def client(server: ThreadedServer, protocol: str) -> Iterator[httpx.Client]:
    with server.client(protocol) as c:
        yield c


def _version(protocol: str) -> str:
    return "2" if protocol == "h2" else "1.1"


# -- scope -----------------------------------------------------------------------------


def test_what_one_request_writes_into_its_scope_stays_its_own(client: httpx.Client) -> None:
    meddled = client.get("/meddle").json()
    assert "x-meddled" in meddled["extensions"] and meddled["asgi"]["x-meddled"]
    clean = client.get("/scope").json()  # the same connection, then another request
    assert "x-meddled" not in clean["extensions"] and "x-meddled" not in clean["asgi"]


def test_scope_fields(server: ThreadedServer, client: httpx.Client, protocol: str) -> None:
    r = client.get("/a%2Fb?x=1&y=%20", headers={"X-Custom": "Value"})
    scope = r.json()
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == _version(protocol)
    assert scope["scheme"] == "https"
    assert scope["method"] == "GET"
    assert scope["path"] == "/a/b"  # percent-decoded
    assert scope["raw_path"] == "/a%2Fb"  # as sent
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["root_path"] == ""
    assert scope["headers_is_list"]
    headers = scope["headers"]
    assert ["x-custom", "Value"] in headers
    assert all(name == name.lower() for name, _ in headers)
    assert not any(name.startswith(":") for name, _ in headers)
    assert (
        headers[0] == ["host", f"localhost:{server.tls_port}"]
        or [
            "host",
            f"localhost:{server.tls_port}",
        ]
        in headers
    )
    client_host, client_port = scope["client"]
    assert client_host == "127.0.0.1" and client_port > 0
    assert scope["server"] == ["127.0.0.1", server.tls_port]
    assert scope["state"] == {"started": True}  # the lifespan's state, copied
    extensions = scope["extensions"]
    assert "http.response.pathsend" in extensions
    assert "http.response.early_hint" in extensions
    assert "http.response.trailers" in extensions  # h1: in the chunked trailer section
    assert "http.response.push" not in extensions  # no adapter can push yet


def test_scope_host_first_on_h2(server: ThreadedServer) -> None:
    """HTTP/2 carries the authority as :authority; the scope has it as `host`, once."""
    with server.client("h2") as c:
        headers = c.get("/scope").json()["headers"]
    hosts = [value for name, value in headers if name == "host"]
    assert hosts == [f"localhost:{server.tls_port}"]


def test_scope_host_once_when_h2_sends_host_after_other_fields(server: ThreadedServer) -> None:
    """A Host field beside :authority (allowed if they agree), not first on the wire: the
    scope has it once, first (the core moves it there; the interface adds none)."""
    wire = h2wire.WireClient(server.tls_port, server.ca)
    try:
        wire.handshake()
        block = wire.request_block("/scope", extra=[("accept", "*/*"), ("host", "localhost")])
        wire.send(h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS | h2wire.END_STREAM, 1, block))
        head, body = wire.response(1)
    finally:
        wire.sock.close()
    assert head[":status"] == "200"
    headers = json.loads(body)["headers"]
    assert [name for name, _ in headers].count("host") == 1
    assert headers[0] == ["host", "localhost"]


def test_root_path(tmp_path: Path, protocol: str) -> None:
    interface = asgi(raw_app, root_path="/api/")
    with ThreadedServer(tmp_path, interface) as running, running.client(protocol) as c:
        scope = c.get("/scope").json()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"  # the full path: Starlette strips root_path itself
    assert scope["raw_path"] == "/api/scope"


def test_state_is_a_copy_per_request(server: ThreadedServer, client: httpx.Client) -> None:
    first = client.get("/scope").json()["state"]
    second = client.get("/scope").json()["state"]
    assert first == second == {"started": True}


# -- request bodies ----------------------------------------------------------------------


def test_small_body_arrives_in_one_message(client: httpx.Client) -> None:
    r = client.post("/echo", content=b"x" * 1000)
    assert r.content == b"x" * 1000
    assert SEEN["echo_messages"] == 1


def test_streamed_body(client: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        for i in range(20):
            yield bytes([i]) * 5000

    r = client.post("/echo", content=parts())
    assert r.content == b"".join(bytes([i]) * 5000 for i in range(20))


def test_slow_reader_holds_the_window_shut(server: ThreadedServer) -> None:
    """A 6 MiB upload to an app that reads slowly: the server never holds more unread body
    than the stream's flow-control window (credit goes back only as the app reads)."""

    def held() -> int:
        total = 0
        assert server.server is not None and server.server.state is not None
        for connection in server.server.state.connections:
            if isinstance(connection, H2ServerProtocol):
                for exchange in connection.live_exchanges():
                    total += sum(len(c) for c in exchange._chunks or [])
        return total

    SEEN["held"] = held
    window = server.config.limits.initial_window_size
    payload = b"u" * (6 * 1024 * 1024)
    with server.client("h2", timeout=60) as c:
        r = c.post(
            "/slow-reader",
            content=iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]),
        )
    assert r.text == str(len(payload))
    assert 0 < SEEN["most_held"] <= window + 16384


# -- responses --------------------------------------------------------------------------


def test_streamed_response(client: httpx.Client) -> None:
    r = client.get("/stream")
    assert r.content == CHUNK * CHUNKS


def test_send_waits_while_the_peer_window_is_shut(server: ThreadedServer) -> None:
    """The client never opens its window: send() must stop, not buffer all 4 MiB."""
    SEEN.pop("stream_sent", None)
    wire = h2wire.WireClient(server.tls_port, server.ca)
    try:
        wire.handshake()
        wire.get(1, "/stream")
        received = 0
        while received < 65535:  # the default window: all the peer may send us
            f = wire.read_frame()
            assert f is not None
            if f.type == h2wire.DATA and f.stream_id == 1:
                received += len(f.payload)
        # The server queues at most ~256 KiB beyond the window before send() waits.
        sent = SEEN["stream_sent"]
        assert sent * len(CHUNK) <= 65535 + 256 * 1024 + len(CHUNK)
        increment = received.to_bytes(4, "big")
        wire.send(
            h2wire.frame(h2wire.WINDOW_UPDATE, 0, 0, increment)
            + h2wire.frame(h2wire.WINDOW_UPDATE, 0, 1, increment)
        )
        _, body = wire.response(1, timeout=30)  # now acknowledging: it all comes
        assert len(body) + received == CHUNKS * len(CHUNK)
        assert SEEN["stream_sent"] == CHUNKS
    finally:
        wire.sock.close()


def test_trailers_over_h2(server: ThreadedServer) -> None:
    wire = h2wire.WireClient(server.tls_port, server.ca)
    try:
        wire.handshake()
        wire.get(1, "/trailers")
        blocks, data = [], b""
        decoder = hpack.Decoder()
        while True:
            f = wire.read_frame()
            assert f is not None
            if f.stream_id != 1:
                continue
            if f.type == h2wire.HEADERS:
                blocks.append(decoder.decode(f.payload))
            elif f.type == h2wire.DATA:
                data += f.payload
            if f.flags & h2wire.END_STREAM:
                break
        assert SEEN["trailers_extension"]
        assert len(blocks) == 2 and data == b"payload"
        assert ("grpc-status", "0") in [
            (n.decode() if isinstance(n, bytes) else n, v.decode() if isinstance(v, bytes) else v)
            for n, v in blocks[1]
        ]
    finally:
        wire.sock.close()


def test_trailers_over_h1_in_the_chunked_trailer_section(server: ThreadedServer) -> None:
    import socket
    import ssl

    import h11

    context = ssl.create_default_context(cafile=str(server.ca))
    with (
        socket.create_connection(("127.0.0.1", server.tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        client = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="GET", target="/trailers", headers=[("host", "localhost"), ("te", "trailers")]
        )
        sock.sendall(client.send(request) + client.send(h11.EndOfMessage()))
        data, trailers = b"", None
        while trailers is None:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage):
                trailers = list(event.headers)
    assert data == b"payload" and (b"grpc-status", b"0") in trailers


@pytest.mark.parametrize("flag", ["--http2", "--http1.1"])
def test_early_hints_seen_by_curl(server: ThreadedServer, flag: str) -> None:
    curl = require_tool("curl")
    done = subprocess.run(
        [curl, "-sv", flag, "--cacert", str(server.ca), f"{server.url}/early-hint"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout == "hinted"
    assert "< HTTP/2 103" in done.stderr or "< HTTP/1.1 103" in done.stderr, done.stderr
    assert "< link: </style.css>; rel=preload; as=style" in done.stderr.lower()


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 17])
def test_pathsend(server: ThreadedServer, client: httpx.Client, tmp_path: Path, size: int) -> None:
    content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    SEEN["file"] = str(path)
    r = client.get("/pathsend")
    assert r.status_code == 200 and r.content == content
    assert r.headers["content-length"] == str(size)


def test_response_headers_made_safe(client: httpx.Client, protocol: str) -> None:
    """Connection-specific fields are dropped on h2 (a client would reject the response),
    transfer-encoding always; a CR LF in a value is refused and the app told so."""
    r = client.get("/bad-header")
    assert r.status_code == 200 and r.text == "clean"
    assert "control character" in SEEN["bad_header"]
    assert "transfer-encoding" not in r.headers or protocol == "h1"


# -- misbehaving apps: each logs, and the connection keeps serving -----------------------


def test_raise_before_start_is_500(client: httpx.Client, server_logs: LogRecords) -> None:
    r = client.get("/raise-before")
    assert r.status_code == 500
    assert any("raised" in m for m in server_logs.messages())
    assert client.get("/scope").status_code == 200


def test_raise_after_start_resets(
    server: ThreadedServer, protocol: str, server_logs: LogRecords
) -> None:
    with server.client(protocol) as c:
        with pytest.raises(httpx.HTTPError):
            c.get("/raise-after")
        assert any("raised" in m for m in server_logs.messages())
        assert c.get("/scope").status_code == 200  # h2: the same connection; h1: a new one


def test_invalid_message_raises_into_the_app(client: httpx.Client, server_logs: LogRecords) -> None:
    r = client.get("/invalid")
    assert r.text == "recovered"
    assert "unexpected 'http.response.body'" in SEEN["invalid"]
    assert any("unexpected" in m for m in server_logs.messages())


def test_send_after_complete(client: httpx.Client, server_logs: LogRecords) -> None:
    r = client.get("/after-complete")
    assert r.text == "done"
    assert client.get("/scope").status_code == 200
    assert "after the response was complete" in SEEN["after_complete"]


def test_wrong_content_length_is_500(client: httpx.Client, server_logs: LogRecords) -> None:
    r = client.get("/wrong-length")
    assert r.status_code == 500
    assert any("content-length" in m for m in server_logs.messages())


def test_no_response_is_500(client: httpx.Client, server_logs: LogRecords) -> None:
    r = client.get("/no-response")
    assert r.status_code == 500
    assert any("without a response" in m for m in server_logs.messages())


def test_response_timeout(client: httpx.Client, server_logs: LogRecords) -> None:
    SEEN.pop("never_cancelled", None)
    r = client.get("/never")
    assert r.status_code == 503
    assert any("did not answer" in m for m in server_logs.messages())
    assert client.get("/scope").status_code == 200


def test_disconnect_reaches_receive(server: ThreadedServer) -> None:
    """The client resets the stream: the pending receive() returns http.disconnect, and
    send() then raises an OSError (spec 2.4)."""
    SEEN["disconnect_waiting"] = threading.Event()
    SEEN["disconnect_done"] = threading.Event()
    wire = h2wire.WireClient(server.tls_port, server.ca)
    try:
        wire.handshake()
        wire.get(1, "/wait-disconnect")
        assert SEEN["disconnect_waiting"].wait(10)
        wire.send(h2wire.frame(h2wire.RST_STREAM, 0, 1, (h2wire.CANCEL).to_bytes(4, "big")))
        assert SEEN["disconnect_done"].wait(10)
    finally:
        wire.sock.close()
    assert SEEN["disconnect"] == {"type": "http.disconnect"}
    assert SEEN["send_after_disconnect"] == "ClientDisconnected"


def test_logs_name_the_request(client: httpx.Client, server_logs: LogRecords) -> None:
    client.get("/raise-before")
    errors = [r for r in server_logs.records if r.levelno >= logging.ERROR]
    assert errors and "/raise-before" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # the traceback is in the log


def test_http2_bomb_never_reaches_the_app(server: ThreadedServer, server_logs: LogRecords) -> None:
    """~2,000 one-octet references to one indexed field stay under the 64 KiB header-list
    limit; the request is refused (431) before a scope or an app holds it."""
    SEEN.pop("echo_messages", None)
    wire = h2wire.WireClient(server.tls_port, server.ca)
    try:
        wire.handshake()
        first = wire.request_block("/echo", "POST", [("x", "y")])  # x: y enters the table
        bomb = first + b"\xbe" * 1900  # index 62: the newest dynamic entry, x: y
        wire.send(h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS | h2wire.END_STREAM, 1, bomb))
        headers, _ = wire.response(1)
        assert headers[":status"] == "431"  # from the HTTP/2 core (max_header_count)
        wire.get(3, "/scope")
        assert wire.response(3)[0][":status"] == "200"  # the connection keeps serving
    finally:
        wire.sock.close()
    assert "echo_messages" not in SEEN


# -- the per-request fast paths (issue 10's "ASGI per request") -----------------------------


def test_pipelined_answers_sharing_a_head_keep_their_bodies(tmp_path: Path) -> None:
    """A whole answer goes out as its head's template Response, carrying its body. Over
    HTTP/1.1 an answer whose turn has not come is held by the adapter: the template must
    not be reused (nor its body cleared) while it waits. Three pipelined requests, the
    first answered last, all with the same head."""
    first_may_answer = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        name = scope["path"].encode()[1:]  # b"one", b"two", b"thr": one length, one head
        if name == b"one":
            await first_may_answer.wait()
        elif name == b"thr":
            first_may_answer.set()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"3")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": name})

    requests = b"".join(
        b"GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % name for name in (b"one", b"two", b"thr")
    )
    with (
        ThreadedServer(tmp_path, asgi(app, lifespan="off")) as running,
        socket.create_connection(("127.0.0.1", running.http_port), timeout=10) as raw,
    ):
        raw.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 200") < 3 or not received.endswith(b"thr"):
            chunk = raw.recv(65536)
            assert chunk, received
            received += chunk
    bodies = [answer.rpartition(b"\r\n\r\n")[2] for answer in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"one", b"two", b"thr"]


def test_decoded_paths_are_cached_per_path_and_bounded() -> None:
    settings = ScopeSettings("/api", None)
    assert request_parts(b"/a%20b?x=1", settings) == ("/api/a b", b"/api/a%20b", b"x=1")
    assert request_parts(b"/a%20b?x=2", settings) == ("/api/a b", b"/api/a%20b", b"x=2")
    assert list(settings.paths) == [b"/a%20b"]  # one entry for both queries
    assert request_parts(b"http://host/p%2F?q", settings) == ("/api/p/", b"/api/p%2F", b"q")
    long = b"/" + b"x" * 300
    assert request_parts(long, settings)[1] == b"/api" + long
    assert long not in settings.paths  # long paths are decoded each time, never kept
    for n in range(3000):
        request_parts(b"/%d" % n, settings)
    assert len(settings.paths) <= 2048
    assert request_parts(b"/2999", settings) == ("/api/2999", b"/api/2999", b"")


def test_the_app_is_called_as_a_call_of_it_would_call_it() -> None:
    """`_direct_call` binds a class's Python `__call__` to the app once (cheaper per
    request than calling the instance); whatever the app's shape, the call is the one
    `app(...)` makes: `__call__` looked up on the type, a staticmethod left unbound."""
    from h2books.interfaces.asgi import _direct_call

    class Instance:
        def __call__(self, *args: Any) -> Any:
            return ("method", self, args)

    class Derived(Instance):
        pass

    class Static:
        @staticmethod
        def __call__(*args: Any) -> Any:
            return ("static", args)

    def function(*args: Any) -> Any:
        return ("function", args)

    shadowed = Instance()
    shadowed.__call__ = lambda *args: "instance attribute"  # type: ignore[method-assign]
    apps = [Instance(), Derived(), Static(), function, shadowed, functools.partial(function, 0)]
    for app in apps:
        assert _direct_call(app)(1, 2, 3) == app(1, 2, 3)
    assert _direct_call(function) is function
    assert _direct_call(apps[2]) is apps[2]
    assert type(_direct_call(apps[0])) is types.MethodType  # bound once, not the instance

    interface = AsgiInterface(apps[0])
    interface.app = function  # setting the app again binds again
    assert interface._call_app is function
