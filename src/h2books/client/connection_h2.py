"""One HTTP/2 client connection: asyncio glue around the sans-IO `H2Connection` core.

Requests are multiplexed: `submit` opens a stream at once when the server's
SETTINGS_MAX_CONCURRENT_STREAMS allows, or queues the request until a stream
finishes. Nothing here starts a task: a request is a future, a response is the
events of one read, and all output of one loop iteration (new requests, window
updates, SETTINGS ACKs) leaves in one write, flushed by a single `call_soon`.
A read longer than `READ_SLICE` goes to the core a slice per loop turn, so that the
socket is read (and the kernel acknowledges) while a burst of responses is decoded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import cast

from h2books.client.base import ClientConnection, ConnectionOwner, ConnectionSettings
from h2books.client.errors import (
    ClientError,
    GoAwayError,
    ProtocolError,
    RemoteClosedError,
    StreamResetError,
    TLSError,
)
from h2books.client.exchange import Exchange
from h2books.client.stats import H2FrameTap, H2ReadCounter, WireStats, header_list_size
from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection, H2UsageError
from h2books.protocol.h2 import events as ev

__all__ = ["H2ClientProtocol", "error_name"]

HTTP_VERSION = "HTTP/2"
_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
# Until the server's SETTINGS say otherwise (RFC 9113 §6.5.2 suggests no less than 100).
_INITIAL_MAX_STREAMS = 100
# RFC 7541 counts 32 octets per field; a "name: value" line with its CRLF takes 4.
_ENTRY_OVERHEAD_OVER_A_LINE = 32 - 4
# The most octets of a read handed to the core in one loop turn. The kernel acknowledges
# TCP data when the application reads it (once its window would shrink), so a read whose
# responses take tens of milliseconds to decode (a burst of pushes: ~40 µs each) would
# hold the server's ACKs that long and stretch its congestion window's growth. Between
# slices the loop reads the socket again, and what it reads waits its turn here.
READ_SLICE = 8192
# Read and not handed to the core yet: past this, the transport stops reading until the
# backlog is half gone (DATA is bounded by flow control; header blocks are not).
MAX_READ_BACKLOG = 1 << 20


def error_name(code: int) -> str:
    """``ENHANCE_YOUR_CALM (0xb)`` for a known HTTP/2 error code, ``0x...`` otherwise."""
    try:
        return f"{ErrorCode(code).name} (0x{code:x})"
    except ValueError:
        return f"unknown error code 0x{code:x}"


def _debug_suffix(debug: bytes) -> str:
    text = debug[:200].decode("utf-8", "replace").strip()
    return f": {text!r}" if text else ""


class H2ClientProtocol(ClientConnection):
    """Drives one client-side `H2Connection` over a transport (TLS with ALPN h2, or h2c)."""

    http_version = HTTP_VERSION

    def __init__(self, owner: ConnectionOwner, settings: ConnectionSettings) -> None:
        super().__init__(owner, settings)
        origin = settings.origin
        self._max_response_size = settings.max_response_size
        self._conn = H2Connection(H2Config(client_side=True, enable_push=settings.push))
        # Open streams in the order they were opened (the watchdog checks the oldest).
        self._streams: dict[int, Exchange] = {}
        self._max_streams = _INITIAL_MAX_STREAMS
        self._scheme = (b":scheme", origin.scheme.encode("ascii"))
        self._authority = (b":authority", origin.authority.encode("ascii"))
        self._extra = settings.extra_fields
        # Counts the header fields uncompressed next to the taps' wire bytes, when asked for:
        # requests as they are sent (the parts every request shares counted once, here),
        # responses from the core's decoder totals when the connection ends.
        self._stats = settings.stats
        self._shared_request_size = header_list_size(
            [(b":method", b""), self._scheme, self._authority, (b":path", b""), *self._extra]
        )
        self._flush_scheduled = False
        self._unflushed = 0  # streams opened since the last write
        self._first_read = True
        self._backlog = bytearray()  # read, waiting for its slice (READ_SLICE)
        self._reading_paused = False

    @staticmethod
    def _wire_taps(stats: WireStats) -> tuple[H2FrameTap, H2ReadCounter]:
        return stats.h2_taps()

    @property
    def outstanding(self) -> int:
        return len(self._streams) + len(self._queue)

    # -- requests ---------------------------------------------------------------------------

    def submit(self, exchange: Exchange) -> None:
        if self._conn.request_stream_count < self._max_streams and not self._queue:
            self._open_stream(exchange)
        else:
            self._queue.append(exchange)
        self._watchdog.arm()

    def _open_stream(self, exchange: Exchange) -> bool:
        fields = [
            (b":method", exchange.method),
            self._scheme,
            self._authority,
            (b":path", exchange.target),
            *self._extra,
            *exchange.fields,
        ]
        try:
            stream_id = self._conn.send_request(fields, exchange.body, True)
        except H2UsageError as exc:
            self._queue.appendleft(exchange)
            if self._conn.request_stream_count:
                return False  # the core's view of the stream limit counts: wait for a slot
            # Nothing open, so not the limit: stream ids exhausted or the connection is
            # closing. Its requests move to a new connection.
            self._stop_accepting()
            self._hand_back_queue(RemoteClosedError(f"{self._where}: {exc}"))
            self._close_when_idle()
            return False
        self._streams[stream_id] = exchange
        if self._stats is not None:
            self._stats.sent.headers_plain += (
                self._shared_request_size
                + len(exchange.method)
                + len(exchange.target)
                + (header_list_size(exchange.fields) if exchange.fields else 0)
            )
        self._unflushed += 1
        if self._unflushed * 4 >= self._max_streams:
            # Requests opened by one loop iteration's callbacks leave in quarters of the
            # stream limit, so the server works on the first while the rest are made.
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def _open_queued(self) -> None:
        queue = self._queue
        limit = self._max_streams
        conn = self._conn
        while queue and conn.request_stream_count < limit and self._accepting:
            if not self._open_stream(queue.popleft()):
                break

    # -- asyncio.Protocol (the rest is in ClientConnection) ------------------------------

    def _alpn_error(self, alpn: str | None) -> ClientError | None:
        if alpn == "h2":
            return None
        offered = f"chose {alpn!r}" if alpn else "did not answer ALPN"
        return TLSError(
            f"{self._where} does not speak HTTP/2 over TLS: it {offered} "
            "when offered only 'h2' (try --http1)"
        )

    def _start(self) -> None:
        self._conn.initiate(self._loop.time())
        self._flush()

    def data_received(self, data: bytes) -> None:
        backlog = self._backlog
        if not backlog and len(data) <= READ_SLICE:
            self._process(data)
            return
        if not backlog:
            self._loop.call_soon(self._next_slice)
        backlog += data
        if len(backlog) > MAX_READ_BACKLOG and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()

    def _next_slice(self) -> None:
        """One slice of the backlog to the core; the loop reads the socket before the next."""
        backlog = self._backlog
        if not backlog:
            return
        if self._error is not None or self._lost:  # the connection failed: the rest is moot
            backlog.clear()
            return
        chunk = bytes(backlog[:READ_SLICE])
        del backlog[:READ_SLICE]
        if backlog:
            self._loop.call_soon(self._next_slice)
        if self._reading_paused and len(backlog) <= MAX_READ_BACKLOG // 2:
            self._reading_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
        self._process(chunk)

    def _drain_backlog(self) -> None:
        """What was read before the end (EOF or loss) goes to the core before the end does."""
        if self._backlog and self._error is None:
            data = bytes(self._backlog)
            self._backlog.clear()
            self._process(data)

    def _process(self, data: bytes) -> None:
        if self._in_tap is not None:
            self._in_tap.feed(data)
        if self._first_read:
            self._first_read = False
            if data.startswith(b"HTTP/1."):
                self._fail_connection(
                    ProtocolError(
                        f"{self._where} answered the HTTP/2 preface in HTTP/1.x: it does not "
                        "speak h2c with prior knowledge (try --http1)"
                    )
                )
                return
        conn = self._conn
        streams = self._streams
        now = self._loop.time()
        for event in conn.receive_data(data, now):
            # isinstance narrows for mypy and costs the same as a `type(...) is` test.
            if isinstance(event, ev.DataReceived):
                stream_id = event.stream_id
                if event.flow_controlled_length and (stream_id & 1 or not event.end_stream):
                    # Bodies are buffered here, so the window reopens as bytes arrive;
                    # the core batches the WINDOW_UPDATEs. (The last DATA of a request's
                    # stream too: while our request body is still going out, the stream
                    # stays open. A push's last DATA closes it, our side being done since
                    # the promise: the core gave its octets back then.)
                    conn.acknowledge_received_data(stream_id, event.flow_controlled_length)
                exchange = streams.get(stream_id)
                if exchange is None:
                    continue
                chunk = event.data
                if chunk:
                    exchange.received += len(chunk)
                    if exchange.received > self._max_response_size:
                        self._response_too_large(stream_id, exchange)
                        continue
                    if event.end_stream and not exchange.chunks:  # the whole body at once
                        del streams[stream_id]
                        self._resolve(exchange, chunk)
                        continue
                    exchange.chunks.append(chunk)
                if event.end_stream:
                    self._finish(stream_id, exchange)
            elif isinstance(event, ev.ResponseReceived):
                exchange = streams.get(event.stream_id)
                if exchange is None:
                    continue
                exchange.status = event.status
                exchange.response_headers = event.headers
                if event.end_stream:
                    self._finish(event.stream_id, exchange)
            elif isinstance(event, ev.PushPromiseReceived):
                self._on_push_promise(event, now)
            elif isinstance(event, ev.TrailersReceived):
                exchange = streams.get(event.stream_id)
                if exchange is not None:
                    exchange.response_trailers = event.headers
                    self._finish(event.stream_id, exchange)
            elif isinstance(event, ev.StreamReset):
                self._on_stream_reset(event)
            elif isinstance(event, ev.InformationalResponseReceived):
                exchange = streams.get(event.stream_id)
                if exchange is not None:
                    exchange.inform(event.status, event.headers)
            elif isinstance(event, ev.RemoteSettingsChanged):
                limit = event.changes.get(_SETTINGS_MAX_CONCURRENT_STREAMS)
                if limit is not None:
                    self._max_streams = limit
            elif isinstance(event, ev.GoAwayReceived):
                self._on_goaway(event.error_code, event.last_stream_id, event.debug)
            elif isinstance(event, ev.ConnectionTerminated):
                self._on_terminated(event)
        if self._in_tap is not None:
            cast(H2ReadCounter, self._in_tap).settle(conn.received_octets)
        if self._queue:
            self._open_queued()
        if not self._flush_scheduled:
            # After the futures' callbacks that this read scheduled: their new
            # requests leave in the same write as the window updates.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def eof_received(self) -> bool | None:
        self._drain_backlog()
        return None  # close our side too; connection_lost fails whatever is left

    def _lose_in_flight(self) -> None:
        error = self._error
        for exchange in self._take_in_flight():
            if error is not None:
                exchange.fail(self._for_request(error, exchange))
            elif exchange.status:
                progress = f" ({exchange.received} bytes of its body had arrived)"
                exchange.fail(self._closed_early(exchange, progress))
            else:
                exchange.fail(self._closed_early(exchange))

    # -- responses --------------------------------------------------------------------------

    def _finish(self, stream_id: int, exchange: Exchange) -> None:
        del self._streams[stream_id]
        chunks = exchange.chunks
        if not chunks:
            content = b""
        elif len(chunks) == 1:
            content = bytes(chunks[0])
        else:
            content = b"".join(chunks)
        self._resolve(exchange, content)

    def _resolve(self, exchange: Exchange, content: bytes) -> None:
        """`exchange`'s response is whole (its stream is gone from `_streams` already)."""
        exchange.resolve(content, HTTP_VERSION)
        if not self._streams and not self._accepting:
            self._close_when_idle()

    def _on_push_promise(self, event: ev.PushPromiseReceived, now: float) -> None:
        """A push (only when we announced SETTINGS_ENABLE_PUSH=1): kept by the owner for
        whoever asks for its target, or declined with RST_STREAM CANCEL. Only a GET for
        our own origin is taken (a server is trusted for its own authority only)."""
        stream_id = event.stream_id
        if (
            event.method != b"GET"
            or event.authority != self._authority[1]
            or event.scheme != self._scheme[1]
        ):
            self._conn.reset_stream(stream_id, ErrorCode.CANCEL)
            return
        exchange = self._owner.promised(event.path, now)
        if exchange is None:
            self._conn.reset_stream(stream_id, ErrorCode.CANCEL)
            return
        self._streams[stream_id] = exchange

    def _response_too_large(self, stream_id: int, exchange: Exchange) -> None:
        del self._streams[stream_id]
        self._conn.reset_stream(stream_id, ErrorCode.CANCEL)
        exchange.fail(
            ProtocolError(
                f"the response from {self._where} to {exchange.label} is larger than "
                f"{self._max_response_size} bytes"
            )
        )

    def _on_stream_reset(self, event: ev.StreamReset) -> None:
        exchange = self._streams.pop(event.stream_id, None)
        if exchange is None:
            return
        code = event.error_code
        # RFC 9113 §8.7: a refused stream was not processed; it is safe to retry, here or,
        # once this connection takes no more (a GOAWAY came), on the next.
        refused = event.remote and code == ErrorCode.REFUSED_STREAM
        if refused and exchange.retry_unprocessed():
            if self._accepting:
                self._queue.appendleft(exchange)
                return
            self._owner.requeue([exchange], RemoteClosedError(f"{self._where} refused it"))
        elif event.remote:
            exchange.fail(
                StreamResetError(
                    f"{self._where} reset the stream of {exchange.label} with {error_name(code)}",
                    code,
                )
            )
        else:
            exchange.fail(
                ProtocolError(
                    f"malformed response from {self._where} to {exchange.label} "
                    f"(stream reset with {error_name(code)})"
                )
            )
        if not self._streams and not self._accepting:
            self._close_when_idle()

    def _on_goaway(self, code: int, last_stream_id: int, debug: bytes) -> None:
        # Streams above last_stream_id were not processed (RFC 9113 §8.7): they go to a
        # new connection, as the requests never sent do, up to MAX_ATTEMPTS tries (a
        # server that keeps cutting them off fails them). Those at or below it still
        # finish on this connection. A server that ends connections every N requests
        # (nginx's keepalive_requests, Hypercorn's keep_alive_max_requests: 1000) is
        # crawled across as many connections.
        self._stop_accepting()
        reason = f"{error_name(code)}, last stream {last_stream_id}{_debug_suffix(debug)}"
        error = GoAwayError(f"{self._where} sent GOAWAY ({reason})", code, last_stream_id)
        retried = []
        # last_stream_id names the streams we opened (odd ids, RFC 9113 §6.8): pushes
        # (even ids) the server promised still come.
        for stream_id in [sid for sid in self._streams if sid > last_stream_id and sid & 1]:
            exchange = self._streams.pop(stream_id)
            if exchange.retry_unprocessed():
                retried.append(exchange)
            else:
                exchange.fail(
                    GoAwayError(
                        f"{self._where} sent GOAWAY ({reason}) before processing {exchange.label}",
                        code,
                        last_stream_id,
                    )
                )
        # One hand-back, the cut-off streams first: they were sent before what is still
        # queued, and each `requeue` puts its batch ahead of the backlog.
        queued, self._queue = self._queue, deque()
        if retried or queued:
            self._owner.requeue([*retried, *queued], error)
        if not self._streams:
            self._close_when_idle()

    def _on_terminated(self, event: ev.ConnectionTerminated) -> None:
        code = event.error_code
        detail = f"{error_name(code)}{_debug_suffix(event.debug)}"
        error: ClientError
        if event.remote:
            error = GoAwayError(
                f"{self._where} ended the connection with GOAWAY {detail}",
                code,
                event.last_stream_id,
            )
        else:
            error = ProtocolError(f"{self._where} broke the HTTP/2 protocol ({detail})")
        self._fail_connection(error)

    # -- ending (see ClientConnection) ---------------------------------------------------

    def _take_in_flight(self) -> Iterable[Exchange]:
        streams, self._streams = self._streams, {}
        return streams.values()

    def _for_request(self, error: ClientError, exchange: Exchange) -> ClientError:
        """The connection's error, reworded to name the request it cut off."""
        message = f"{error} (while waiting for {exchange.label})"
        if isinstance(error, GoAwayError):
            return GoAwayError(message, error.error_code, error.last_stream_id)
        if isinstance(error, StreamResetError):
            return StreamResetError(message, error.error_code)
        return type(error)(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._drain_backlog()
        if self._in_tap is not None:  # a read cut short (an HTTP/1.x answer) is framing
            cast(H2ReadCounter, self._in_tap).settle(self._conn.received_octets)
        if self._stats is not None:
            fields, size = self._conn.received_header_fields
            self._stats.received.headers_plain += size - _ENTRY_OVERHEAD_OVER_A_LINE * fields
        super().connection_lost(exc)

    def _drop_transport(self) -> None:
        # What the core queued (its GOAWAY after a protocol error) still goes out.
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def _close_transport(self) -> None:
        self._close_when_idle()

    def _close_when_idle(self) -> None:
        # A GOAWAY'd or retired connection whose last stream finished: say goodbye.
        if self._lost or self._transport is None:
            return
        if not self._conn.closed:
            self._conn.close(ErrorCode.NO_ERROR)
        self._flush()
        self._transport.close()

    # -- output and timeouts -------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            return
        data = self._conn.data_to_send()
        if data:
            if self._out_tap is not None:
                self._out_tap.feed(data)
            transport.write(data)
        if self._conn.closed and not transport.is_closing():
            transport.close()

    def _expire(self, deadline: float, timeout: float) -> None:
        expired = []
        for stream_id, exchange in self._streams.items():
            if exchange.started > deadline:
                break
            expired.append(stream_id)
        for stream_id in expired:
            exchange = self._streams.pop(stream_id)
            self._conn.reset_stream(stream_id, ErrorCode.CANCEL)
            exchange.fail(self._timeout_error(exchange, timeout))
        self._expire_queue(deadline, timeout)
        if expired:
            self._open_queued()
            self._flush()
