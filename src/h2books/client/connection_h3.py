"""One HTTP/3 client connection: aioquic's QUIC and HTTP/3 over a connected UDP socket.

Like the HTTP/2 connection, requests are futures on streams of one connection, and the
output of one loop iteration leaves together (one `call_soon` flush). QUIC's timers
(loss detection, ACK delay, pacing, idle) are one loop timer at `quic.get_timer()`, and
aioquic's clock is `time.monotonic()`, not uvloop's whole milliseconds (`quic_timer.py`).
`connected` resolves once the handshake is done, or fails with the reason (certificate,
ALPN, no answer), as `open_connection` does for TCP.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.connection import ErrorCode as H3Error
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from h2books.client.base import ClientConnection, ConnectionOwner, ConnectionSettings
from h2books.client.errors import (
    ClientError,
    ConnectError,
    ProtocolError,
    RemoteClosedError,
    StreamResetError,
    TLSError,
)
from h2books.client.exchange import Exchange
from h2books.client.stats import WireStats, header_list_size
from h2books.client.stats_h3 import H3Tap
from h2books.quic_timer import QuicTimer

__all__ = ["H3ClientProtocol", "quic_client_configuration"]

HTTP_VERSION = "HTTP/3"
# Requests in flight on one connection; the server's MAX_STREAMS may hold them back more
# (aioquic then queues the stream until the server raises it).
_MAX_STREAMS = 100
# QUIC's TLS alerts arrive as transport error 0x100 + the alert number (RFC 9001 §4.8).
_CRYPTO_ERROR = 0x100
_BAD_CERTIFICATE_ALERTS = range(0x100 + 42, 0x100 + 50)


def quic_client_configuration(
    host: str, cacert: str | Path | None, insecure: bool, timeout: float | None
) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=host,
        # An idle connection ends after this long; a crawl is never idle that long.
        idle_timeout=max(timeout or 60.0, 10.0),
    )
    if insecure:
        configuration.verify_mode = ssl.CERT_NONE
    elif cacert is not None:
        configuration.load_verify_locations(str(cacert))
    return configuration


class _TappedQuicConnection(QuicConnection):
    """Hands each piece of stream data we send to the outgoing tap first."""

    tap: H3Tap | None = None

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        if self.tap is not None and data:
            self.tap.stream(stream_id, data)
        super().send_stream_data(stream_id, data, end_stream)


class H3ClientProtocol(ClientConnection):
    """Drives one client-side aioquic connection (ALPN h3) over a UDP socket."""

    http_version = HTTP_VERSION

    def __init__(
        self,
        owner: ConnectionOwner,
        settings: ConnectionSettings,
        configuration: QuicConfiguration,
    ) -> None:
        super().__init__(owner, settings)
        self._quic = quic = _TappedQuicConnection(configuration=configuration)
        if isinstance(self._out_tap, H3Tap):
            quic.tap = self._out_tap
        self._h3 = H3Connection(quic)
        self._streams: dict[int, Exchange] = {}
        origin = settings.origin
        self._pseudo = (
            (b":scheme", b"https"),
            (b":authority", origin.authority.encode("ascii")),
        )
        self._extra = settings.extra_fields
        # The fields uncompressed, next to QPACK's bytes in the wire report.
        self._stats = settings.stats
        self._max_response_size = settings.max_response_size
        self._flush_scheduled = False
        self._timer = QuicTimer(self._loop, quic, self._expire_timer)
        self._datagrams: asyncio.DatagramTransport | None = None
        self.connected: asyncio.Future[None] = self._loop.create_future()

    @staticmethod
    def _wire_taps(stats: WireStats) -> tuple[H3Tap, H3Tap]:
        return stats.h3_taps()

    @property
    def outstanding(self) -> int:
        return len(self._streams) + len(self._queue)

    # -- requests ---------------------------------------------------------------------------

    def submit(self, exchange: Exchange) -> None:
        if len(self._streams) < _MAX_STREAMS and not self._queue:
            self._open_stream(exchange)
        else:
            self._queue.append(exchange)
        self._watchdog.arm()

    def _open_stream(self, exchange: Exchange) -> None:
        stream_id = self._quic.get_next_available_stream_id()
        fields = [
            (b":method", exchange.method),
            *self._pseudo,
            (b":path", exchange.target),
            *self._extra,
            *exchange.fields,
        ]
        body = exchange.body
        self._h3.send_headers(stream_id, fields, end_stream=not body)
        if self._stats is not None:
            self._stats.sent.headers_plain += header_list_size(fields)
        if body:
            self._h3.send_data(stream_id, body, end_stream=True)
        self._streams[stream_id] = exchange
        self._schedule_flush()

    def _open_queued(self) -> None:
        queue = self._queue
        while queue and len(self._streams) < _MAX_STREAMS and self._accepting:
            self._open_stream(queue.popleft())

    # -- the transport ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._datagrams = cast(asyncio.DatagramTransport, transport)
        super().connection_made(transport)

    def _alpn_error(self, alpn: str | None) -> ClientError | None:
        return None  # QUIC's handshake checks ALPN itself (no h3, no connection)

    def _start(self) -> None:
        assert self._datagrams is not None
        peer = self._datagrams.get_extra_info("peername")
        self._quic.connect(peer, now=self._timer.now())
        self._flush()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._in_tap is not None:
            self._in_tap.feed(data)
        self._quic.receive_datagram(data, addr, now=self._timer.now())
        self._handle_events()
        self._schedule_flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: nobody listens on that UDP port.
        if not self.connected.done():
            self.connected.set_exception(
                ConnectError(f"no HTTP/3 server at {self._where} ({exc}; is it serving --http3?)")
            )
        self._fail_connection(ConnectError(f"{self._where}: {exc}"))

    def _handle_events(self) -> None:
        quic = self._quic
        event = quic.next_event()
        while event is not None:
            if isinstance(event, quic_events.StreamDataReceived):
                if self._in_tap is not None:
                    cast(H3Tap, self._in_tap).stream(event.stream_id, event.data)
                for h3_event in self._h3.handle_event(event):
                    if isinstance(h3_event, DataReceived):
                        self._on_data(h3_event)
                    elif isinstance(h3_event, HeadersReceived):
                        self._on_headers(h3_event)
            elif isinstance(event, quic_events.StreamReset):
                self._h3.handle_event(event)
                self._on_stream_reset(event.stream_id, event.error_code)
            elif isinstance(event, quic_events.HandshakeCompleted):
                if not self.connected.done():
                    self.connected.set_result(None)
            elif isinstance(event, quic_events.ConnectionTerminated):
                self._on_terminated(event)
                return
            event = quic.next_event()
        if self._queue:
            self._open_queued()

    # -- responses --------------------------------------------------------------------------

    def _on_headers(self, event: HeadersReceived) -> None:
        exchange = self._streams.get(event.stream_id)
        if exchange is None:
            return
        if self._stats is not None:
            self._stats.received.headers_plain += header_list_size(event.headers)
        status = next((value for name, value in event.headers if name == b":status"), None)
        if status is None:  # trailers
            exchange.response_trailers = list(event.headers)
        elif int(status) >= 200:
            exchange.status = int(status)
            exchange.response_headers = [
                (name, value) for name, value in event.headers if name[:1] != b":"
            ]
        if event.stream_ended:
            self._finish(event.stream_id, exchange)

    def _on_data(self, event: DataReceived) -> None:
        stream_id = event.stream_id
        exchange = self._streams.get(stream_id)
        if exchange is None:
            return
        chunk = event.data
        if chunk:
            exchange.received += len(chunk)
            if exchange.received > self._max_response_size:
                del self._streams[stream_id]
                self._quic.reset_stream(stream_id, H3Error.H3_REQUEST_CANCELLED)
                exchange.fail(
                    ProtocolError(
                        f"the response from {self._where} to {exchange.label} is larger "
                        f"than {self._max_response_size} bytes"
                    )
                )
                return
            exchange.chunks.append(chunk)
        if event.stream_ended:
            self._finish(stream_id, exchange)

    def _finish(self, stream_id: int, exchange: Exchange) -> None:
        del self._streams[stream_id]
        if self._in_tap is not None:
            cast(H3Tap, self._in_tap).forget(stream_id)
        if self._out_tap is not None:
            cast(H3Tap, self._out_tap).forget(stream_id)
        chunks = exchange.chunks
        exchange.resolve(b"".join(chunks) if len(chunks) != 1 else chunks[0], HTTP_VERSION)

    def _on_stream_reset(self, stream_id: int, code: int) -> None:
        exchange = self._streams.pop(stream_id, None)
        if exchange is None:
            return
        # RFC 9114 §4.1.1: not processed (say, past the server's GOAWAY): safe to retry.
        if code == H3Error.H3_REQUEST_REJECTED and exchange.retry_unprocessed():
            self._stop_accepting()
            self._owner.requeue([exchange], RemoteClosedError(f"{self._where} rejected it"))
            return
        exchange.fail(
            StreamResetError(
                f"{self._where} reset the stream of {exchange.label} with {_h3_error(code)}",
                code,
            )
        )

    def _on_terminated(self, event: quic_events.ConnectionTerminated) -> None:
        code = event.error_code
        reason = f"{_h3_error(code)}{': ' + event.reason_phrase if event.reason_phrase else ''}"
        error: ClientError
        if not self.connected.done():
            if code in _BAD_CERTIFICATE_ALERTS or "certificate" in event.reason_phrase.lower():
                error = TLSError(
                    f"QUIC handshake with {self._where} failed: {event.reason_phrase or reason} "
                    "(pass the server's CA with --cacert, or --insecure)"
                )
            else:
                error = ConnectError(f"QUIC handshake with {self._where} failed: {reason}")
            self.connected.set_exception(error)
        elif code in (0, H3Error.H3_NO_ERROR):
            error = RemoteClosedError(f"{self._where} closed the HTTP/3 connection")
        else:
            error = ProtocolError(f"{self._where} ended the HTTP/3 connection: {reason}")
        self._fail_connection(error)
        if self._datagrams is not None:
            self._datagrams.close()

    def _lose_in_flight(self) -> None:
        error = self._error or self._closed_early(None)
        for exchange in self._take_in_flight():
            exchange.fail(self._for_request(error, exchange))

    # -- ending (see ClientConnection) ---------------------------------------------------

    def _take_in_flight(self) -> Iterable[Exchange]:
        streams, self._streams = self._streams, {}
        return streams.values()

    def _for_request(self, error: ClientError, exchange: Exchange) -> ClientError:
        if isinstance(error, StreamResetError):
            return error
        return type(error)(f"{error} (while waiting for {exchange.label})")

    def _drop_transport(self) -> None:
        self._quic.close(error_code=H3Error.H3_INTERNAL_ERROR)
        self._flush()
        self._end()

    def _close_transport(self) -> None:
        self._quic.close(error_code=H3Error.H3_NO_ERROR)
        self._flush()
        self._end()

    def _end(self) -> None:
        self._timer.cancel()
        if self._datagrams is not None and not self._datagrams.is_closing():
            self._datagrams.close()

    # -- output and time ------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._datagrams
        if transport is None or self._lost or transport.is_closing():
            return
        tap = self._out_tap
        for data, _addr in self._quic.datagrams_to_send(now=self._timer.now()):
            if tap is not None:
                tap.feed(data)
            transport.sendto(data)
        self._timer.arm()

    def _expire_timer(self, now: float) -> None:
        if self._lost:
            return
        self._quic.handle_timer(now=now)
        self._handle_events()
        self._flush()

    def _expire(self, deadline: float, timeout: float) -> None:
        expired = [sid for sid, exchange in self._streams.items() if exchange.started <= deadline]
        for stream_id in expired:
            exchange = self._streams.pop(stream_id)
            self._quic.reset_stream(stream_id, H3Error.H3_REQUEST_CANCELLED)
            exchange.fail(self._timeout_error(exchange, timeout))
        self._expire_queue(deadline, timeout)
        if expired:
            self._open_queued()
            self._flush()


def _h3_error(code: int) -> str:
    try:
        return f"{H3Error(code).name} (0x{code:x})"
    except ValueError:
        return f"error 0x{code:x}"


async def open_h3_connection(
    factory: Any, host: str, port: int, timeout: float | None, where: str
) -> H3ClientProtocol:
    """A connected UDP socket and a finished QUIC handshake, or a `ClientError` saying why."""
    loop = asyncio.get_running_loop()
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await loop.create_datagram_endpoint(
                factory, remote_addr=(host, port)
            )
            connection = cast(H3ClientProtocol, protocol)
            await connection.connected
    except BaseException as exc:
        if transport is not None:
            transport.close()  # no half-open socket left behind
        if isinstance(exc, TimeoutError):
            raise ConnectError(
                f"no QUIC answer from {where} within {timeout:g} s (is it serving --http3?)"
            ) from None
        if isinstance(exc, OSError):
            raise ConnectError(f"cannot reach {where} over UDP: {exc.strerror or exc}") from None
        raise
    return connection
