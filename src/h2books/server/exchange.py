"""One request and its response, whatever the protocol: the runtime's one request path.

A protocol adapter (`server/adapters/`) turns its core's events into `Exchange` objects
and carries out what the layer above asks of them. Everything above this interface is
written once for every protocol: the native handler API (`interfaces/native.py`) today,
ASGI and WSGI next, over HTTP/1.1, HTTP/2 and (later) HTTP/3 alike.

An exchange offers:

- the request head: `method`, `target`, `headers`, `authority` (bytes, as they came),
  `http_version`, and the connection's `scheme` and `client`;
- the request body: whole (`take_body()`) once `body_complete`, with `on_body_complete`
  called when the last byte arrives, or chunk by chunk (`await receive()`), the peer's
  flow-control credit being given back as the reader takes the bytes; `trailers`;
- the response: `respond(Response)` sends a native response whole through the adapter's
  cached encodings; `start()`, `write()` and `end(trailers)` send one in parts, with
  `writable` / `await wait_writable()` for backpressure; `inform()` sends a 1xx;
  `push()` promises and serves a GET for another path over HTTP/2 with --push (False
  where the server, the protocol or the peer does not allow it);
- `gone`: the peer reset the stream or the connection ended; `reset()` abandons the
  exchange (HTTP/2: RST_STREAM; HTTP/1.1: the connection is cut);
- a tunnel, for a request that asks to switch protocols (`upgrade`, b"websocket": an
  HTTP/1.1 Upgrade or an HTTP/2 extended CONNECT). `accept_tunnel(headers)` answers
  it (HTTP/1.1: 101 Switching Protocols, the connection then leaves the HTTP/1.1 core;
  HTTP/2: 200 on the CONNECT stream), any other response refuses it. Once accepted,
  `receive()` yields the peer's raw bytes (b"" once it closed its side; HTTP/2: DATA
  payloads, their flow-control credit given back as they are read; HTTP/1.1: socket
  bytes, the socket paused while too many are unread), `write(data)` sends raw bytes
  (after `wait_writable()`), `end()` closes our side (END_STREAM; HTTP/1.1: the socket
  is closed once written) and `reset()` abandons it (RST_STREAM CANCEL; the socket is
  cut). `on_shutdown` is called when the server begins a graceful shutdown; `on_input`
  lets a reader take bytes (`take_body()`) in the read's own callback instead of a
  task awaiting `receive()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from h2books.http import Response

if TYPE_CHECKING:
    from h2books.server.connection import ServerConnection

log = logging.getLogger("h2books.server")

Fields = list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]

# Response states, in order.
PENDING, STARTED, DONE = 0, 1, 2


class Exchange:
    # The fields every request sets, or that every request reads, are slots. The rest
    # start as the class-level defaults below and go to a per-instance __dict__ only when
    # set, which most requests never do (a sync answer with no body): fewer attribute
    # stores per request, and no dict. (A class-level default read through the instance
    # costs ~200 instructions more than a slot on CPython 3.11, which does not specialize
    # that load: what the common path reads is worth its store in __init__.)
    __slots__ = (
        "__dict__",
        "adapter",
        "authority",
        "body_complete",
        "body_size",
        "gone",
        "headers",
        "held",
        "http_version",
        "method",
        "response_state",
        "stream_id",
        "target",
        "upgrade",
    )

    # The body so far (a list once a chunk is held), and its size (body_size).
    _chunks: list[bytes] | None = None
    body_size: int
    on_body_complete: Callable[[Exchange], object] | None = None
    # Called once when the exchange is lost (the peer reset it or the connection ended).
    on_gone: Callable[[Exchange], object] | None = None
    # The server answered in the app's place (a WSGI app past --response-timeout): what
    # the app still reads of the body or sends is not its any more.
    expired = False
    trailers: list[tuple[bytes, bytes]] | None = None
    _reader: asyncio.Future[None] | None = None
    _waiter: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    # Adapter-owned: a response whose turn has not come (HTTP/1.1 answers in order), and
    # the parts of its body written before it.
    held: Response | None
    # For the access log of a response sent in parts (a whole one is logged as it goes).
    status = 0
    sent = 0  # body octets
    backlog: list[tuple[bytes | memoryview, bool]] | None = None
    gone: bool  # the peer reset the stream or the connection ended (lose())
    # The protocol a request asks to switch to (b"websocket": HTTP/1.1 Upgrade, or an
    # HTTP/2 extended CONNECT's :protocol), lowercased; None for a plain request. (A
    # slot: the ASGI interface reads it for every request.)
    upgrade: bytes | None
    # Called once when the server begins a graceful shutdown (an open tunnel says goodbye).
    on_shutdown: Callable[[], object] | None = None
    # Called, when nobody awaits receive(), as input arrives, ends, or the exchange is
    # lost: a reader that takes bytes in the read's own callback (a WebSocket parses
    # them there, with no task switch per message) uses take_body() in it.
    on_input: Callable[[], object] | None = None

    adapter: ServerConnection
    stream_id: int  # HTTP/2 and HTTP/3; 0 over HTTP/1.1
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    authority: bytes
    http_version: str  # "1.0", "1.1", "2", "3"
    body_complete: bool
    response_state: int  # PENDING, STARTED, DONE

    # No __init__: `new_exchange` makes each one. On CPython 3.11 calling a class that
    # has a Python __init__ costs ~900 instructions more than one without (the call of
    # __init__ is not inlined), and each request is an exchange.

    @property
    def scheme(self) -> str:
        return self.adapter.scheme

    @property
    def client(self) -> tuple[str, int] | None:
        return self.adapter.client

    # -- the request body (fed by the adapter) ------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if data:
            if self._chunks is None:
                self._chunks = [data]
            else:
                self._chunks.append(data)
            self.body_size += len(data)
            self._wake_reader()

    def end_body(self, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.trailers = trailers
        self.body_complete = True
        callback = self.on_body_complete
        if callback is not None:
            self.on_body_complete = None
            callback(self)
        self._wake_reader()

    def take_body(self) -> bytes:
        """Everything received so far, as one bytes object; the adapter's buffer is released."""
        chunks = self._chunks
        if not chunks:
            return b""
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = None
        self.adapter.body_taken(self, len(body))
        return body

    def release_body(self) -> None:
        """Drop what is held of the body: the exchange is over (the adapter keeps its own
        count of what its budget holds)."""
        self._chunks = None

    async def receive(self) -> bytes:
        """The next piece of the body; b"" once it is complete (or the exchange is gone)."""
        while not self._chunks:
            if self.body_complete or self.gone:
                return b""
            if self._reader is None or self._reader.done():
                self._reader = self.adapter.state.loop.create_future()
            await self._reader
        data = self._chunks.pop(0)
        self.adapter.body_taken(self, len(data))
        return data

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
        elif self.on_input is not None:
            self.on_input()

    # -- the response ---------------------------------------------------------------------

    def respond(self, response: Response) -> None:
        """Send a native response: whole, or its stream (or a big body) in the background."""
        if self.response_state != PENDING or self.gone:
            return
        body = response.body
        stream = response.stream
        try:
            if stream is None and len(body) <= BIG_BODY:  # the common case first
                self.response_state = DONE
                if self.method == b"HEAD":
                    body = b""
                adapter = self.adapter
                adapter.respond(self, response, body)
                if adapter.state.access_log is not None:
                    adapter.log_exchange(self, response.status, len(body))
            elif self.method == b"HEAD":
                # The head of the GET answer, and none of its body.
                if stream is not None:
                    discard_stream(stream)
                self.response_state = DONE
                adapter = self.adapter
                adapter.respond(self, response, b"")
                if adapter.state.access_log is not None:
                    adapter.log_exchange(self, response.status, 0)
            else:
                # A stream, or a big body in slices as the transport drains: framed,
                # encrypted and written whole, a 64 MiB body needs several 64 MiB buffers
                # at once, and faulting their pages in costs more than the encryption.
                self.start(response)
                chunks = stream if stream is not None else _slices(body)
                self.task = self.adapter.state.loop.create_task(self.send_stream(chunks))
        except Exception:
            # A response the core refuses (a bad status, framing HTTP/1.0 cannot carry):
            # the head may be half out, so the exchange is abandoned.
            log.exception("cannot send %r for %r", response, self)
            self.reset()

    def start(self, response: Response) -> None:
        """Send the head of `response`; the body follows with write() and end()."""
        if self.gone or self.response_state != PENDING:
            return
        self.status = response.status
        self.response_state = STARTED
        self.adapter.start(self, response)

    def write(self, data: bytes | memoryview, end: bool = False) -> None:
        """Send part of the body; await wait_writable() first for backpressure (on HTTP/1.1
        a response whose turn has not come is held in memory until it has)."""
        if self.gone or self.response_state != STARTED:
            return
        if self.method == b"HEAD":
            data = b""  # the head of a GET, never its body
        self.sent += len(data)
        if end:
            self.response_state = DONE
        self.adapter.write(self, data, end)
        if end:
            self.adapter.log_exchange(self, self.status, self.sent)

    def end(self, trailers: Fields | None = None) -> None:
        if self.gone or self.response_state != STARTED:
            return
        self.response_state = DONE
        self.adapter.end(self, trailers or None)
        self.adapter.log_exchange(self, self.status, self.sent)

    def accept_tunnel(self, headers: Fields = ()) -> bool:
        """Accept the switch this request asks for (`upgrade`); `headers` go with the
        answer. False if the exchange is gone, not an upgrade, or already answered."""
        if self.gone or self.response_state != PENDING or self.upgrade is None:
            return False
        self.response_state = STARTED
        self.status = self.adapter.accept_tunnel(self, headers)
        return not self.gone

    def inform(self, status: int, fields: Fields = ()) -> None:
        """A 1xx informational response (103 Early Hints, 100 Continue) before the final one;
        a 103 is dropped when the server runs with early hints off (`--no-early-hints`)."""
        if not self.gone and self.response_state == PENDING and 100 <= status < 200:
            if status == 103 and not self.adapter.state.config.early_hints:
                return  # `serve --no-early-hints`
            self.adapter.inform(self, status, fields)

    def push(self, path: bytes, fields: Fields = ()) -> bool:
        """Server push of a GET for `path` (`fields`: its request header fields), served by
        the same interface as a request of its own; False where the server (--push), the
        protocol (HTTP/2 only), the peer (SETTINGS_ENABLE_PUSH, its stream limit) or the
        state of this exchange (its response ended, a GOAWAY) does not allow it."""
        return False if self.gone else self.adapter.push(self, path, fields)

    def reset(self) -> None:
        if not self.gone:
            self.adapter.reset(self)

    @property
    def writable(self) -> bool:
        return not self.gone and self.adapter.writable(self)

    async def wait_writable(self) -> bool:
        """Wait while the peer's window or a full transport holds this response back;
        False once the exchange is gone."""
        while not self.gone and not self.adapter.writable(self):
            if self._waiter is None or self._waiter.done():
                self._waiter = self.adapter.state.loop.create_future()
            await self._waiter
        return not self.gone

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lose(self) -> None:
        """The peer reset the stream or the connection ended: no response will go out."""
        self.gone = True
        callback = self.on_gone
        if callback is not None:
            self.on_gone = None
            callback(self)
        task = self.task
        if task is not None and not task.done():
            task.cancel()
        self.wake()
        self._wake_reader()

    async def send_stream(self, chunks: AsyncIterator[bytes]) -> None:
        """Write a streamed body with backpressure, then end the response."""
        try:
            if not await self.wait_writable():
                return
            async for chunk in chunks:
                if chunk:
                    self.write(chunk)
                if not await self.wait_writable():
                    return
            self.end()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The head is gone already: the only honest signal left is a reset.
            log.exception("streaming body failed for %r", self)
            self.reset()
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing a streaming body failed", exc_info=True)

    def __repr__(self) -> str:
        return (
            f"<Exchange {self.method.decode('latin-1')} {self.target.decode('latin-1')} "
            f"HTTP/{self.http_version}>"
        )


def new_exchange(
    adapter: ServerConnection,
    stream_id: int,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    authority: bytes,
    http_version: str,
    body: bytes | None,
) -> Exchange:
    """An exchange for a request that `adapter` received: `body` is the whole body (b""
    for none), or None while it is still arriving (fed with feed_body, end_body)."""
    exchange = Exchange()
    exchange.adapter = adapter
    exchange.stream_id = stream_id
    exchange.method = method
    exchange.target = target
    exchange.headers = headers
    exchange.authority = authority
    exchange.http_version = http_version
    # Complete at once when the request came without a body, or whole.
    exchange.body_complete = body is not None
    exchange.response_state = PENDING
    exchange.gone = False
    exchange.held = None
    exchange.upgrade = None
    if body:
        exchange._chunks = [body]
        exchange.body_size = len(body)
    else:
        exchange.body_size = 0
    return exchange


# A body larger than this goes out a slice at a time, as the transport drains.
BIG_BODY = 1024 * 1024
# The size of a slice is chosen for TLS, where big bodies go out fastest when:
# - a slice, once framed and encrypted, stays under the 128 KiB malloc mmap threshold
#   that the server pins (runner.py). The buffers made per slice (HTTP/2's joined frames,
#   the TLS layer's ciphertext) then come from the heap and are reused; at 256 KiB each
#   was a fresh mmap, page-faulted in and unmapped again: a third of the server's CPU
#   for a big body over h2.
# - over HTTP/2, the slice and its 7 DATA frame headers (9 octets each) fill exactly 7
#   TLS records of 16 KiB, so no slice ends in a record of a few dozen octets.
BODY_SLICE = 7 * (16384 - 9)


async def _slices(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)  # slices share the body instead of copying it
    for start in range(0, len(body), BODY_SLICE):
        yield view[start : start + BODY_SLICE]  # type: ignore[misc]


def discard_stream(stream: AsyncIterator[bytes]) -> None:
    """A streaming body that will not be sent (a HEAD request): close it anyway, so that
    whatever it holds (a file, a cursor) is released."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        task = asyncio.get_running_loop().create_task(aclose())
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("closing a streaming body failed", exc_info=task.exception())
