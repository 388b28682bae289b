"""Plumbing for the conformance suite: an h2spec-style test connection over the wire.

The suite speaks h2spec's vocabulary, made as strict as RFC 9113 is:

- **connection error X**: a GOAWAY with code X whose last-stream-id is sensible (no lower
  than any stream the server answered, no higher than the highest stream we opened), and
  then the TCP connection closes (EOF) within `CLOSE_TIMEOUT`;
- **stream error X**: RST_STREAM X on that stream or, as h2spec also accepts, a connection
  error X;
- **must succeed**: the expected frame or response arrives within `REACTION_TIMEOUT`.

Every frame the server sends is logged, so a failure says what came instead. Frames are
built here by hand (the server's codec must not be the one checking itself); HPACK blocks
for well-formed fields come from the `hpack` library, the oracle.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn

import hpack

from tests.conftest import ServerProcess
from tests.server.h2wire import (
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
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    Frame,
    WireClient,
    frame,
)

# h2spec waits 2 s for a reaction; the box running this suite is small and shared.
REACTION_TIMEOUT = 3.0
CLOSE_TIMEOUT = 3.0
# h2spec's default --max-header-length: the size of the values of its dummy fields.
MAX_HEADER_LEN = 4000
DEFAULT_WINDOW = 65535

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

FRAME_NAMES = dict(
    enumerate(
        [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ]
    )
)
ERROR_NAMES = dict(
    enumerate(
        [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ]
    )
)

Fields = list[tuple[str, str]]


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"{code:#x}")


def describe(f: Frame | None) -> str:
    """One frame (None: the end of the connection) as a short readable string."""
    if f is None:
        return "EOF"
    name = FRAME_NAMES.get(f.type, f"type {f.type:#x}")
    if f.type == GOAWAY and len(f.payload) >= 8:
        last = struct.unpack(">I", f.payload[:4])[0] & 0x7FFFFFFF
        return f"GOAWAY(last_stream_id={last}, {error_name(f.error_code)})"
    if f.type == RST_STREAM and len(f.payload) == 4:
        return f"RST_STREAM(stream={f.stream_id}, {error_name(f.error_code)})"
    return f"{name}(stream={f.stream_id}, flags={f.flags:#x}, length={len(f.payload)})"


# -- frames, built by hand --------------------------------------------------------------


def headers(
    stream_id: int,
    block: bytes,
    *,
    end_stream: bool = True,
    end_headers: bool = True,
    pad_length: int | None = None,
    priority: tuple[int, int, bool] | None = None,
) -> bytes:
    """A HEADERS frame; `priority` is (stream dependency, weight octet, exclusive)."""
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    payload = block
    if priority is not None:
        depends_on, weight, exclusive = priority
        payload = struct.pack(">IB", depends_on | (exclusive << 31), weight) + payload
        flags |= PRIORITY_FLAG
    if pad_length is not None:
        payload = bytes([pad_length]) + payload + bytes(pad_length)
        flags |= PADDED
    return frame(HEADERS, flags, stream_id, payload)


def continuation(stream_id: int, block: bytes, *, end_headers: bool = True) -> bytes:
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream_id, block)


def data(
    stream_id: int, payload: bytes = b"test", *, end_stream: bool = True, padding: int | None = None
) -> bytes:
    flags = END_STREAM if end_stream else 0
    if padding is not None:
        payload = bytes([padding]) + payload + bytes(padding)
        flags |= PADDED
    return frame(DATA, flags, stream_id, payload)


def priority(
    stream_id: int, *, depends_on: int = 0, weight: int = 255, exclusive: bool = False
) -> bytes:
    return frame(PRIORITY, 0, stream_id, struct.pack(">IB", depends_on | (exclusive << 31), weight))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def settings_frame(*pairs: tuple[int, int], stream_id: int = 0) -> bytes:
    """SETTINGS with the pairs in order: repeated and unknown identifiers allowed."""
    return frame(SETTINGS, 0, stream_id, b"".join(struct.pack(">HI", i, v) for i, v in pairs))


def settings_ack() -> bytes:
    return frame(SETTINGS, ACK, 0)


def ping(payload: bytes = bytes(8), *, ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, payload)


def goaway(last_stream_id: int = 0, code: int = 0, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def push_promise(stream_id: int, promised_id: int, block: bytes) -> bytes:
    return frame(PUSH_PROMISE, END_HEADERS, stream_id, struct.pack(">I", promised_id) + block)


def unknown_frame(stream_id: int = 0, kind: int = 0x16, payload: bytes = bytes(8)) -> bytes:
    """A frame of a type RFC 9113 does not define (h2spec uses 0x16)."""
    return frame(kind, 0, stream_id, payload)


# -- HPACK by hand (RFC 7541 §5, §6) -----------------------------------------------------


def hpack_integer(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """An integer with an N-bit prefix (RFC 7541 §5.1); `flags` fills the first octet's
    high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(raw: bytes) -> bytes:
    """A string literal without Huffman coding (RFC 7541 §5.2)."""
    return hpack_integer(len(raw), 7) + raw


def literal_field(name: bytes, value: bytes, *, representation: int = 0x00) -> bytes:
    """A literal field with a literal name: 0x00 without indexing, 0x10 never indexed,
    0x40 with incremental indexing (RFC 7541 §6.2)."""
    return bytes([representation]) + hpack_string(name) + hpack_string(value)


def table_size_update(size: int) -> bytes:
    return hpack_integer(size, 5, 0x20)


# -- the connection ---------------------------------------------------------------------


class Conn:
    """One client connection to the real server, driven frame by frame like h2spec's."""

    _ping_counter = itertools.count(1)

    def __init__(self, server: ServerProcess, *, tls: bool = True) -> None:
        port = server.port if tls else server.http_port
        self.wire = WireClient(port, server.ca if tls else None, tls=tls)
        self.scheme = "https" if tls else "http"
        self.authority = f"localhost:{port}"
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.server_settings: dict[int, int] = {}
        self.log: list[str] = []
        # For the GOAWAY last-stream-id check.
        self.highest_stream_opened = 0
        self.answered: set[int] = set()
        # Like h2spec: replenish a receive window once the server has used all of it.
        self.auto_window_update = True
        self._recv_windows: dict[int, int] = {0: DEFAULT_WINDOW}
        self._sent = bytearray()
        self._preface_sent = False
        self._block: dict[int, tuple[bytes, bool]] = {}  # blocks awaiting CONTINUATION
        self.response_fields: dict[int, Fields] = {}  # each stream's response head, in order
        # Our send windows, as the server's SETTINGS and WINDOW_UPDATEs set them.
        self._send_windows: dict[int, int] = {0: DEFAULT_WINDOW}

    # -- sending ---------------------------------------------------------------------------

    def send(self, *chunks: bytes) -> None:
        """Write bytes as one batch. A server that already hung up makes writes fail: that
        is for the checks that follow to judge, as h2spec does."""
        payload = b"".join(chunks)
        self._track_opened_streams(payload)
        with contextlib.suppress(OSError):
            self.wire.send(payload)

    def _track_opened_streams(self, payload: bytes) -> None:
        self._sent += payload
        if not self._preface_sent:
            if len(self._sent) < len(PREFACE) or not self._sent.startswith(PREFACE):
                return
            del self._sent[: len(PREFACE)]
            self._preface_sent = True
        while len(self._sent) >= 9:
            length = int.from_bytes(self._sent[:3], "big")
            if len(self._sent) < 9 + length:
                break
            if self._sent[3] == HEADERS:
                stream_id = int.from_bytes(self._sent[5:9], "big") & 0x7FFFFFFF
                self.highest_stream_opened = max(self.highest_stream_opened, stream_id)
            del self._sent[: 9 + length]

    def encode(self, fields: Iterable[tuple[str, str]]) -> bytes:
        return self.encoder.encode(list(fields))

    def request(self, method: str = "GET", path: str = "/", *extra: tuple[str, str]) -> Fields:
        """h2spec's common request fields, in its order, then `extra`."""
        return [
            (":method", method),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", self.authority),
            *extra,
        ]

    def dummy_fields(self, count: int) -> Fields:
        return [(f"x-dummy{i}", "x" * MAX_HEADER_LEN) for i in range(count)]

    def handshake(self, *pairs: tuple[int, int]) -> None:
        """Preface and our SETTINGS (INITIAL_WINDOW_SIZE 65535, as h2spec sends, then
        `pairs`); done once the server's SETTINGS is acknowledged and ours is too."""
        self.send(PREFACE, settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW), *pairs))
        got_settings = got_ack = False
        deadline = time.monotonic() + REACTION_TIMEOUT
        while not (got_settings and got_ack):
            f = self._read_until(deadline, "the server's SETTINGS and SETTINGS ACK")
            if f.type == SETTINGS:
                if f.flags & ACK:
                    got_ack = True
                else:
                    got_settings = True

    # -- receiving -------------------------------------------------------------------------

    def read(self, timeout: float) -> Frame | None:
        """The next frame (None at EOF), logged; raises TimeoutError."""
        f = self.wire.read_frame(timeout)
        self.log.append(describe(f))
        if f is None:
            return None
        if f.type in (HEADERS, CONTINUATION):
            self._collect_block(f)
        elif f.type == DATA:
            self._account(f)
        elif f.type == SETTINGS and not f.flags & ACK:
            for offset in range(0, len(f.payload) - 5, 6):
                ident, value = struct.unpack_from(">HI", f.payload, offset)
                self.server_settings[ident] = value
            self.send(settings_ack())
        elif f.type == WINDOW_UPDATE and len(f.payload) == 4:
            increment = struct.unpack(">I", f.payload)[0] & 0x7FFFFFFF
            self._send_windows[f.stream_id] = self.send_window(f.stream_id) + increment
        return f

    def send_window(self, stream_id: int) -> int:
        """How much DATA the server lets us send on `stream_id` (0: the connection)."""
        initial = self.server_settings.get(SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
        return self._send_windows.get(stream_id, initial)

    def send_body(self, stream_id: int, size: int) -> None:
        """`size` octets of DATA (the last frame with END_STREAM), never beyond the windows
        the server grants: a server that does not replenish them stalls this."""
        sent = 0
        while sent < size:
            room = min(self.send_window(0), self.send_window(stream_id), 16384, size - sent)
            if room <= 0:
                self.wait_for(
                    lambda f: f.type == WINDOW_UPDATE, f"a WINDOW_UPDATE after {sent} octets"
                )
                continue
            self.send(data(stream_id, b"x" * room, end_stream=sent + room == size))
            for window in (0, stream_id):
                self._send_windows[window] = self.send_window(window) - room
            sent += room

    def _collect_block(self, f: Frame) -> None:
        """Decode each response field block in arrival order (HPACK state is per
        connection) and hang the fields on the frame that completes it."""
        payload = f.payload
        if f.type == HEADERS:
            self.answered.add(f.stream_id)
            if f.flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if f.flags & PRIORITY_FLAG:
                payload = payload[5:]
            block, ends_stream = payload, bool(f.flags & END_STREAM)
        else:
            if f.stream_id not in self._block:
                self.fail("the server sent a CONTINUATION that continues nothing")
            block, ends_stream = self._block.pop(f.stream_id)
            block += payload
        if not f.flags & END_HEADERS:
            self._block[f.stream_id] = (block, ends_stream)
            return
        try:
            decoded = self.decoder.decode(block)
        except hpack.HPACKError as exc:
            self.fail(f"the server sent a field block hpack cannot decode ({exc})")
        f.fields = [(str(name), str(value)) for name, value in decoded]  # type: ignore[attr-defined]
        f.block = block  # type: ignore[attr-defined]
        f.ends_stream = ends_stream  # type: ignore[attr-defined]

    def _account(self, f: Frame) -> None:
        if not self.auto_window_update or not f.payload:
            return
        for stream_id in (f.stream_id, 0):
            window = self._recv_windows.get(stream_id, DEFAULT_WINDOW) - len(f.payload)
            if window <= 0:
                self.send(window_update(stream_id, DEFAULT_WINDOW - window))
                window = DEFAULT_WINDOW
            self._recv_windows[stream_id] = window

    def _read_until(self, deadline: float, what: str) -> Frame:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.fail(f"timed out waiting for {what}")
        try:
            f = self.read(remaining)
        except TimeoutError:
            self.fail(f"timed out waiting for {what}")
        if f is None:
            self.fail(f"the connection closed while waiting for {what}")
        return f

    def wait_for(
        self, accept: Callable[[Frame], bool], what: str, timeout: float = REACTION_TIMEOUT
    ) -> Frame:
        """Read until a frame `accept`s; other frames are logged and skipped."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._read_until(deadline, what)
            if accept(f):
                return f

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{message}; the server sent: {', '.join(self.log) or 'nothing'}")

    # -- outcomes --------------------------------------------------------------------------

    def expect_connection_error(self, *codes: int) -> Frame:
        """GOAWAY with one of `codes` and a sensible last-stream-id, then EOF."""
        wanted = " or ".join(error_name(c) for c in codes)
        goaway_frame = self.wait_for(lambda f: f.type == GOAWAY, f"GOAWAY({wanted})")
        self._check_goaway(goaway_frame, codes)
        self.expect_eof()
        return goaway_frame

    def expect_stream_error(self, stream_id: int, *codes: int) -> Frame:
        """RST_STREAM with one of `codes` on `stream_id`, or a connection error with one."""
        wanted = " or ".join(error_name(c) for c in codes)
        f = self.wait_for(
            lambda f: f.type == GOAWAY or (f.type == RST_STREAM and f.stream_id == stream_id),
            f"RST_STREAM({stream_id}, {wanted}) or GOAWAY({wanted})",
        )
        if f.type == RST_STREAM:
            if f.error_code not in codes:
                self.fail(f"stream {stream_id} reset with {error_name(f.error_code)}, not {wanted}")
            return f
        self._check_goaway(f, codes)
        self.expect_eof()
        return f

    def _check_goaway(self, f: Frame, codes: Sequence[int]) -> None:
        if len(f.payload) < 8:
            self.fail("GOAWAY shorter than 8 octets")
        if f.error_code not in codes:
            wanted = " or ".join(error_name(c) for c in codes)
            self.fail(f"GOAWAY with {error_name(f.error_code)}, not {wanted}")
        last = struct.unpack(">I", f.payload[:4])[0] & 0x7FFFFFFF
        # RFC 9113 §6.8: the highest stream the server might have acted on. It acted on
        # every stream it answered, and cannot have acted on one we never opened.
        floor = max(self.answered, default=0)
        if not floor <= last <= self.highest_stream_opened:
            self.fail(
                f"GOAWAY last-stream-id {last} outside [{floor}, {self.highest_stream_opened}]"
            )

    def expect_eof(self, timeout: float = CLOSE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                if self.read(remaining) is None:
                    return
            except TimeoutError:
                self.fail(f"the connection was still open {timeout} s later")

    def expect_closed(self, *goaway_codes: int) -> None:
        """EOF, with or without a GOAWAY first; a GOAWAY must carry one of `goaway_codes`."""
        self.expect_eof()
        for entry in self.log:
            if entry.startswith("GOAWAY") and not any(
                error_name(code) in entry for code in goaway_codes
            ):
                self.fail("GOAWAY with an unexpected code before the close")

    def expect_head_frame(self, stream_id: int) -> Frame:
        """The frame completing the next response field block on `stream_id` (its
        `fields` and `ends_stream` attributes set); a reset or GOAWAY fails."""
        f = self.wait_for(
            lambda f: (
                (f.stream_id == stream_id and hasattr(f, "fields"))
                or (f.type == RST_STREAM and f.stream_id == stream_id)
                or f.type == GOAWAY
            ),
            f"a HEADERS frame on stream {stream_id}",
        )
        if f.type in (RST_STREAM, GOAWAY):
            self.fail(f"expected a response on stream {stream_id}")
        self.response_fields[stream_id] = list(f.fields)  # type: ignore[attr-defined]
        return f

    def expect_headers(self, stream_id: int) -> Fields:
        """The response header fields on `stream_id` (h2spec's VerifyHeadersFrame)."""
        return list(self.expect_head_frame(stream_id).fields)  # type: ignore[attr-defined]

    def expect_response(self, stream_id: int) -> tuple[dict[str, str], bytes]:
        """A complete response: its header fields and its body."""
        head_frame = self.expect_head_frame(stream_id)
        head = dict(head_frame.fields)  # type: ignore[attr-defined]
        body = bytearray()
        if head_frame.ends_stream:  # type: ignore[attr-defined]
            return head, bytes(body)
        while True:
            f = self.wait_for(
                lambda f: (
                    (f.stream_id == stream_id and f.type in (DATA, HEADERS, RST_STREAM))
                    or f.type == GOAWAY
                ),
                f"the end of the response on stream {stream_id}",
            )
            if f.type in (RST_STREAM, GOAWAY):
                self.fail(f"the response on stream {stream_id} did not complete")
            if f.type == DATA:
                body += f.payload
            if f.flags & END_STREAM:
                return head, bytes(body)

    def expect_stream_end(self, stream_id: int) -> None:
        """h2spec's VerifyStreamClose: a DATA or HEADERS frame with END_STREAM."""
        self.wait_for(
            lambda f: (
                f.type in (DATA, HEADERS)
                and f.stream_id == stream_id
                and bool(f.flags & END_STREAM)
            ),
            f"END_STREAM on stream {stream_id}",
        )

    def expect_ping_ack(self, payload: bytes, *, forbidden: bytes | None = None) -> None:
        """A PING ACK echoing `payload`; a PING carrying `forbidden` fails the check."""

        def accept(f: Frame) -> bool:
            if f.type != PING:
                return False
            if forbidden is not None and f.payload == forbidden:
                self.fail("the server answered a PING it must not answer")
            return bool(f.flags & ACK) and f.payload == payload

        self.wait_for(accept, f"PING ACK with payload {payload!r}")

    def expect_ping_ack_or_eof(self, payload: bytes) -> None:
        """h2spec's VerifyPingFrameOrConnectionClose: the PING ACK, or a closed connection."""
        deadline = time.monotonic() + REACTION_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                f = self.read(remaining)
            except TimeoutError:
                self.fail(f"neither a PING ACK with payload {payload!r} nor a close")
            if f is None or (f.type == PING and f.flags & ACK and f.payload == payload):
                return

    def expect_alive(self) -> None:
        """The connection still works: a fresh PING is answered."""
        payload = struct.pack(">Q", next(self._ping_counter) | 0x6C69766500000000)
        self.send(ping(payload))
        self.expect_ping_ack(payload)

    def expect_frame(self, kind: int, stream_id: int | None = None) -> Frame:
        """h2spec's VerifyEventType: the next frame of that type (others skipped)."""
        name = FRAME_NAMES.get(kind, hex(kind))
        return self.wait_for(
            lambda f: f.type == kind and (stream_id is None or f.stream_id == stream_id),
            f"a {name} frame" + (f" on stream {stream_id}" if stream_id is not None else ""),
        )

    def close(self) -> None:
        self.wire.close()
