"""WebSockets over an exchange's tunnel, whatever carries it: HTTP/1.1 Upgrade (RFC 6455)
or HTTP/2 extended CONNECT (RFC 8441). Interfaces (ASGI) sit above `WebSocket`.

- **Handshake** (`read_handshake`, `WebSocket.accept`): ours, because it differs per
  protocol. HTTP/1.1 carries Sec-WebSocket-Key and answers Sec-WebSocket-Accept;
  RFC 8441 has neither (the extended CONNECT is the handshake). Both carry
  Sec-WebSocket-Version 13, the subprotocols offered (the app picks one) and the
  extensions offered: permessage-deflate (RFC 7692) is negotiated through wsproto's
  `PerMessageDeflate.accept`, taking the first offer it can accept. A request without
  the right fields is refused with 400 before the app is asked.
- **Frames**: wsproto's `Connection` (sans-IO, no handshake of its own when built
  directly): masking, fragmentation, control frames, UTF-8 checks, and the close codes
  for what it rejects (1002 protocol error, 1007 invalid UTF-8). Input is parsed in the
  read's own callback (`Exchange.on_input`, then `take_body()`), not by a reader task.
- **Limits**, ours, since wsproto has none: a message over `ws_max_size` ends the socket
  with 1009 (counted as it arrives: text in characters, binary in bytes; compressed
  input is fed to wsproto in `_SLICE` pieces, so a deflate bomb inflates at
  most ~1000 times that much past the limit before it is caught); at most
  `ws_max_queue` messages wait for the app, and past that the tunnel is not read (the
  peer's HTTP/2 window, or the paused socket, stops it); pings after
  `ws_ping_interval` of silence with `ws_ping_timeout` for the pong (`KeepAlive`, rules
  apart from any clock); `ws_close_timeout` for the peer's close frame and for the end
  of the tunnel after it.
- **Shutdown**: the server's graceful shutdown closes every socket with 1001.

Why wsproto, and why not for every frame: the issue says wsproto unless profiling says
otherwise. Profiled (py-spy, benchmarks/ws_echo.py, one 16-byte message at a time;
benchmarks/PROFILE.md, "WebSocket echo (issue 10)"), wsproto's parse and serialise
were ~17 µs of the ~75 µs of server CPU per message, and the serial echo was slower
than Uvicorn + websockets'. So the frames almost every app sees, a client's whole,
small, unfragmented text or binary frame and our whole messages without an extension,
are read and written by `websocket_frames` (~2 µs); wsproto keeps everything else:
control frames, fragmentation, permessage-deflate, big frames, and every invalid
frame, which it answers with the RFC close code. The bounds (message size, queue,
timeouts) are enforced around both, in one place each.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
from collections import deque
from dataclasses import dataclass

from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from h2books.server.config import ServerConfig
from h2books.server.exchange import Exchange, Fields
from h2books.server.websocket_frames import FrameRouter, encode_message

log = logging.getLogger("h2books.server")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
# Input is parsed this much at a time: a deflate bomb inflates at most ~1000 times a
# slice before the size limit sees it, and a full queue stops parsing within a slice.
_SLICE = 4096

# Close codes (RFC 6455 §7.4.1).
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL = 1006
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011


class HandshakeError(Exception):
    """A WebSocket request without the right fields: answered 400 with `reason`."""


class ClientDisconnected(OSError):
    """Sending on a WebSocket that is closed (ASGI: an IOError subclass)."""


@dataclass(slots=True)
class Handshake:
    """What the opening request offers."""

    key: bytes | None  # HTTP/1.1 only
    subprotocols: list[str]
    extensions: list[str]  # the offers as sent, one per list element


@dataclass(frozen=True, slots=True)
class Closed:
    """The socket is closed: the code and reason the app is told."""

    code: int
    reason: str = ""


def _field_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values = b",".join(value for field, value in headers if field == name)
    return [item.strip() for item in values.decode("latin-1").split(",") if item.strip()]


def read_handshake(exchange: Exchange) -> Handshake:
    """Check the opening request (RFC 6455 §4.2.1; RFC 8441 §5); raises HandshakeError."""
    if exchange.upgrade != b"websocket":
        raise HandshakeError("not a WebSocket request")
    headers = exchange.headers
    versions = _field_values(headers, b"sec-websocket-version")
    if versions != ["13"]:
        raise HandshakeError("Sec-WebSocket-Version must be 13")
    key: bytes | None = None
    if exchange.http_version != "2":
        keys = [value for name, value in headers if name == b"sec-websocket-key"]
        if len(keys) != 1:
            raise HandshakeError("one Sec-WebSocket-Key is required")
        try:
            decoded = base64.b64decode(keys[0], validate=True)
        except binascii.Error:
            decoded = b""
        if len(decoded) != 16:
            raise HandshakeError("Sec-WebSocket-Key is not 16 bytes in base64")
        key = keys[0]
    return Handshake(
        key,
        _field_values(headers, b"sec-websocket-protocol"),
        _field_values(headers, b"sec-websocket-extensions"),
    )


def accept_key(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def negotiate_deflate(offers: list[str]) -> tuple[PerMessageDeflate, str] | None:
    """The first permessage-deflate offer we can accept: the extension, set up as agreed,
    and the Sec-WebSocket-Extensions value that says so."""
    for offer in offers:
        if offer.split(";", 1)[0].strip() != PerMessageDeflate.name:
            continue
        extension = PerMessageDeflate()
        try:
            params = extension.accept(offer)
        except ValueError:  # a malformed parameter value
            continue
        if params is None or params is False:
            continue
        value = PerMessageDeflate.name
        if isinstance(params, str) and params:
            value += "; " + params
        return extension, value
    return None


class KeepAlive:
    """Ping/pong keep-alive rules, with the time passed in (no clock, no loop).

    A ping is due once the peer has been silent for `interval`; once one is out, its
    pong must come within `timeout`, or the socket is dead. Anything heard from the
    peer counts as life, so a busy peer is never pinged.
    """

    __slots__ = ("interval", "last_heard", "ping_sent", "timeout")

    def __init__(self, interval: float | None, timeout: float | None, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.last_heard = now
        self.ping_sent: float | None = None

    def pong(self) -> None:
        self.ping_sent = None

    def deadline(self) -> float | None:
        """When `check` next has something to do; None when keep-alive is off."""
        if self.interval is None:
            return None
        if self.ping_sent is not None:
            return None if self.timeout is None else self.ping_sent + self.timeout
        return self.last_heard + self.interval

    def check(self, now: float) -> str | None:
        """ "ping" (send one now), "dead" (no pong in time), or None."""
        if self.interval is None:
            return None
        if self.ping_sent is not None:
            if self.timeout is not None and now >= self.ping_sent + self.timeout:
                return "dead"
            return None
        if now >= self.last_heard + self.interval:
            self.ping_sent = now
            return "ping"
        return None


class WebSocket:
    """One WebSocket over `exchange`'s tunnel: `accept`, `receive`, `send`, `close`.

    What the peer sends is parsed as it arrives (in the read's callback); whole messages
    wait in a queue of at most `ws_max_queue` for `receive()`, which returns `Closed`
    once the socket is closed (by either side, or lost).
    """

    def __init__(self, exchange: Exchange, handshake: Handshake, config: ServerConfig) -> None:
        self.exchange = exchange
        self.handshake = handshake
        self.config = config
        self.loop = exchange.adapter.state.loop
        self.closed: Closed | None = None  # set once the app is to be told
        self._ws: Connection | None = None
        # Splits the input between our fast path and wsproto (set when accepted).
        self._frames: FrameRouter | None = None
        self._deflate = False
        self._failed = False  # the input broke the protocol: drained, never parsed again
        self._inbox: deque[str | bytes] = deque()
        self._inbox_waiter: asyncio.Future[None] | None = None
        self._parts: list[str | bytes] = []
        self._size = 0
        self._unparsed = b""  # taken from the tunnel, not parsed while the queue is full
        # Waiting for our output to flow again before parsing more (see _pump).
        self._output_wait: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._keepalive = KeepAlive(
            config.ws_ping_interval, config.ws_ping_timeout, self.loop.time()
        )

    # -- the handshake ---------------------------------------------------------------

    def accept(self, subprotocol: str | None = None, headers: Fields = ()) -> bool:
        """Open the socket; False if the peer is gone. `headers` are the app's extra
        fields for the answer."""
        handshake = self.handshake
        fields: list[tuple[bytes, bytes]] = []
        if handshake.key is not None:
            fields.append((b"sec-websocket-accept", accept_key(handshake.key)))
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        extensions: list[Extension] = []
        if self.config.ws_per_message_deflate:
            agreed = negotiate_deflate(handshake.extensions)
            if agreed is not None:
                extensions.append(agreed[0])
                fields.append((b"sec-websocket-extensions", agreed[1].encode("ascii")))
        fields.extend(
            (name, value)
            for name, value in headers
            if name.lower() not in (b"sec-websocket-protocol", b"sec-websocket-extensions")
        )
        if not self.exchange.accept_tunnel(fields):
            self.closed = Closed(ABNORMAL)
            return False
        self._ws = Connection(ConnectionType.SERVER, extensions)
        self._deflate = bool(extensions)
        self._frames = FrameRouter(enabled=not extensions)
        self.exchange.on_shutdown = self._shutdown
        self.exchange.on_input = self._on_input
        self._pump()  # what came with the request (HTTP/1.1: bytes after the head)
        self._schedule_keepalive()
        if self.exchange.adapter.state.shutting_down:
            self._shutdown()
        return True

    # -- the app's side ----------------------------------------------------------------

    async def receive(self) -> str | bytes | Closed:
        """The next whole message, or `Closed`."""
        inbox = self._inbox
        while not inbox:
            if self.closed is not None:
                return self.closed
            waiter = self._inbox_waiter = self.loop.create_future()
            await waiter
        message = inbox.popleft()
        if self._unparsed or (len(inbox) == self.config.ws_max_queue - 1 and self._ws):
            self._pump()  # room again: parse what waits in the tunnel
        return message

    async def send(self, data: str | bytes) -> None:
        ws = self._ws
        if ws is None or ws.state is not ConnectionState.OPEN or self.closed is not None:
            raise ClientDisconnected("the WebSocket is closed")
        exchange = self.exchange
        if not exchange.writable and (
            not await exchange.wait_writable()
            # Closed while we waited: no data frame may follow our Close (RFC 6455
            # §5.5.1), and our own framing, unlike wsproto's, does not check the state.
            or ws.state is not ConnectionState.OPEN
            or self.closed is not None
        ):
            raise ClientDisconnected("the WebSocket is closed")
        if self._deflate:
            event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
            exchange.write(ws.send(event))
        else:
            exchange.write(encode_message(data))  # wsproto's frame, built faster

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the close handshake (the app is done, or the server is going away)."""
        if self.closed is None:
            self.closed = Closed(code, reason)
        self._inbox.clear()  # nobody will read them now
        self._wake_all()
        ws = self._ws
        if ws is not None and ws.state is ConnectionState.OPEN:
            self.exchange.write(ws.send(CloseConnection(code, reason or None)))
            self._arm_close_timer()
            self._pump()  # on to the peer's close frame, past what the full queue held

    # -- reading: in the read's own callback, no task ----------------------------------

    def _on_input(self) -> None:
        """The tunnel has input, ended, or was lost (`Exchange.on_input`)."""
        if not self._inbox_full and self._output_wait is None:
            self._pump()

    async def _pump_when_writable(self) -> None:
        try:
            await self.exchange.wait_writable()
        finally:
            self._output_wait = None
        self._pump()

    def _pump(self) -> None:
        """Parse what the tunnel holds, a frame (or, for wsproto, a slice) at a time,
        until the app's queue is full (the rest stays in the tunnel, unacknowledged: the
        peer's window, or the paused socket, holds back more) or the input runs out."""
        ws = self._ws
        frames = self._frames
        if ws is None or frames is None:
            return
        exchange = self.exchange
        keepalive = self._keepalive
        data = self._unparsed or exchange.take_body()
        self._unparsed = b""
        pos = 0
        try:
            while pos < len(data):
                if not exchange.writable and self.closed is None and not exchange.gone:
                    # Our output does not flow (the peer gives no window, or does not
                    # read): parsing on would queue a Pong per Ping without bound. The
                    # rest stays in the tunnel, so the peer's window shuts too.
                    self._unparsed = data[pos:]
                    if self._output_wait is None:
                        self._output_wait = self.loop.create_task(self._pump_when_writable())
                    return
                keepalive.last_heard = self.loop.time()
                if ws.state is ConnectionState.CLOSED or self._failed:
                    data = exchange.take_body()  # drained until the tunnel ends
                    pos = 0
                    continue
                end, message = frames.split(data, pos, _SLICE)
                if message is not None:
                    self._on_message(message, True)
                elif end > pos:
                    ws.receive_data(data[pos:end])
                    self._handle_events(ws)
                else:
                    # The head of a frame, the rest to come: kept until it does.
                    more = exchange.take_body()
                    if not more:
                        self._unparsed = data[pos:]
                        break
                    data = data[pos:] + more
                    pos = 0
                    continue
                pos = end
                if self._inbox_full and self.closed is None:
                    self._unparsed = data[pos:]
                    return
                if pos == len(data):
                    data = exchange.take_body()
                    pos = 0
        except Exception:
            log.exception("WebSocket input failed for %r", exchange)
            self._fail(INTERNAL_ERROR, "")
            return
        if exchange.body_complete or exchange.gone:
            self._lost()

    @property
    def queued(self) -> int:
        """How many whole messages wait for `receive()`."""
        return len(self._inbox)

    @property
    def _inbox_full(self) -> bool:
        return len(self._inbox) >= self.config.ws_max_queue

    def _handle_events(self, ws: Connection) -> None:
        for event in ws.events():
            if isinstance(event, Message):
                if not self._on_message(event.data, event.message_finished):
                    return
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    self.exchange.write(ws.send(event.response()))
            elif isinstance(event, Pong):
                self._keepalive.pong()
            elif isinstance(event, CloseConnection):
                self._on_close(ws, event)
                return

    def _on_message(self, data: str | bytes, finished: bool) -> bool:
        self._size += len(data)
        if self._size > self.config.ws_max_size:
            self._fail(MESSAGE_TOO_BIG, "message too big")
            return False
        if self.closed is not None:
            # Closing: read on to the peer's close frame, keep nothing (and count each
            # message dropped on its own, so that many small ones are no "message too big").
            if finished:
                self._size = 0
            return True
        parts = self._parts
        if not finished:
            parts.append(data)
            return True
        if parts:
            parts.append(data)
            data = _joined(parts, data)
            parts.clear()
        self._size = 0
        self._inbox.append(data)
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _on_close(self, ws: Connection, event: CloseConnection) -> None:
        if ws.state is ConnectionState.REMOTE_CLOSING:
            # The peer closes: echo its code, tell the app, end the tunnel.
            self.exchange.write(ws.send(event.response()))
            if self.closed is None:
                self.closed = Closed(event.code, event.reason or "")
            self._wake_all()
            self._end_tunnel()
        elif ws.state is ConnectionState.CLOSED:
            self._end_tunnel()  # the answer to our close frame
        else:
            # wsproto could not parse the input (the event carries the RFC code).
            self._fail(event.code, event.reason or "")

    def _fail(self, code: int, reason: str) -> None:
        """Fail the WebSocket connection (RFC 6455 §7.1.7): a close frame, then the end."""
        log.info("WebSocket %r failed: %d %s", self.exchange, code, reason)
        self._failed = True
        ws = self._ws
        if self.closed is None:
            self.closed = Closed(code, reason)
        self._inbox.clear()
        self._wake_all()
        if ws is not None and ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self.exchange.write(ws.send(CloseConnection(code, reason or None)))
        self._end_tunnel()

    def _lost(self) -> None:
        """The tunnel ended (the peer's END_STREAM or EOF, a reset, a lost connection)."""
        self.exchange.on_input = None
        if self.closed is None:
            self.closed = Closed(ABNORMAL)
        self._wake_all()
        ws = self._ws
        if ws is not None and ws.state is not ConnectionState.CLOSED:
            self.exchange.reset()  # ended without the close handshake
        else:
            self.exchange.end()
        self._stop_timers()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _end_tunnel(self) -> None:
        """The close handshake is done (or failed): end our side. HTTP/2 then waits for
        the peer's END_STREAM, within the close timeout."""
        self.exchange.end()
        self._arm_close_timer()

    def _wake_all(self) -> None:
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- timers ----------------------------------------------------------------------

    def _arm_close_timer(self) -> None:
        if self._close_timer is None:
            self._close_timer = self.loop.call_later(
                self.config.ws_close_timeout, self._close_timed_out
            )

    def _close_timed_out(self) -> None:
        log.info("WebSocket %r: close handshake timed out", self.exchange)
        if self.closed is None:
            self.closed = Closed(ABNORMAL)
        self._wake_all()
        self.exchange.reset()
        self.exchange.on_input = None

    def _schedule_keepalive(self) -> None:
        deadline = self._keepalive.deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_keepalive_timer)

    def _on_keepalive_timer(self) -> None:
        self._timer = None
        ws = self._ws
        if ws is None or ws.state is not ConnectionState.OPEN:
            return
        action = self._keepalive.check(self.loop.time())
        if action == "ping":
            if self.exchange.writable:
                self.exchange.write(ws.send(Ping(os.urandom(4))))
        elif action == "dead":
            self._fail(INTERNAL_ERROR, "keepalive ping timeout")
            return
        self._schedule_keepalive()

    def _stop_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _shutdown(self) -> None:
        self.close(GOING_AWAY, "server shutting down")

    def finish(self) -> None:
        """The app is done with the socket: close it normally if it is still open."""
        if self._ws is not None and self._ws.state is ConnectionState.OPEN:
            self.close(NORMAL)


def _joined(parts: list[str | bytes], last: str | bytes) -> str | bytes:
    """A fragmented message whole again (`parts` ends with `last`)."""
    if isinstance(last, str):
        return "".join(part for part in parts if isinstance(part, str))
    return b"".join(part for part in parts if isinstance(part, bytes))
