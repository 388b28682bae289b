"""RFC 9113 §6: frame definitions, DATA to CONTINUATION (h2spec http2/6.x)."""

from __future__ import annotations

import signal
import struct
import time
from collections.abc import Iterator

import pytest

from tests.conformance.support import (
    DEFAULT_WINDOW,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    Conn,
    continuation,
    data,
    goaway,
    headers,
    ping,
    priority,
    push_promise,
    rst_stream,
    settings_frame,
    window_update,
)
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    CANCEL,
    DATA,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    Frame,
    frame,
)

MAX_WINDOW = (1 << 31) - 1


def _post(conn: Conn, stream_id: int = 1, *extra: tuple[str, str]) -> bytes:
    return headers(stream_id, conn.encode(conn.request("POST", "/", *extra)), end_stream=False)


def _settings_acked(conn: Conn) -> None:
    conn.wait_for(lambda f: f.type == SETTINGS and bool(f.flags & ACK), "SETTINGS ACK")


# -- §6.1 DATA ---------------------------------------------------------------------------


def test_6_1_data_on_stream_zero(conn: Conn) -> None:
    """h2spec 6.1/1: DATA with stream identifier 0: connection error PROTOCOL_ERROR."""
    conn.send(data(0))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_1_data_on_a_half_closed_remote_stream(conn: Conn) -> None:
    """h2spec 6.1/2: DATA on a stream not "open" or "half-closed (local)": stream error
    STREAM_CLOSED."""
    conn.send(headers(1, conn.encode(conn.request("POST"))), data(1))
    conn.expect_stream_error(1, STREAM_CLOSED)


def test_6_1_data_with_invalid_pad_length(conn: Conn) -> None:
    """h2spec 6.1/3: padding longer than the payload: connection error PROTOCOL_ERROR."""
    conn.send(
        _post(conn, 1, ("content-length", "4")),
        frame(DATA, END_STREAM | PADDED, 1, b"\x06Test"),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_1_data_with_pad_length_equal_to_payload(conn: Conn) -> None:
    """§6.1: padding "the length of the frame payload or greater" is a connection error;
    equal is the boundary."""
    conn.send(_post(conn), frame(DATA, END_STREAM | PADDED, 1, b"\x04abc"))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_1_data_that_is_all_padding(conn: Conn) -> None:
    """§6.1: a Pad Length of payload length - 1 leaves zero data octets: valid."""
    conn.send(_post(conn, 1, ("content-length", "0")), data(1, b"", padding=7))
    conn.expect_headers(1)


# -- §6.2 HEADERS ------------------------------------------------------------------------


def test_6_2_headers_without_end_headers_then_priority(conn: Conn) -> None:
    """h2spec 6.2/1: HEADERS without END_HEADERS must be followed by CONTINUATION on the same
    stream: a PRIORITY frame is a connection error PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False, end_headers=False),
        priority(1),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_2_headers_to_another_stream_while_sending_headers(conn: Conn) -> None:
    """h2spec 6.2/2: a HEADERS frame of another stream inside a field block: PROTOCOL_ERROR."""
    fields = conn.request()
    conn.send(
        headers(1, conn.encode(fields), end_stream=False, end_headers=False),
        headers(3, conn.encode(fields)),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_2_headers_on_stream_zero(conn: Conn) -> None:
    """h2spec 6.2/3: HEADERS with stream identifier 0: connection error PROTOCOL_ERROR."""
    conn.send(headers(0, conn.encode(conn.request())))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_2_headers_with_invalid_pad_length(conn: Conn) -> None:
    """h2spec 6.2/4: padding that exceeds the frame payload. h2spec accepts a stream error;
    RFC 9113 §6.2 says connection error PROTOCOL_ERROR (the field block is lost, and with it
    the HPACK state)."""
    block = conn.encode(conn.request())
    payload = bytes([len(block) + 2]) + block
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, payload))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_2_headers_with_pad_length_equal_to_payload(conn: Conn) -> None:
    """§6.2: padding equal to the payload length is already a connection error."""
    block = conn.encode(conn.request())
    payload = bytes([len(block) + 1]) + block
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, payload))
    conn.expect_connection_error(PROTOCOL_ERROR)


# -- §6.3 PRIORITY -----------------------------------------------------------------------


def test_6_3_priority_on_stream_zero(conn: Conn) -> None:
    """h2spec 6.3/1: PRIORITY with stream identifier 0: connection error PROTOCOL_ERROR."""
    conn.send(priority(0))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_3_priority_with_wrong_length(conn: Conn) -> None:
    """h2spec 6.3/2: a PRIORITY frame of other than 5 octets: stream error
    FRAME_SIZE_ERROR."""
    conn.send(headers(1, conn.encode(conn.request())), frame(PRIORITY, 0, 1, b"\x80\x00\x00\x01"))
    conn.expect_stream_error(1, FRAME_SIZE_ERROR)


def test_6_3_priority_on_idle_stream_then_lower_stream(conn: Conn) -> None:
    """h2spec 6.3/3: PRIORITY for idle stream 3 does not open it: HEADERS on stream 1
    afterwards is still a valid new stream."""
    conn.send(priority(3), headers(1, conn.encode(conn.request())))
    conn.expect_headers(1)


# -- §6.4 RST_STREAM ---------------------------------------------------------------------


def test_6_4_rst_stream_on_stream_zero(conn: Conn) -> None:
    """h2spec 6.4/1: RST_STREAM with stream identifier 0: connection error PROTOCOL_ERROR."""
    conn.send(rst_stream(0, CANCEL))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_4_rst_stream_on_idle_stream(conn: Conn) -> None:
    """h2spec 6.4/2: RST_STREAM on an idle stream: connection error PROTOCOL_ERROR."""
    conn.send(rst_stream(1, CANCEL))
    conn.expect_connection_error(PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 5])
def test_6_4_rst_stream_with_wrong_length(conn: Conn, length: int) -> None:
    """h2spec 6.4/3: RST_STREAM of other than 4 octets. h2spec accepts a stream error; RFC
    9113 §6.4 says connection error FRAME_SIZE_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False),
        frame(RST_STREAM, 0, 1, bytes(length)),
    )
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_6_4_no_frames_after_receiving_rst_stream(conn: Conn) -> None:
    """§6.4: after receiving RST_STREAM the server MUST NOT send more frames on that stream:
    a response held by a zero window stays dead when the windows open."""
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        headers(1, conn.encode(conn.request("GET", "/"))),
    )
    conn.expect_headers(1)
    conn.send(rst_stream(1, CANCEL), settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)))
    _settings_acked(conn)
    conn.send(headers(3, conn.encode(conn.request("GET", "/hello"))))
    conn.expect_response(3)  # a later stream, served after the window change
    conn.expect_alive()
    assert not any(e.startswith(("DATA(stream=1,", "RST_STREAM(stream=1,")) for e in conn.log), (
        conn.log
    )


# -- §6.5 SETTINGS -----------------------------------------------------------------------


def test_6_5_settings_ack_with_payload(conn: Conn) -> None:
    """h2spec 6.5/1: SETTINGS with ACK and a payload: connection error FRAME_SIZE_ERROR."""
    conn.send(frame(SETTINGS, ACK, 0, b"\x00"))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_6_5_settings_on_a_stream(conn: Conn) -> None:
    """h2spec 6.5/2: SETTINGS with stream identifier 1: connection error PROTOCOL_ERROR."""
    conn.send(settings_frame((SETTINGS_MAX_CONCURRENT_STREAMS, 100), stream_id=1))
    conn.expect_connection_error(PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 8])
def test_6_5_settings_length_not_a_multiple_of_6(conn: Conn, length: int) -> None:
    """h2spec 6.5/3: a SETTINGS length not a multiple of 6. h2spec accepts PROTOCOL_ERROR
    too; RFC 9113 §6.5 says connection error FRAME_SIZE_ERROR."""
    payload = (struct.pack(">HI", SETTINGS_MAX_CONCURRENT_STREAMS, 100) + b"\x00\x02")[:length]
    conn.send(frame(SETTINGS, 0, 0, payload))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


# -- §6.5.2 Defined Settings -------------------------------------------------------------


def test_6_5_2_enable_push_not_0_or_1(conn: Conn) -> None:
    """h2spec 6.5.2/1: SETTINGS_ENABLE_PUSH 2: connection error PROTOCOL_ERROR."""
    conn.send(settings_frame((SETTINGS_ENABLE_PUSH, 2)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_5_2_initial_window_size_above_maximum(conn: Conn) -> None:
    """h2spec 6.5.2/2: SETTINGS_INITIAL_WINDOW_SIZE 2^31: connection error
    FLOW_CONTROL_ERROR."""
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)))
    conn.expect_connection_error(FLOW_CONTROL_ERROR)


def test_6_5_2_max_frame_size_below_initial(conn: Conn) -> None:
    """h2spec 6.5.2/3: SETTINGS_MAX_FRAME_SIZE 16383: connection error PROTOCOL_ERROR."""
    conn.send(settings_frame((SETTINGS_MAX_FRAME_SIZE, 16383)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_5_2_max_frame_size_above_maximum(conn: Conn) -> None:
    """h2spec 6.5.2/4: SETTINGS_MAX_FRAME_SIZE 2^24: connection error PROTOCOL_ERROR."""
    conn.send(settings_frame((SETTINGS_MAX_FRAME_SIZE, 1 << 24)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_5_2_unknown_setting_is_ignored(conn: Conn) -> None:
    """h2spec 6.5.2/5: an unknown setting identifier MUST be ignored."""
    conn.send(settings_frame((0xFF, 1)), ping(b"unknownS"))
    conn.expect_ping_ack(b"unknownS")


def test_6_5_2_boundary_values_are_accepted(conn: Conn) -> None:
    """§6.5.2: the extreme legal values are accepted and acknowledged."""
    conn.send(
        settings_frame(
            (SETTINGS_HEADER_TABLE_SIZE, (1 << 32) - 1),
            (SETTINGS_ENABLE_PUSH, 0),
            (SETTINGS_ENABLE_PUSH, 1),
            (SETTINGS_MAX_CONCURRENT_STREAMS, 0),
            (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
            (SETTINGS_MAX_FRAME_SIZE, 16384),
            (SETTINGS_MAX_FRAME_SIZE, (1 << 24) - 1),
        )
    )
    _settings_acked(conn)
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello"))))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "200"


def test_6_5_2_server_settings_are_legal(conn: Conn) -> None:
    """§6.5.2: a server MUST NOT set SETTINGS_ENABLE_PUSH to 1 and its values are in range."""
    values = conn.server_settings
    assert values.get(SETTINGS_ENABLE_PUSH, 0) == 0
    assert 16384 <= values.get(SETTINGS_MAX_FRAME_SIZE, 16384) <= (1 << 24) - 1
    assert values.get(SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW) <= MAX_WINDOW


# -- §6.5.3 Settings Synchronization -----------------------------------------------------


def test_6_5_3_values_processed_in_order(conn: Conn) -> None:
    """h2spec 6.5.3/1: INITIAL_WINDOW_SIZE 100 then 1 in one frame: the last wins, so the
    response comes one octet at a time."""
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 100), (SETTINGS_INITIAL_WINDOW_SIZE, 1))
    )
    _settings_acked(conn)
    conn.send(headers(1, conn.encode(conn.request())))
    first = conn.expect_frame(DATA, 1)
    assert len(first.payload) == 1, conn.log


def test_6_5_3_settings_are_acknowledged(conn: Conn) -> None:
    """h2spec 6.5.3/2: a SETTINGS frame without ACK is answered by a SETTINGS ACK."""
    conn.send(settings_frame((SETTINGS_ENABLE_PUSH, 0)))
    ack = conn.expect_frame(SETTINGS)
    assert ack.flags & ACK and not ack.payload, conn.log


# -- §6.6 PUSH_PROMISE -------------------------------------------------------------------


def test_6_6_push_promise_on_stream_zero(conn: Conn) -> None:
    """§6.6, §8.4: a client cannot push: PUSH_PROMISE, even on stream 0, is a connection
    error PROTOCOL_ERROR."""
    conn.send(push_promise(0, 2, conn.encode(conn.request())))
    conn.expect_connection_error(PROTOCOL_ERROR)


# -- §6.7 PING ---------------------------------------------------------------------------


def test_6_7_ping_is_acknowledged(conn: Conn) -> None:
    """h2spec 6.7/1: a PING is answered by a PING ACK with an identical payload."""
    conn.send(ping(b"h2spec\x00\x00"))
    conn.expect_ping_ack(b"h2spec\x00\x00")


def test_6_7_ping_ack_is_not_answered(conn: Conn) -> None:
    """h2spec 6.7/2: a PING with ACK MUST NOT be answered."""
    conn.send(ping(b"invalid\x00", ack=True), ping(b"h2spec\x00\x00"))
    conn.expect_ping_ack(b"h2spec\x00\x00", forbidden=b"invalid\x00")


def test_6_7_ping_on_a_stream(conn: Conn) -> None:
    """h2spec 6.7/3: PING with stream identifier 1: connection error PROTOCOL_ERROR."""
    conn.send(frame(PING, 0, 1, bytes(8)))
    conn.expect_connection_error(PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [0, 6, 9])
def test_6_7_ping_with_wrong_length(conn: Conn, length: int) -> None:
    """h2spec 6.7/4: PING of other than 8 octets: connection error FRAME_SIZE_ERROR."""
    conn.send(frame(PING, 0, 0, bytes(length)))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


# -- §6.8 GOAWAY -------------------------------------------------------------------------


def test_6_8_goaway_on_a_stream(conn: Conn) -> None:
    """h2spec 6.8/1: GOAWAY with stream identifier 1: connection error PROTOCOL_ERROR."""
    conn.send(frame(GOAWAY, 0, 1, bytes(8)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_8_goaway_too_short(conn: Conn) -> None:
    """§4.2: a GOAWAY without room for its last-stream-id and error code is too small for
    its mandatory data: connection error FRAME_SIZE_ERROR."""
    conn.send(frame(GOAWAY, 0, 0, bytes(7)))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_6_8_goaway_from_the_client_lets_open_streams_finish(conn: Conn) -> None:
    """§6.8: our GOAWAY (last-stream-id 0: no server streams) does not cancel the request
    already sent; the server completes it, then closes the connection (h2spec generic 3.8)."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello"))), goaway(0, 0, b"bye"))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"
    conn.expect_eof()


def test_6_8_graceful_shutdown(fresh_server: ServerProcess) -> None:
    """§6.8: on shutdown the server sends GOAWAY with NO_ERROR, never raises the
    last-stream-id in a later GOAWAY, covers the stream in flight and lets it finish
    before closing the connection."""
    fresh_server.start()
    conn = Conn(fresh_server)
    try:
        conn.handshake()
        conn.send(
            settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),  # hold the response open
            headers(1, conn.encode(conn.request("GET", "/"))),
        )
        conn.expect_headers(1)
        fresh_server.signal(signal.SIGTERM)
        conn.expect_frame(GOAWAY)
        conn.send(window_update(1, 1 << 20))
        last_ids, body_done = [], False
        for f in _frames_until_eof(conn):
            if f.type == PING and not f.flags & ACK:
                conn.send(ping(f.payload, ack=True))  # the server may wait for this round trip
            elif f.type == DATA and f.stream_id == 1 and f.flags & END_STREAM:
                body_done = True
        for entry in conn.log:
            if entry.startswith("GOAWAY"):
                assert entry.endswith("NO_ERROR)"), conn.log
                last_ids.append(int(entry.split("=")[1].split(",")[0]))
        assert last_ids == sorted(last_ids, reverse=True), f"last-stream-id went up: {last_ids}"
        assert last_ids[-1] >= 1, "the GOAWAY disowns the stream it is still serving"
        assert body_done, conn.log
    finally:
        conn.close()


def _frames_until_eof(conn: Conn) -> Iterator[Frame]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        f = conn.read(deadline - time.monotonic())
        if f is None:
            return
        yield f
    conn.fail("the connection was not closed after the graceful shutdown")


# -- §6.9 WINDOW_UPDATE ------------------------------------------------------------------


def test_6_9_window_update_of_zero_on_the_connection(conn: Conn) -> None:
    """h2spec 6.9/1: a 0 increment on the connection window: connection error
    PROTOCOL_ERROR."""
    conn.send(window_update(0, 0))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_9_window_update_of_zero_on_a_stream(conn: Conn) -> None:
    """h2spec 6.9/2: a 0 increment on a stream window: stream error PROTOCOL_ERROR."""
    conn.send(headers(1, conn.encode(conn.request()), end_stream=False), window_update(1, 0))
    conn.expect_stream_error(1, PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 5])
def test_6_9_window_update_with_wrong_length(conn: Conn, length: int) -> None:
    """h2spec 6.9/3: WINDOW_UPDATE of other than 4 octets: connection error
    FRAME_SIZE_ERROR."""
    conn.send(frame(WINDOW_UPDATE, 0, 0, (b"\x00\x00\x00\x01\x00")[:length]))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


# -- §6.9.1 The Flow-Control Window ------------------------------------------------------


def test_6_9_1_initial_window_of_1(conn: Conn) -> None:
    """h2spec 6.9.1/1: with SETTINGS_INITIAL_WINDOW_SIZE 1 the server sends 1-octet DATA."""
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 1)))
    _settings_acked(conn)
    conn.send(headers(1, conn.encode(conn.request())))
    assert len(conn.expect_frame(DATA, 1).payload) == 1, conn.log


def test_6_9_1_connection_window_overflow(conn: Conn) -> None:
    """h2spec 6.9.1/2: WINDOW_UPDATEs taking the connection window above 2^31-1: GOAWAY
    FLOW_CONTROL_ERROR."""
    conn.send(window_update(0, MAX_WINDOW), window_update(0, MAX_WINDOW))
    conn.expect_connection_error(FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow(conn: Conn) -> None:
    """h2spec 6.9.1/3: WINDOW_UPDATEs taking a stream window above 2^31-1: RST_STREAM
    FLOW_CONTROL_ERROR on that stream (h2spec accepts nothing else)."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False),
        window_update(1, MAX_WINDOW),
        window_update(1, MAX_WINDOW),
    )
    f = conn.wait_for(lambda f: f.type in (RST_STREAM, GOAWAY), "RST_STREAM(1, FLOW_CONTROL_ERROR)")
    assert (f.type, f.stream_id, f.error_code) == (RST_STREAM, 1, FLOW_CONTROL_ERROR), conn.log


def _drain_connection_window(conn: Conn) -> int:
    """Four requests for the ~20 KB index and no connection WINDOW_UPDATE: read DATA until
    the 65,535-octet connection window is used up. Returns the next free stream id."""
    conn.auto_window_update = False
    conn.send(*(headers(s, conn.encode(conn.request("GET", "/"))) for s in (1, 3, 5, 7)))
    received = 0
    while received < DEFAULT_WINDOW:
        f = conn.expect_frame(DATA)
        received += len(f.payload)
    assert received == DEFAULT_WINDOW, f"the server sent {received} octets into a 65535 window"
    return 9


def test_6_9_1_connection_window_is_respected(conn: Conn) -> None:
    """§6.9.1: the server MUST NOT send more than the connection window allows: exactly
    65,535 octets, then nothing until a WINDOW_UPDATE on stream 0."""
    _drain_connection_window(conn)
    drained_at = len(conn.log)
    conn.send(ping(b"drained!"))
    conn.expect_ping_ack(b"drained!")
    assert not [e for e in conn.log[drained_at:] if e.startswith("DATA")], conn.log
    conn.send(window_update(0, 1))
    assert len(conn.expect_frame(DATA).payload) == 1, conn.log


# -- §6.9.2 Initial Flow-Control Window Size ---------------------------------------------


def test_6_9_2_initial_window_change_applies_to_open_streams(conn: Conn) -> None:
    """h2spec 6.9.2/1: INITIAL_WINDOW_SIZE 0, a request, then 1: the open stream's window
    grows by the difference and one octet flows."""
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)))
    _settings_acked(conn)
    conn.send(
        headers(1, conn.encode(conn.request())), settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 1))
    )
    assert len(conn.expect_frame(DATA, 1).payload) == 1, conn.log


def test_6_9_2_negative_window_is_tracked(conn: Conn) -> None:
    """h2spec 6.9.2/2: window 3, three octets sent, window setting 2 (the stream window is
    now -1), WINDOW_UPDATE 2: exactly one more octet may flow."""
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 3)))
    _settings_acked(conn)
    conn.send(headers(1, conn.encode(conn.request())))
    assert len(conn.expect_frame(DATA, 1).payload) == 3, conn.log
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 2)))
    _settings_acked(conn)
    conn.send(window_update(1, 2))
    assert len(conn.expect_frame(DATA, 1).payload) == 1, conn.log


def test_6_9_2_initial_window_size_above_maximum(conn: Conn) -> None:
    """h2spec 6.9.2/3: SETTINGS_INITIAL_WINDOW_SIZE 2^31: connection error
    FLOW_CONTROL_ERROR."""
    conn.send(frame(SETTINGS, 0, 0, b"\x00\x04\x80\x00\x00\x00"))
    conn.expect_connection_error(FLOW_CONTROL_ERROR)


def test_6_9_2_settings_change_overflowing_an_open_stream(conn: Conn) -> None:
    """§6.9.2: a change of SETTINGS_INITIAL_WINDOW_SIZE that takes an open stream's window
    above 2^31-1 is a connection error FLOW_CONTROL_ERROR. Stream 9 waits on the drained
    connection window with its own window at exactly 2^31-1; one more octet overflows it."""
    stream_id = _drain_connection_window(conn)
    conn.send(headers(stream_id, conn.encode(conn.request("GET", "/"))))
    conn.expect_headers(stream_id)
    conn.send(window_update(stream_id, MAX_WINDOW - DEFAULT_WINDOW))
    conn.expect_alive()
    conn.send(settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW + 1)))
    conn.expect_connection_error(FLOW_CONTROL_ERROR)


# -- §6.10 CONTINUATION ------------------------------------------------------------------


def test_6_10_multiple_continuation_frames(conn: Conn) -> None:
    """h2spec 6.10/1: any number of CONTINUATION frames may follow a HEADERS frame."""
    dummy = conn.dummy_fields(1)
    conn.send(
        headers(1, conn.encode(conn.request()), end_headers=False),
        continuation(1, conn.encode(dummy), end_headers=False),
        continuation(1, conn.encode(dummy)),
    )
    conn.expect_headers(1)


def test_6_10_continuation_followed_by_data(conn: Conn) -> None:
    """h2spec 6.10/2: a CONTINUATION without END_HEADERS followed by DATA: connection error
    PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False, end_headers=False),
        continuation(1, conn.encode(conn.dummy_fields(1)), end_headers=False),
        data(1),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_on_stream_zero(conn: Conn) -> None:
    """h2spec 6.10/3: CONTINUATION with stream identifier 0: connection error
    PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_headers=False),
        continuation(0, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_after_headers_with_end_headers(conn: Conn) -> None:
    """h2spec 6.10/4: CONTINUATION after a HEADERS that had END_HEADERS: PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request())),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_after_continuation_with_end_headers(conn: Conn) -> None:
    """h2spec 6.10/5: CONTINUATION after a CONTINUATION that had END_HEADERS:
    PROTOCOL_ERROR."""
    dummy = conn.dummy_fields(1)
    conn.send(
        headers(1, conn.encode(conn.request()), end_headers=False),
        continuation(1, conn.encode(dummy)),
        continuation(1, conn.encode(dummy)),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_after_data(conn: Conn) -> None:
    """h2spec 6.10/6: CONTINUATION preceded by a DATA frame: connection error
    PROTOCOL_ERROR."""
    dummy = conn.dummy_fields(1)
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False, end_headers=False),
        data(1),
        continuation(1, conn.encode(dummy), end_headers=False),
        continuation(0, conn.encode(dummy)),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_6_10_continuation_on_another_stream(conn: Conn) -> None:
    """§6.10: the CONTINUATION must be on the same stream: stream 3 continuing stream 1's
    field block is a connection error PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_headers=False),
        continuation(3, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)
