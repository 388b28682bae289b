"""Server role driven by the `h2` library as the client, bytes exchanged in memory,
plus hand-built frames where the exact frame layout matters."""

from __future__ import annotations

import gc
import struct
import tracemalloc

import h2.events
import h2.settings
import pytest

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection, H2UsageError
from h2books.protocol.h2 import events as ev
from tests.protocol.h2.support import (
    ACK,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    LibClientPair,
    RawClient,
    client_body,
    frame,
    parse,
    rst_codes,
    settings_frame,
    window_update,
)

POST = [(b":method", b"POST"), *REQUEST[1:]]


def requests_of(events: list[ev.Event]) -> list[ev.RequestReceived]:
    return [e for e in events if isinstance(e, ev.RequestReceived)]


# -- basic exchanges -----------------------------------------------------------------


def test_get_request_and_response() -> None:
    pair = LibClientPair()
    sid = pair.request(b"/book?id=7", extra=[(b"user-agent", b"test/1"), (b"accept", b"*/*")])
    server_events, _ = pair.pump()
    [req] = requests_of(server_events)
    assert (req.stream_id, req.method, req.scheme, req.authority, req.path) == (
        sid,
        b"GET",
        b"https",
        b"example.com",
        b"/book?id=7",
    )
    assert req.headers == [(b"user-agent", b"test/1"), (b"accept", b"*/*")]
    assert req.end_stream
    pair.server.send_response(sid, 200, [(b"content-type", b"text/plain")], b"hello")
    _, client_events = pair.pump()
    [resp] = [e for e in client_events if isinstance(e, h2.events.ResponseReceived)]
    assert resp.headers == [(b":status", b"200"), (b"content-type", b"text/plain")]
    assert client_body(client_events, sid) == b"hello"
    assert any(isinstance(e, h2.events.StreamEnded) for e in client_events)
    assert pair.server.open_stream_count == 0


def test_many_concurrent_requests_answered_out_of_order() -> None:
    pair = LibClientPair()
    sids = [pair.request(b"/n/%d" % i) for i in range(50)]
    requests = requests_of(pair.pump()[0])
    assert [r.stream_id for r in requests] == sids
    for req in reversed(requests):
        pair.server.send_response(req.stream_id, 200, [], req.path)
    _, client_events = pair.pump()
    for i, sid in enumerate(sids):
        assert client_body(client_events, sid) == b"/n/%d" % i


def test_empty_body_response_ends_with_headers() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.send_response(1, 204, [(b"x-a", b"b")], b"")
    frames = c.take()
    assert [(f.type, f.flags) for f in frames] == [(HEADERS, END_HEADERS | END_STREAM)]
    assert c.decoder.decode(frames[0].payload) == [(":status", "204"), ("x-a", "b")]


def test_response_frame_layout_is_headers_then_one_data() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"x" * 200)
    frames = c.take()
    assert [(f.type, f.flags, f.stream_id) for f in frames] == [
        (HEADERS, END_HEADERS, 1),
        (DATA, END_STREAM, 1),
    ]
    assert frames[1].payload == b"x" * 200


def test_post_body_and_window_updates_at_half_window() -> None:
    config = H2Config(initial_window_size=1000, connection_window_size=65535)
    c = RawClient(config)
    c.send(c.headers(1, POST, end_stream=False))
    events = c.send(frame(DATA, 0, 1, b"a" * 300) + frame(DATA, 0, 1, b"b" * 300))
    assert [(e.data[:1], e.flow_controlled_length) for e in events] == [  # type: ignore[attr-defined]
        (b"a", 300),
        (b"b", 300),
    ]
    c.conn.acknowledge_received_data(1, 300)
    assert c.take() == []  # 300 < 1000 / 2
    c.conn.acknowledge_received_data(1, 300)
    frames = c.take()
    assert [(f.type, f.stream_id, struct.unpack(">I", f.payload)[0]) for f in frames] == [
        (WINDOW_UPDATE, 1, 600)
    ]
    # The connection window (65535) is given back once 32768 octets are consumed.
    for _ in range(33):
        c.send(frame(DATA, 0, 1, b"c" * 1000))
        c.conn.acknowledge_received_data(1, 1000)
    increments = [
        (f.stream_id, struct.unpack(">I", f.payload)[0])
        for f in c.take()
        if f.type == WINDOW_UPDATE
    ]
    assert increments == [(1, 1000)] * 33 + [(0, 33600)]


def test_acknowledging_more_than_received_is_clamped() -> None:
    c = RawClient(H2Config(initial_window_size=1000, connection_window_size=65535))
    c.send(c.headers(1, POST, end_stream=False) + frame(DATA, 0, 1, b"a" * 600))
    c.conn.acknowledge_received_data(1, 10**9)
    frames = c.take()
    assert [(f.stream_id, struct.unpack(">I", f.payload)[0]) for f in frames] == [(1, 600)]


def test_acknowledge_for_unknown_stream_is_noop() -> None:
    c = RawClient()
    c.conn.acknowledge_received_data(99, 100)
    c.conn.acknowledge_received_data(1, 0)
    assert c.take() == []


def test_data_of_reset_stream_is_credited_to_connection() -> None:
    c = RawClient(H2Config(connection_window_size=65535))
    c.send(c.headers(1, POST, end_stream=False))
    c.send(frame(DATA, 0, 1, b"x" * 16384) + frame(DATA, 0, 1, b"x" * 16384))
    c.take()
    # The client gives up; the application never acknowledges those octets.
    c.send(frame(RST_STREAM, 0, 1, b"\0\0\0\x08"))
    frames = c.take()
    assert [(f.type, f.stream_id, struct.unpack(">I", f.payload)[0]) for f in frames] == [
        (WINDOW_UPDATE, 0, 32768)
    ]


def test_content_length_checked_against_data() -> None:
    c = RawClient()
    c.send(c.headers(1, [*POST, (b"content-length", b"1")], end_stream=False))
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    assert rst_codes(c.take()) == {1: ErrorCode.PROTOCOL_ERROR}
    c.send(c.headers(3, [*POST, (b"content-length", b"5")], end_stream=False))
    c.send(frame(DATA, 0, 3, b"test") + frame(DATA, END_STREAM, 3, b""))
    assert rst_codes(c.take()) == {3: ErrorCode.PROTOCOL_ERROR}
    c.send(c.headers(5, [*POST, (b"content-length", b"8")], end_stream=False))
    events = c.send(frame(DATA, 0, 5, b"test") + frame(DATA, END_STREAM, 5, b"test"))
    assert [type(e) for e in events] == [ev.DataReceived, ev.DataReceived]
    c.send(c.headers(7, [*POST, (b"content-length", b"3")], end_stream=True))
    assert rst_codes(c.take()) == {7: ErrorCode.PROTOCOL_ERROR}


def test_content_length_mismatch_at_trailers() -> None:
    c = RawClient()
    c.send(c.headers(1, [*POST, (b"content-length", b"10")], end_stream=False))
    c.send(frame(DATA, 0, 1, b"test"))
    c.send(c.headers(1, [(b"x-t", b"1")], end_stream=True))
    assert rst_codes(c.take()) == {1: ErrorCode.PROTOCOL_ERROR}


@pytest.mark.parametrize(
    "fields",
    [
        [*REQUEST, (b"X-Upper", b"1")],
        [(b":method", b"GET"), (b"x-a", b"1"), *REQUEST[1:]],
        [*REQUEST, (b":unknown", b"1")],
        [*REQUEST, (b":status", b"200")],
        [*REQUEST, (b":path", b"/again")],
        [*REQUEST, (b":method", b"GET")],
        [*REQUEST, (b":scheme", b"http")],
        REQUEST[1:],
        [REQUEST[0], *REQUEST[2:]],
        [*REQUEST[:2], REQUEST[3]],
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b""), REQUEST[3]],
        [*REQUEST, (b"connection", b"keep-alive")],
        [*REQUEST, (b"keep-alive", b"1")],
        [*REQUEST, (b"proxy-connection", b"1")],
        [*REQUEST, (b"transfer-encoding", b"chunked")],
        [*REQUEST, (b"upgrade", b"h2c")],
        [*REQUEST, (b"te", b"gzip")],
        [*REQUEST, (b"x-v", b"a\0b")],
        [*REQUEST, (b"x-v", b"a\rb")],
        [*REQUEST, (b"x-v", b"a\nb")],
        [*REQUEST, (b"x-v", b" a")],
        [*REQUEST, (b"x-v", b"a\t")],
        [*REQUEST, (b"x v", b"a")],
        [*REQUEST, (b"x:v", b"a")],
        [*REQUEST, (b"", b"a")],
        [*REQUEST, (b"content-length", b"abc")],
    ],
)
def test_malformed_requests_are_reset_with_protocol_error(
    fields: list[tuple[bytes, bytes]],
) -> None:
    c = RawClient()
    events = c.send(c.headers(1, fields))
    assert requests_of(events) == []
    frames = c.take()
    assert rst_codes(frames) == {1: ErrorCode.PROTOCOL_ERROR}
    assert not c.conn.closed
    assert requests_of(c.send(c.headers(3)))  # the connection goes on


def test_te_trailers_and_cookie_crumbs() -> None:
    c = RawClient()
    fields = [
        *REQUEST,
        (b"cookie", b"a=1"),
        (b"te", b"trailers"),
        (b"cookie", b"b=2"),
        (b"cookie", b"c=3"),
    ]
    [req] = requests_of(c.send(c.headers(1, fields)))
    assert req.headers == [(b"cookie", b"a=1; b=2; c=3"), (b"te", b"trailers")]


def test_connect_request() -> None:
    c = RawClient()
    fields = [(b":method", b"CONNECT"), (b":authority", b"example.com:443")]
    [req] = requests_of(c.send(c.headers(1, fields, end_stream=False)))
    assert (req.method, req.authority, req.scheme, req.path) == (
        b"CONNECT",
        b"example.com:443",
        b"",
        b"",
    )


def test_request_trailers() -> None:
    pair = LibClientPair()
    sid = pair.request(method=b"POST", end_stream=False)
    pair.client.send_data(sid, b"body")
    pair.client.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
    server_events, _ = pair.pump()
    assert [type(e) for e in server_events[-3:]] == [
        ev.RequestReceived,
        ev.DataReceived,
        ev.TrailersReceived,
    ]
    assert server_events[-1] == ev.TrailersReceived(sid, [(b"x-checksum", b"abc")])


def test_trailers_without_end_stream_are_malformed() -> None:
    c = RawClient()
    c.send(c.headers(1, POST, end_stream=False) + frame(DATA, 0, 1, b"test"))
    c.send(c.headers(1, [(b"x-test", b"ok")], end_stream=False))
    assert rst_codes(c.take()) == {1: ErrorCode.PROTOCOL_ERROR}


def test_trailers_with_pseudo_header_are_malformed() -> None:
    c = RawClient()
    c.send(c.headers(1, POST, end_stream=False))
    c.send(c.headers(1, [(b":path", b"/x")], end_stream=True))
    assert rst_codes(c.take()) == {1: ErrorCode.PROTOCOL_ERROR}


# -- padding and CONTINUATION ---------------------------------------------------------


def test_padded_data_from_library_client() -> None:
    pair = LibClientPair()
    sid = pair.request(method=b"POST", end_stream=False)
    pair.client.send_data(sid, b"payload", end_stream=True, pad_length=20)
    server_events, _ = pair.pump()
    [data] = [e for e in server_events if isinstance(e, ev.DataReceived)]
    assert data.data == b"payload" and data.flow_controlled_length == 28 and data.end_stream


def test_header_block_over_several_continuations() -> None:
    c = RawClient()
    fields = [*REQUEST, *((b"x-h%d" % i, b"v" * 50) for i in range(40))]
    block = c.block(fields)
    parts = [block[i : i + 200] for i in range(0, len(block), 200)]
    assert len(parts) > 5
    data = frame(HEADERS, END_STREAM, 1, parts[0])
    for part in parts[1:-1]:
        data += frame(9, 0, 1, part)
    data += frame(9, END_HEADERS, 1, parts[-1])
    [req] = requests_of(c.send(data))
    assert len(req.headers) == 40 and req.end_stream


def test_large_request_headers_from_library_are_split_and_reassembled() -> None:
    pair = LibClientPair()
    extra = [(b"x-big-%d" % i, b"v" * 1000) for i in range(30)]
    sid = pair.request(extra=extra)
    [req] = requests_of(pair.pump()[0])
    assert req.stream_id == sid and req.headers == extra


def test_response_headers_larger_than_a_frame_use_continuation() -> None:
    pair = LibClientPair()
    sid = pair.request()
    pair.pump()
    fields = [(b"x-big-%d" % i, b"%d" % i * 900) for i in range(30)]
    pair.server.send_response(sid, 200, fields, b"body")
    raw = pair.server.data_to_send()
    types = [f.type for f in parse(raw)]
    assert types[0] == HEADERS and 9 in types and types[-1] == DATA
    client_events = pair.client.receive_data(raw)
    [resp] = [e for e in client_events if isinstance(e, h2.events.ResponseReceived)]
    assert resp.headers[1:] == fields
    assert client_body(client_events, sid) == b"body"


# -- flow control on our sending side -------------------------------------------------


def test_initial_window_of_one_sends_one_byte() -> None:
    c = RawClient(settings=settings_frame((0x4, 1)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"hello")
    frames = c.take()
    assert [(f.type, len(f.payload), f.flags) for f in frames] == [
        (HEADERS, frames[0].payload and len(frames[0].payload), END_HEADERS),
        (DATA, 1, 0),
    ]
    assert c.conn.pending_send_bytes(1) == 4
    events = c.send(window_update(1, 4))
    assert events == [ev.WindowUpdated(1)]
    frames = c.take()
    assert [(f.type, f.payload, f.flags) for f in frames] == [(DATA, b"ello", END_STREAM)]
    assert c.conn.pending_send_bytes(1) == 0
    assert c.conn.open_stream_count == 0


def test_initial_window_change_after_headers_releases_data() -> None:
    c = RawClient(settings=settings_frame((0x4, 0)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"hello")
    assert [f.type for f in c.take()] == [HEADERS]
    c.send(settings_frame((0x4, 1)))
    frames = c.take()
    assert [(f.type, f.flags, f.payload) for f in frames] == [
        (SETTINGS, ACK, b""),
        (DATA, 0, b"h"),
    ]


def test_negative_window_after_settings_change() -> None:
    c = RawClient(settings=settings_frame((0x4, 3)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"hello world")
    frames = c.take()
    assert [(f.type, f.payload) for f in frames][1:] == [(DATA, b"hel")]
    c.send(settings_frame((0x4, 2)))  # window 0 -> -1
    assert [f.type for f in c.take()] == [SETTINGS]
    c.send(window_update(1, 1))  # -1 -> 0: still nothing may go
    assert c.take() == []
    c.send(window_update(1, 1))  # 0 -> 1
    assert [(f.type, f.payload) for f in c.take()] == [(DATA, b"l")]


def test_multiple_initial_window_values_in_one_frame_last_wins() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.send(settings_frame((0x4, 100), (0x4, 1), (0x4, 2)))
    c.take()
    c.conn.send_response(1, 200, [], b"hello")
    frames = c.take()
    assert [(f.type, f.payload) for f in frames][1:] == [(DATA, b"he")]


def test_large_response_split_by_max_frame_size_and_windows() -> None:
    pair = LibClientPair()
    sid = pair.request()
    pair.pump()
    body = bytes(range(256)) * 1000  # 256000 bytes: beyond the 65535 default windows
    pair.server.send_response(sid, 200, [], body)
    raw = pair.server.data_to_send()
    sizes = [len(f.payload) for f in parse(raw) if f.type == DATA]
    assert max(sizes) == 16384 and sum(sizes) == 65535
    received = bytearray()
    client_events = pair.client.receive_data(raw)
    for _ in range(100):
        for e in client_events:
            if isinstance(e, h2.events.DataReceived):
                received += e.data
                pair.client.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        to_server = pair.client.data_to_send()
        if not to_server:
            break
        pair.server.receive_data(to_server, 0.0)
        client_events = pair.client.receive_data(pair.server.data_to_send())
    assert bytes(received) == body
    assert pair.server.open_stream_count == 0


def test_peer_max_frame_size_is_respected() -> None:
    c = RawClient(settings=settings_frame((0x5, 20000), (0x4, 100000)))
    c.send(window_update(0, 100000))
    c.send(c.headers(1))
    c.take()
    c.conn.send_response(1, 200, [], b"z" * 50000)
    sizes = [len(f.payload) for f in c.take() if f.type == DATA]
    assert sizes == [20000, 20000, 10000]


def test_round_robin_across_blocked_streams() -> None:
    c = RawClient(settings=settings_frame((0x4, 100000)))
    for sid in (1, 3, 5):
        c.send(c.headers(sid))
    c.take()
    for sid in (1, 3, 5):
        c.conn.send_response(sid, 200, [], bytes([sid]) * 40000)
    first = [(f.stream_id, len(f.payload)) for f in c.take() if f.type == DATA]
    assert sum(n for _, n in first) == 65535  # the connection window
    c.send(window_update(0, 3 * 16384))
    frames = [(f.stream_id, len(f.payload)) for f in c.take() if f.type == DATA]
    # Stream 1 went out whole and stream 3 in part; then one frame per blocked stream
    # per round: stream 3 finishes, stream 5 takes the rest of the new credit.
    assert frames == [(3, 14465), (5, 16384), (5, 16384), (5, 1919)]
    c.send(window_update(0, 10**6))
    rest = [f for f in c.take() if f.type == DATA]
    total = {1: 0, 3: 0, 5: 0}
    for sid, n in first + frames + [(f.stream_id, len(f.payload)) for f in rest]:
        total[sid] += n
    assert total == {1: 40000, 3: 40000, 5: 40000}
    assert c.conn.open_stream_count == 0


def test_send_data_streaming_with_trailers_queued_behind_data() -> None:
    c = RawClient(settings=settings_frame((0x4, 10)))
    c.send(c.headers(1))
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"0123456789abcdef")
    c.conn.send_data(1, b"ghij")
    c.conn.send_trailers(1, [(b"x-sum", b"42")])
    assert c.conn.pending_send_bytes(1) == 10
    frames = c.take()
    assert [(f.type, f.payload) for f in frames][1:] == [(DATA, b"0123456789")]
    c.send(window_update(1, 100))
    frames = c.take()
    assert [(f.type, f.flags) for f in frames] == [(DATA, 0), (HEADERS, END_HEADERS | END_STREAM)]
    assert frames[0].payload == b"abcdefghij"
    assert c.decoder.decode(c.decoder.decode and frames[1].payload)[-1] == ("x-sum", "42")
    assert c.conn.open_stream_count == 0


def test_send_data_end_stream_while_queued() -> None:
    c = RawClient(settings=settings_frame((0x4, 4)))
    c.send(c.headers(1))
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"abcdef")
    c.conn.send_data(1, b"", end_stream=True)
    c.take()
    c.send(window_update(1, 10))
    assert [(f.type, f.payload, f.flags) for f in c.take()] == [(DATA, b"ef", END_STREAM)]
    assert c.conn.open_stream_count == 0
    c.conn.send_data(1, b"more")  # the stream is gone: a no-op, not an error
    assert c.take() == []


def test_informational_then_final_response() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.send_headers(1, [(b":status", b"103"), (b"link", b"</a.css>")])
    c.conn.send_response(1, 200, [], b"x")
    frames = c.take()
    assert [f.type for f in frames] == [HEADERS, HEADERS, DATA]


def test_usage_errors() -> None:
    c = RawClient()
    with pytest.raises(H2UsageError):
        c.conn.send_response(1, 200, [], b"")  # idle stream
    c.send(c.headers(1, end_stream=False))
    with pytest.raises(H2UsageError):
        c.conn.send_data(1, b"x")  # before headers
    with pytest.raises(H2UsageError):
        c.conn.send_response(1, 99, [], b"")
    c.conn.send_response(1, 200, [], b"")
    with pytest.raises(H2UsageError):
        c.conn.send_response(1, 200, [], b"")  # already ended
    with pytest.raises(H2UsageError):
        c.conn.ping(b"short")
    with pytest.raises(H2UsageError):
        c.conn.reset_stream(9)
    with pytest.raises(H2UsageError):
        c.conn.send_request(REQUEST)  # a server opens no streams


def test_sending_on_a_stream_reset_meanwhile_is_a_noop() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(RST_STREAM, 0, 1, b"\0\0\0\x08"))
    c.take()
    c.conn.send_response(1, 200, [], b"late")
    c.conn.send_data(1, b"late")
    c.conn.send_trailers(1, [])
    c.conn.reset_stream(1)
    assert c.take() == []


def test_peer_reset_drops_queued_data() -> None:
    c = RawClient(settings=settings_frame((0x4, 10)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"y" * 100)
    c.take()
    assert c.conn.pending_send_bytes(1) == 90
    events = c.send(frame(RST_STREAM, 0, 1, b"\0\0\0\x08"))
    assert events == [ev.StreamReset(1, ErrorCode.CANCEL, True)]
    assert c.conn.pending_send_bytes(1) == 0
    c.send(window_update(0, 1000))
    assert c.take() == []


# -- ping and shutdown ----------------------------------------------------------------


def test_ping_round_trip_with_library() -> None:
    pair = LibClientPair()
    pair.server.ping(b"pingpong")
    server_events, client_events = pair.pump()
    assert ev.PingAckReceived(b"pingpong") in server_events
    pair.client.ping(b"12345678")
    _, client_events = pair.pump()
    assert any(isinstance(e, h2.events.PingAckReceived) for e in client_events)


def test_graceful_shutdown_two_stages() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.start_graceful_shutdown(0.0)
    frames = c.take()
    assert [f.type for f in frames] == [GOAWAY, PING]
    assert frames[0].last_stream_id == 2**31 - 1 and frames[0].error_code == 0
    ping = frames[1].payload
    # A request that crossed our first GOAWAY is still processed; then the PING ACK.
    events = c.send(c.headers(3) + frame(PING, ACK, 0, ping))
    assert [r.stream_id for r in requests_of(events)] == [3]
    assert not [e for e in events if isinstance(e, ev.PingAckReceived)]
    frames = c.take()
    assert [(f.type, f.last_stream_id, f.error_code) for f in frames] == [(GOAWAY, 3, 0)]
    assert not c.conn.closed  # two requests still open
    # Streams above the final last-stream-id are ignored, HPACK state kept.
    assert c.send(c.headers(5, [*REQUEST, (b"x-new", b"1")], end_stream=False)) == []
    assert c.send(frame(DATA, END_STREAM, 5, b"late")) == []
    assert c.take() == []
    c.conn.send_response(1, 200, [], b"1")
    assert not c.conn.closed
    c.conn.send_response(3, 200, [], b"2")
    assert c.conn.closed


def test_finish_graceful_shutdown_without_ping_ack() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.start_graceful_shutdown(0.0)
    c.conn.finish_graceful_shutdown()
    c.conn.finish_graceful_shutdown()  # idempotent
    frames = c.take()
    assert [(f.type, f.last_stream_id if f.type == GOAWAY else 0) for f in frames] == [
        (GOAWAY, 2**31 - 1),
        (PING, 0),
        (GOAWAY, 1),
    ]
    c.conn.send_response(1, 200, [], b"")
    assert c.conn.closed


def test_close_sends_goaway_and_ignores_input() -> None:
    c = RawClient()
    c.send(c.headers(3))
    c.conn.close(ErrorCode.ENHANCE_YOUR_CALM, b"bye")
    frames = c.take()
    assert [(f.type, f.last_stream_id, f.error_code, f.payload[8:]) for f in frames] == [
        (GOAWAY, 3, ErrorCode.ENHANCE_YOUR_CALM, b"bye")
    ]
    assert c.conn.closed
    assert c.send(frame(PING, 0, 0, b"\0" * 8)) == []
    c.conn.send_response(3, 200, [], b"")  # no-op once over
    assert c.take() == []


# -- settings ----------------------------------------------------------------------------


def test_our_settings_and_connection_window() -> None:
    conn = H2Connection(H2Config(max_concurrent_streams=50, connection_window_size=1 << 20))
    conn.initiate(0.0)
    frames = parse(conn.data_to_send())
    assert [f.type for f in frames] == [SETTINGS, WINDOW_UPDATE]
    pairs = dict(struct.iter_unpack(">HI", frames[0].payload))
    assert pairs == {3: 50, 4: 1 << 20, 6: 65536, 8: 1}  # 8: ENABLE_CONNECT_PROTOCOL
    assert struct.unpack(">I", frames[1].payload)[0] == (1 << 20) - 65535


def test_settings_acknowledged_event_and_remote_changes() -> None:
    pair = LibClientPair()
    assert any(isinstance(e, ev.SettingsAcknowledged) for e in pair.server_events)
    pair.client.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 7})
    server_events, _ = pair.pump()
    assert ev.RemoteSettingsChanged({3: 7}) in server_events


def test_peer_header_table_size_zero() -> None:
    pair = LibClientPair()
    pair.client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    pair.pump()
    for i in range(3):
        sid = pair.request(b"/%d" % i)
        pair.pump()
        pair.server.send_response(sid, 200, [(b"x-repeat", b"same")], b"ok")
        _, client_events = pair.pump()
        [resp] = [e for e in client_events if isinstance(e, h2.events.ResponseReceived)]
        assert resp.headers[-1] == (b"x-repeat", b"same")


# -- memory ------------------------------------------------------------------------------


def _static_request_block() -> bytes:
    # Context-free HPACK: indexed :method GET, :scheme https, :path / and a literal
    # :authority without indexing. Reusable for every stream.
    return b"\x82\x87\x84\x01\x0bexample.com"


def test_memory_stays_flat_over_many_requests() -> None:
    conn = H2Connection()
    conn.receive_data(PREFACE + settings_frame() + window_update(0, 2**31 - 1 - 65535), 0.0)
    conn.data_to_send()
    block = _static_request_block()
    header = struct.Struct(">BHBBI")
    batch_size = 100

    def run(first: int, count: int) -> int:
        sid = first
        for _ in range(count // batch_size):
            data = b"".join(
                header.pack(0, len(block), HEADERS, END_HEADERS | END_STREAM, sid + 2 * i) + block
                for i in range(batch_size)
            )
            for event in conn.receive_data(data, 0.0):
                assert type(event) is ev.RequestReceived
                conn.send_response(event.stream_id, 200, [], b"x" * 20)
            conn.data_to_send()
            sid += 2 * batch_size
        return sid

    sid = run(1, 20000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sid = run(sid, 100000)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert conn.open_stream_count == 0
    assert not conn.closed
    assert after - before < 64 * 1024, after - before


# -- buffering and less common paths --------------------------------------------------


def test_input_split_at_every_byte_gives_the_same_events() -> None:
    whole = RawClient()
    data = (
        whole.headers(1, [*POST, (b"content-length", b"5")], end_stream=False)
        + frame(DATA, 0, 1, b"he")
        + frame(DATA, END_STREAM, 1, b"llo")
        + frame(PING, 0, 0, b"abcdefgh")
    )
    expected = whole.send(data)
    split = RawClient()
    split.encoder = whole.encoder.__class__()  # same fresh encoder state as `whole` had
    data = (
        split.headers(1, [*POST, (b"content-length", b"5")], end_stream=False)
        + frame(DATA, 0, 1, b"he")
        + frame(DATA, END_STREAM, 1, b"llo")
        + frame(PING, 0, 0, b"abcdefgh")
    )
    events: list[ev.Event] = []
    for i in range(len(data)):
        events += split.send(data[i : i + 1])
    assert events == expected
    assert [type(e) for e in events] == [ev.RequestReceived, ev.DataReceived, ev.DataReceived]
    assert [f.type for f in split.take()] == [PING]


def test_large_frame_arriving_in_chunks() -> None:
    c = RawClient()
    c.send(c.headers(1, POST, end_stream=False))
    data = frame(DATA, END_STREAM, 1, bytes(range(256)) * 64)
    events: list[ev.Event] = []
    for i in range(0, len(data), 1000):
        events += c.send(data[i : i + 1000])
    assert [type(e) for e in events] == [ev.DataReceived]
    assert events[0].data == bytes(range(256)) * 64  # type: ignore[attr-defined]


def test_bytearray_and_memoryview_input() -> None:
    c = RawClient()
    raw = c.headers(1)
    assert requests_of(c.conn.receive_data(bytearray(raw[:10]), 0.0)) == []
    assert requests_of(c.conn.receive_data(memoryview(raw)[10:], 0.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(("peer_table", "accepted"), [(0, True), (100, False)])
def test_header_table_size_setting_applies_on_ack(peer_table: int, accepted: bool) -> None:
    conn = H2Connection(H2Config(header_table_size=0))
    conn.initiate(0.0)
    frames = parse(conn.data_to_send())
    assert dict(struct.iter_unpack(">HI", frames[0].payload))[1] == 0
    import hpack

    encoder = hpack.Encoder()
    conn.receive_data(PREFACE + settings_frame(), 0.0)
    assert conn.receive_data(frame(SETTINGS, ACK, 0), 0.0) == [ev.SettingsAcknowledged()]
    encoder.header_table_size = peer_table  # the next block starts with this size update
    events = conn.receive_data(
        frame(HEADERS, END_HEADERS | END_STREAM, 1, encoder.encode(REQUEST)), 0.0
    )
    if accepted:
        assert requests_of(events)
    else:
        assert goaway_code_of(conn) == ErrorCode.COMPRESSION_ERROR


def goaway_code_of(conn: H2Connection) -> int | None:
    codes = [f.error_code for f in parse(conn.data_to_send()) if f.type == GOAWAY]
    return codes[-1] if codes else None


def test_priority_flag_without_room() -> None:
    c = RawClient()
    c.send(frame(HEADERS, END_HEADERS | 0x20, 1, b"\0\0\0"))
    assert goaway_code_of(c.conn) == ErrorCode.FRAME_SIZE_ERROR


def test_single_headers_frame_over_block_limit() -> None:
    c = RawClient(H2Config(max_header_block_bytes=100))
    c.send(frame(HEADERS, END_HEADERS, 1, b"\x82" * 101))
    assert goaway_code_of(c.conn) == ErrorCode.ENHANCE_YOUR_CALM


def test_trailers_depending_on_itself() -> None:
    c = RawClient()
    c.send(c.headers(1, POST, end_stream=False))
    payload = struct.pack(">IB", 1, 10) + c.block([(b"x-t", b"1")])
    c.send(frame(HEADERS, END_HEADERS | END_STREAM | 0x20, 1, payload))
    assert rst_codes(c.take()) == {1: ErrorCode.PROTOCOL_ERROR}


def test_padded_data_without_pad_length() -> None:
    c = RawClient()
    c.send(c.headers(1, POST, end_stream=False))
    c.send(frame(DATA, 0x8, 1))
    assert goaway_code_of(c.conn) == ErrorCode.FRAME_SIZE_ERROR


def test_internal_bug_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from h2books.protocol.h2 import connection as connection_module

    def buggy(self: H2Connection, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        raise KeyError("bug")

    monkeypatch.setitem(connection_module.H2Connection._control_handlers, PING, buggy)
    conn = H2Connection()
    events = conn.receive_data(PREFACE + settings_frame() + frame(PING, 0, 0, b"\0" * 8), 0.0)
    assert events[-1] == ev.ConnectionTerminated(
        ErrorCode.INTERNAL_ERROR, 0, b"internal error", False
    )
    assert goaway_code_of(conn) == ErrorCode.INTERNAL_ERROR


def test_more_usage_errors_and_noops() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.conn.send_headers(1, [(b":status", b"200")])
    with pytest.raises(H2UsageError):
        c.conn.send_response(1, 200, [], b"")  # head already sent
    c.conn.send_data(1, b"")  # nothing to send, nothing sent
    assert [f.type for f in c.take()] == [HEADERS]
    c.conn.send_data(1, b"x", end_stream=True)
    with pytest.raises(H2UsageError):
        c.conn.send_trailers(1, [])
    c.send(c.headers(3, end_stream=False))
    with pytest.raises(H2UsageError):
        c.conn.send_trailers(3, [])  # before headers
    c.conn.acknowledge_received_data(3, 10)  # nothing received: no-op
    assert [f.type for f in c.take()] == [DATA]  # the END_STREAM of stream 1
    assert c.conn.data_to_send() == b""
    c.conn.start_graceful_shutdown(0.0)
    c.conn.start_graceful_shutdown(0.0)  # idempotent
    assert len(c.take()) == 2
    c.conn.close()
    c.conn.ping()
    c.conn.acknowledge_received_data(3, 10)
    c.conn.start_graceful_shutdown(0.0)
    c.conn.finish_graceful_shutdown()
    c.conn.close()
    assert [f.type for f in c.take()] == [GOAWAY]


def test_queued_stream_usage_errors() -> None:
    c = RawClient(settings=settings_frame((0x4, 1)))
    c.send(c.headers(1, end_stream=False))
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"abc")
    with pytest.raises(H2UsageError):
        c.conn.send_headers(1, [(b"x", b"y")])
    c.conn.send_data(1, bytearray(b"def"), end_stream=True)
    with pytest.raises(H2UsageError):
        c.conn.send_data(1, b"more")
    with pytest.raises(H2UsageError):
        c.conn.send_trailers(1, [])
    assert c.conn.pending_send_bytes(1) == 5


def test_response_head_over_frame_size_without_body() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [(b"x-big", b"v" * 20000)], b"")
    frames = c.take()
    assert [(f.type, f.flags) for f in frames] == [(HEADERS, END_STREAM), (9, END_HEADERS)]
    assert c.conn.open_stream_count == 0


def test_validation_caches_are_bounded() -> None:
    c = RawClient()
    for i in range(0, 5000, 50):
        fields = [*REQUEST, *((b"x-n%d" % (i + j), b"v%d" % (i + j)) for j in range(50))]
        c.send(c.headers(1 + i // 25, fields))
    from h2books.protocol.h2 import validation

    assert len(validation._good_values) <= 4096 and len(validation._good_names) <= 4096
    assert len(requests_of(c.events)) == 100


def test_a_request_over_the_field_count_gets_431_however_small_its_fields() -> None:
    # The "HTTP/2 Bomb": one-octet references to one table entry, under the byte limit.
    c = RawClient(H2Config(max_header_count=100))
    first = c.block([*REQUEST, (b"x", b"y")])  # x: y enters the client's table (index 62)
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, first + b"\xbe" * 95))  # 100 fields
    assert len(requests_of(c.events)) == 1
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, c.block([*REQUEST]) + b"\xbe" * 97))
    assert len(requests_of(c.events)) == 1  # 101 fields: answered by the core
    head = [f for f in c.take() if f.type == HEADERS and f.stream_id == 3]
    assert head and c.decoder.decode(head[0].payload) == [(":status", "431")]


def test_cookie_crumbs_count_as_one_field_against_the_field_count() -> None:
    # A browser splits its cookies into crumbs (§8.2.3); over HTTP/1.1 they are one line.
    c = RawClient(H2Config(max_header_count=100))
    crumbs = [(b"cookie", b"c%d=v" % i) for i in range(150)]
    c.send(c.headers(1, [*REQUEST, *crumbs]))
    (request,) = requests_of(c.events)
    assert dict(request.headers)[b"cookie"] == b"; ".join(value for _, value in crumbs)
    # The crumbs count once, and the other fields still count one each.
    fields = [*REQUEST, *crumbs, *((b"x-%d" % i, b"y") for i in range(100 - len(REQUEST)))]
    c.send(c.headers(3, fields))
    head = [f for f in c.take() if f.type == HEADERS and f.stream_id == 3]
    assert head and c.decoder.decode(head[0].payload) == [(":status", "431")]


def test_window_update_serves_blocked_streams_in_turn() -> None:
    c = RawClient(settings=settings_frame((0x4, 10**6)))
    c.send(window_update(0, 10**6 - 65535))  # connection window 1,000,000
    for sid in (1, 3):
        c.send(c.headers(sid))
    c.take()
    c.conn.send_response(1, 200, [], b"a" * 600_000)
    c.conn.send_response(3, 200, [], b"b" * 600_000)
    c.take()  # 1,000,000 octets went out: 600,000 of stream 1, 400,000 of stream 3
    assert (c.conn.pending_send_bytes(1), c.conn.pending_send_bytes(3)) == (0, 200_000)
    c.send(c.headers(5))
    c.conn.send_response(5, 200, [], b"c" * 100_000)
    c.send(window_update(0, 4 * 16384))
    frames = [(f.stream_id, len(f.payload)) for f in c.take() if f.type == DATA]
    assert frames == [(3, 16384), (5, 16384), (3, 16384), (5, 16384)]
