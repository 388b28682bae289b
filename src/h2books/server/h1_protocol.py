"""asyncio glue around the HTTP/1.1 core: requests in order, responses in order, one write per read.

Pipelined requests are answered strictly in order: a sync handler's response goes
straight out when nothing is owed before it; an async one holds the line until it
is ready. Reading pauses while too many answers are owed or the peer isn't reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import cast

from h2books.http import Request, Response
from h2books.protocol.h1 import (
    ConnectionClosed,
    Event,
    H1ServerConnection,
    ProtocolError,
    RequestReceived,
)
from h2books.server.responses import BIG_BODY, BODY_SLICE, discard_stream, h1_head
from h2books.server.state import ServerState, await_response

log = logging.getLogger("h2books.server")


# Method names as handlers see them, without a decode per request.
_METHOD_NAMES = {
    name.encode("ascii"): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}


async def _slices(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), BODY_SLICE):
        yield body[start : start + BODY_SLICE]


class _Slot:
    """One request's place in the response order."""

    __slots__ = ("request", "response", "task")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: Response | None = None
        self.task: asyncio.Task[None] | None = None


class H1ServerProtocol(asyncio.BufferedProtocol):
    __slots__ = (
        "_close_when_done",
        "_closing",
        "_drained",
        "_head_started",
        "_host_bytes",
        "_host_text",
        "_paused_reading",
        "_paused_writing",
        "_queue",
        "_shutting_down",
        "_streaming",
        "client",
        "client_host",
        "conn",
        "last_activity",
        "scheme",
        "state",
        "transport",
    )

    def __init__(self, state: ServerState, scheme: str) -> None:
        self.state = state
        self.scheme = scheme
        self.conn = H1ServerConnection(state.h1_config, state.loop.time())
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.client_host = "-"
        self._queue: deque[_Slot] = deque()
        self._streaming: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._paused_reading = False
        self._closing = False
        self._close_when_done = False
        self._shutting_down = False  # close once no request is owed or arriving
        self.last_activity = state.loop.time()
        # Set while bytes of an unfinished request head are waiting (slowloris guard).
        self._head_started: float | None = None
        # The last Host value and its text: decoded once per connection, not per request.
        self._host_bytes = b""
        self._host_text = ""

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, so cast rather than check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
            self.client_host = self.client[0]
        limits = self.state.config.limits
        transport.set_write_buffer_limits(
            high=limits.write_buffer_high, low=limits.write_buffer_low
        )
        self.state.connections.add(self)
        if self.state.shutting_down:
            self._shutting_down = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._closing = True
        for slot in self._queue:
            if slot.task is not None:
                slot.task.cancel()
        self._queue.clear()
        if self._streaming is not None:
            self._streaming.cancel()
        self._wake()

    def pause_writing(self) -> None:
        self._paused_writing = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake()
        self._maybe_resume_reading()

    def eof_received(self) -> bool | None:
        self._feed(b"")
        # Keep the write side open until owed responses are out.
        return True if not self._closing else None

    # A BufferedProtocol, so that the TLS layer decrypts straight into the server's shared
    # read buffer: as a plain Protocol, uvloop allocates a 256 KiB bytes object per read.
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.state.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.state.read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        self.last_activity = now = self.state.loop.time()
        if not self._closing:
            self._handle(self.conn.receive_data(data, now))

    # -- requests -----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._closing:
            return
        self._handle(self.conn.receive_data(data, self.state.loop.time()))

    def _handle(self, events: Sequence[Event]) -> None:
        conn = self.conn
        while True:
            for event in events:
                kind = type(event)
                if kind is RequestReceived:
                    assert isinstance(event, RequestReceived)
                    self._on_request(event)
                elif kind is ProtocolError:
                    assert isinstance(event, ProtocolError)
                    log.debug("HTTP/1.1 protocol error from %s: %s", self.client_host, event.reason)
                    self._close_when_done = True
                elif kind is ConnectionClosed:
                    self._close_when_done = True
            held_back = conn.paused
            self._flush()
            if self._closing or not held_back:
                break
            if conn.paused:
                # Async answers are still owed: stop reading until they are out.
                self._pause_reading()
                break
            events = conn.resume(self.state.loop.time())
        if not conn.has_partial_request:
            self._head_started = None
        elif self._head_started is None:
            self._head_started = self.state.loop.time()

    def _on_request(self, event: RequestReceived) -> None:
        target = event.target
        split = target.find(b"?")
        if split < 0:
            path, query = target.decode("latin-1"), ""
        else:
            path, query = target[:split].decode("latin-1"), target[split + 1 :].decode("latin-1")
        method = _METHOD_NAMES.get(event.method) or event.method.decode("latin-1")
        host = event.host
        if host is None:
            authority = ""
        elif host is self._host_bytes or host == self._host_bytes:
            authority = self._host_text  # a keep-alive client names the same host each time
        else:
            authority = host.decode("latin-1")
            self._host_bytes, self._host_text = host, authority
        request = Request(
            method,
            path,
            query,
            event.headers,
            event.body,
            "1.1" if event.http_version == b"1.1" else "1.0",
            self.scheme,
            authority,
            self.client,
        )
        result = self.state.invoke(request)
        if type(result) is Response or isinstance(result, Response):
            if not self._queue and self._streaming is None:
                # Nothing owed before it: straight into the core, no place in the queue.
                self._respond(request, result)
                return
            slot = _Slot(request)
            slot.response = result
        else:
            slot = _Slot(request)
            slot.task = self.state.loop.create_task(self._answer_later(slot, result))
        self._queue.append(slot)

    async def _answer_later(self, slot: _Slot, pending: Awaitable[Response]) -> None:
        slot.response = await await_response(pending, slot.request)
        slot.task = None
        if not self._closing:
            self._flush()

    # -- output -------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send every response that is ready, in order, then write once."""
        conn = self.conn
        queue = self._queue
        while queue and self._streaming is None:
            slot = queue[0]
            response = slot.response
            if response is None:
                break
            queue.popleft()
            self._respond(slot.request, response)
        transport = self.transport
        if transport is None:
            return
        data = conn.data_to_send()
        if data:
            self.last_activity = self.state.loop.time()
            transport.write(data)
        if queue or self._streaming is not None:
            return
        if (
            conn.must_close
            or self._close_when_done
            or (self._shutting_down and not conn.has_pending_input)
        ):
            self._closing = True
            if not transport.is_closing():
                transport.close()
        elif self._paused_reading:
            self._maybe_resume_reading()

    def _respond(self, request: Request, response: Response) -> None:
        """Hand one response to the core (its turn has come)."""
        try:
            self._respond_or_raise(request, response)
        except Exception:
            # A response the core refuses (a bad status, framing HTTP/1.0 cannot carry):
            # the head may be half out, so the only honest answer is a cut connection.
            log.exception("cannot send %r for %r", response, request)
            self.abort()

    def _respond_or_raise(self, request: Request, response: Response) -> None:
        state = self.state
        if response.stream is not None and request.method == "HEAD":
            discard_stream(response.stream)
        head = h1_head(response, state.server_name, state.clock.http_date)
        if response.stream is not None and request.method != "HEAD":
            self.conn.start_response(head)
            self._streaming = state.loop.create_task(self._stream_body(response.stream))
            size = 0
        elif len(response.body) > BIG_BODY and request.method != "HEAD":
            # In slices, as the transport drains (see responses.BIG_BODY).
            self.conn.start_response(head)
            self._streaming = state.loop.create_task(self._stream_body(_slices(response.body)))
            size = len(response.body)
        else:
            self.conn.send_response(head, response.body)
            size = 0 if request.method == "HEAD" else len(response.body)
        if state.access_log is not None:
            self._log(request, response.status, size)

    async def _stream_body(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                if self._closing:
                    return
                if chunk:
                    self.conn.send_body(chunk)
                    self._write_pending()
                while self._paused_writing and not self._closing:
                    await self._wait_drained()
            self.conn.end_response()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The head is gone already: the only honest signal left is a cut connection.
            log.exception("streaming body failed")
            self._closing = True
            if self.transport is not None:
                self.transport.abort()
            return
        finally:
            self._streaming = None
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing a streaming body failed", exc_info=True)
        if not self._closing:
            self._flush()

    def _write_pending(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.last_activity = self.state.loop.time()
            self.transport.write(data)

    def _wait_drained(self) -> asyncio.Future[None]:
        if self._drained is None or self._drained.done():
            self._drained = self.state.loop.create_future()
        return self._drained

    def _wake(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _pause_reading(self) -> None:
        if self.transport is not None and not self._paused_reading and not self._closing:
            self._paused_reading = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if (
            self._paused_reading
            and not self._paused_writing
            and not self._closing
            and self.transport is not None
            and not self.conn.paused
        ):
            self._paused_reading = False
            self.transport.resume_reading()
            # Requests held back in the core while it was paused come out now.
            self.state.loop.call_soon(self._resume_parsing)

    def _resume_parsing(self) -> None:
        if not self._closing:
            self._handle(self.conn.resume(self.state.loop.time()))

    def _log(self, request: Request, status: int, size: int) -> None:
        assert self.state.access_log is not None
        referer = user_agent = None
        for name, value in request.headers:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
        protocol = "HTTP/1.1" if request.http_version == "1.1" else "HTTP/1.0"
        self.state.access_log.record(
            self.client_host,
            request.method,
            request.target,
            protocol,
            status,
            size,
            referer,
            user_agent,
        )

    # -- server housekeeping ------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._queue and self._streaming is None and self._head_started is None

    def check_timeouts(self, now: float) -> None:
        if self._closing or self.transport is None:
            return
        timeouts = self.state.config.timeouts
        if self._head_started is not None:
            if now - self._head_started > timeouts.request_head:
                self.abort()
        elif self.is_idle():
            if now - self.last_activity > timeouts.keep_alive:
                self._closing = True
                self.transport.close()
        elif now - self.last_activity > timeouts.stall:
            self.abort()

    def shutdown(self) -> None:
        """Finish what was accepted (including a request still arriving), then close."""
        self._shutting_down = True
        if self.is_idle():
            self._flush()

    def evict(self) -> None:
        """Make room at the connection cap: this idle keep-alive connection is closed."""
        self._close_when_done = True
        self._flush()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()
