"""The HTTP/3 wire tap: frames read from stream data in any split, datagrams as totals."""

from __future__ import annotations

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameType, encode_frame

from h2books.client.stats import WireCounts
from h2books.client.stats_h3 import H3Tap

HEADERS = encode_frame(FrameType.HEADERS, b"h" * 70)  # a 2-byte length varint
DATA = encode_frame(FrameType.DATA, b"d" * 20_000)  # a 4-byte length varint
REQUEST_STREAM = HEADERS + DATA + encode_frame(FrameType.HEADERS, b"t" * 5)


def test_request_stream_in_any_split() -> None:
    for piece in (1, 3, 64, len(REQUEST_STREAM)):
        counts = WireCounts()
        tap = H3Tap(counts)
        tap.feed(bytes(len(REQUEST_STREAM) + 500))  # the datagrams that carried it
        for start in range(0, len(REQUEST_STREAM), piece):
            tap.stream(0, REQUEST_STREAM[start : start + piece])
        assert (counts.headers, counts.body) == (75, 20_000), piece
        assert counts.framing == 500 + len(REQUEST_STREAM) - 20_075


def test_unidirectional_streams_by_type() -> None:
    counts = WireCounts()
    tap = H3Tap(counts)
    tap.feed(bytes(1000))
    control = encode_uint_var(0x00) + encode_frame(FrameType.SETTINGS, b"\x01\x00")
    qpack_encoder = encode_uint_var(0x02) + b"q" * 40
    qpack_decoder = encode_uint_var(0x03) + b"\x80"
    tap.stream(3, control)
    tap.stream(7, qpack_encoder[:10])
    tap.stream(7, qpack_encoder[10:])
    tap.stream(11, qpack_decoder)
    # Dynamic-table inserts are header bytes; the rest is framing.
    assert (counts.headers, counts.body, counts.framing) == (40, 0, 960)
    assert counts.total == 1000
