"""A tiny, independent HTTP/2 wire client for tests: TLS + ALPN h2, raw frames in and out.

It shares no code with h2books, so a bug in our frame codec can't hide in both sides.
HPACK encoding for well-formed requests comes from the `hpack` library (the oracle).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

(
    DATA,
    HEADERS,
    PRIORITY,
    RST_STREAM,
    SETTINGS,
    PUSH_PROMISE,
    PING,
    GOAWAY,
    WINDOW_UPDATE,
    CONTINUATION,
) = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM = 0x4, 0x5, 0x6, 0x7
CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = 0x8, 0x9, 0xA, 0xB


@dataclass
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int:
        if self.type == GOAWAY:
            return int(struct.unpack(">I", self.payload[4:8])[0])
        if self.type == RST_STREAM:
            return int(struct.unpack(">I", self.payload[:4])[0])
        raise ValueError("not a GOAWAY or RST_STREAM")


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


def settings(**values: int) -> bytes:
    ids = {
        "header_table_size": 1,
        "enable_push": 2,
        "max_concurrent_streams": 3,
        "initial_window_size": 4,
        "max_frame_size": 5,
        "max_header_list_size": 6,
    }
    payload = b"".join(struct.pack(">HI", ids[name], value) for name, value in values.items())
    return frame(SETTINGS, 0, 0, payload)


class WireClient:
    def __init__(
        self, port: int, ca: Path | None = None, *, tls: bool = True, host: str = "127.0.0.1"
    ) -> None:
        raw = socket.create_connection((host, port), timeout=10)
        if tls:
            context = (
                ssl.create_default_context(cafile=str(ca))
                if ca
                else ssl._create_unverified_context()
            )
            context.set_alpn_protocols(["h2"])
            self.sock: socket.socket = context.wrap_socket(raw, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"  # type: ignore[attr-defined]
        else:
            self.sock = raw
        self.buffer = b""
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.closed = False
        self.backlog: dict[int, list[Frame]] = {}  # frames read while waiting for another stream

    def handshake(self, **values: int) -> None:
        """Preface + our SETTINGS; ACK the server's SETTINGS."""
        self.send(PREFACE + settings(**values))
        while True:
            f = self.read_frame()
            assert f is not None, "server closed during the handshake"
            if f.type == SETTINGS and not f.flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
                return

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request_block(
        self, path: str = "/hello", method: str = "GET", extra: list[tuple[str, str]] | None = None
    ) -> bytes:
        fields = [
            (":method", method),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", path),
        ]
        return self.encoder.encode(fields + (extra or []))

    def get(self, stream_id: int, path: str = "/hello") -> None:
        self.send(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, self.request_block(path)))

    def read_frame(self, timeout: float = 10.0) -> Frame | None:
        """The next frame, or None once the server has closed the connection."""
        deadline = time.monotonic() + timeout
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3], "big"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buffer += chunk
        length = int.from_bytes(self.buffer[:3], "big")
        kind, flags = self.buffer[3], self.buffer[4]
        stream_id = struct.unpack(">I", self.buffer[5:9])[0] & 0x7FFFFFFF
        payload = self.buffer[9 : 9 + length]
        self.buffer = self.buffer[9 + length :]
        return Frame(kind, flags, stream_id, payload)

    def frames_until(self, predicate, timeout: float = 10.0) -> list[Frame]:  # type: ignore[no-untyped-def]
        seen: list[Frame] = []
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return seen
            seen.append(f)
            if predicate(f):
                return seen

    def expect_goaway(self, timeout: float = 10.0) -> Frame:
        """Read until GOAWAY; then the server must close the connection."""
        frames = self.frames_until(lambda f: f.type == GOAWAY, timeout)
        goaways = [f for f in frames if f.type == GOAWAY]
        assert goaways, f"no GOAWAY; frames were {[(f.type, f.flags, f.stream_id) for f in frames]}"
        return goaways[-1]

    def expect_closed(self, timeout: float = 10.0) -> None:
        while self.read_frame(timeout) is not None:
            pass
        assert self.closed

    def response(self, stream_id: int, timeout: float = 10.0) -> tuple[dict[str, str], bytes]:
        """Collect one stream's response headers and body (acknowledging DATA as it comes).

        Frames of other streams are kept for their own `response` call.
        """
        headers: dict[str, str] = {}
        body = b""
        while True:
            waiting = self.backlog.get(stream_id)
            if waiting:
                f = waiting.pop(0)
            else:
                got = self.read_frame(timeout)
                assert got is not None, "connection closed before the response ended"
                f = got
                if f.type == PING and not f.flags & ACK:
                    self.send(frame(PING, ACK, 0, f.payload))
                if f.type == HEADERS:
                    # HPACK state is per connection: decode in arrival order.
                    f.decoded = self.decoder.decode(f.payload)  # type: ignore[attr-defined]
                if f.type == DATA and f.payload:
                    increment = struct.pack(">I", len(f.payload))
                    self.send(
                        frame(WINDOW_UPDATE, 0, 0, increment)
                        + frame(WINDOW_UPDATE, 0, f.stream_id, increment)
                    )
                if f.stream_id != stream_id:
                    if f.stream_id:
                        self.backlog.setdefault(f.stream_id, []).append(f)
                    continue
            if f.type == HEADERS:
                for name, value in f.decoded:  # type: ignore[attr-defined]
                    headers[name] = value
            elif f.type == DATA:
                body += f.payload
            elif f.type == RST_STREAM:
                raise AssertionError(f"stream {stream_id} reset with code {f.error_code}")
            if f.type in (HEADERS, DATA) and f.flags & END_STREAM:
                return headers, body

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
