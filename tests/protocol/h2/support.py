"""Test helpers: raw frames built with struct, an independent output parser, and
drivers that pair our connection with the `h2` library (the oracle) in memory."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import hpack

from h2books.protocol.h2 import H2Config, H2Connection
from h2books.protocol.h2 import events as ev

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/"),
    (b":authority", b"example.com"),
]


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A raw frame, written independently of the code under test."""
    length = len(payload)
    return (
        struct.pack(">BHBBI", length >> 16, length & 0xFFFF, frame_type, flags, stream_id) + payload
    )


def settings_frame(*pairs: tuple[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


@dataclass
class Out:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int:
        offset = 4 if self.type == GOAWAY else 0
        return int(struct.unpack_from(">I", self.payload, offset)[0])

    @property
    def last_stream_id(self) -> int:
        return int(struct.unpack_from(">I", self.payload, 0)[0]) & 0x7FFFFFFF


def parse(data: bytes) -> list[Out]:
    """Split our output into frames (independent of h2books.protocol.h2.frames)."""
    frames = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 9, "truncated frame header in output"
        high, low, frame_type, flags, sid = struct.unpack_from(">BHBBI", data, pos)
        length = (high << 16) | low
        payload = data[pos + 9 : pos + 9 + length]
        assert len(payload) == length, "truncated frame in output"
        frames.append(Out(frame_type, flags, sid & 0x7FFFFFFF, payload))
        pos += 9 + length
    return frames


class RawClient:
    """Drives our server with hand-built frames and an hpack (library) encoder."""

    def __init__(self, config: H2Config | None = None, settings: bytes | None = None) -> None:
        self.conn = H2Connection(config)
        self.conn.initiate(0.0)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.events: list[ev.Event] = []
        first = settings if settings is not None else settings_frame()
        self.send(PREFACE + first + frame(SETTINGS, ACK, 0))
        self.take()

    def send(self, data: bytes, now: float = 0.0) -> list[ev.Event]:
        events = self.conn.receive_data(data, now)
        self.events.extend(events)
        return events

    def take(self) -> list[Out]:
        return parse(self.conn.data_to_send())

    def block(self, fields: list[tuple[bytes, bytes]] | None = None) -> bytes:
        return self.encoder.encode(REQUEST if fields is None else fields)

    def headers(
        self,
        stream_id: int,
        fields: list[tuple[bytes, bytes]] | None = None,
        end_stream: bool = True,
        flags: int = 0,
    ) -> bytes:
        flags |= END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, stream_id, self.block(fields))

    def terminated(self) -> ev.ConnectionTerminated | None:
        for event in self.events:
            if isinstance(event, ev.ConnectionTerminated):
                return event
        return None


def goaway_code(frames: list[Out]) -> int | None:
    codes = [f.error_code for f in frames if f.type == GOAWAY]
    return codes[-1] if codes else None


def rst_codes(frames: list[Out]) -> dict[int, int]:
    return {f.stream_id: f.error_code for f in frames if f.type == RST_STREAM}


class LibClientPair:
    """The `h2` library as the client, our H2Connection as the server, in memory."""

    def __init__(self, config: H2Config | None = None) -> None:
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.server = H2Connection(config)
        self.server.initiate(0.0)
        self.client.initiate_connection()
        self.server_events: list[ev.Event] = []
        self.client_events: list[h2.events.Event] = []
        self.pump()

    def pump(self, now: float = 0.0) -> tuple[list[ev.Event], list[h2.events.Event]]:
        """Move bytes both ways until both sides are quiet; returns the new events."""
        new_server: list[ev.Event] = []
        new_client: list[h2.events.Event] = []
        for _ in range(1000):
            to_server = self.client.data_to_send()
            if to_server:
                new_server.extend(self.server.receive_data(to_server, now))
            to_client = self.server.data_to_send()
            if to_client:
                new_client.extend(self.client.receive_data(to_client))
            if not to_server and not to_client:
                break
        else:  # pragma: no cover - a livelock is a bug
            raise AssertionError("endpoints never went quiet")
        self.server_events.extend(new_server)
        self.client_events.extend(new_client)
        return new_server, new_client

    def request(
        self,
        path: bytes = b"/",
        method: bytes = b"GET",
        extra: list[tuple[bytes, bytes]] | None = None,
        end_stream: bool = True,
    ) -> int:
        sid: int = self.client.get_next_available_stream_id()
        fields = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":path", path),
            (b":authority", b"example.com"),
            *(extra or []),
        ]
        self.client.send_headers(sid, fields, end_stream=end_stream)
        return sid


def client_body(events: list[h2.events.Event], stream_id: int) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
    )
