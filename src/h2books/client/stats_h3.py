"""Bytes on the wire for HTTP/3: whole UDP payloads, split by what the QUIC streams carry.

A QUIC datagram is encrypted whole, so there is no plaintext byte stream to tap as for
HTTP/1.1 and HTTP/2. Instead each direction counts every datagram's size (what the
network carries, packet headers and AEAD tags included) and reads the HTTP/3 frames of
the stream data the connection sends and receives:

- request streams: HEADERS payloads (QPACK field sections) count as headers, DATA
  payloads as body, frame types and lengths as framing;
- the QPACK encoder stream (dynamic-table inserts: header bytes sent once, referred to
  afterwards) counts as headers; the QPACK decoder stream, the control stream and the
  stream-type bytes as framing;
- everything else in the datagrams (QUIC packet headers, ACK, CRYPTO, flow-control
  frames, padding, encryption overhead) is framing: total minus headers minus body.
"""

from __future__ import annotations

from h2books.client.stats import WireCounts

__all__ = ["H3Tap"]

_DATA, _HEADERS = 0x0, 0x1
_QPACK_ENCODER_STREAM = 0x02

# Per-stream reading states.
_STREAM_TYPE, _FRAME_TYPE, _FRAME_LENGTH, _PAYLOAD, _ALL_HEADERS, _ALL_FRAMING = range(6)


class _StreamReader:
    """Walks one stream's bytes: varint frame heads, payloads skipped by length."""

    __slots__ = ("frame_type", "partial", "remaining", "state")

    def __init__(self, unidirectional: bool) -> None:
        self.state = _STREAM_TYPE if unidirectional else _FRAME_TYPE
        self.partial = b""  # a varint split between two pieces
        self.frame_type = 0
        self.remaining = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> tuple[int, int]:
        """(header bytes, body bytes) in `data`; the rest of it is framing."""
        if self.state == _ALL_HEADERS:
            return len(data), 0
        if self.state == _ALL_FRAMING:
            return 0, 0
        if self.partial:
            data = self.partial + data
            self.partial = b""
        headers = body = 0
        pos, size = 0, len(data)
        while pos < size:
            if self.state == _PAYLOAD:
                take = min(self.remaining, size - pos)
                if self.frame_type == _HEADERS:
                    headers += take
                elif self.frame_type == _DATA:
                    body += take
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.state = _FRAME_TYPE
                continue
            length = 1 << (data[pos] >> 6)
            if size - pos < length:
                self.partial = data[pos:]
                break
            value = int.from_bytes(data[pos : pos + length], "big") & ((1 << (8 * length - 2)) - 1)
            pos += length
            if self.state == _STREAM_TYPE:
                self.state = (
                    _ALL_HEADERS
                    if value == _QPACK_ENCODER_STREAM
                    else (_FRAME_TYPE if value == 0x00 else _ALL_FRAMING)
                )
                if self.state == _ALL_HEADERS:
                    headers += size - pos
                    break
                if self.state == _ALL_FRAMING:
                    break
            elif self.state == _FRAME_TYPE:
                self.frame_type = value
                self.state = _FRAME_LENGTH
            else:
                self.remaining = value
                self.state = _PAYLOAD if value else _FRAME_TYPE
        return headers, body


class H3Tap:
    """One direction of an HTTP/3 connection: `feed` each datagram, `stream` each piece of
    stream data; the totals go into `counts`."""

    __slots__ = ("_counts", "_streams")

    def __init__(self, counts: WireCounts) -> None:
        self._counts = counts
        self._streams: dict[int, _StreamReader] = {}

    def feed(self, data: bytes) -> None:
        self._counts.framing += len(data)

    def stream(self, stream_id: int, data: bytes) -> None:
        reader = self._streams.get(stream_id)
        if reader is None:
            reader = self._streams[stream_id] = _StreamReader(bool(stream_id & 2))
        headers, body = reader.feed(data)
        counts = self._counts
        counts.headers += headers
        counts.body += body
        counts.framing -= headers + body  # they were counted in their datagram

    def forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
