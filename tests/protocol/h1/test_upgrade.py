"""HTTP/1.1 Upgrade to WebSocket in the server core: recognised, parsing stopped, the
hand-over after 101 (trailing data), and a refusal that lets HTTP/1.1 go on."""

from __future__ import annotations

import pytest

from h2books.protocol.h1 import (
    ConnectionClosed,
    H1Config,
    H1Error,
    H1ServerConnection,
    RequestReceived,
    UpgradeRequested,
    serialize_head,
)
from h2books.protocol.h1.upgrade import requested_upgrade

HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\n"
    b"Upgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
GET = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"
SWITCH = serialize_head(
    101, [(b"upgrade", b"websocket"), (b"connection", b"upgrade"), (b"sec-websocket-accept", b"x")]
)
FORBIDDEN = serialize_head(403, [(b"content-length", b"0")])
OK = serialize_head(200, [])


def _conn(data: bytes) -> tuple[H1ServerConnection, list[object]]:
    conn = H1ServerConnection(H1Config(), 0.0)
    return conn, list(conn.receive_data(data, 0.0))


def test_upgrade_request_is_delivered_and_parsing_stops() -> None:
    conn, events = _conn(HANDSHAKE + b"\x81\x85frame-bytes" + GET)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, UpgradeRequested)
    assert event.protocol == b"websocket"
    assert isinstance(event.request, RequestReceived)
    assert event.request.method == b"GET" and event.request.target == b"/chat"
    assert (b"sec-websocket-version", b"13") in event.request.headers
    # Nothing past the head is parsed, and the runtime is told to stop reading.
    assert conn.paused
    assert conn.receive_data(b"more", 0.0) == []


def test_101_hands_the_connection_over_with_the_trailing_data() -> None:
    conn, _ = _conn(HANDSHAKE + b"\x81\x85frame")
    conn.receive_data(b"-bytes", 0.0)
    conn.send_response(SWITCH, b"")
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert out.endswith(b"sec-websocket-accept: x\r\n\r\n")
    assert b"content-length" not in out and b"connection: close" not in out
    assert conn.must_close and not conn.paused
    assert conn.take_trailing_data() == (b"\x81\x85frame-bytes", False)
    # The core is done: later bytes are not parsed, no deadline runs.
    assert conn.receive_data(b"GET / HTTP/1.1\r\n\r\n", 1.0) == []
    assert conn.get_timer() is None


def test_trailing_data_reports_the_peer_eof() -> None:
    conn, _ = _conn(HANDSHAKE)
    conn.receive_data(b"", 0.0)
    conn.start_response(SWITCH)  # a streamed head switches too
    assert conn.data_to_send().startswith(b"HTTP/1.1 101 ")
    assert conn.take_trailing_data() == (b"", True)


def test_refused_upgrade_goes_on_as_http11() -> None:
    conn, _ = _conn(HANDSHAKE + GET)
    conn.send_response(FORBIDDEN, b"")
    assert conn.data_to_send().startswith(b"HTTP/1.1 403 ")
    assert not conn.must_close and not conn.paused
    events = conn.resume(0.0)
    assert [type(e) for e in events] == [RequestReceived]
    assert isinstance(events[0], RequestReceived) and events[0].target == b"/next"
    with pytest.raises(H1Error):
        conn.take_trailing_data()


def test_refused_upgrade_closing_the_connection() -> None:
    conn, _ = _conn(HANDSHAKE.replace(b"keep-alive, Upgrade", b"Upgrade, close") + GET)
    conn.send_response(FORBIDDEN, b"")
    assert b"connection: close" in conn.data_to_send()
    assert conn.must_close
    assert conn.resume(0.0) == []


def test_101_only_answers_an_upgrade_request() -> None:
    conn, _ = _conn(GET)
    with pytest.raises(H1Error):
        conn.send_response(SWITCH, b"")


def test_pipelined_answers_go_out_before_the_switch() -> None:
    conn, events = _conn(GET + HANDSHAKE)
    assert [type(e) for e in events] == [RequestReceived, UpgradeRequested]
    with pytest.raises(H1Error):
        conn.send_response(SWITCH, b"")  # the first request is owed its answer first
    conn.send_response(OK, b"")
    conn.send_response(SWITCH, b"")
    out = conn.data_to_send()
    assert out.index(b"HTTP/1.1 200 ") < out.index(b"HTTP/1.1 101 ")


def test_upgrade_eof_then_refusal_closes() -> None:
    conn, _ = _conn(HANDSHAKE)
    conn.receive_data(b"", 0.0)
    conn.send_response(FORBIDDEN, b"")
    events = conn.resume(0.0)
    assert [type(e) for e in events] == [ConnectionClosed]
    assert conn.must_close


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: UPGRADE\r\nUpgrade: h2c, WebSocket\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n", False),  # not in Connection
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n", False),
        (b"POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n", False),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
            b"Content-Length: 2\r\n\r\nab",
            False,  # a request with a body is served as it is
        ),
    ],
)
def test_what_counts_as_an_upgrade(head: bytes, expected: bool) -> None:
    data = head if head.endswith(b"ab") else head + b"\r\n"
    _, events = _conn(data)
    assert len(events) == 1
    assert isinstance(events[0], UpgradeRequested) is expected


def test_requested_upgrade_is_token_based() -> None:
    framing = {b"connection": [b"keep-alive", b" Upgrade "], b"upgrade": [b"foo/1, websocket"]}
    assert requested_upgrade(b"GET", b"1.1", framing) == b"websocket"
    assert requested_upgrade(b"GET", b"1.1", {b"upgrade": [b"websocket"]}) is None
    assert requested_upgrade(b"GET", b"1.1", {**framing, b"connection": [b"upgrades"]}) is None


def test_identical_upgrade_requests_are_never_taken_for_plain_ones() -> None:
    # The repeated-fields fast path must not serve a second handshake as a plain GET.
    conn, _ = _conn(HANDSHAKE)
    conn.send_response(FORBIDDEN, b"")
    conn.data_to_send()
    events = conn.receive_data(HANDSHAKE, 0.0)
    assert [type(e) for e in events] == [UpgradeRequested]


def test_a_handshake_after_a_head_with_the_same_field_lines_is_still_an_upgrade() -> None:
    # A HEAD with the upgrade fields is no upgrade (only GET is); its lines must not be
    # cached for the fast path, which matches the lines alone.
    head_request = HANDSHAKE.replace(b"GET /chat", b"HEAD /chat", 1)
    conn, events = _conn(head_request)
    assert [type(e) for e in events] == [RequestReceived]
    conn.send_response(OK, b"")
    conn.data_to_send()
    events = conn.receive_data(HANDSHAKE, 0.0)
    assert [type(e) for e in events] == [UpgradeRequested]


def test_a_request_whose_fields_repeat_waits_behind_an_unanswered_upgrade() -> None:
    # Once a request's field lines are known, a request repeating them takes the core's
    # fast path; sent after an Upgrade not yet answered, it must wait like any other bytes
    # (after a 101 they are the new protocol's): the fast path let it through before
    # session 9.
    plain = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
    conn = H1ServerConnection(H1Config(), 0.0)
    [first] = conn.receive_data(plain, 0.0)
    assert isinstance(first, RequestReceived)
    conn.send_response(serialize_head(200, [(b"content-length", b"2")]), b"ok")
    conn.data_to_send()
    [event] = conn.receive_data(HANDSHAKE, 0.0)
    assert isinstance(event, UpgradeRequested)
    assert conn.receive_data(plain, 0.0) == []
    assert conn.held_back
    conn.send_response(FORBIDDEN, b"")  # refused: HTTP/1.1 goes on, the held request next
    events = conn.resume(0.0)
    assert [type(e) for e in events] == [RequestReceived]
    assert isinstance(events[0], RequestReceived) and events[0].target == b"/"
