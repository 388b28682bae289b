"""RFC 9113 §5: stream states, identifiers, concurrency, priority, error handling,
extensions (h2spec http2/5.x)."""

from __future__ import annotations

import struct

from tests.conformance.support import (
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    Conn,
    continuation,
    data,
    headers,
    priority,
    rst_stream,
    settings_frame,
    unknown_frame,
    window_update,
)
from tests.server.h2wire import (
    CANCEL,
    PING,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    STREAM_CLOSED,
    frame,
)

# -- §5.1 Stream States: idle ------------------------------------------------------------


def test_5_1_idle_data(conn: Conn) -> None:
    """h2spec 5.1/1: only HEADERS and PRIORITY are allowed on an idle stream: a DATA frame
    is a connection error PROTOCOL_ERROR."""
    conn.send(data(1))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_idle_rst_stream(conn: Conn) -> None:
    """h2spec 5.1/2: RST_STREAM on an idle stream: connection error PROTOCOL_ERROR."""
    conn.send(rst_stream(1, CANCEL))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_idle_window_update(conn: Conn) -> None:
    """h2spec 5.1/3: WINDOW_UPDATE on an idle stream: connection error PROTOCOL_ERROR."""
    conn.send(window_update(1, 100))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_idle_continuation(conn: Conn) -> None:
    """h2spec 5.1/4: CONTINUATION on an idle stream: connection error PROTOCOL_ERROR."""
    conn.send(continuation(1, conn.encode(conn.request())))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_idle_priority_is_allowed(conn: Conn) -> None:
    """§5.1: PRIORITY may be received on an idle stream; the stream stays usable."""
    conn.send(priority(1), headers(1, conn.encode(conn.request("GET", "/hello"))))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "200"


# -- §5.1 half-closed (remote) -----------------------------------------------------------


def test_5_1_half_closed_remote_data(conn: Conn) -> None:
    """h2spec 5.1/5: frames other than WINDOW_UPDATE, PRIORITY, RST_STREAM on a half-closed
    (remote) stream: stream error STREAM_CLOSED."""
    conn.send(headers(1, conn.encode(conn.request())), data(1))
    conn.expect_stream_error(1, STREAM_CLOSED)


def test_5_1_half_closed_remote_headers(conn: Conn) -> None:
    """h2spec 5.1/6: a second HEADERS on a half-closed (remote) stream: STREAM_CLOSED."""
    fields = conn.request()
    conn.send(headers(1, conn.encode(fields)), headers(1, conn.encode(fields)))
    conn.expect_stream_error(1, STREAM_CLOSED)


def test_5_1_half_closed_remote_continuation(conn: Conn) -> None:
    """h2spec 5.1/7: CONTINUATION after a complete field block on a half-closed (remote)
    stream: STREAM_CLOSED or PROTOCOL_ERROR."""
    block = conn.encode(conn.request())
    conn.send(headers(1, block), continuation(1, block))
    conn.expect_stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


# -- §5.1 closed -------------------------------------------------------------------------


def test_5_1_closed_data_after_rst_stream(conn: Conn) -> None:
    """h2spec 5.1/8: DATA on a stream we reset: stream error STREAM_CLOSED (§6.1)."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False), rst_stream(1, CANCEL), data(1)
    )
    conn.expect_stream_error(1, STREAM_CLOSED)


def test_5_1_closed_headers_after_rst_stream(conn: Conn) -> None:
    """h2spec 5.1/9: HEADERS on a stream we reset: stream error STREAM_CLOSED."""
    fields = conn.request()
    conn.send(
        headers(1, conn.encode(fields), end_stream=False),
        rst_stream(1, CANCEL),
        headers(1, conn.encode(fields)),
    )
    conn.expect_stream_error(1, STREAM_CLOSED)


def test_5_1_closed_continuation_after_rst_stream(conn: Conn) -> None:
    """h2spec 5.1/10: CONTINUATION on a stream we reset: STREAM_CLOSED or PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False),
        rst_stream(1, CANCEL),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_stream_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


def _closed_stream_1(conn: Conn) -> None:
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello"))))
    conn.expect_stream_end(1)


def test_5_1_closed_data(conn: Conn) -> None:
    """h2spec 5.1/11: DATA on a stream closed by END_STREAM both ways: connection error
    STREAM_CLOSED."""
    _closed_stream_1(conn)
    conn.send(data(1))
    conn.expect_connection_error(STREAM_CLOSED)


def test_5_1_closed_headers(conn: Conn) -> None:
    """h2spec 5.1/12: HEADERS on a closed stream: connection error STREAM_CLOSED."""
    _closed_stream_1(conn)
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello"))))
    conn.expect_connection_error(STREAM_CLOSED)


def test_5_1_closed_continuation(conn: Conn) -> None:
    """h2spec 5.1/13: CONTINUATION on a closed stream: connection error STREAM_CLOSED or
    PROTOCOL_ERROR."""
    _closed_stream_1(conn)
    conn.send(continuation(1, conn.encode(conn.dummy_fields(1))))
    conn.expect_connection_error(STREAM_CLOSED, PROTOCOL_ERROR)


def test_5_1_closed_window_update_is_not_an_error(conn: Conn) -> None:
    """§6.9: a WINDOW_UPDATE can reach a closed stream; the receiver MUST NOT treat it as an
    error (neither RST_STREAM nor GOAWAY)."""
    _closed_stream_1(conn)
    conn.send(window_update(1, 100))
    conn.expect_alive()
    assert not any(e.startswith(("RST_STREAM", "GOAWAY")) for e in conn.log), conn.log


def test_5_1_closed_priority_is_allowed(conn: Conn) -> None:
    """§5.1, §6.3: PRIORITY may be sent on a closed stream."""
    _closed_stream_1(conn)
    conn.send(priority(1))
    conn.expect_alive()
    assert not any(e.startswith(("RST_STREAM", "GOAWAY")) for e in conn.log), conn.log


# -- §5.1.1 Stream Identifiers -----------------------------------------------------------


def test_5_1_1_even_stream_identifier(conn: Conn) -> None:
    """h2spec 5.1.1/1: clients use odd stream identifiers; an even one is an unexpected
    identifier: connection error PROTOCOL_ERROR."""
    conn.send(headers(2, conn.encode(conn.request())))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_1_smaller_stream_identifier(conn: Conn) -> None:
    """h2spec 5.1.1/2: a new stream's identifier MUST exceed all previous ones: stream 3
    after stream 5 is a connection error PROTOCOL_ERROR."""
    fields = conn.request()
    conn.send(headers(5, conn.encode(fields)), headers(3, conn.encode(fields)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_1_1_headers_on_half_closed_remote_stream(conn: Conn) -> None:
    """h2spec 5.1.1/3: HEADERS again on a half-closed (remote) stream: STREAM_CLOSED."""
    fields = conn.request()
    conn.send(headers(5, conn.encode(fields)), headers(5, conn.encode(fields)))
    conn.expect_stream_error(5, STREAM_CLOSED)


def test_5_1_1_skipped_stream_is_closed(conn: Conn) -> None:
    """§5.1.1: opening stream 5 closes the idle streams below it: DATA on stream 3 is a
    frame on a closed stream (STREAM_CLOSED), or an unexpected identifier
    (PROTOCOL_ERROR)."""
    conn.send(headers(5, conn.encode(conn.request())), data(3))
    conn.expect_stream_error(3, STREAM_CLOSED, PROTOCOL_ERROR)


def test_5_1_1_stream_identifiers_may_skip(conn: Conn) -> None:
    """§5.1.1: a client may skip identifiers: stream 9 right after stream 1 is served."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello"))))
    conn.expect_response(1)
    conn.send(headers(9, conn.encode(conn.request("GET", "/hello"))))
    head, _ = conn.expect_response(9)
    assert head[":status"] == "200"


# -- §5.1.2 Stream Concurrency -----------------------------------------------------------


def test_5_1_2_exceeding_max_concurrent_streams(conn: Conn) -> None:
    """h2spec 5.1.2/1: a HEADERS frame beyond the advertised SETTINGS_MAX_CONCURRENT_STREAMS
    is a stream error PROTOCOL_ERROR or REFUSED_STREAM. Our window of 0 keeps every
    response open, so all of them count."""
    limit = conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
    assert limit is not None and limit <= 1000, "the server must advertise a limit"
    block = conn.encode(conn.request())
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        *(headers(1 + 2 * i, block) for i in range(limit + 1)),
    )
    conn.expect_stream_error(1 + 2 * limit, PROTOCOL_ERROR, REFUSED_STREAM)
    conn.expect_alive()


def test_5_1_2_open_streams_count_toward_the_limit(conn: Conn) -> None:
    """§5.1.2: streams in the "open" state count too: requests whose bodies never end fill
    every slot, and the next HEADERS is refused."""
    limit = conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
    assert limit is not None and limit <= 1000, "the server must advertise a limit"
    block = conn.encode(conn.request("POST", "/hello"))
    conn.send(*(headers(1 + 2 * i, block, end_stream=False) for i in range(limit + 1)))
    conn.expect_stream_error(1 + 2 * limit, PROTOCOL_ERROR, REFUSED_STREAM)
    conn.expect_alive()


# -- §5.3 Prioritization (RFC 7540 §5.3.1, kept by h2spec) --------------------------------


def test_5_3_1_headers_depending_on_itself(conn: Conn) -> None:
    """h2spec 5.3.1/1: a stream cannot depend on itself: stream error PROTOCOL_ERROR."""
    conn.send(headers(1, conn.encode(conn.request()), priority=(1, 255, False)))
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_5_3_1_priority_depending_on_itself(conn: Conn) -> None:
    """h2spec 5.3.1/2: a PRIORITY frame making a stream depend on itself: stream error
    PROTOCOL_ERROR."""
    conn.send(priority(1, depends_on=1))
    conn.expect_stream_error(1, PROTOCOL_ERROR)


# -- §5.4 Error Handling -----------------------------------------------------------------


def test_5_4_1_connection_error_closes_the_connection(conn: Conn) -> None:
    """h2spec 5.4.1/1-2: after a connection error (a PING on stream 3) the server sends
    GOAWAY and MUST close the TCP connection."""
    conn.send(frame(PING, 0, 3, bytes(8)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_4_1_goaway_names_the_last_processed_stream(conn: Conn) -> None:
    """§5.4.1, §6.8: the GOAWAY carries the last stream the server received and processed."""
    for stream_id in (1, 3):
        conn.send(headers(stream_id, conn.encode(conn.request("GET", "/hello"))))
        conn.expect_response(stream_id)
    conn.send(frame(PING, 0, 3, bytes(8)))
    f = conn.expect_connection_error(PROTOCOL_ERROR)
    assert struct.unpack(">I", f.payload[:4])[0] & 0x7FFFFFFF == 3


def test_5_4_2_stream_error_leaves_other_streams_alone(conn: Conn) -> None:
    """§5.4.2: a stream error (a malformed request) resets that stream only; the next
    stream on the same connection is served."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello", ("connection", "close")))))
    conn.expect_stream_error(1, PROTOCOL_ERROR)
    conn.send(headers(3, conn.encode(conn.request("GET", "/hello"))))
    head, body = conn.expect_response(3)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


def test_5_4_2_no_rst_stream_in_answer_to_rst_stream(conn: Conn) -> None:
    """§5.4.2: an endpoint MUST NOT send a RST_STREAM in response to a RST_STREAM."""
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        headers(1, conn.encode(conn.request())),
    )
    conn.expect_headers(1)
    conn.send(rst_stream(1, CANCEL))
    conn.expect_alive()
    assert not any(e.startswith(("RST_STREAM", "GOAWAY")) for e in conn.log), conn.log


# -- §5.5 Extending HTTP/2 ---------------------------------------------------------------


def test_5_5_unknown_extension_frame(conn: Conn) -> None:
    """h2spec 5.5/1: unknown extension frames MUST be discarded."""
    conn.send(unknown_frame(), frame(PING, 0, 0, b"extended"))
    conn.expect_ping_ack(b"extended")


def test_5_5_unknown_extension_frame_inside_a_field_block(conn: Conn) -> None:
    """h2spec 5.5/2: an extension frame in the middle of a field block is a connection
    error PROTOCOL_ERROR."""
    conn.send(headers(1, conn.encode(conn.request()), end_headers=False), unknown_frame())
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_5_5_unknown_frame_on_a_closed_stream_is_ignored(conn: Conn) -> None:
    """§5.1, §5.5: the stream-state rules do not cover unknown frame types: one on a closed
    stream is discarded, not an error."""
    _closed_stream_1(conn)
    conn.send(unknown_frame(1, 0xEE))
    conn.expect_alive()
    assert not any(e.startswith(("RST_STREAM", "GOAWAY")) for e in conn.log), conn.log
