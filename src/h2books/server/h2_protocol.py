"""asyncio glue around the HTTP/2 core: socket bytes in, handler calls, one write per batch.

Each `data_received` feeds the whole read to the core, answers every complete request
it yields (sync handlers inline, no task), and writes everything the core produced in
a single `transport.write`. Async handlers and streaming bodies run as tasks and
schedule one coalesced flush per loop iteration.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

from h2books.http import Request, Response
from h2books.protocol.h2 import ErrorCode, H2Connection
from h2books.protocol.h2 import events as ev
from h2books.server.responses import (
    BIG_BODY,
    BODY_SLICE,
    BODY_TOO_LARGE,
    discard_stream,
    h2_fields,
)
from h2books.server.state import ServerState, await_response

log = logging.getLogger("h2books.server")

# Queue this much of a streaming body per stream before waiting for the peer's window.
_STREAM_HIGH_WATER = 256 * 1024
# Seconds between the first GOAWAY of a graceful shutdown and the final one, at most.
_GOAWAY_GRACE = 2.0


class _PendingBody:
    """A request whose HEADERS arrived without END_STREAM: its body is being collected."""

    __slots__ = ("chunks", "event", "size")

    def __init__(self, event: ev.RequestReceived) -> None:
        self.event = event
        self.chunks: list[bytes] = []
        self.size = 0


class H2ServerProtocol(asyncio.BufferedProtocol):
    # Slots keep an idle connection small (docs/security.md: memory per connection).
    __slots__ = (
        "_bodies",
        "_body_bytes",
        "_closing",
        "_deferred",
        "_flush_scheduled",
        "_head_started",
        "_paused_reading",
        "_paused_writing",
        "_preface_seen",
        "_tasks",
        "_waiters",
        "client",
        "client_host",
        "conn",
        "created",
        "last_activity",
        "scheme",
        "state",
        "transport",
    )

    def __init__(self, state: ServerState, scheme: str) -> None:
        self.state = state
        self.scheme = scheme
        self.conn = H2Connection(state.h2_config)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.client_host = "-"
        self._bodies: dict[int, _PendingBody] = {}
        self._body_bytes = 0  # request body bytes held for handlers, all streams
        self._deferred: dict[int, int] = {}  # stream id -> window credit held back
        self._head_started: float | None = None  # a request head has been arriving since
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._flush_scheduled = False
        self._paused_writing = False
        self._paused_reading = False
        self._closing = False
        self._preface_seen = False
        self.created = state.loop.time()
        self.last_activity = self.created

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
        self.conn.initiate(self.state.loop.time())
        if self.state.shutting_down:
            self.shutdown()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._closing = True
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._bodies.clear()
        self._wake_all()

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop reading what it sends.
        self._paused_writing = True
        if self.transport is not None and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self.transport is not None and self._paused_reading and not self._closing:
            self._paused_reading = False
            self.transport.resume_reading()
        self._wake_all()

    def eof_received(self) -> bool | None:
        # A half-closed peer can still read our responses; the core decides when we are done.
        return True if self._tasks else None

    # A BufferedProtocol, so that the TLS layer decrypts straight into the server's shared
    # read buffer: as a plain Protocol, uvloop allocates a 256 KiB bytes object per read.
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.state.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.state.read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        state = self.state
        now = state.loop.time()
        self.last_activity = now
        # Dispatch on the exact event type (cheaper than isinstance); Any lets the
        # branches use each type's fields without a cast per event.
        events: list[Any] = self.conn.receive_data(data, now)
        for event in events:
            kind = type(event)
            if kind is ev.RequestReceived:
                if event.end_stream:
                    self._dispatch(event, b"")
                else:
                    self._start_body(event)
            elif kind is ev.DataReceived:
                self._on_data(event)
            elif kind is ev.StreamReset:
                self._forget_stream(event.stream_id)
            elif kind is ev.WindowUpdated:
                self._wake(event.stream_id)
            elif kind is ev.TrailersReceived:
                pending = self._release_body(event.stream_id)
                if pending is not None:
                    self._dispatch(pending.event, b"".join(pending.chunks))
            elif kind is ev.ConnectionTerminated:
                self._closing = True
            elif kind is ev.RemoteSettingsChanged:
                # The preface is complete once the peer's first SETTINGS has arrived.
                self._preface_seen = True
                # A larger SETTINGS_INITIAL_WINDOW_SIZE opens every stream's window.
                self._wake_all()
            elif kind is ev.GoAwayReceived:
                pass  # in-flight streams still finish; the peer opens no new ones
        self._flush()

    # -- requests -----------------------------------------------------------------------

    def _start_body(self, event: ev.RequestReceived) -> None:
        stream_id = event.stream_id
        for name, value in event.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                # RFC 9110 §10.1.1: say at once whether the body is wanted.
                if _declared_length(event.headers) > self.state.config.limits.max_body_size:
                    self._send(stream_id, event.method, BODY_TOO_LARGE, event)
                    self.conn.reset_stream(stream_id, ErrorCode.NO_ERROR)
                    return
                self.conn.send_headers(stream_id, _CONTINUE)
                break
        self._bodies[stream_id] = _PendingBody(event)

    def _on_data(self, event: ev.DataReceived) -> None:
        stream_id = event.stream_id
        pending = self._bodies.get(stream_id)
        received = event.flow_controlled_length
        if pending is None:
            if received:
                self.conn.acknowledge_received_data(stream_id, received)
            return
        size = len(event.data)
        pending.size += size
        self._body_bytes += size
        if pending.size > self.state.config.limits.max_body_size:
            self._release_body(stream_id)
            self._send(stream_id, pending.event.method, BODY_TOO_LARGE, pending.event)
            self.conn.reset_stream(stream_id, ErrorCode.NO_ERROR)
            return
        if received:
            self._credit(stream_id, received)
        if event.data:
            pending.chunks.append(event.data)
        if event.end_stream:
            self._release_body(stream_id)
            self._dispatch(pending.event, b"".join(pending.chunks))

    def _credit(self, stream_id: int, size: int) -> None:
        """Reopen the peer's window for body bytes we hold, within the connection's budget.

        Past `max_buffered_body` the credit is deferred (the peer's window stays shut, so it
        cannot send more) except for the oldest body, which can always finish: the budget
        bounds memory without ever deadlocking every upload at once.
        """
        if self._body_bytes <= self.state.config.limits.max_buffered_body or stream_id == next(
            iter(self._bodies)
        ):
            self.conn.acknowledge_received_data(stream_id, size)
        else:
            self._deferred[stream_id] = self._deferred.get(stream_id, 0) + size

    def _release_body(self, stream_id: int) -> _PendingBody | None:
        """The body leaves our buffer (handed over or dropped): give deferred credit out."""
        pending = self._bodies.pop(stream_id, None)
        if pending is None:
            return None
        self._body_bytes -= pending.size
        # An ended or reset stream's unacknowledged bytes go back to the connection
        # window inside the core; only other streams' deferred credit is owed.
        self._deferred.pop(stream_id, None)
        deferred = self._deferred
        if deferred:
            # The next oldest body must always be able to finish (no upload deadlock).
            oldest = next(iter(self._bodies), None)
            if oldest is not None and oldest in deferred:
                self.conn.acknowledge_received_data(oldest, deferred.pop(oldest))
            limit = self.state.config.limits.max_buffered_body
            while deferred and self._body_bytes <= limit:
                waiting_id, size = deferred.popitem()
                self.conn.acknowledge_received_data(waiting_id, size)
        return pending

    def _dispatch(self, event: ev.RequestReceived, body: bytes) -> None:
        raw_path = event.path
        split = raw_path.find(b"?")
        if split < 0:
            path = raw_path.decode("latin-1")
            query = ""
        else:
            path = raw_path[:split].decode("latin-1")
            query = raw_path[split + 1 :].decode("latin-1")
        request = Request(
            event.method.decode("latin-1"),
            path,
            query,
            event.headers,
            body,
            "2",
            self.scheme,
            event.authority.decode("latin-1"),
            self.client,
        )
        result = self.state.invoke(request)
        if isinstance(result, Response):
            self._send(event.stream_id, event.method, result, request)
        else:
            self._start_task(event.stream_id, self._answer_later(event, request, result))

    async def _answer_later(
        self, event: ev.RequestReceived, request: Request, pending: Awaitable[Response]
    ) -> None:
        response = await await_response(pending, request)
        if not self._closing:
            self._send(event.stream_id, event.method, response, request)
            self._schedule_flush()

    def _send(
        self,
        stream_id: int,
        method: bytes,
        response: Response,
        request: Request | ev.RequestReceived,
    ) -> None:
        try:
            self._send_or_raise(stream_id, method, response, request)
        except Exception:
            # A response the core refuses (say, a status outside 200-599): end the stream.
            log.exception("cannot send %r on stream %d", response, stream_id)
            self.conn.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)

    def _send_or_raise(
        self,
        stream_id: int,
        method: bytes,
        response: Response,
        request: Request | ev.RequestReceived,
    ) -> None:
        state = self.state
        fields = h2_fields(response, state.server_name, state.clock.http_date)
        head_only = method == b"HEAD"
        if head_only and response.stream is not None:
            discard_stream(response.stream)
        if response.stream is not None and not head_only:
            self.conn.send_headers(stream_id, (*_status(response.status), *fields))
            self._start_task(stream_id, self._stream_body(stream_id, response.stream))
            size = 0
        elif len(response.body) > BIG_BODY and not head_only:
            self.conn.send_headers(stream_id, (*_status(response.status), *fields))
            self._start_task(stream_id, self._send_big_body(stream_id, response.body))
            size = len(response.body)
        else:
            body = b"" if head_only else response.body
            self.conn.send_response(stream_id, response.status, fields, body)
            size = len(body)
        if state.access_log is not None:
            self._log(request, response.status, size)

    def _log(self, request: Request | ev.RequestReceived, status: int, size: int) -> None:
        assert self.state.access_log is not None
        if isinstance(request, Request):
            method, target = request.method, request.target
            headers = request.headers
        else:
            method = request.method.decode("latin-1")
            target = request.path.decode("latin-1")
            headers = request.headers
        referer = user_agent = None
        for name, value in headers:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
        self.state.access_log.record(
            self.client_host, method, target, "HTTP/2.0", status, size, referer, user_agent
        )

    # -- streaming bodies ---------------------------------------------------------------

    async def _stream_body(self, stream_id: int, chunks: AsyncIterator[bytes]) -> None:
        conn = self.conn
        try:
            async for chunk in chunks:
                if self._closing or stream_id not in self._tasks:
                    return
                if chunk:
                    conn.send_data(stream_id, chunk)
                    self._schedule_flush()
                if not await self._until_writable(stream_id):
                    return
            if not self._closing:
                conn.send_data(stream_id, b"", end_stream=True)
                self._schedule_flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("streaming body failed on stream %d", stream_id)
            if not self._closing:
                conn.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
                self._schedule_flush()
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing a streaming body failed", exc_info=True)

    async def _send_big_body(self, stream_id: int, body: bytes) -> None:
        conn = self.conn
        size = len(body)
        view = memoryview(body)  # slices share the body instead of copying it
        for start in range(0, size, BODY_SLICE):
            if self._closing or stream_id not in self._tasks:
                return
            end = start + BODY_SLICE
            conn.send_data(stream_id, view[start:end], end_stream=end >= size)  # type: ignore[arg-type]
            # Written now: the transport's pause_writing is what paces the slices.
            self._flush()
            if not await self._until_writable(stream_id):
                return

    async def _until_writable(self, stream_id: int) -> bool:
        """Wait while the peer's window or a full transport holds the stream back;
        False once the stream is gone (reset, or the connection is closing)."""
        conn = self.conn
        while not self._closing and (
            self._paused_writing or conn.pending_send_bytes(stream_id) > _STREAM_HIGH_WATER
        ):
            await self._wait_writable(stream_id)
            if stream_id not in self._tasks:
                return False
        return True

    def _wait_writable(self, stream_id: int) -> asyncio.Future[None]:
        waiter = self._waiters.get(stream_id)
        if waiter is None or waiter.done():
            waiter = self.state.loop.create_future()
            self._waiters[stream_id] = waiter
        return waiter

    def _wake(self, stream_id: int) -> None:
        if not self._waiters:
            return
        if stream_id == 0:
            self._wake_all()
            return
        waiter = self._waiters.pop(stream_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    # -- tasks and streams --------------------------------------------------------------

    def _start_task(self, stream_id: int, coro: object) -> None:
        task: asyncio.Task[None] = self.state.loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks[stream_id] = task
        task.add_done_callback(functools.partial(self._task_done, stream_id))

    def _task_done(self, stream_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(stream_id) is task:
            del self._tasks[stream_id]
        if self._closing or self.state.shutting_down:
            self._schedule_flush()

    def _forget_stream(self, stream_id: int) -> None:
        # Work for a cancelled stream is never done: drop its body, cancel its handler.
        self._release_body(stream_id)
        task = self._tasks.pop(stream_id, None)
        if task is not None:
            task.cancel()
        self._wake(stream_id)

    # -- output -------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.state.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None:
            return
        # Big DATA payloads come as views of the response body: no copy on the way out.
        buffers = self.conn.buffers_to_send()
        if buffers:
            self.last_activity = self.state.loop.time()
            if len(buffers) == 1:
                transport.write(buffers[0])
            else:
                transport.writelines(buffers)
        # After a final GOAWAY (ours on shutdown, or the peer's) the core reports `closed`
        # once its last stream is done.
        if self._closing or self.conn.closed:
            self._closing = True
            if not transport.is_closing():
                transport.close()

    # -- server housekeeping ------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._tasks and not self._bodies and self.conn.open_stream_count == 0

    def check_timeouts(self, now: float) -> None:
        if self._closing or self.transport is None:
            return
        timeouts = self.state.config.timeouts
        conn = self.conn
        if not self._preface_seen:
            if now - self.created > timeouts.request_head:
                self.abort()
            return
        # Slow request heads (a header block that never ends): the slowloris clock.
        if conn.has_partial_request:
            if self._head_started is None:
                self._head_started = now
            elif now - self._head_started > timeouts.request_head:
                self._give_up(b"request head too slow")
                return
        else:
            self._head_started = None
        # A peer that keeps our responses behind a shut window, whatever else it sends.
        blocked_since = conn.flow_blocked_since
        if blocked_since is not None and now - blocked_since > timeouts.stall:
            self._give_up(b"flow-control window shut too long")
            return
        quiet = now - self.last_activity
        if self.is_idle():
            if quiet > timeouts.keep_alive:
                conn.close(ErrorCode.NO_ERROR, b"idle timeout")
                self._flush()
        elif quiet > timeouts.stall:
            self._give_up(b"no progress")

    def _give_up(self, reason: bytes) -> None:
        self.conn.close(ErrorCode.NO_ERROR, reason)
        self._flush()
        self.abort()

    def shutdown(self) -> None:
        """Graceful: tell the peer (two-stage GOAWAY), finish what was accepted, then close."""
        if self._closing:
            return
        self.conn.start_graceful_shutdown(self.state.loop.time())
        self._schedule_flush()
        # The final GOAWAY goes out when the peer answers our PING; a peer that never
        # does gets it after one round trip's grace anyway.
        self.state.loop.call_later(_GOAWAY_GRACE, self._finish_shutdown)

    def _finish_shutdown(self) -> None:
        if not self._closing:
            self.conn.finish_graceful_shutdown()
            self._flush()

    def evict(self) -> None:
        """Make room at the connection cap: this idle connection gets GOAWAY and is closed."""
        if not self._closing:
            self.conn.close(ErrorCode.NO_ERROR, b"server at its connection limit")
            self._flush()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


_CONTINUE = ((b":status", b"100"),)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # the core has validated it
    return 0


def _status(status: int) -> tuple[tuple[bytes, bytes]]:
    return ((b":status", str(status).encode("ascii")),)
