"""A battery of invalid inputs, each answered with the error the RFC names.

HTTP/2 (RFC 9113): connection errors get GOAWAY with their code and the connection
is closed; stream errors get RST_STREAM with theirs and the connection goes on
serving. HTTP/1.1 (RFC 9112): request-smuggling shapes and other malformed heads get
400 and the connection is closed. Then the whole battery is run as a flood while a
second client's latency and the server's memory are watched.
"""

from __future__ import annotations

import contextlib
import ssl

import pytest

from tests.attacks.support import (
    H2Peer,
    Reaction,
    get,
    literal_field,
    measure,
    request_block,
    tls_socket,
    window_update,
)
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    COMPRESSION_ERROR,
    DATA,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    HEADERS,
    PING,
    PREFACE,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    SETTINGS,
    frame,
    settings,
)

RSS_BOUND_KIB = 16 * 1024
EH_ES = END_HEADERS | END_STREAM


def _block(*fields: tuple[bytes, bytes], method: str = "GET", pseudo: bool = True) -> bytes:
    extra = b"".join(literal_field(name, value) for name, value in fields)
    return request_block(method, "/hello", extra) if pseudo else extra


def _headers(block: bytes, sid: int = 1, flags: int = EH_ES) -> bytes:
    return frame(HEADERS, flags, sid, block)


# -- HTTP/2 connection errors: (bytes after a settled handshake, GOAWAY code) ------------

CONNECTION_ERRORS = {
    "oversized-frame": (frame(HEADERS, END_HEADERS, 1, b"\x82" * 16385), FRAME_SIZE_ERROR),
    "headers-on-stream-0": (_headers(_block(), sid=0), PROTOCOL_ERROR),
    "bad-hpack-index": (_headers(b"\xff\xff\xff\xff\x7f"), COMPRESSION_ERROR),
    "hpack-index-0": (_headers(b"\x80"), COMPRESSION_ERROR),
    "hpack-truncated-string": (_headers(b"\x00\x05ab"), COMPRESSION_ERROR),
    "connection-window-overflow": (window_update(0, 0x7FFFFFFF), FLOW_CONTROL_ERROR),
    "window-update-0-on-connection": (window_update(0, 0), PROTOCOL_ERROR),
    "data-on-idle-stream": (frame(DATA, 0, 1, b"x"), PROTOCOL_ERROR),
    "even-stream-id": (_headers(_block(), sid=2), PROTOCOL_ERROR),
    "push-promise-from-client": (
        frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\x02" + _block()),
        PROTOCOL_ERROR,
    ),
    "ping-wrong-length": (frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
    "settings-enable-push-2": (settings(enable_push=2), PROTOCOL_ERROR),
    "settings-window-too-big": (settings(initial_window_size=1 << 31), FLOW_CONTROL_ERROR),
    "settings-frame-size-too-small": (settings(max_frame_size=1000), PROTOCOL_ERROR),
    "settings-bad-length": (frame(SETTINGS, 0, 0, b"\0\x01\0\0"), FRAME_SIZE_ERROR),
    "stream-id-going-backwards": (
        _headers(_block(), sid=5) + _headers(_block(), sid=3),
        PROTOCOL_ERROR,
    ),
}

# -- HTTP/2 stream errors: (bytes opening stream 1, RST_STREAM code) ----------------------

STREAM_ERRORS = {
    "uppercase-name": (_headers(_block((b"X-Upper", b"1"))), PROTOCOL_ERROR),
    "connection-header": (_headers(_block((b"connection", b"keep-alive"))), PROTOCOL_ERROR),
    "keep-alive-header": (_headers(_block((b"keep-alive", b"5"))), PROTOCOL_ERROR),
    "proxy-connection-header": (_headers(_block((b"proxy-connection", b"x"))), PROTOCOL_ERROR),
    "transfer-encoding-header": (
        _headers(_block((b"transfer-encoding", b"chunked"))),
        PROTOCOL_ERROR,
    ),
    "upgrade-header": (_headers(_block((b"upgrade", b"h2c"))), PROTOCOL_ERROR),
    "te-not-trailers": (_headers(_block((b"te", b"gzip"))), PROTOCOL_ERROR),
    "missing-method": (
        _headers(_block((b":scheme", b"https"), (b":path", b"/"), pseudo=False)),
        PROTOCOL_ERROR,
    ),
    "missing-path": (
        _headers(_block((b":method", b"GET"), (b":scheme", b"https"), pseudo=False)),
        PROTOCOL_ERROR,
    ),
    "missing-scheme": (
        _headers(_block((b":method", b"GET"), (b":path", b"/"), pseudo=False)),
        PROTOCOL_ERROR,
    ),
    "empty-path": (
        _headers(
            _block((b":method", b"GET"), (b":scheme", b"https"), (b":path", b""), pseudo=False)
        ),
        PROTOCOL_ERROR,
    ),
    "unknown-pseudo-header": (_headers(_block((b":protocol", b"x"))), PROTOCOL_ERROR),
    "pseudo-after-regular": (
        _headers(_block((b"accept", b"*/*"), (b":authority", b"x"))),
        PROTOCOL_ERROR,
    ),
    "duplicate-pseudo-header": (_headers(_block((b":path", b"/again"))), PROTOCOL_ERROR),
    "newline-in-value": (_headers(_block((b"x-a", b"1\r\nx-b: 2"))), PROTOCOL_ERROR),
    "content-length-longer-than-body": (
        _headers(_block((b"content-length", b"5"), method="POST"), flags=END_HEADERS)
        + frame(DATA, END_STREAM, 1, b"abc"),
        PROTOCOL_ERROR,
    ),
    "content-length-shorter-than-body": (
        _headers(_block((b"content-length", b"2"), method="POST"), flags=END_HEADERS)
        + frame(DATA, END_STREAM, 1, b"abc"),
        PROTOCOL_ERROR,
    ),
    "content-length-with-end-stream": (
        _headers(_block((b"content-length", b"3"), method="POST")),
        PROTOCOL_ERROR,
    ),
    "stream-window-overflow": (
        _headers(_block(method="POST"), flags=END_HEADERS) + window_update(1, 0x7FFFFFFF),
        FLOW_CONTROL_ERROR,
    ),
}


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    process = ServerProcess(tmp_path_factory.mktemp("invalid"), "--no-access-log").start()
    yield process
    process.stop()


def connection_error_round(port: int, data: bytes) -> Reaction:
    peer = H2Peer(port)
    try:
        peer.send(data)
        return peer.drain(5)
    finally:
        peer.close()


@pytest.mark.parametrize("name", list(CONNECTION_ERRORS))
def test_connection_error(shared_server: ServerProcess, name: str) -> None:
    data, code = CONNECTION_ERRORS[name]
    reaction = connection_error_round(shared_server.port, data)
    assert reaction.goaway_codes == [code], reaction
    assert reaction.closed, "a connection error must close the connection"


def stream_error_round(port: int, data: bytes) -> Reaction:
    peer = H2Peer(port)
    try:
        peer.send(data)
        peer.read_until(lambda f: f.type == 3 and f.stream_id == 1)  # RST_STREAM
        # The connection is still good for another request.
        peer.send(get(3))
        peer.read_until(lambda f: f.stream_id == 3 and f.flags & END_STREAM != 0)
        return peer.reaction
    finally:
        peer.close()


# Errors found after the head (in DATA or flow control) end the stream with a reset only.
AFTER_THE_HEAD = frozenset(
    {
        "content-length-longer-than-body",
        "content-length-shorter-than-body",
        "stream-window-overflow",
    }
)


def expected_statuses(name: str) -> dict[str, int]:
    return {"200": 1} if name in AFTER_THE_HEAD else {"400": 1, "200": 1}


@pytest.mark.parametrize("name", list(STREAM_ERRORS))
def test_stream_error(shared_server: ServerProcess, name: str) -> None:
    data, code = STREAM_ERRORS[name]
    reaction = stream_error_round(shared_server.port, data)
    assert dict(reaction.resets) == {code: 1} and reaction.reset_streams == [1], reaction
    # A malformed head gets a 400 before its reset (RFC 9113 §8.1.1); stream 3 its answer.
    assert reaction.statuses == expected_statuses(name), reaction
    assert not reaction.goaways


# -- before the first frame: the preface and what comes over TLS -------------------------

RAW_H2_INPUTS = {
    "bad-preface": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings(),
    "garbage-after-tls": b"\x00\x01garbage that is no preface at all\r\n\r\n",
    "http1-over-h2-alpn": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "first-frame-not-settings": PREFACE + frame(PING, 0, 0, b"12345678"),
}


def raw_h2_round(port: int, data: bytes) -> Reaction:
    peer = H2Peer(port, handshake=False)
    try:
        peer.send(data)
        return peer.drain(5)
    finally:
        peer.close()


@pytest.mark.parametrize("name", list(RAW_H2_INPUTS))
def test_bad_start_is_closed(shared_server: ServerProcess, name: str) -> None:
    reaction = raw_h2_round(shared_server.port, RAW_H2_INPUTS[name])
    assert reaction.closed
    # RFC 9113 §3.4: the GOAWAY may be left out for a bad preface; if sent, PROTOCOL_ERROR.
    assert set(reaction.goaway_codes) <= {PROTOCOL_ERROR}, reaction
    assert not reaction.statuses


# -- HTTP/1.1 --------------------------------------------------------------------------

H1_INPUTS = {
    "content-length-and-transfer-encoding": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "duplicate-content-length": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Content-Length: 5\r\n\r\nhello",
        400,
    ),
    "differing-content-lengths": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Content-Length: 6\r\n\r\nhello!",
        400,
    ),
    "content-length-list": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nhello",
        400,
    ),
    "obs-fold": (b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n folded\r\n\r\n", 400),
    "bare-lf": (b"GET /hello HTTP/1.1\nHost: localhost\n\n", 400),
    "bare-lf-in-field": (b"GET /hello HTTP/1.1\r\nHost: localhost\nX-A: 1\r\n\r\n", 400),
    "bare-cr": (b"GET /hello HTTP/1.1\r\nHost: localhost\rX-A: 1\r\n\r\n", 400),
    "space-before-colon": (b"GET /hello HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    "missing-host": (b"GET /hello HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "transfer-encoding-not-chunked": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    ),
    "bad-chunk-size": (
        b"POST /hello HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    "bad-version": (b"GET /hello HTTP/1.x\r\nHost: localhost\r\n\r\n", 400),
    "header-section-too-large": (
        b"GET /hello HTTP/1.1\r\nHost: localhost\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
        431,
    ),
    "request-line-too-long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
}


def h1_round(port: int, data: bytes) -> tuple[int | None, bool]:
    """(status of the first response, whether the server closed the connection after it)."""
    sock = tls_socket(port, "http/1.1")
    try:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        received = b""
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except TimeoutError:
            closed = False
        except (OSError, ssl.SSLError):
            closed = True
        if not received.startswith(b"HTTP/1.1 "):
            return None, closed
        return int(received[9:12]), closed
    finally:
        sock.close()


@pytest.mark.parametrize("name", list(H1_INPUTS))
def test_http1_malformed_request_is_rejected(shared_server: ServerProcess, name: str) -> None:
    data, status = H1_INPUTS[name]
    assert h1_round(shared_server.port, data) == (status, True)


# -- the whole battery as a flood --------------------------------------------------------


def battery_round(port: int) -> Reaction:
    """Every case once; the reaction collects anything that went wrong as its note."""
    problems = []
    for name, (data, code) in CONNECTION_ERRORS.items():
        r = connection_error_round(port, data)
        if r.goaway_codes != [code] or not r.closed:
            problems.append(name)
    for name, (data, code) in STREAM_ERRORS.items():
        r = stream_error_round(port, data)
        if dict(r.resets) != {code: 1} or r.statuses != expected_statuses(name):
            problems.append(name)
    for name, data in RAW_H2_INPUTS.items():
        if not raw_h2_round(port, data).closed:
            problems.append(name)
    for name, (data, status) in H1_INPUTS.items():
        if h1_round(port, data) != (status, True):
            problems.append(name)
    return Reaction(note=",".join(problems))


def test_battery_as_a_flood(server: ServerProcess) -> None:
    result = measure(server, battery_round)
    print(result)
    assert result.reactions
    for reaction in result.reactions:
        assert not reaction.note, f"wrong answers under load: {reaction.note}"
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
