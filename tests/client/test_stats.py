"""The wire taps: headers vs bodies vs framing, whatever way the bytes are split into reads."""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.client.stats import (
    H1StreamTap,
    H2FrameTap,
    H2ReadCounter,
    HeaderBytes,
    WireCounts,
    WireStats,
    header_list_size,
)
from h2books.protocol.h2 import H2Config, H2Connection

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


def feed_in_pieces(tap: H2FrameTap | H1StreamTap, data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        tap.feed(data[start:point])
        start = point


def counts_of(counts: WireCounts) -> tuple[int, int, int]:
    return counts.headers, counts.body, counts.framing


# -- HTTP/2 -------------------------------------------------------------------------------

# HEADERS padded (pad length 3) with priority, a CONTINUATION, a padded DATA, a plain DATA,
# and control frames: SETTINGS, WINDOW_UPDATE, PING, RST_STREAM, GOAWAY, an unknown type.
H2_STREAM = b"".join(
    [
        frame(0x1, 0x8 | 0x20, 1, b"\x03" + b"\x00\x00\x00\x00\x10" + b"h" * 20 + b"\x00" * 3),
        frame(0x9, 0x4, 1, b"c" * 7),
        frame(0x0, 0x8, 1, b"\x02" + b"d" * 100 + b"\x00\x00"),
        frame(0x0, 0x1, 1, b"e" * 50),
        frame(0x4, 0x0, 0, b"\x00\x03\x00\x00\x00\x64"),
        frame(0x8, 0x0, 0, b"\x00\x01\x00\x00"),
        frame(0x6, 0x0, 0, b"p" * 8),
        frame(0x3, 0x0, 3, b"\x00\x00\x00\x08"),
        frame(0x7, 0x0, 0, b"\x00" * 8),
        frame(0xEE, 0x0, 0, b"?" * 5),
    ]
)
H2_HEADERS = 20 + 7
H2_BODY = 100 + 50
H2_FRAMING = (
    10 * 9  # frame headers
    + 1
    + 5
    + 3  # HEADERS pad length, priority, padding
    + 1
    + 2  # DATA pad length, padding
    + 6
    + 4
    + 8
    + 4
    + 8
    + 5  # control payloads
)


def test_h2_tap_sorts_every_byte() -> None:
    counts = WireCounts()
    H2FrameTap(counts).feed(H2_STREAM)
    assert counts_of(counts) == (H2_HEADERS, H2_BODY, H2_FRAMING)
    assert counts.total == len(H2_STREAM)


@given(st.lists(st.integers(min_value=0), max_size=40))
def test_h2_tap_is_independent_of_how_reads_are_cut(cuts: list[int]) -> None:
    counts = WireCounts()
    tap = H2FrameTap(counts, preface=True)
    feed_in_pieces(tap, PREFACE + H2_STREAM + H2_STREAM, cuts)
    assert counts_of(counts) == (2 * H2_HEADERS, 2 * H2_BODY, 24 + 2 * H2_FRAMING)


def test_h2_tap_matches_a_real_h2_conversation() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    client.initiate_connection()
    out = client.data_to_send()
    client.send_headers(
        1, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/")]
    )
    request_block = client.data_to_send()
    for _ in range(3):
        client.send_data(1, b"z" * 16000, end_stream=False)
    data = client.data_to_send()
    counts = WireCounts()
    tap = H2FrameTap(counts, preface=True)
    tap.feed(out + request_block + data)
    assert counts.headers == len(request_block) - 9
    assert counts.body == 48000
    assert counts.total == len(out + request_block + data)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=10))
def test_h2_tap_never_raises(junk: bytes, cuts: list[int]) -> None:
    counts = WireCounts()
    feed_in_pieces(H2FrameTap(counts), junk, cuts)
    assert counts.total >= 0


def _server_conversation() -> tuple[bytes, H2Connection]:
    """What an `h2` library server sends our client core: a response with a padded body,
    a head long enough for CONTINUATION frames, a PUSH_PROMISE and its pushed response,
    a WINDOW_UPDATE and a PING; and the core that read it."""
    ours = H2Connection(H2Config(client_side=True, enable_push=True))
    ours.initiate(0.0)
    ours.send_request(
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/")]
    )
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    server.initiate_connection()
    server.receive_data(bytes(ours.data_to_send()))
    server.push_stream(
        1, 2, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
               (b":path", b"/pushed")],
    )  # fmt: skip
    server.send_headers(1, [(b":status", b"200"), (b"x-long", b"v" * 20000)])
    server.send_data(1, b"body" * 100, pad_length=17)
    server.send_headers(2, [(b":status", b"200")])
    server.send_data(2, b"pushed", end_stream=True)
    server.increment_flow_control_window(1000)
    server.ping(b"12345678")
    server.send_data(1, b"end", end_stream=True)
    return server.data_to_send(), ours


@given(st.lists(st.integers(min_value=0), max_size=10))
def test_h2_read_counter_counts_what_the_frame_tap_counts(cuts: list[int]) -> None:
    data, ours = _server_conversation()
    expected = WireCounts()
    H2FrameTap(expected).feed(data)
    assert expected.headers > 16384 and expected.body == 409  # CONTINUATION and padding
    counted = WireCounts()
    counter = H2ReadCounter(counted)
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        counter.feed(data[start:point])
        ours.receive_data(data[start:point], 0.0)
        counter.settle(ours.received_octets)
        start = point
    assert not ours.closed
    assert (counted.headers, counted.body, counted.framing) == (
        expected.headers,
        expected.body,
        expected.framing,
    )


def test_wire_stats_hand_out_taps_and_count_connections() -> None:
    stats = WireStats()
    out, inbound = stats.h2_taps()
    out.feed(PREFACE)
    inbound.feed(frame(0x4, 0x0, 0, b""))
    inbound.settle((0, 0))
    stats.h1_taps()
    assert stats.connections == 2
    assert stats.as_dict() == {
        "connections": 2,
        "sent": {"headers": 0, "headers_plain": 0, "body": 0, "framing": 24, "total": 24},
        "received": {"headers": 0, "headers_plain": 0, "body": 0, "framing": 9, "total": 9},
    }


# -- HTTP/1.1 -----------------------------------------------------------------------------

REQUESTS = (
    b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
    b"HEAD /b HTTP/1.1\r\nhost: x\r\n\r\n"
    b"POST /c HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello"
    b"GET /d HTTP/1.1\r\nhost: x\r\n\r\n"
    b"GET /e HTTP/1.1\r\nhost: x\r\n\r\n"
)
REQUEST_BODY = 5

RESPONSES = [
    # to GET /a: content-length
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
    b"0123456789",
    # to HEAD /b: a length, but no body
    b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n",
    b"",
    # to POST /c: an interim 100, then chunked with an extension and a trailer
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"",
    b"4;x=y\r\n",
    b"",
    b"",
    b"abcd",
    b"\r\n2\r\n",
    b"",
    b"",
    b"ef",
    b"\r\n0\r\n",
    b"",
    b"trailer: 1\r\n",
    b"",
    b"\r\n",
    b"",
    # to GET /d: 304, no body
    b"HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n",
    b"",
    # to GET /e: delimited by the close
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"until the end",
]
RESPONSE_BYTES = b"".join(RESPONSES)
# Even items are heads/trailers/framing, odd ones body; split framing from heads by hand.
CHUNK_FRAMING = len(b"4;x=y\r\n") + len(b"\r\n2\r\n") + len(b"\r\n0\r\n") + len(b"\r\n")
RESPONSE_BODY = len(b"0123456789abcdefuntil the end")
RESPONSE_HEADERS = len(RESPONSE_BYTES) - RESPONSE_BODY - CHUNK_FRAMING


@given(
    st.lists(st.integers(min_value=0), max_size=30), st.lists(st.integers(min_value=0), max_size=30)
)
def test_h1_taps_split_heads_bodies_and_chunk_framing(
    request_cuts: list[int], response_cuts: list[int]
) -> None:
    stats = WireStats()
    out, inbound = stats.h1_taps()
    feed_in_pieces(out, REQUESTS, request_cuts)
    feed_in_pieces(inbound, RESPONSE_BYTES, response_cuts)
    assert counts_of(stats.sent) == (len(REQUESTS) - REQUEST_BODY, REQUEST_BODY, 0)
    assert counts_of(stats.received) == (RESPONSE_HEADERS, RESPONSE_BODY, CHUNK_FRAMING)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=10))
def test_h1_tap_never_raises(junk: bytes, cuts: list[int]) -> None:
    counts = WireCounts()
    tap = H1StreamTap(counts, responses=True)
    feed_in_pieces(tap, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + junk, cuts)
    assert counts.total == 47 + len(junk) - len(tap._buffer)


def test_h1_tap_gives_up_on_unparseable_chunks_without_losing_bytes() -> None:
    counts = WireCounts()
    tap = H1StreamTap(counts, responses=True)
    data = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nmore stuff"
    tap.feed(data)
    assert counts.total == len(data)
    assert counts.framing == len(b"zz\r\nmore stuff")


def test_h1_heads_count_as_their_own_uncompressed_size() -> None:
    stats = WireStats()
    out, inbound = stats.h1_taps()
    request = b"GET /book?id=1 HTTP/1.1\r\nhost: a\r\n\r\n"
    out.feed(request)
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    inbound.feed(head + b"ok")
    assert stats.sent.headers == stats.sent.headers_plain == len(request)
    assert stats.received.headers == stats.received.headers_plain == len(head)


def test_header_list_size_counts_name_value_lines() -> None:
    # ":path: /" and "accept: */*", each with its CRLF.
    assert header_list_size([(b":path", b"/"), (b"accept", b"*/*")]) == 10 + 13
    assert header_list_size([]) == 0


def test_header_bytes_record_per_protocol() -> None:
    stats = WireStats()
    stats.sent.headers, stats.sent.headers_plain = 20, 100
    stats.received.headers, stats.received.headers_plain = 30, 0
    record = HeaderBytes.of("h2", stats, requests=4)
    assert HeaderBytes.from_dict(record.as_dict()) == record
    assert HeaderBytes.saved(record.sent, record.sent_plain) == pytest.approx(0.8)
    assert HeaderBytes.saved(record.received, record.received_plain) is None
