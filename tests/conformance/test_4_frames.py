"""RFC 9113 §4: frame format, frame size, field block (de)compression (h2spec http2/4.x)."""

from __future__ import annotations

import pytest

from tests.conformance.support import (
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    Conn,
    continuation,
    data,
    headers,
    ping,
    priority,
    settings_frame,
    unknown_frame,
)
from tests.server.h2wire import (
    COMPRESSION_ERROR,
    DATA,
    END_HEADERS,
    END_STREAM,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY_FLAG,
    PROTOCOL_ERROR,
    SETTINGS,
    frame,
)

PING_PAYLOAD = bytes(8)

# -- §4.1 Frame Format --------------------------------------------------------------------


def test_4_1_unknown_frame_type_is_ignored(conn: Conn) -> None:
    """h2spec 4.1/1: frames of unknown types MUST be ignored and discarded."""
    conn.send(unknown_frame(), ping(b"unknown!"))
    conn.expect_ping_ack(b"unknown!")


def test_4_1_unknown_frame_type_on_an_idle_stream_is_ignored(conn: Conn) -> None:
    """§4.1, §5.1: the stream-state rules apply only to defined frames; an unknown frame on
    an idle stream is discarded, not a PROTOCOL_ERROR."""
    conn.send(unknown_frame(stream_id=1), unknown_frame(stream_id=2, kind=0xFA))
    conn.expect_alive()
    conn.send(headers(3, conn.encode(conn.request())))
    conn.expect_headers(3)


def test_4_1_undefined_flags_are_ignored(conn: Conn) -> None:
    """h2spec 4.1/2: unused flags (here 0x16 on a PING) MUST be ignored."""
    conn.send(frame(PING, 0x16, 0, b"flagged!"))
    conn.expect_ping_ack(b"flagged!")


def test_4_1_reserved_bit_is_ignored(conn: Conn) -> None:
    """h2spec 4.1/3: the reserved bit of the stream identifier MUST be ignored."""
    header = frame(PING, 0x16, 0, b"reserved")
    conn.send(header[:5], bytes([header[5] | 0x80]), header[6:])
    conn.expect_ping_ack(b"reserved")


def test_4_1_reserved_bit_on_headers_names_the_same_stream(conn: Conn) -> None:
    """§4.1: with the reserved bit ignored, 0x80000001 is stream 1."""
    f = headers(1, conn.encode(conn.request("GET", "/hello")))
    conn.send(f[:5], bytes([f[5] | 0x80]), f[6:])
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


def test_4_1_unused_flags_on_headers_and_data_are_ignored(conn: Conn) -> None:
    """§4.1: unused flags (0x02, 0x10, 0x40, 0x80 on HEADERS and DATA) change nothing."""
    block = conn.encode(conn.request("POST", "/hello", ("content-length", "4")))
    unused = 0x02 | 0x10 | 0x40 | 0x80
    conn.send(
        frame(HEADERS, END_HEADERS | unused, 1, block),
        frame(DATA, END_STREAM | unused, 1, b"test"),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"  # the bookstore answers POST with 405: the request got through


# -- §4.2 Frame Size ----------------------------------------------------------------------


def test_4_2_data_frame_of_2_14_octets_is_accepted(conn: Conn) -> None:
    """h2spec 4.2/1: frames up to 2^14 octets MUST be received and processed."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, b"x" * 16384),
    )
    conn.expect_headers(1)


def test_4_2_data_frame_above_max_frame_size(conn: Conn) -> None:
    """h2spec 4.2/2: a frame above SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR (a DATA frame
    may be a stream error)."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, b"x" * 16385),
    )
    conn.expect_stream_error(1, FRAME_SIZE_ERROR)


def test_4_2_headers_frame_above_max_frame_size(conn: Conn) -> None:
    """h2spec 4.2/3: a frame that can alter connection state (one carrying a field block)
    and is too large is a connection error FRAME_SIZE_ERROR."""
    block = conn.encode(conn.request() + conn.dummy_fields(5))
    assert len(block) > 16384
    conn.send(headers(1, block))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_4_2_continuation_frame_above_max_frame_size(conn: Conn) -> None:
    """§4.2: the same for a CONTINUATION frame."""
    block = conn.encode(conn.request())
    conn.send(headers(1, block, end_headers=False), continuation(1, b"\x82" * 16385))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_4_2_settings_frame_above_max_frame_size(conn: Conn) -> None:
    """§4.2: a SETTINGS frame above the limit is a connection error FRAME_SIZE_ERROR
    (2731 settings: 16386 octets, a multiple of 6)."""
    conn.send(settings_frame(*[(0xFF, 0)] * 2731))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_4_2_padded_headers_without_pad_length(conn: Conn) -> None:
    """§4.2: a frame too small to contain mandatory frame data (PADDED but no Pad Length
    octet) is FRAME_SIZE_ERROR, a connection error for a HEADERS frame."""
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, b""))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_4_2_headers_with_priority_flag_but_short_payload(conn: Conn) -> None:
    """§4.2: PRIORITY flag set but fewer than 5 octets for its fields: FRAME_SIZE_ERROR."""
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, b"\x00\x00\x00"))
    conn.expect_connection_error(FRAME_SIZE_ERROR)


def test_4_2_padded_data_without_pad_length(conn: Conn) -> None:
    """§4.2: a PADDED DATA frame without its Pad Length octet: FRAME_SIZE_ERROR (stream or
    connection error)."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        frame(DATA, END_STREAM | PADDED, 1, b""),
    )
    conn.expect_stream_error(1, FRAME_SIZE_ERROR)


def test_4_2_server_frames_respect_our_max_frame_size(conn: Conn) -> None:
    """§4.1: the server MUST NOT send frames above our SETTINGS_MAX_FRAME_SIZE (the default
    2^14): the ~20 KB index arrives in frames that fit."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/"))))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and len(body) > 16384
    sizes = [int(e.rsplit("length=", 1)[1].rstrip(")")) for e in conn.log if "length=" in e]
    assert max(sizes) <= 16384, sizes


def test_4_2_larger_max_frame_size_is_accepted(conn: Conn) -> None:
    """§4.2: a client may raise SETTINGS_MAX_FRAME_SIZE (up to 2^24-1); the server keeps
    working and still never exceeds it."""
    conn.send(settings_frame((SETTINGS_MAX_FRAME_SIZE, (1 << 24) - 1)))
    conn.send(headers(1, conn.encode(conn.request("GET", "/"))))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and len(body) > 16384


# -- §4.3 Field Section Compression and Decompression -------------------------------------


def test_4_3_invalid_field_block_fragment(conn: Conn) -> None:
    """h2spec 4.3/1: a decoding error in a field block is a connection error
    COMPRESSION_ERROR (a literal with incremental indexing cut before its name)."""
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x40"))
    conn.expect_connection_error(COMPRESSION_ERROR)


def test_4_3_priority_frame_inside_a_field_block(conn: Conn) -> None:
    """h2spec 4.3/2: field blocks are contiguous: a PRIORITY frame between HEADERS and
    CONTINUATION is a connection error PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False, end_headers=False),
        priority(1),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_4_3_headers_of_another_stream_inside_a_field_block(conn: Conn) -> None:
    """h2spec 4.3/3: a HEADERS frame of another stream inside a field block: PROTOCOL_ERROR."""
    fields = conn.request()
    conn.send(
        headers(1, conn.encode(fields), end_stream=False, end_headers=False),
        headers(3, conn.encode(fields)),
        continuation(1, conn.encode(conn.dummy_fields(1))),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_4_3_field_block_on_a_stream_the_server_reset_is_still_decoded(conn: Conn) -> None:
    """§4.3, §5.1 closed: a receiver MUST decompress field blocks even of frames it will
    discard. Stream 1 is malformed (an uppercase name), so the server resets it; the
    trailers we had already sent on it insert `x-probe` into the dynamic table, and
    stream 3 refers to that entry by index: it must be understood."""
    probe = ("x-probe", "inserted on a stream the server reset")
    malformed = conn.encode(conn.request("POST", "/hello", ("X-UPPER", "1")))
    trailers = conn.encode([probe])
    request = conn.encode(conn.request("GET", "/hello", probe))
    assert len(request) < 10, "the hpack oracle no longer refers to the entry by index"
    conn.send(
        headers(1, malformed, end_stream=False),
        headers(1, trailers),  # in flight when the server resets stream 1
        headers(3, request),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)
    head, body = conn.expect_response(3)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


def test_4_3_oversized_field_block_is_still_decoded(conn: Conn) -> None:
    """§4.3, §10.5.1: a field block larger than the server accepts may be refused (431, a
    reset, or closing the connection), but unless the connection closes it MUST still be
    decoded: the next request reuses its dynamic-table entries and must be understood."""
    limit = conn.server_settings.get(SETTINGS_MAX_HEADER_LIST_SIZE, 65536)
    # 1000-octet values: the last three stay in the 4096-octet dynamic table.
    big = [(f"x-big{i:03}", "v" * 1000) for i in range(limit // 1000 + 2)]
    block = conn.encode(conn.request("GET", "/hello", *big))
    pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    conn.send(
        headers(1, pieces[0], end_headers=False),
        *(continuation(1, p, end_headers=False) for p in pieces[1:-1]),
        continuation(1, pieces[-1]),
    )
    refusal = conn.wait_for(
        lambda f: f.stream_id == 1 or f.type == GOAWAY, "an answer to the oversized request"
    )
    if refusal.type == GOAWAY:
        conn.expect_eof()
        return
    reuse = conn.encode(conn.request("GET", "/hello", *big[-3:]))
    assert len(reuse) < 100, "the hpack oracle no longer refers to the entries by index"
    conn.send(headers(3, reuse))
    head, body = conn.expect_response(3)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


def _leading_size_update(block: bytes) -> int | None:
    """The value of the Dynamic Table Size Update opening `block` (RFC 7541 §6.3), if any."""
    if not block or block[0] & 0xE0 != 0x20:
        return None
    value, shift = block[0] & 0x1F, 0
    if value < 0x1F:
        return value
    for octet in block[1:6]:
        value += (octet & 0x7F) << shift
        shift += 7
        if not octet & 0x80:
            return value
    return None


@pytest.mark.parametrize("table_size", [0, 256])
def test_4_3_1_table_size_reduced_in_the_preface_is_signalled(
    raw_conn: Conn, table_size: int
) -> None:
    """§4.3.1 (RFC 7541 §4.2): once the server acknowledges a SETTINGS_HEADER_TABLE_SIZE
    below 4096, its encoder MUST start the next field block with a Dynamic Table Size
    Update to at most that value."""
    raw_conn.handshake((SETTINGS_HEADER_TABLE_SIZE, table_size))
    raw_conn.send(headers(1, raw_conn.encode(raw_conn.request("GET", "/hello"))))
    head = raw_conn.wait_for(lambda f: f.type == HEADERS and f.stream_id == 1, "HEADERS")
    size = _leading_size_update(head.block)  # type: ignore[attr-defined]
    assert size is not None and size <= table_size, head.block[:8].hex()  # type: ignore[attr-defined]


def test_4_3_1_table_size_reduced_later_is_signalled(conn: Conn) -> None:
    """§4.3.1: the same when the reduction comes after responses filled the table."""
    for stream_id in (1, 3):
        conn.send(headers(stream_id, conn.encode(conn.request("GET", "/hello"))))
        conn.expect_response(stream_id)
    conn.send(settings_frame((SETTINGS_HEADER_TABLE_SIZE, 0)))
    conn.wait_for(lambda f: f.type == SETTINGS and bool(f.flags & 1), "SETTINGS ACK")
    conn.send(headers(5, conn.encode(conn.request("GET", "/hello"))))
    head = conn.wait_for(lambda f: f.type == HEADERS and f.stream_id == 5, "HEADERS")
    assert _leading_size_update(head.block) == 0, head.block[:8].hex()  # type: ignore[attr-defined]
