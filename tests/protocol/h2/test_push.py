"""Server push (RFC 9113 §8.4): the state table, the bounds, cancelling, both roles.

The `h2` library is the oracle: as a client it receives our pushes, as a server it
pushes to our client. Our own pair checks the bounds under hypothesis.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection, H2UsageError
from h2books.protocol.h2 import events as ev
from h2books.protocol.h2.frames import DATA as DATA_TYPE
from h2books.protocol.h2.frames import HEADERS as HEADERS_TYPE
from h2books.protocol.h2.stream import (
    FRAME_RULES,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    RECV_HEADERS,
    RECV_RST_STREAM,
    RESERVED_LOCAL,
    RESERVED_REMOTE,
    RESET_BY_PEER,
    RESET_BY_US,
    SEND_END_STREAM,
    SEND_HEADERS,
    SEND_RST_STREAM,
    STATE_NAMES,
    TRANSITIONS,
)
from tests.protocol.h2.support import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PUSH_PROMISE,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    LibClientPair,
    client_body,
    frame,
    goaway_code,
    parse,
    rst_codes,
    settings_frame,
    window_update,
)

PUSHING = H2Config(enable_push=True)
ACCEPTING = H2Config(client_side=True, enable_push=True)


def promise(path: bytes, method: bytes = b"GET") -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", path),
    ]


# -- the state table ---------------------------------------------------------------------


def test_reserved_streams_leave_by_their_response_head_or_a_reset() -> None:
    assert TRANSITIONS[(RESERVED_LOCAL, SEND_HEADERS)] == HALF_CLOSED_REMOTE
    assert TRANSITIONS[(RESERVED_REMOTE, RECV_HEADERS)] == HALF_CLOSED_LOCAL
    for state in (RESERVED_LOCAL, RESERVED_REMOTE):
        assert TRANSITIONS[(state, RECV_RST_STREAM)] == RESET_BY_PEER
        assert TRANSITIONS[(state, SEND_RST_STREAM)] == RESET_BY_US
        # No END_STREAM before the response head: a promise carries no request body.
        assert (state, SEND_END_STREAM) not in TRANSITIONS
    assert STATE_NAMES[RESERVED_LOCAL] == "reserved (local)"
    # What a reserved stream must never receive is a connection error (§5.1).
    for key in ((HEADERS_TYPE, RESERVED_LOCAL), (DATA_TYPE, RESERVED_LOCAL)):
        assert FRAME_RULES[key].connection_error
        assert FRAME_RULES[key].error == ErrorCode.PROTOCOL_ERROR
    assert FRAME_RULES[(DATA_TYPE, RESERVED_REMOTE)].connection_error
    assert (HEADERS_TYPE, RESERVED_REMOTE) not in FRAME_RULES  # the pushed response


# -- server role, the h2 library as the client --------------------------------------------


def lib_pair(**client_settings: int) -> LibClientPair:
    pair = LibClientPair(PUSHING)
    if client_settings:
        pair.client.update_settings(
            {getattr(h2.settings.SettingCodes, k.upper()): v for k, v in client_settings.items()}
        )
        pair.pump()
    return pair


def test_push_reaches_the_h2_library_before_the_parent_response() -> None:
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    pushed = pair.server.push_promise(sid, promise(b"/style.css"))
    assert pushed == 2
    assert pair.server.id_state(pushed) == RESERVED_LOCAL
    pair.server.send_response(pushed, 200, [(b"content-type", b"text/css")], b"body{}")
    pair.server.send_response(sid, 200, [], b"<html>")
    _, events = pair.pump()
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("PushedStreamReceived") < kinds.index("ResponseReceived")
    push = next(e for e in events if isinstance(e, h2.events.PushedStreamReceived))
    assert push.parent_stream_id == sid and push.pushed_stream_id == 2
    assert dict(push.headers)[b":path"] == b"/style.css"
    assert client_body(events, 2) == b"body{}" and client_body(events, sid) == b"<html>"
    assert pair.server.open_stream_count == 0


def test_a_big_promise_goes_out_in_continuation_frames() -> None:
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    big = b"x" * 40000
    pushed = pair.server.push_promise(sid, [*promise(b"/big"), (b"x-big", big)])
    out = parse(pair.server.data_to_send())
    assert [f.type for f in out] == [PUSH_PROMISE, CONTINUATION, CONTINUATION]
    assert [f.flags & END_HEADERS for f in out] == [0, 0, END_HEADERS]
    assert {f.stream_id for f in out} == {sid}
    events = pair.client.receive_data(b"".join(_raw(f) for f in out))
    push = next(e for e in events if isinstance(e, h2.events.PushedStreamReceived))
    assert push.pushed_stream_id == pushed and dict(push.headers)[b"x-big"] == big


def _raw(f: object) -> bytes:
    return frame(f.type, f.flags, f.stream_id, f.payload)  # type: ignore[attr-defined]


def test_never_to_a_client_that_disabled_push() -> None:
    pair = lib_pair(enable_push=0)
    sid = pair.request(b"/")
    pair.pump()
    assert not pair.server.can_push
    assert pair.server.push_promise(sid, promise(b"/a")) == 0
    assert pair.server.data_to_send() == b""
    assert pair.server.open_stream_count == 1  # only the request


def test_never_unless_the_server_enabled_it() -> None:
    pair = LibClientPair(H2Config())
    sid = pair.request(b"/")
    pair.pump()
    assert pair.server.push_promise(sid, promise(b"/a")) == 0
    assert pair.server.data_to_send() == b""


def test_never_beyond_the_clients_concurrency_limit() -> None:
    pair = lib_pair(max_concurrent_streams=2)
    sid = pair.request(b"/", end_stream=True)
    pair.pump()
    first = pair.server.push_promise(sid, promise(b"/1"))
    second = pair.server.push_promise(sid, promise(b"/2"))
    assert (first, second) == (2, 4)
    assert pair.server.push_promise(sid, promise(b"/3")) == 0  # two reserved already
    pair.server.send_response(first, 200, [], b"one")
    assert pair.server.push_promise(sid, promise(b"/3")) == 6  # a slot came free
    assert pair.server.push_promise(sid, promise(b"/4")) == 0


def test_never_beyond_our_own_stream_limit() -> None:
    pair = LibClientPair(replace(PUSHING, max_concurrent_streams=1))
    sid = pair.request(b"/")
    pair.pump()
    assert pair.server.push_promise(sid, promise(b"/1")) == 2
    assert pair.server.push_promise(sid, promise(b"/2")) == 0


def test_never_after_our_goaway_or_the_clients() -> None:
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    pair.server.start_graceful_shutdown(0.0)
    assert pair.server.push_promise(sid, promise(b"/a")) == 0

    other = lib_pair()
    sid = other.request(b"/")
    other.pump()
    other.client.close_connection()
    other.pump()
    assert other.server.push_promise(sid, promise(b"/a")) == 0


def test_only_on_an_open_request_whose_response_is_not_ended() -> None:
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    pushed = pair.server.push_promise(sid, promise(b"/a"))
    assert pair.server.push_promise(pushed, promise(b"/b")) == 0  # not on a pushed stream
    pair.server.send_response(sid, 200, [], b"done")
    assert pair.server.push_promise(sid, promise(b"/c")) == 0  # the parent is over
    assert pair.server.push_promise(99, promise(b"/d")) == 0  # never opened
    with pytest.raises(H2UsageError):
        H2Connection(ACCEPTING).push_promise(1, promise(b"/"))


def test_a_reset_push_drops_its_queued_data_and_costs_nothing_more() -> None:
    pair = lib_pair(initial_window_size=10)
    sid = pair.request(b"/")
    pair.pump()
    pushed = pair.server.push_promise(sid, promise(b"/big"))
    pair.server.send_response(pushed, 200, [], b"y" * 5000)
    assert pair.server.pending_send_bytes(pushed) == 4990
    pair.pump()
    pair.client.reset_stream(pushed, h2.errors.ErrorCodes.CANCEL)
    server_events, _ = pair.pump()
    assert ev.StreamReset(pushed, ErrorCode.CANCEL, True) in server_events
    assert pair.server.pending_send_bytes(pushed) == 0
    # Credit for the reset stream comes too late: nothing of it follows.
    pair.server.receive_data(window_update(pushed, 100000) + window_update(0, 100000), 0.0)
    assert not any(f.stream_id == pushed for f in parse(pair.server.data_to_send()))
    pair.server.send_response(sid, 200, [], b"still fine")
    _, client_events = pair.pump()
    assert client_body(client_events, sid) == b"still fine"


def test_a_client_resetting_thousands_of_pushes_keeps_the_connection() -> None:
    """Resets of our pushes, before or after they ended, are free: far past the reset
    and control budgets (200 and 1000), the connection stays up."""
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    resets = b""
    for n in range(3000):
        pushed = pair.server.push_promise(sid, promise(b"/%d" % n))
        assert pushed
        if n % 2:
            pair.server.send_response(pushed, 200, [], b"z")  # ended before the reset arrives
        resets += frame(RST_STREAM, 0, pushed, struct.pack(">I", ErrorCode.CANCEL))
        if n % 2 == 0:
            pair.server.receive_data(resets, 0.0)
            resets = b""
    pair.server.receive_data(resets, 0.0)
    assert not pair.server.closed
    assert pair.server.open_stream_count == 1
    assert goaway_code(parse(pair.server.data_to_send())) is None


def test_resets_of_pushes_never_made_still_count() -> None:
    pair = lib_pair()
    sid = pair.request(b"/")
    pair.pump()
    pushed = pair.server.push_promise(sid, promise(b"/a"))
    pair.server.send_response(pushed, 200, [], b"a")
    pair.server.data_to_send()
    rst = frame(RST_STREAM, 0, pushed, struct.pack(">I", ErrorCode.CANCEL))
    for _ in range(1500):  # one is free, the rest are a flood of resets of a closed stream
        pair.server.receive_data(rst, 0.0)
    assert goaway_code(parse(pair.server.data_to_send())) == ErrorCode.ENHANCE_YOUR_CALM


@pytest.mark.parametrize(
    "raw",
    [
        lambda c, p: c.headers(p, REQUEST),
        lambda c, p: frame(DATA, END_STREAM, p, b"x"),
    ],
    ids=["headers", "data"],
)
def test_a_reserved_stream_takes_no_headers_or_data_from_the_client(raw: object) -> None:
    from tests.protocol.h2.support import RawClient

    client = RawClient(PUSHING)
    client.send(client.headers(1, REQUEST, end_stream=False))
    pushed = client.conn.push_promise(1, promise(b"/a"))
    client.take()
    client.send(raw(client, pushed))  # type: ignore[operator]
    assert goaway_code(client.take()) == ErrorCode.PROTOCOL_ERROR


def test_data_on_a_pushed_stream_after_its_head_is_stream_closed() -> None:
    from tests.protocol.h2.support import RawClient

    client = RawClient(PUSHING)
    client.send(client.headers(1, REQUEST, end_stream=False))
    pushed = client.conn.push_promise(1, promise(b"/a"))
    client.conn.send_headers(pushed, [(b":status", b"200")])
    client.take()
    client.send(frame(DATA, 0, pushed, b"x"))
    assert rst_codes(client.take()) == {pushed: ErrorCode.STREAM_CLOSED}
    assert not client.conn.closed


# -- client role, the h2 library as the server -------------------------------------------


class LibServerPair:
    def __init__(self, client: H2Config = ACCEPTING) -> None:
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.client = H2Connection(client)
        self.client.initiate(0.0)
        self.server.initiate_connection()
        self.server.receive_data(self.client.data_to_send())
        self.client.receive_data(self.server.data_to_send(), 0.0)
        self.server.receive_data(self.client.data_to_send())

    def exchange(self) -> list[ev.Event]:
        return self.client.receive_data(self.server.data_to_send(), 0.0)


def test_our_client_takes_pushes_from_the_h2_library() -> None:
    pair = LibServerPair()
    sid = pair.client.send_request(REQUEST)
    pair.server.receive_data(pair.client.data_to_send())
    pair.server.push_stream(sid, 2, promise(b"/pushed.css"))
    pair.server.send_headers(2, [(b":status", b"200"), (b"content-length", b"3")])
    pair.server.send_data(2, b"css", end_stream=True)
    pair.server.send_headers(sid, [(b":status", b"200")], end_stream=True)
    events = pair.exchange()
    assert events[0] == ev.push_promise_received(
        sid, 2, b"GET", b"https", b"example.com", b"/pushed.css", []
    )
    assert ev.response_received(2, 200, [(b"content-length", b"3")], False) in events
    assert ev.data_received(2, b"css", 3, True) in events
    assert ev.response_received(sid, 200, [], True) in events
    assert pair.client.open_stream_count == 0


def test_our_client_announces_enable_push_only_when_asked() -> None:
    for config, value in ((ACCEPTING, 1), (H2Config(client_side=True), 0)):
        conn = H2Connection(config)
        conn.initiate(0.0)
        data = conn.data_to_send()
        settings_payload = parse(data[24:])[0].payload
        assert dict(struct.iter_unpack(">HI", settings_payload))[2] == value


class RawServer:
    def __init__(self, config: H2Config = ACCEPTING) -> None:
        self.conn = H2Connection(config)
        self.conn.initiate(0.0)
        self.conn.data_to_send()
        self.encoder = hpack.Encoder()
        self.conn.receive_data(settings_frame() + frame(SETTINGS, ACK, 0), 0.0)
        self.sid = self.conn.send_request(REQUEST)
        self.conn.data_to_send()

    def push(self, promised: int, fields: list[tuple[bytes, bytes]], parent: int = 0) -> bytes:
        payload = struct.pack(">I", promised) + self.encoder.encode(fields)
        return frame(PUSH_PROMISE, END_HEADERS, parent or self.sid, payload)


@pytest.mark.parametrize(
    "fields",
    [promise(b"/a", b"POST"), [(b":method", b"GET"), (b":path", b"/")], promise(b"/a", b"PUT")],
    ids=["post", "malformed", "put"],
)
def test_our_client_refuses_a_promise_that_is_not_a_safe_request(
    fields: list[tuple[bytes, bytes]],
) -> None:
    s = RawServer()
    events = s.conn.receive_data(s.push(2, fields), 0.0)
    assert not events
    assert rst_codes(parse(s.conn.data_to_send())) == {2: ErrorCode.PROTOCOL_ERROR}
    # The refused id is closed, not idle: its response is dropped quietly.
    s.conn.receive_data(
        frame(HEADERS, END_HEADERS | END_STREAM, 2, s.encoder.encode([(b":status", b"200")])), 0.0
    )
    assert goaway_code(parse(s.conn.data_to_send())) is None


def test_our_client_refuses_pushes_beyond_its_limit() -> None:
    s = RawServer(replace(ACCEPTING, max_concurrent_streams=1))
    first = s.conn.receive_data(s.push(2, promise(b"/a")), 0.0)
    assert isinstance(first[0], ev.PushPromiseReceived)
    assert s.conn.receive_data(s.push(4, promise(b"/b")), 0.0) == []
    assert rst_codes(parse(s.conn.data_to_send())) == {4: ErrorCode.REFUSED_STREAM}


@pytest.mark.parametrize(
    "promised, parent",
    [(3, 0), (0, 0), (2, 2), (2, 5)],
    ids=["odd-promised-id", "zero-promised-id", "on-a-pushed-stream", "on-an-idle-stream"],
)
def test_our_client_rejects_impossible_promises(promised: int, parent: int) -> None:
    s = RawServer()
    if parent == 2:
        s.conn.receive_data(s.push(2, promise(b"/a")), 0.0)
        promised = 4
    s.conn.receive_data(s.push(promised, promise(b"/x"), parent), 0.0)
    assert goaway_code(parse(s.conn.data_to_send())) == ErrorCode.PROTOCOL_ERROR


def test_our_client_cancels_a_promise_for_a_request_it_reset() -> None:
    s = RawServer()
    s.conn.reset_stream(s.sid)
    s.conn.data_to_send()
    assert s.conn.receive_data(s.push(2, promise(b"/a")), 0.0) == []
    assert rst_codes(parse(s.conn.data_to_send())) == {2: ErrorCode.CANCEL}


def test_data_on_a_promised_stream_before_its_head_is_a_connection_error() -> None:
    s = RawServer()
    s.conn.receive_data(s.push(2, promise(b"/a")), 0.0)
    s.conn.receive_data(frame(DATA, 0, 2, b"x"), 0.0)
    assert goaway_code(parse(s.conn.data_to_send())) == ErrorCode.PROTOCOL_ERROR


def test_our_client_assembles_a_promise_split_in_continuations() -> None:
    s = RawServer()
    block = s.encoder.encode([*promise(b"/split"), (b"x-pad", b"p" * 100)])
    first = frame(PUSH_PROMISE, 0, s.sid, struct.pack(">I", 2) + block[:10])
    rest = frame(CONTINUATION, END_HEADERS, s.sid, block[10:])
    events = s.conn.receive_data(first + rest, 0.0)
    assert events == [
        ev.push_promise_received(
            s.sid, 2, b"GET", b"https", b"example.com", b"/split", [(b"x-pad", b"p" * 100)]
        )
    ]


def test_a_server_never_accepts_a_push_promise() -> None:
    from tests.protocol.h2.support import RawClient

    client = RawClient(PUSHING)
    client.send(client.headers(1, REQUEST, end_stream=False))
    client.send(frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"))
    assert goaway_code(client.take()) == ErrorCode.PROTOCOL_ERROR


# -- both roles ours, under hypothesis -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    pushes=st.integers(0, 40),
    client_limit=st.integers(1, 10),
    server_limit=st.integers(1, 10),
    answer_every=st.integers(1, 4),
)
def test_live_pushed_streams_never_exceed_either_limit(
    pushes: int, client_limit: int, server_limit: int, answer_every: int
) -> None:
    client = H2Connection(replace(ACCEPTING, max_concurrent_streams=client_limit))
    server = H2Connection(replace(PUSHING, max_concurrent_streams=server_limit))
    client.initiate(0.0)
    server.initiate(0.0)

    def pump() -> list[ev.Event]:
        got: list[ev.Event] = []
        for _ in range(100):
            up = client.data_to_send()
            if up:
                server.receive_data(up, 0.0)
            down = server.data_to_send()
            if down:
                got += client.receive_data(down, 0.0)
            if not up and not down:
                return got
        raise AssertionError("never quiet")

    pump()
    sid = client.send_request(REQUEST)
    pump()
    promised: list[int] = []
    received: list[ev.Event] = []
    waiting: list[int] = []
    for n in range(pushes):
        pushed = server.push_promise(sid, promise(b"/%d" % n))
        live = sum(1 for s in server._streams if not s & 1)
        assert live <= min(client_limit, server_limit)
        assert server.request_stream_count == len(server._streams) - live == 1
        if pushed:
            promised.append(pushed)
            waiting.append(pushed)
        else:
            assert live == min(client_limit, server_limit)
        if n % answer_every == 0:
            for w in waiting:
                server.send_response(w, 200, [], b"%d" % w)
            waiting.clear()
        received += pump()
        assert sum(1 for s in client._streams if not s & 1) <= client_limit
        assert client.request_stream_count == 1
    for w in waiting:
        server.send_response(w, 200, [], b"%d" % w)
    server.send_response(sid, 200, [], b"parent")
    received += pump()
    assert [e.stream_id for e in received if isinstance(e, ev.PushPromiseReceived)] == promised
    for p in promised:
        assert (
            b"".join(
                e.data for e in received if isinstance(e, ev.DataReceived) and e.stream_id == p
            )
            == b"%d" % p
        )
    assert not any(isinstance(e, (ev.StreamReset, ev.ConnectionTerminated)) for e in received)
    assert client.open_stream_count == 0 and server.open_stream_count == 0


def test_live_pushes_take_no_request_slot_on_either_side() -> None:
    """RFC 9113 §5.1.2: each side's SETTINGS_MAX_CONCURRENT_STREAMS limits the streams
    the other opens. With 2 pushes reserved and 2 as both limits, the client still opens
    its second request and the server takes it; a third is over the limit."""
    client = H2Connection(replace(ACCEPTING, max_concurrent_streams=2))
    server = H2Connection(replace(PUSHING, max_concurrent_streams=2))
    client.initiate(0.0)
    server.initiate(0.0)

    def pump() -> list[ev.Event]:
        got: list[ev.Event] = []
        while True:
            up, down = client.data_to_send(), server.data_to_send()
            if not up and not down:
                return got
            got += server.receive_data(up, 0.0)
            got += client.receive_data(down, 0.0)

    pump()
    first = client.send_request(REQUEST)
    pump()
    assert server.push_promise(first, promise(b"/a")) and server.push_promise(first, promise(b"/b"))
    assert not server.can_push  # the pushes have their own bound: full
    pump()
    assert client.open_stream_count == 3 and client.request_stream_count == 1
    second = client.send_request(REQUEST)
    got = pump()
    assert [e.stream_id for e in got if isinstance(e, ev.RequestReceived)] == [second]
    assert not any(isinstance(e, ev.StreamReset) for e in got)
    assert server.request_stream_count == 2 and server.open_stream_count == 4
    with pytest.raises(H2UsageError, match="MAX_CONCURRENT_STREAMS"):
        client.send_request(REQUEST)
    for sid in (first, second):
        server.send_response(sid, 200, [], b"done")
    for pushed in (2, 4):
        server.send_response(pushed, 200, [], b"pushed")
    pump()
    assert client.open_stream_count == 0 and server.open_stream_count == 0
    assert client.request_stream_count == 0 and server.request_stream_count == 0
    assert server.can_push  # the push slots are free again
