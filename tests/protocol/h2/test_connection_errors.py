"""Server role against hand-built frames: every h2spec-style error case must produce
GOAWAY (connection error) or RST_STREAM (stream error) with the exact code."""

from __future__ import annotations

import struct

import pytest

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection
from h2books.protocol.h2 import events as ev
from h2books.protocol.h2.stream import CLOSED, FORGOTTEN, RESET_BY_PEER
from tests.protocol.h2.support import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    RawClient,
    frame,
    goaway_code,
    parse,
    rst_codes,
    settings_frame,
    window_update,
)

P = ErrorCode.PROTOCOL_ERROR


def assert_connection_error(client: RawClient, code: ErrorCode) -> None:
    frames = client.take()
    assert goaway_code(frames) == code, frames
    assert client.conn.closed
    terminated = client.terminated()
    assert terminated is not None and terminated.error_code == code
    assert not terminated.remote
    # After our GOAWAY, further input is ignored.
    assert client.conn.receive_data(frame(PING, 0, 0, b"\0" * 8), 0.0) == []
    assert client.conn.data_to_send() == b""


def assert_stream_error(client: RawClient, stream_id: int, code: ErrorCode) -> None:
    frames = client.take()
    assert goaway_code(frames) is None, frames
    assert rst_codes(frames).get(stream_id) == code, frames
    assert not client.conn.closed
    # The connection still works: a PING is answered.
    client.send(frame(PING, 0, 0, b"12345678"))
    assert [f.type for f in client.take()] == [PING]


# -- preface -----------------------------------------------------------------------------


def test_invalid_preface_is_protocol_error() -> None:
    conn = H2Connection()
    conn.initiate(0.0)
    conn.data_to_send()
    events = conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert isinstance(events[-1], ev.ConnectionTerminated)
    assert goaway_code(parse(conn.data_to_send())) == P
    assert conn.closed


def test_preface_split_byte_by_byte_then_settings() -> None:
    conn = H2Connection()
    for byte in PREFACE + settings_frame():
        assert not [
            e
            for e in conn.receive_data(bytes([byte]), 0.0)
            if type(e) is not ev.RemoteSettingsChanged
        ]
    frames = parse(conn.data_to_send())
    assert frames[0].type == SETTINGS  # our SETTINGS first (auto-initiated)
    assert any(f.type == SETTINGS and f.flags & ACK for f in frames)


def test_partial_bad_preface_fails_early() -> None:
    conn = H2Connection()
    events = conn.receive_data(b"PRI * HTTP/1.1", 0.0)
    assert isinstance(events[-1], ev.ConnectionTerminated)


@pytest.mark.parametrize(
    "first",
    [
        frame(PING, 0, 0, b"\0" * 8),
        frame(SETTINGS, ACK, 0),
        frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x82"),
    ],
)
def test_first_frame_must_be_settings(first: bytes) -> None:
    conn = H2Connection()
    conn.receive_data(PREFACE + first, 0.0)
    assert goaway_code(parse(conn.data_to_send())) == P


# -- frame size ----------------------------------------------------------------------


def test_frame_larger_than_max_frame_size() -> None:
    c = RawClient()
    c.send(c.headers(1, [*REQUEST[:0], (b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    header = struct.pack(">BHBBI", 0, 16385, DATA, 0, 1)
    c.send(header)  # the header alone is enough to decide
    assert_connection_error(c, ErrorCode.FRAME_SIZE_ERROR)


def test_data_frame_of_exactly_16384_is_accepted() -> None:
    c = RawClient()
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    events = c.send(frame(DATA, END_STREAM, 1, b"x" * 16384))
    assert isinstance(events[-1], ev.DataReceived) and len(events[-1].data) == 16384


def test_larger_frames_accepted_when_advertised() -> None:
    c = RawClient(H2Config(max_frame_size=65536))
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    events = c.send(frame(DATA, END_STREAM, 1, b"x" * 65536))
    assert events[-1].end_stream and len(events[-1].data) == 65536  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(PING, 0, 0, b"\0" * 7), ErrorCode.FRAME_SIZE_ERROR),
        (frame(PING, 0, 0, b"\0" * 9), ErrorCode.FRAME_SIZE_ERROR),
        (frame(RST_STREAM, 0, 1, b"\0" * 3), ErrorCode.FRAME_SIZE_ERROR),
        (frame(WINDOW_UPDATE, 0, 0, b"\0\0\1"), ErrorCode.FRAME_SIZE_ERROR),
        (frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\1\0"), ErrorCode.FRAME_SIZE_ERROR),
        (frame(SETTINGS, 0, 0, b"\0" * 5), ErrorCode.FRAME_SIZE_ERROR),
        (frame(SETTINGS, ACK, 0, b"\0" * 6), ErrorCode.FRAME_SIZE_ERROR),
        (frame(GOAWAY, 0, 0, b"\0" * 7), ErrorCode.FRAME_SIZE_ERROR),
    ],
)
def test_fixed_length_frames(raw: bytes, code: ErrorCode) -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(raw)
    assert_connection_error(c, code)


def test_priority_with_wrong_length_is_stream_error() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(PRIORITY, 0, 1, b"\x80\0\0\1"))
    assert_stream_error(c, 1, ErrorCode.FRAME_SIZE_ERROR)
    assert isinstance(c.events[-1], ev.StreamReset) and not c.events[-1].remote


# -- stream 0 rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        frame(DATA, END_STREAM, 0, b"test"),
        frame(HEADERS, END_HEADERS, 0, b"\x82"),
        frame(PRIORITY, 0, 0, b"\0\0\0\0\xff"),
        frame(RST_STREAM, 0, 0, b"\0\0\0\x08"),
        frame(CONTINUATION, END_HEADERS, 0, b"\x82"),
        frame(SETTINGS, 0, 1),
        frame(PING, 0, 1, b"\0" * 8),
        frame(GOAWAY, 0, 1, b"\0" * 8),
        frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"),
        frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"),
    ],
    ids=[
        "data-0",
        "headers-0",
        "priority-0",
        "rst-0",
        "continuation-0",
        "settings-1",
        "ping-1",
        "goaway-1",
        "window-update-0-increment-0",
        "push-promise-from-client",
    ],
)
def test_protocol_errors(raw: bytes) -> None:
    c = RawClient()
    c.send(raw)
    assert_connection_error(c, P)


# -- padding -------------------------------------------------------------------------


def test_data_padding_longer_than_payload() -> None:
    c = RawClient()
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    c.send(frame(DATA, PADDED, 1, b"\x06Test"))
    assert_connection_error(c, P)


def test_data_padding_equal_to_rest_is_valid() -> None:
    c = RawClient()
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    events = c.send(frame(DATA, PADDED | END_STREAM, 1, b"\x04Test"))
    assert isinstance(events[-1], ev.DataReceived)
    assert events[-1].data == b"" and events[-1].flow_controlled_length == 5


def test_headers_padding_longer_than_payload() -> None:
    c = RawClient()
    block = c.block()
    c.send(frame(HEADERS, PADDED | END_HEADERS, 1, bytes([len(block) + 1]) + block))
    assert_connection_error(c, P)


def test_headers_padding_eating_into_priority_fields() -> None:
    c = RawClient()
    payload = b"\x08" + struct.pack(">IB", 0, 16) + b"\0" * 5
    c.send(frame(HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS, 1, payload))
    assert_connection_error(c, P)


def test_padded_frame_without_pad_length_octet() -> None:
    c = RawClient()
    c.send(frame(HEADERS, PADDED | END_HEADERS, 1))
    assert_connection_error(c, ErrorCode.FRAME_SIZE_ERROR)


def test_headers_with_padding_and_priority_is_accepted() -> None:
    c = RawClient()
    block = c.block()
    payload = b"\x03" + struct.pack(">IB", 0x80000000 | 0, 200) + block + b"\0\0\0"
    events = c.send(frame(HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS | END_STREAM, 1, payload))
    assert isinstance(events[-1], ev.RequestReceived)


# -- CONTINUATION rules -------------------------------------------------------------


def test_continuation_without_open_block() -> None:
    c = RawClient()
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block()))
    assert_connection_error(c, P)


def test_continuation_after_end_headers() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block([(b"x-a", b"1")])))
    assert_connection_error(c, P)


@pytest.mark.parametrize(
    "interloper",
    [
        frame(PRIORITY, 0, 1, b"\0\0\0\0\xff"),
        frame(HEADERS, END_HEADERS, 3, b"\x82"),
        frame(DATA, 0, 1, b"x"),
        frame(PING, 0, 0, b"\0" * 8),
        frame(0x16, 0, 0, b"\0" * 8),  # unknown type: not allowed inside a block either
        frame(CONTINUATION, END_HEADERS, 3, b""),  # the wrong stream
    ],
)
def test_header_block_interrupted(interloper: bytes) -> None:
    c = RawClient()
    block = c.block()
    c.send(frame(HEADERS, END_STREAM, 1, block[:2]))
    c.send(interloper)
    assert_connection_error(c, P)


def test_too_many_continuation_frames() -> None:
    c = RawClient(H2Config(max_continuation_frames=3))
    block = c.block()
    data = frame(HEADERS, END_STREAM, 1, block[:1])
    data += b"".join(frame(CONTINUATION, 0, 1, b"") for _ in range(3))
    data += frame(CONTINUATION, END_HEADERS, 1, block[1:])
    c.send(data)
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_header_block_too_many_bytes() -> None:
    c = RawClient(H2Config(max_header_block_bytes=1000))
    c.send(frame(HEADERS, 0, 1, b"\0" * 600))
    c.send(frame(CONTINUATION, 0, 1, b"\0" * 600))
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


# -- stream ids and states -----------------------------------------------------------


def test_even_stream_id_from_client() -> None:
    c = RawClient()
    c.send(c.headers(2))
    assert_connection_error(c, P)


def test_stream_id_going_backwards() -> None:
    c = RawClient()
    c.send(c.headers(5, end_stream=False))
    c.send(c.headers(3))
    assert_connection_error(c, P)


@pytest.mark.parametrize(
    "raw",
    [
        frame(DATA, END_STREAM, 1, b"test"),
        frame(RST_STREAM, 0, 1, b"\0\0\0\x08"),
        frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\x64"),
        frame(CONTINUATION, END_HEADERS, 1, b"\x82"),
        frame(DATA, 0, 2, b"x"),  # a server stream id that was never used
    ],
)
def test_frames_on_idle_streams(raw: bytes) -> None:
    c = RawClient()
    c.send(raw)
    assert_connection_error(c, P)


def test_priority_on_idle_stream_is_fine_and_does_not_open_it() -> None:
    c = RawClient()
    c.send(frame(PRIORITY, 0, 3, b"\0\0\0\0\xff"))
    events = c.send(c.headers(1))
    assert isinstance(events[-1], ev.RequestReceived) and events[-1].stream_id == 1


def test_data_on_half_closed_remote_is_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=True))
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    assert_stream_error(c, 1, ErrorCode.STREAM_CLOSED)
    assert isinstance(c.events[-1], ev.StreamReset)


def test_headers_on_half_closed_remote_is_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=True))
    c.send(c.headers(1, end_stream=True))
    assert_stream_error(c, 1, ErrorCode.STREAM_CLOSED)


def test_data_after_peer_reset_is_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    assert isinstance(c.events[-1], ev.StreamReset) and c.events[-1].remote
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    assert_stream_error(c, 1, ErrorCode.STREAM_CLOSED)


def test_headers_after_peer_reset_is_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    c.send(c.headers(1))
    assert goaway_code(c.take()) == ErrorCode.STREAM_CLOSED


def test_data_on_closed_stream_is_connection_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=True))
    c.conn.send_response(1, 200, [], b"ok")
    c.take()
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    assert_connection_error(c, ErrorCode.STREAM_CLOSED)


def test_headers_on_closed_stream_is_connection_stream_closed() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=True))
    c.conn.send_response(1, 200, [], b"")
    c.take()
    c.send(c.headers(1))
    assert_connection_error(c, ErrorCode.STREAM_CLOSED)


def test_frames_after_our_reset_are_ignored() -> None:
    c = RawClient()
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    c.conn.reset_stream(1, ErrorCode.CANCEL)
    assert rst_codes(c.take()) == {1: ErrorCode.CANCEL}
    events = c.send(
        frame(DATA, 0, 1, b"x" * 100)
        + frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\1")
        + frame(HEADERS, END_HEADERS | END_STREAM, 1, c.block([(b"x-trailer", b"1")]))
        + frame(RST_STREAM, 0, 1, b"\0\0\0\0")
    )
    assert events == []
    assert c.take() == []
    assert not c.conn.closed


def test_window_update_on_closed_stream_is_ignored() -> None:
    c = RawClient()
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"")
    c.take()
    assert c.send(window_update(1, 10) + frame(RST_STREAM, 0, 1, b"\0\0\0\0")) == []
    assert c.take() == []


def test_rst_stream_from_peer_reports_code() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    events = c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0x8)))
    assert events == [ev.StreamReset(1, ErrorCode.CANCEL, True)]
    assert c.conn.open_stream_count == 0


def test_unknown_rst_code_kept_as_int() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    events = c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0xABCDEF01)))
    assert events == [ev.StreamReset(1, 0xABCDEF01, True)]


# -- window updates and flow control -------------------------------------------------


def test_window_update_zero_on_stream_is_stream_error() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(window_update(1, 0))
    assert_stream_error(c, 1, P)


def test_connection_window_overflow() -> None:
    c = RawClient()
    c.send(window_update(0, 2**31 - 1))
    assert_connection_error(c, ErrorCode.FLOW_CONTROL_ERROR)


def test_stream_window_overflow() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(window_update(1, 2**31 - 1) + window_update(1, 2**31 - 1))
    assert_stream_error(c, 1, ErrorCode.FLOW_CONTROL_ERROR)


def test_window_update_reserved_bit_ignored() -> None:
    c = RawClient()
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x80000000 | 10)))
    assert c.events[-1] == ev.WindowUpdated(0)


def test_peer_exceeding_connection_window() -> None:
    c = RawClient(H2Config(connection_window_size=65535, initial_window_size=1 << 20))
    post = [(b":method", b"POST"), *REQUEST[1:]]
    data = b""
    for sid in (1, 3, 5, 7, 9):
        data += c.headers(sid, post, end_stream=False) + frame(DATA, 0, sid, b"x" * 16000)
    c.send(data)
    assert_connection_error(c, ErrorCode.FLOW_CONTROL_ERROR)


def test_peer_exceeding_stream_window() -> None:
    c = RawClient(H2Config(initial_window_size=100))
    post = [(b":method", b"POST"), *REQUEST[1:]]
    c.send(c.headers(1, post, end_stream=False) + frame(DATA, 0, 1, b"x" * 101))
    assert_stream_error(c, 1, ErrorCode.FLOW_CONTROL_ERROR)


def test_stream_window_before_settings_ack_is_the_default() -> None:
    conn = H2Connection(H2Config(initial_window_size=100))
    conn.initiate(0.0)
    post = [(b":method", b"POST"), *REQUEST[1:]]
    import hpack

    block = hpack.Encoder().encode(post)
    # The peer has not acknowledged our SETTINGS: 65535 still applies.
    events = conn.receive_data(
        PREFACE
        + settings_frame()
        + frame(HEADERS, END_HEADERS, 1, block)
        + frame(DATA, 0, 1, b"x" * 1000)
        + frame(SETTINGS, ACK, 0),
        0.0,
    )
    assert [type(e) for e in events][-3:] == [
        ev.RequestReceived,
        ev.DataReceived,
        ev.SettingsAcknowledged,
    ]
    # After the ACK the window is 100 - 1000: anything more is too much.
    conn.receive_data(frame(DATA, 0, 1, b"x"), 0.0)
    assert rst_codes(parse(conn.data_to_send())) == {1: ErrorCode.FLOW_CONTROL_ERROR}


# -- SETTINGS values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "code"),
    [
        ((0x2, 2), P),
        ((0x4, 2**31), ErrorCode.FLOW_CONTROL_ERROR),
        ((0x5, 16383), P),
        ((0x5, 2**24), P),
        ((0x8, 2), P),
    ],
)
def test_invalid_settings_values(pair: tuple[int, int], code: ErrorCode) -> None:
    c = RawClient()
    c.send(settings_frame(pair))
    assert_connection_error(c, code)


def test_unknown_setting_ignored_and_acked() -> None:
    c = RawClient()
    events = c.send(settings_frame((0xFF, 12345)))
    assert events == [ev.RemoteSettingsChanged({0xFF: 12345})]
    frames = c.take()
    assert [(f.type, f.flags, f.payload) for f in frames] == [(SETTINGS, ACK, b"")]


def test_initial_window_change_overflowing_a_stream_window() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(window_update(1, 2**31 - 1 - 65535))
    c.send(settings_frame((0x4, 65536)))
    assert_connection_error(c, ErrorCode.FLOW_CONTROL_ERROR)


# -- priority ------------------------------------------------------------------------


def test_headers_depending_on_itself() -> None:
    c = RawClient()
    block = c.block()
    payload = struct.pack(">IB", 1, 255) + block
    c.send(frame(HEADERS, PRIORITY_FLAG | END_HEADERS | END_STREAM, 1, payload))
    assert_stream_error(c, 1, P)
    assert not [e for e in c.events if isinstance(e, ev.RequestReceived)]
    # The HPACK state stayed in sync: the next request decodes.
    events = c.send(c.headers(3))
    assert isinstance(events[-1], ev.RequestReceived)


def test_priority_depending_on_itself() -> None:
    c = RawClient()
    c.send(frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 255)))
    assert_stream_error(c, 1, P)


# -- extensibility -------------------------------------------------------------------


def test_unknown_frame_type_and_flags_ignored() -> None:
    c = RawClient()
    events = c.send(
        frame(0x16, 0xFF, 0, b"\0" * 8)
        + frame(0xFA, 0, 7, b"")
        + frame(PING, 0xFE, 0, b"abcdefgh")  # undefined flags ignored (ACK bit clear)
        + frame(HEADERS, END_HEADERS | END_STREAM | 0x40 | 0x10 | 0x2, 0x80000001, c.block())
    )
    assert [type(e) for e in events] == [ev.RequestReceived]
    assert events[0].stream_id == 1  # type: ignore[attr-defined]
    frames = c.take()
    assert [(f.type, f.flags, f.payload) for f in frames] == [(PING, ACK, b"abcdefgh")]


# -- HPACK ---------------------------------------------------------------------------


def test_invalid_header_block_is_compression_error() -> None:
    c = RawClient()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\xff\xff\xff"))
    assert_connection_error(c, ErrorCode.COMPRESSION_ERROR)


def test_index_zero_is_compression_error() -> None:
    c = RawClient()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x80"))
    assert_connection_error(c, ErrorCode.COMPRESSION_ERROR)


def test_header_list_too_large_answers_431() -> None:
    c = RawClient(H2Config(max_header_list_size=200))
    big = [*REQUEST, (b"x-big", b"v" * 300)]
    c.send(c.headers(1, big, end_stream=True))
    frames = c.take()
    assert [f.type for f in frames] == [HEADERS]
    assert frames[0].flags & END_STREAM
    assert c.decoder.decode(frames[0].payload) == [(":status", "431")]
    assert not [e for e in c.events if isinstance(e, ev.RequestReceived)]
    # HPACK state in sync; the connection goes on.
    events = c.send(c.headers(3))
    assert isinstance(events[-1], ev.RequestReceived)


def test_header_list_too_large_on_open_request_also_resets() -> None:
    c = RawClient(H2Config(max_header_list_size=200))
    c.send(c.headers(1, [*REQUEST, (b"x-big", b"v" * 300)], end_stream=False))
    frames = c.take()
    assert [f.type for f in frames] == [HEADERS, RST_STREAM]
    assert frames[1].error_code == ErrorCode.NO_ERROR
    # The upload still in flight is ignored.
    assert c.send(frame(DATA, END_STREAM, 1, b"xyz")) == []


# -- concurrency ---------------------------------------------------------------------


def test_streams_beyond_max_concurrent_are_refused() -> None:
    c = RawClient(H2Config(max_concurrent_streams=2))
    c.send(c.headers(1, end_stream=False) + c.headers(3, end_stream=False))
    c.send(c.headers(5, [*REQUEST, (b"x-new", b"value")]))
    assert_stream_error(c, 5, ErrorCode.REFUSED_STREAM)
    # The refused block was decoded: its new dynamic entry is usable afterwards.
    c.conn.reset_stream(1)
    c.take()
    events = c.send(c.headers(7, [*REQUEST, (b"x-new", b"value")]))
    assert isinstance(events[-1], ev.RequestReceived)
    assert events[-1].headers == [(b"x-new", b"value")]


# -- flood budgets -------------------------------------------------------------------


def test_rapid_reset_flood_is_enhance_your_calm() -> None:
    c = RawClient(H2Config(reset_budget=10, reset_refill_per_second=1.0))
    data = b""
    for i in range(11):
        sid = 1 + 2 * i
        data += c.headers(sid, end_stream=False) + frame(RST_STREAM, 0, sid, b"\0\0\0\x08")
    c.send(data)
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_resets_are_fine_when_spread_over_time() -> None:
    c = RawClient(H2Config(reset_budget=10, reset_refill_per_second=10.0))
    now = 0.0
    for i in range(50):
        sid = 1 + 2 * i
        now += 0.2
        c.send(c.headers(sid, end_stream=False) + frame(RST_STREAM, 0, sid, b"\0\0\0\x08"), now)
    assert not c.conn.closed


def test_made_you_reset_counts_our_stream_errors() -> None:
    c = RawClient(H2Config(reset_budget=5, reset_refill_per_second=0.1))
    data = b""
    for i in range(6):
        sid = 1 + 2 * i
        data += c.headers(sid, end_stream=False) + window_update(sid, 0)
    c.send(data)
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


@pytest.mark.parametrize(
    "noise",
    [
        frame(PING, 0, 0, b"\0" * 8),
        settings_frame(),
        frame(PRIORITY, 0, 3, b"\0\0\0\0\x10"),
        frame(0x20, 0, 0, b""),
    ],
    ids=["ping", "settings", "priority", "unknown"],
)
def test_control_frame_flood(noise: bytes) -> None:
    c = RawClient(H2Config(control_frame_budget=20, control_refill_per_second=1.0))
    c.send(noise * 21)
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_rst_stream_flood_on_a_closed_stream() -> None:
    c = RawClient(H2Config(control_frame_budget=20, control_refill_per_second=1.0))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"")
    c.take()
    c.send(frame(RST_STREAM, 0, 1, b"\0\0\0\x08") * 19)  # + the SETTINGS frame: 20
    assert not c.conn.closed
    c.send(frame(RST_STREAM, 0, 1, b"\0\0\0\x08"))
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_empty_data_flood() -> None:
    c = RawClient(H2Config(control_frame_budget=20, control_refill_per_second=1.0))
    c.send(c.headers(1, [(b":method", b"POST"), *REQUEST[1:]], end_stream=False))
    c.send(frame(DATA, 0, 1) * 21)
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_peer_not_reading_our_acks() -> None:
    c = RawClient(
        H2Config(
            max_outbound_control_bytes=1000,
            control_frame_budget=10**6,
            control_refill_per_second=10**6,
        )
    )
    ping = frame(PING, 0, 0, b"\0" * 8)
    c.send(ping * 100)  # 100 * 17 bytes of ACKs never collected
    assert_connection_error(c, ErrorCode.ENHANCE_YOUR_CALM)


def test_reading_our_output_resets_the_control_byte_count() -> None:
    c = RawClient(
        H2Config(
            max_outbound_control_bytes=1000,
            control_frame_budget=10**6,
            control_refill_per_second=10**6,
        )
    )
    ping = frame(PING, 0, 0, b"\0" * 8)
    for _ in range(20):
        c.send(ping * 20)
        assert len(c.take()) == 20
    assert not c.conn.closed


# -- GOAWAY from the peer ------------------------------------------------------------


def test_goaway_with_error_from_peer_terminates() -> None:
    c = RawClient()
    events = c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 2) + b"bye"))
    assert events == [
        ev.GoAwayReceived(ErrorCode.INTERNAL_ERROR, 0, b"bye"),
        ev.ConnectionTerminated(ErrorCode.INTERNAL_ERROR, 0, b"bye", True),
    ]
    assert c.conn.closed
    assert c.send(frame(PING, 0, 0, b"\0" * 8)) == []


def test_goaway_no_error_closes_once_streams_are_done() -> None:
    c = RawClient()
    c.send(c.headers(1))
    events = c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
    assert events == [ev.GoAwayReceived(ErrorCode.NO_ERROR, 0, b"")]
    assert not c.conn.closed
    c.conn.send_response(1, 200, [], b"done")
    assert c.conn.closed


def test_events_after_connection_error_within_one_call_stop() -> None:
    c = RawClient()
    events = c.send(frame(PING, 0, 1, b"\0" * 8) + c.headers(1))
    assert [type(e) for e in events] == [ev.ConnectionTerminated]
    assert events[0].last_stream_id == 0  # type: ignore[attr-defined]


def test_closed_streams_are_remembered_within_a_bound_newest_first() -> None:
    # How a stream ended decides how a late frame on it is answered (a connection error
    # STREAM_CLOSED for one closed normally); the memory of it is bounded per connection.
    c = RawClient(H2Config(max_concurrent_streams=32))
    sids = range(1, 2 * 500, 2)
    for sid in sids:
        c.send(c.headers(sid))
        c.conn.send_response(sid, 200, [], b"ok")
        assert len(c.conn._recent) <= 32 + 32 // 3
    c.take()
    assert all(c.conn.id_state(sid) == CLOSED for sid in sids[-32:])
    assert c.conn.id_state(sids[0]) == FORGOTTEN
    c.send(frame(DATA, END_STREAM, sids[-1], b"late"))
    assert goaway_code(c.take()) == ErrorCode.STREAM_CLOSED


def _close_streams_by(how: str, count: int) -> tuple[RawClient, range]:
    """`count` streams closed one way: a GET answered in full (send_response's inline
    copy of `_remember_closed`), a request whose body ends after the response (closed
    through `_forget`), or a reset by the peer."""
    c = RawClient(H2Config(max_concurrent_streams=32, reset_budget=10 * count))
    post = [(b":method", b"POST"), *REQUEST[1:], (b"content-length", b"2")]
    sids = range(1, 2 * count, 2)
    for sid in sids:
        if how == "response":
            c.send(c.headers(sid))
            c.conn.send_response(sid, 200, [], b"ok")
        elif how == "body":
            c.send(c.headers(sid, post, end_stream=False))
            c.conn.send_response(sid, 200, [], b"ok")
            c.send(frame(DATA, END_STREAM, sid, b"ok"))
        else:
            c.send(c.headers(sid, end_stream=False))
            c.send(frame(RST_STREAM, 0, sid, struct.pack(">I", ErrorCode.CANCEL)))
        assert len(c.conn._recent) <= 32 + 32 // 3
    c.take()
    assert c.terminated() is None
    return c, sids


@pytest.mark.parametrize(
    ("how", "state"), [("response", CLOSED), ("body", CLOSED), ("reset", RESET_BY_PEER)]
)
def test_late_headers_on_a_closed_stream_just_inside_the_remembered_ones(
    how: str, state: int
) -> None:
    # RFC 9113 §5.1: HEADERS on a stream known closed (normally, or reset by the peer)
    # is a connection error STREAM_CLOSED. The newest 32 closes are always remembered,
    # however the streams closed.
    c, sids = _close_streams_by(how, 200)
    assert all(c.conn.id_state(sid) == state for sid in sids[-32:])
    c.send(c.headers(sids[-32]))
    assert goaway_code(c.take()) == ErrorCode.STREAM_CLOSED


@pytest.mark.parametrize("how", ["response", "body", "reset"])
def test_late_headers_on_a_stream_closed_outside_the_remembered_ones(how: str) -> None:
    # At most 32 + 32 // 3 closes are remembered: an older id is only known to be below
    # the highest one, so HEADERS on it is a reused or out-of-order id (PROTOCOL_ERROR).
    c, sids = _close_streams_by(how, 200)
    assert c.conn.id_state(sids[-(32 + 32 // 3) - 1]) == FORGOTTEN
    c.send(c.headers(sids[-(32 + 32 // 3) - 1]))
    assert goaway_code(c.take()) == ErrorCode.PROTOCOL_ERROR
