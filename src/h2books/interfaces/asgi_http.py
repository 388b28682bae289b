"""One ASGI HTTP call: `receive` and `send` over one exchange, and what becomes of the app's end.

`send` follows the response through its phases; which message each phase accepts is the
table `_ACCEPTED`. The head is held until the first body message: a whole answer (one
body message, no trailers) then goes out through `exchange.respond`, the adapters'
cached whole-response path, and an app that fails before any body still gets a clean
500. Longer answers go out in parts (`start`, `write`, `end`), each part after
`wait_writable()` when the peer's window or the transport is full: that is `send`'s
backpressure.

`receive` hands out the body: whole in one message when it is already in, else chunk by
chunk as it arrives, the peer's flow-control credit going back as the app reads. After the
body it waits, and returns `http.disconnect` once the client is gone or the response is
complete (the spec's rule, which long polls rely on).

Misbehaving apps: an invalid message, or one the current phase does not take, is logged
and raised into the app as RuntimeError; `send` after the client left raises
`ClientDisconnected`, an OSError (spec 2.4). When the app ends, `finish` settles the
exchange: nothing sent yet means a 500, a response cut short means a reset (HTTP/2
RST_STREAM; HTTP/1.1 closes the connection, the only honest signal left).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from h2books.http import Response
from h2books.interfaces.asgi_fields import (
    FieldError,
    Head,
    Heads,
    informational_fields,
    push_request_fields,
    response_head,
    trailer_fields,
    with_length,
)
from h2books.interfaces.templates import respond_whole
from h2books.server.exchange import BIG_BODY, BODY_SLICE, Exchange
from h2books.server.responses import APP_TOO_SLOW, INTERNAL_ERROR

log = logging.getLogger("h2books.asgi")

Message = dict[str, Any]

# Response phases, in order.
AWAITING_START, HEAD_HELD, STREAMING, AWAITING_TRAILERS, DONE = range(5)
_PHASE_NAMES = ("before the response", "after the head", "during the body", "before trailers")

# receive(): the body's state.
BODY_UNREAD, _BODY_READING, _BODY_DRAINED = range(3)

_MULTIPLEXED = frozenset({"2", "3"})


class ClientDisconnected(OSError):
    """Raised by `send` when the client has gone (ASGI HTTP spec 2.4)."""


async def _no_body() -> AsyncIterator[bytes]:  # pragma: no cover - never iterated
    return
    yield b""


# A Response whose body is streamed by the app: tells the encoders to add no
# content-length of their own (HTTP/1.1 then chunks the body, unless the app declared one).
_STREAMED = _no_body()


class HttpCall:
    """The state of one request's ASGI call; `receive` and `send` are its bound methods."""

    # What every call sets or reads are slots; the rest start as the class-level defaults
    # below and go to the instance's __dict__ only when set, which a call answered inline
    # never does (as in Exchange): fewer stores per request.
    __slots__ = (
        "__dict__",
        "body_state",
        "exchange",
        "head",
        "heads",
        "phase",
        "timer",
        "trailers",
        "waiter",
    )

    exchange: Exchange
    heads: Heads  # the interface's checked heads (interfaces/templates.py)
    phase: int  # AWAITING_START ... DONE
    body_state: int  # BODY_UNREAD ... _BODY_DRAINED, for receive()
    head: Head  # set by http.response.start
    trailers: object  # set by http.response.start: the app announced trailers (truthy)
    read: int  # body bytes handed out, once the body is read in parts
    error: BaseException | None = None  # the RuntimeError we raised, logged already
    task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None  # the time to answer, while the app waits
    waiter: asyncio.Future[None] | None  # receive() waiting past the body
    timed_out = False
    # When the app last took body bytes, once its time to answer is running: the deadline
    # counts from then (see _timed_out).
    body_read_at: float | None = None
    body_seen = -1  # the body's size at the last check of the time to answer
    held_trailers: list[tuple[bytes, bytes]] | None = None

    # No __init__: `AsgiInterface.handle` makes each one, setting exchange, heads, phase
    # (AWAITING_START), body_state (BODY_UNREAD), timer and waiter (None) inline. On
    # CPython 3.11 calling a class that has a Python __init__ costs ~900 instructions more
    # than one without (the call of __init__ is not inlined), and a factory function a
    # call (~400) more, per request.

    @property
    def multiplexed(self) -> bool:
        """HTTP/2 or HTTP/3: connection-specific fields are dropped from what is sent."""
        return self.exchange.http_version in _MULTIPLEXED

    # -- receive ------------------------------------------------------------------------

    async def receive(self) -> Message:
        exchange = self.exchange
        state = self.body_state
        if state == BODY_UNREAD and exchange.body_complete:
            # The common case: the whole body (or none) is in, in one message.
            self.body_state = _BODY_DRAINED
            body = exchange.take_body() if exchange.body_size else b""
            if self.timer is not None:  # read late, after waiting for something else
                self.body_read_at = asyncio.get_running_loop().time()
            return {"type": "http.request", "body": body, "more_body": False}
        if state != _BODY_DRAINED:
            if state == BODY_UNREAD:
                self.body_state = _BODY_READING
                self.read = 0
            data = await exchange.receive()  # credit goes back to the peer as we take it
            self.body_read_at = asyncio.get_running_loop().time()
            if data:
                self.read += len(data)
                more = not exchange.body_complete or self.read < exchange.body_size
                if not more:
                    self.body_state = _BODY_DRAINED
                return {"type": "http.request", "body": data, "more_body": more}
            self.body_state = _BODY_DRAINED
            if not exchange.gone:
                return {"type": "http.request", "body": b"", "more_body": False}
        if self.phase != DONE and not exchange.gone:
            # Past the body: wait for the client to leave or the response to complete.
            waiter = self.waiter
            if waiter is None or waiter.done():
                waiter = self.waiter = asyncio.get_running_loop().create_future()
                exchange.on_gone = self._on_gone
            await waiter
        return {"type": "http.disconnect"}

    def _on_gone(self, exchange: Exchange) -> None:
        self._wake_receiver()

    def _wake_receiver(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- send ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise self._invalid(
                f"a message must be a dict with a 'type', not {message!r}"
            ) from None
        phase = self.phase
        exchange = self.exchange
        if exchange.gone and phase != DONE:
            raise ClientDisconnected(f"the client is gone ({exchange!r})")
        if phase == HEAD_HELD and kind == "http.response.body":
            body = message.get("body", b"")
            if not message.get("more_body", False) and not self.trailers:
                self._respond_whole(body)  # the common case: no await, one cached path
                return
            self._send_head()
            await self._write(body, bool(message.get("more_body", False)))
            return
        if phase == AWAITING_START and kind == "http.response.start":
            # A head seen before is looked up here (response_head's cache, inline: this
            # runs for every response); a new one is checked by _start.
            status = message.get("status")
            if type(status) is int:
                try:
                    seen = self.heads.get(
                        (exchange.http_version in _MULTIPLEXED, status, *message.get("headers", ()))
                    )
                except TypeError:  # [name, value] lists: not hashable
                    seen = None
                if seen is not None:
                    self.head = seen
                    self.trailers = message.get("trailers", False)  # only its truth is read
                    self.phase = HEAD_HELD
                    return
            self._start(message)
            return
        handler = _ACCEPTED[phase].get(kind)
        if handler is None:
            raise self._refused(kind)
        await handler(self, message)

    def _start(self, message: Message) -> None:
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise self._invalid(f"invalid status {status!r} in http.response.start")
        try:
            self.head = response_head(
                status,
                message.get("headers", ()),
                self.exchange.http_version in _MULTIPLEXED,
                self.heads,
            )
        except FieldError as exc:
            raise self._invalid(str(exc)) from None
        self.trailers = message.get("trailers", False)
        self.phase = HEAD_HELD

    def _respond_whole(self, body: Any) -> None:
        if type(body) is not bytes:
            body = self._bytes(body)
        head = self.head
        exchange = self.exchange
        if head.declared != len(body):
            status = head.status
            if head.declared is None:
                if exchange.method == b"HEAD" or status in (204, 304):
                    # The length of a HEAD answer's GET body is unknown: say none.
                    self.phase = DONE
                    exchange.respond(Response(status, head.fields, body))
                    self._finished()
                    return
                head = with_length(head, len(body), self.multiplexed, self.heads)
            elif exchange.method != b"HEAD" and status not in (204, 304):
                raise self._invalid(
                    f"a body of {len(body)} bytes after content-length: {head.declared}"
                )
        self.phase = DONE
        respond_whole(exchange, head, body)  # the head's template Response, its encodings cached
        if self.timer is not None or self.waiter is not None:
            self._finished()

    def _send_head(self) -> None:
        self.phase = STREAMING
        exchange = self.exchange
        try:
            exchange.start(Response(self.head.status, self.head.fields, stream=_STREAMED))
        except Exception:
            log.exception("cannot send the response head for %r", exchange)
            self._abandon()
            raise self._invalid("the response head could not be sent") from None

    async def _write(self, body: Any, more: bool) -> None:
        if type(body) is not bytes:
            body = self._bytes(body)
        exchange = self.exchange
        declared = self.head.declared
        if declared is not None and exchange.method != b"HEAD":
            sent = exchange.sent + len(body)
            if sent > declared or (not more and sent != declared):
                self._abandon()
                raise self._invalid(f"{sent} body bytes against content-length: {declared}")
        if body and not exchange.writable and not await exchange.wait_writable():
            raise ClientDisconnected(f"the client is gone ({exchange!r})")
        end = not more and not self.trailers
        try:
            if body or end:
                exchange.write(body, end)
        except Exception:
            log.exception("cannot send the response body for %r", exchange)
            self._abandon()
            raise self._invalid("the response body could not be sent") from None
        if not more:
            if end:
                self.phase = DONE
                self._finished()
            else:
                self.phase = AWAITING_TRAILERS

    async def _body(self, message: Message) -> None:
        await self._write(message.get("body", b""), bool(message.get("more_body", False)))

    async def _trailers(self, message: Message) -> None:
        try:
            fields = trailer_fields(message.get("headers", ()), self.multiplexed)
        except (FieldError, TypeError) as exc:
            self._abandon()
            raise self._invalid(str(exc)) from None
        if self.held_trailers:
            fields = self.held_trailers + fields
        if message.get("more_trailers", False):
            self.held_trailers = fields  # trailers may come in several messages
            return
        self.phase = DONE
        self.exchange.end(fields)
        self._finished()

    async def _early_hint(self, message: Message) -> None:
        exchange = self.exchange
        if exchange.http_version == "1.0":
            return  # RFC 9110 §15.2: no 1xx for an HTTP/1.0 client
        try:
            fields = informational_fields(message.get("links", ()))
        except (FieldError, TypeError) as exc:
            raise self._invalid(str(exc)) from None
        if fields:
            exchange.inform(103, fields)

    async def _push(self, message: Message) -> None:
        """`http.response.push`: a GET for `path` (decoded, as scope paths are; a query
        after `?` is kept) promised and served by this app as a request of its own. The
        server may decline it silently (ASGI: push is a hint): the client's SETTINGS,
        its stream limit, or a connection that is closing."""
        path = message.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise self._invalid(f"http.response.push needs a path starting with /, not {path!r}")
        try:
            fields = push_request_fields(message.get("headers", ()))
        except (FieldError, TypeError) as exc:
            raise self._invalid(str(exc)) from None
        self.exchange.push(quote(path, safe="/?=&;:@!$'()*+,~%").encode("ascii"), fields)

    async def _pathsend(self, message: Message) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise self._invalid(f"http.response.pathsend needs an absolute path, not {path!r}")
        exchange = self.exchange
        with open(path, "rb") as file:  # an OSError goes to the app: nothing is sent yet
            size = os.fstat(file.fileno()).st_size
            if self.head.declared is None:
                self.head = with_length(self.head, size, self.multiplexed, self.heads)
            if size <= BIG_BODY and not self.trailers:
                self._respond_whole(b"" if exchange.method == b"HEAD" else file.read())
                return
            self._send_head()
            # Slices as the peer takes them, like a big native body: never the whole file
            # in memory, and each slice a new bytes object (the cores send views of it).
            left = size if exchange.method != b"HEAD" else 0
            while left:
                chunk = file.read(min(BODY_SLICE, left))
                if not chunk:
                    self._abandon()
                    raise self._invalid(f"{path} shrank while it was sent")
                left -= len(chunk)
                await self._write(chunk, bool(left))
            if not size or exchange.method == b"HEAD":
                await self._write(b"", False)

    # -- errors -------------------------------------------------------------------------

    def _bytes(self, body: Any) -> bytes:
        if isinstance(body, bytearray | memoryview):
            return bytes(body)
        raise self._invalid(f"a response body must be bytes, not {type(body).__name__}")

    def _invalid(self, reason: str) -> RuntimeError:
        log.error("ASGI app error for %r: %s", self.exchange, reason)
        error = RuntimeError(reason)
        self.error = error
        return error

    def _refused(self, kind: object) -> RuntimeError:
        if self.phase == DONE:
            return self._invalid(f"{kind!r} sent after the response was complete")
        return self._invalid(f"unexpected {kind!r} {_PHASE_NAMES[self.phase]}")

    def _abandon(self) -> None:
        """The head is out and the response cannot be finished: reset it."""
        self.phase = DONE
        self.exchange.reset()
        self._finished()

    def _finished(self) -> None:
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()
        self._wake_receiver()

    # -- the app's end --------------------------------------------------------------------

    def waiting(self, task: asyncio.Task[Any], timeout: float | None) -> None:
        """The app is waiting for real I/O, in `task`: bound its time to answer."""
        self.task = task
        if timeout and self.phase < STREAMING:
            self.timer = task.get_loop().call_later(timeout, self._timed_out, timeout)

    def _timed_out(self, timeout: float) -> None:
        self.timer = None
        if self.phase >= STREAMING or self.exchange.gone:
            return
        loop = asyncio.get_running_loop()
        exchange = self.exchange
        if not exchange.body_complete and exchange.body_size != self.body_seen:
            # Still uploading: a slow upload is the stall rule's to bound. (No byte for a
            # whole period, and the time runs below: an app that does not read while its
            # window is shut would otherwise hold the request forever.)
            self.body_seen = exchange.body_size
            self.timer = loop.call_later(timeout, self._timed_out, timeout)
            return
        # The time to answer counts from the app's last read of the body: one that keeps
        # reading what came keeps its time, one that stopped for a whole period is late.
        read_at = self.body_read_at
        if read_at is not None and read_at + timeout > loop.time():
            self.timer = loop.call_at(read_at + timeout, self._timed_out, timeout)
            return
        log.error("ASGI app did not answer %r within %g s: 503", self.exchange, timeout)
        self.timed_out = True
        self.phase = DONE
        self.exchange.respond(APP_TOO_SLOW)
        self._wake_receiver()
        if self.task is not None:
            self.task.cancel()

    def finish(self, exc: BaseException | None) -> None:
        """The app's coroutine ended: returned (exc None) or raised `exc`."""
        phase = self.phase
        if self.timer is not None or self.waiter is not None:
            self._finished()
        exchange = self.exchange
        if exc is None:
            if phase == DONE or exchange.gone:
                return
            if phase <= HEAD_HELD:
                log.error("ASGI app returned without a response to %r: 500", exchange)
                self.phase = DONE
                exchange.respond(INTERNAL_ERROR)
            else:
                log.error("ASGI app returned before its response to %r was complete", exchange)
                self._abandon()
            return
        if isinstance(exc, ClientDisconnected) or (
            isinstance(exc, asyncio.CancelledError) and (self.timed_out or exchange.gone)
        ):
            log.debug("ASGI app for %r ended: %r", exchange, exc)
            return
        if exc is not self.error:  # what we raised into the app was logged then
            log.error("ASGI app raised for %r", exchange, exc_info=exc)
        if phase == DONE or exchange.gone:
            return
        if phase <= HEAD_HELD:
            self.phase = DONE
            exchange.respond(INTERNAL_ERROR)
            self._wake_receiver()
        else:
            self._abandon()


Handler = Callable[[HttpCall, Message], Awaitable[None]]

# The messages each phase takes (start and the first body are also handled inline in send).
_ACCEPTED: dict[int, dict[str, Handler]] = {
    AWAITING_START: {
        "http.response.start": lambda call, message: _sync(call._start, message),
        "http.response.early_hint": HttpCall._early_hint,
        "http.response.push": HttpCall._push,
    },
    HEAD_HELD: {
        "http.response.body": HttpCall._body,
        "http.response.pathsend": HttpCall._pathsend,
        "http.response.early_hint": HttpCall._early_hint,
        "http.response.push": HttpCall._push,
    },
    STREAMING: {"http.response.body": HttpCall._body, "http.response.push": HttpCall._push},
    AWAITING_TRAILERS: {"http.response.trailers": HttpCall._trailers},
    DONE: {},
}


async def _sync(function: Callable[[Message], None], message: Message) -> None:
    function(message)
