"""Bytes on the wire, split into header fields, bodies and everything else.

The counting is a tap on the plaintext byte streams (what goes into TLS and
what comes out of it), independent of the protocol cores: it re-reads frame
headers (HTTP/2) or message delimiters (HTTP/1.x) on its own, so the figures
show what the protocols cost on the wire, not what our cores think they sent.

HTTP/2: HEADERS and CONTINUATION payloads count as headers, DATA payloads as
body; the 9-byte frame headers, padding, priority fields, the connection
preface and every other frame (SETTINGS, WINDOW_UPDATE, PING, ...) count as
framing. HTTP/1.x: the head (start line, fields, blank line) and trailer lines
count as headers; content as body; chunk-size lines and chunk CRLFs as framing.

A tap never raises: bytes it cannot make sense of are counted as framing.

Header compression: ``headers_plain`` counts the same header fields uncompressed, one
``name: value`` line each (`header_list_size`). HTTP/1.x sends them as text, so there it
equals ``headers``; over HTTP/2 the connection adds each list it sends or receives, and
`HeaderBytes` puts the two side by side, per direction and per protocol.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from h2books.protocol.h2.frames import (
    CLIENT_PREFACE,
    CONTINUATION,
    DATA,
    FRAME_HEADER_SIZE,
    HEADERS,
    PADDED,
    PRIORITY_FLAG,
)

if TYPE_CHECKING:
    from h2books.client.stats_h3 import H3Tap

__all__ = [
    "H1StreamTap",
    "H2FrameTap",
    "H2ReadCounter",
    "HeaderBytes",
    "WireCounts",
    "WireStats",
    "header_list_size",
]

_LENGTH_TYPE_AND_FLAGS = struct.Struct(">IB")  # (length << 8 | type, flags)
_DATA, _HEADERS, _CONTINUATION = DATA, HEADERS, CONTINUATION
_PUSH_PROMISE = 0x5
_PADDED, _PRIORITY = PADDED, PRIORITY_FLAG
_FRAME_HEADER = FRAME_HEADER_SIZE
_PREFACE_SIZE = len(CLIENT_PREFACE)


def header_list_size(fields: Sequence[tuple[bytes, bytes]]) -> int:
    """Octets of the fields as text, one ``name: value`` line each (CRLF included): what
    they take uncompressed, the figure header compression is measured against."""
    return sum(map(len, chain.from_iterable(fields))) + 4 * len(fields)


class WireCounts:
    """Byte totals for one direction; ``headers_plain``: the header fields uncompressed."""

    __slots__ = ("body", "framing", "headers", "headers_plain")

    def __init__(self) -> None:
        self.headers = 0
        self.headers_plain = 0
        self.body = 0
        self.framing = 0

    @property
    def total(self) -> int:
        return self.headers + self.body + self.framing

    def as_dict(self) -> dict[str, int]:
        return {
            "headers": self.headers,
            "headers_plain": self.headers_plain,
            "body": self.body,
            "framing": self.framing,
            "total": self.total,
        }


class WireStats:
    """Totals for a client (all its connections): bytes sent and received, connections opened."""

    __slots__ = ("connections", "received", "sent")

    def __init__(self) -> None:
        self.sent = WireCounts()
        self.received = WireCounts()
        self.connections = 0

    def h2_taps(self) -> tuple[H2FrameTap, H2ReadCounter]:
        """The outgoing tap and the incoming counter of a new client-side HTTP/2
        connection."""
        self.connections += 1
        return H2FrameTap(self.sent, preface=True), H2ReadCounter(self.received)

    def h1_taps(self) -> tuple[H1StreamTap, H1StreamTap]:
        """(outgoing, incoming) taps for a new client-side HTTP/1.1 connection."""
        self.connections += 1
        incoming = H1StreamTap(self.received, responses=True)
        return H1StreamTap(self.sent, responses=False, peer=incoming), incoming

    def h3_taps(self) -> tuple[H3Tap, H3Tap]:
        """(outgoing, incoming) taps for a new client-side HTTP/3 connection."""
        from h2books.client.stats_h3 import H3Tap  # it builds on WireCounts, above

        self.connections += 1
        return H3Tap(self.sent), H3Tap(self.received)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "sent": self.sent.as_dict(),
            "received": self.received.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class HeaderBytes:
    """One protocol's header fields, per direction: octets on the wire (HEADERS and
    CONTINUATION payloads over HTTP/2, heads and trailers over HTTP/1.x; over HTTP/3, the
    QPACK field sections plus its encoder and decoder streams) against the same fields
    uncompressed. The bench prints one per protocol side by side."""

    protocol: str  # "h1" | "h2" | "h3"
    requests: int
    sent: int
    sent_plain: int
    received: int
    received_plain: int

    @classmethod
    def of(cls, protocol: str, stats: WireStats, requests: int) -> HeaderBytes:
        sent, received = stats.sent, stats.received
        return cls(
            protocol,
            requests,
            sent.headers,
            sent.headers_plain,
            received.headers,
            received.headers_plain,
        )

    @staticmethod
    def saved(wire: int, plain: int) -> float | None:
        """Share of the uncompressed size that compression saved (None without figures)."""
        return 1 - wire / plain if plain else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "requests": self.requests,
            "sent": self.sent,
            "sent_plain": self.sent_plain,
            "received": self.received,
            "received_plain": self.received_plain,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeaderBytes:
        return cls(
            str(data["protocol"]),
            int(data["requests"]),
            int(data["sent"]),
            int(data["sent_plain"]),
            int(data["received"]),
            int(data["received_plain"]),
        )


class H2FrameTap:
    """Counts one direction of an HTTP/2 connection by reading its frame headers.

    Only frame headers (and the pad-length byte) are looked at; payloads are
    skipped by length, even when they span many reads.
    """

    __slots__ = ("_counts", "_partial", "_preface", "_skip")

    def __init__(self, counts: WireCounts, *, preface: bool = False) -> None:
        self._counts = counts
        self._preface = _PREFACE_SIZE if preface else 0
        self._skip = 0  # payload bytes of the current frame still to come
        self._partial = b""  # an incomplete frame header (< 10 bytes)

    def feed(self, data: bytes) -> None:
        size = len(data)
        pos = 0
        counts = self._counts
        if self._preface:
            pos = min(self._preface, size)
            self._preface -= pos
            counts.framing += pos
        if self._skip:
            take = min(self._skip, size - pos)
            self._skip -= take
            pos += take
        if pos >= size:
            return
        if self._partial:
            data = self._partial + data[pos:]
            self._partial = b""
            size = len(data)
            pos = 0
        # Frame headers are counted at the end (9 octets a frame); here, payloads only:
        # the common frames (no padding, no priority) in one test each.
        headers = body = framing = frames = 0
        unpack_from = _LENGTH_TYPE_AND_FLAGS.unpack_from
        while size - pos >= _FRAME_HEADER:
            word, flags = unpack_from(data, pos)
            length = word >> 8
            kind = word & 0xFF
            if kind in (_DATA, _HEADERS):
                if flags & _PADDED or (kind == _HEADERS and flags & _PRIORITY):
                    overhead = 0
                    if flags & _PADDED:
                        if size - pos <= _FRAME_HEADER:
                            break  # the pad length is in the next read
                        overhead = 1 + data[pos + _FRAME_HEADER]
                    if kind == _HEADERS and flags & _PRIORITY:
                        overhead += 5
                    content = length - overhead if length >= overhead else 0
                    framing += length - content
                else:
                    content = length
                if kind == _DATA:
                    body += content
                else:
                    headers += content
            elif kind == _PUSH_PROMISE and length >= 4:
                # A request head the server sent: header bytes, less the promised id.
                headers += length - 4
                framing += 4
            elif kind == _CONTINUATION:
                headers += length
            else:
                framing += length
            frames += 1
            pos += _FRAME_HEADER + length
        if pos > size:
            self._skip = pos - size
        elif pos < size:
            self._partial = bytes(data[pos:])
        counts.headers += headers
        counts.body += body
        counts.framing += framing + frames * _FRAME_HEADER


class H2ReadCounter:
    """Counts what an HTTP/2 connection reads from the totals its core keeps anyway
    (`H2Connection.received_octets`: header block and DATA content octets), the rest as
    framing: what `H2FrameTap` would count, without a second pass over the frames.
    `feed` each read, then `settle` with the core's totals once the core has it."""

    __slots__ = ("_body", "_counts", "_headers", "_read")

    def __init__(self, counts: WireCounts) -> None:
        self._counts = counts
        self._read = 0  # octets fed since the last settle
        self._headers = 0  # the core's totals at the last settle
        self._body = 0

    def feed(self, data: bytes) -> None:
        self._read += len(data)

    def settle(self, octets: tuple[int, int]) -> None:
        headers, body = octets
        counts = self._counts
        new_headers = headers - self._headers
        new_body = body - self._body
        counts.headers += new_headers
        counts.body += new_body
        # A frame cut by the end of a read counts as framing until its end arrives.
        counts.framing += self._read - new_headers - new_body
        self._read = 0
        self._headers = headers
        self._body = body


# H1StreamTap states
_HEAD, _FIXED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _LOST = range(8)
# Beyond this much buffered without finding a delimiter, stop trying to parse.
_MAX_PARTIAL = 1 << 20


class H1StreamTap:
    """Counts one direction of an HTTP/1.x connection: heads, bodies, chunk framing.

    The request-side tap tells its response-side peer which requests were HEAD,
    since a response to HEAD has no body whatever its Content-Length says.
    """

    __slots__ = ("_bodiless", "_buffer", "_counts", "_peer", "_remaining", "_responses", "_state")

    def __init__(
        self, counts: WireCounts, *, responses: bool, peer: H1StreamTap | None = None
    ) -> None:
        self._counts = counts
        self._responses = responses
        self._peer = peer
        self._state = _HEAD
        self._remaining = 0
        self._buffer = b""
        # For a response tap: one flag per request sent, True when its response has no body.
        self._bodiless: deque[bool] = deque()

    def feed(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        size = len(data)
        pos = 0
        counts = self._counts
        if self._state == _HEAD:
            # The common read: one whole message, its head and a Content-Length body.
            end = data.find(b"\r\n\r\n") + 4
            if end > 3:
                self._on_head(data[:end])
                if (self._state == _FIXED and end + self._remaining == size) or (
                    self._state == _HEAD and end == size
                ):
                    counts.headers += end
                    counts.headers_plain += end  # sent as text
                    counts.body += size - end
                    self._state = _HEAD
                    self._remaining = 0
                    return
                counts.headers += end
                counts.headers_plain += end  # sent as text
                pos = end
        while pos < size:
            state = self._state
            if state in (_FIXED, _CHUNK_DATA, _CHUNK_END):
                take = min(self._remaining, size - pos)
                if state == _CHUNK_END:
                    counts.framing += take
                else:
                    counts.body += take
                pos += take
                self._remaining -= take
                if not self._remaining:
                    if state == _FIXED:
                        self._state = _HEAD
                    elif state == _CHUNK_DATA:
                        self._state = _CHUNK_END
                        self._remaining = 2
                    else:
                        self._state = _CHUNK_SIZE
            elif state == _HEAD:
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    self._keep(data, pos)
                    return
                end += 4
                counts.headers += end - pos
                counts.headers_plain += end - pos  # sent as text
                self._on_head(data[pos:end])
                pos = end
            elif state in (_CHUNK_SIZE, _TRAILERS):
                end = data.find(b"\r\n", pos)
                if end < 0:
                    self._keep(data, pos)
                    return
                line = data[pos:end]
                pos = end + 2
                if state == _CHUNK_SIZE:
                    counts.framing += len(line) + 2
                    self._on_chunk_size(line)
                elif line:
                    counts.headers += len(line) + 2
                    counts.headers_plain += len(line) + 2  # sent as text
                else:
                    counts.framing += 2
                    self._state = _HEAD
            else:  # _UNTIL_CLOSE, _LOST
                if state == _UNTIL_CLOSE:
                    counts.body += size - pos
                else:
                    counts.framing += size - pos
                return

    def _keep(self, data: bytes, pos: int) -> None:
        rest = data[pos:]
        if len(rest) > _MAX_PARTIAL:
            self._counts.framing += len(rest)
            self._state = _LOST
        else:
            self._buffer = rest

    def _on_head(self, head: bytes) -> None:
        lower = head.lower()
        chunked = _TRANSFER_ENCODING in lower and _field_value(lower, _TRANSFER_ENCODING).endswith(
            b"chunked"
        )
        length_text = _field_value(lower, _CONTENT_LENGTH)
        length = int(length_text) if length_text.isdigit() else -1
        if self._responses:
            status_text = head[9:12]
            status = int(status_text) if status_text.isdigit() else 0
            if 100 <= status < 200:
                return  # interim: the final response still follows
            bodiless = self._bodiless.popleft() if self._bodiless else False
            if bodiless or status in (204, 304):
                self._state = _HEAD
                return
            if not chunked and length < 0:
                self._state = _UNTIL_CLOSE
                return
        elif self._peer is not None:
            self._peer._bodiless.append(head.startswith(b"HEAD "))
        if chunked:
            self._state = _CHUNK_SIZE
        elif length > 0:
            self._state = _FIXED
            self._remaining = length
        else:
            self._state = _HEAD

    def _on_chunk_size(self, line: bytes) -> None:
        digits = line.split(b";", 1)[0].strip(b" \t")
        try:
            size = int(digits, 16) if digits else -1
        except ValueError:
            size = -1
        if size < 0:
            self._state = _LOST
        elif size == 0:
            self._state = _TRAILERS
        else:
            self._state = _CHUNK_DATA
            self._remaining = size


_TRANSFER_ENCODING = b"\r\ntransfer-encoding:"
_CONTENT_LENGTH = b"\r\ncontent-length:"


def _field_value(lower_head: bytes, marker: bytes) -> bytes:
    """The (stripped) value of the first field `marker` (CRLF, name, colon) introduces in a
    lowercased head, or b""."""
    start = lower_head.find(marker)
    if start < 0:
        return b""
    start += len(marker)
    end = lower_head.find(b"\r\n", start)
    return lower_head[start:end].strip(b" \t")
