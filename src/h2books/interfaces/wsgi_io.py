"""WSGI's moving parts between the app's threads and the event loop.

- `WorkerPool`: a fixed number of threads taking requests from one queue, in order;
- `LoopInbox`: calls from the app's threads to the loop, as many as came in one wake-up
  of the loop (a whole answer is one of those);
- `StreamedInput`: `wsgi.input` for a body still arriving. Each piece comes from
  `Exchange.receive()` on the loop when the app asks for it, so the peer's flow-control
  credit goes back only as the app reads: an app that never reads leaves the window shut;
- `ResponsePipe`: a streamed response body from the app's thread to the loop, bounded in
  bytes. The thread blocks while the pipe is full; the loop empties it as the exchange
  becomes writable (the peer's window, the transport's buffer);
- `FileWrapper`: `wsgi.file_wrapper`.

Every crossing from a thread to the loop goes through `LoopInbox` or
`call_soon_threadsafe` (`run_coroutine_threadsafe` for a body read); the exchange is only
ever touched on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

from h2books.http import Response
from h2books.server.exchange import BODY_SLICE, PENDING, STARTED, Exchange

log = logging.getLogger("h2books.wsgi")

# Bytes of a streamed response the app's thread may queue before it blocks; the loop takes
# them all at once, so at most twice this is held per response outside the protocol core.
PIPE_HIGH_WATER = 256 * 1024
# Queued parts smaller than this in total are joined into one write (one DATA frame, one
# chunk) rather than written one by one.
_JOIN_BELOW = 64 * 1024


class ClientDisconnected(OSError):
    """The client went away (reset the stream, closed the connection) mid-request."""


class WorkerPool:
    """`size` threads that run `job(argument)` for each submitted pair, oldest first.

    More requests than threads wait in the queue (none is dropped); the queue itself is
    bounded by what the server admits (connections x concurrent streams).
    """

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"a WSGI thread pool needs at least one thread, not {size}")
        self.size = size
        self._jobs: queue.SimpleQueue[tuple[Callable[[Any], None], Any] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[Any], None], argument: Any) -> None:
        self._jobs.put((job, argument))

    def _work(self) -> None:
        take = self._jobs.get
        while True:
            item = take()
            if item is None:
                return
            job, argument = item
            try:
                job(argument)
            except BaseException:  # a job must not take its thread down with it
                log.exception("a WSGI job failed outside the app")

    def stop(self) -> None:
        """Let the queued jobs finish, then the threads end (see `running`)."""
        for _ in self._threads:
            self._jobs.put(None)

    @property
    def running(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)


class LoopInbox:
    """Calls from the app's threads to run on the loop, in the order they were posted.

    Each `call_soon_threadsafe` is a Handle, a lock and a wake-up of the loop; the answers
    of one read of 100 HTTP/2 requests come back within a millisecond, while the loop is
    waiting for the GIL anyway. So only the first call posted since the loop last drained
    the inbox wakes it, and the loop runs all the calls queued by then in one callback.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._posted = False  # a drain is due on the loop

    def call(self, function: Callable[..., None], *arguments: Any) -> None:
        """From any thread: run `function(*arguments)` on the loop soon."""
        with self._lock:
            self._calls.append((function, arguments))
            if self._posted:
                return
            self._posted = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except BaseException:  # the loop is closed (shutdown): nothing will drain these
            with self._lock:
                self._calls.clear()
                self._posted = False
            raise

    def _drain(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
            self._posted = False
        for function, arguments in calls:
            try:
                function(*arguments)
            except Exception:  # one failed answer must not drop the others
                log.exception("a WSGI call on the loop failed: %r", function)


async def _next_part(exchange: Exchange, deadlines: AnswerDeadlines | None) -> bytes | None:
    """On the loop: the next piece of the body, b"" at its end, None if the client left
    or the app's time ran out (the 503 went out in its place: the rest is not its to read,
    and must not look like the end of the body)."""
    if deadlines is not None:
        deadlines.touch(exchange)
    data = await exchange.receive()
    if not data and (exchange.gone or exchange.expired):
        return None
    return data


class StreamedInput:
    """`wsgi.input` for a request body that is still arriving (read from the app's thread)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        exchange: Exchange,
        deadlines: AnswerDeadlines | None = None,
    ) -> None:
        self._loop = loop
        self._exchange = exchange
        self._deadlines = deadlines
        self._buffer = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        """Wait for the next piece of the body; False at its end."""
        if self._eof:
            return False
        data = asyncio.run_coroutine_threadsafe(
            _next_part(self._exchange, self._deadlines), self._loop
        ).result()
        if data is None:
            self._eof = True
            if self._exchange.expired:
                raise ClientDisconnected("the app's time to answer ran out: a 503 went out")
            raise ClientDisconnected("the client went away before the end of its request body")
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        buffer = self._buffer
        data = bytes(buffer[:size])
        del buffer[:size]  # cheap at the front of a bytearray
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        searched = 0
        while True:
            buffer = self._buffer
            newline = buffer.find(b"\n", searched)
            if newline >= 0:
                end = newline + 1
                break
            if 0 <= limit <= len(buffer):
                end = limit
                break
            searched = len(buffer)
            if not self._fill():
                end = len(self._buffer)
                break
        if 0 <= limit < end:
            end = limit
        return self._take(end)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class _Streamed:
    """Marks a Response head as streamed (no content-length computed from its empty
    body); its parts come through the pipe, never through this iterator."""

    def __aiter__(self) -> _Streamed:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


STREAMED = _Streamed()


def streamed_head(status: int, fields: list[tuple[bytes, bytes]]) -> Response:
    return Response(status, fields, stream=STREAMED)


# What the app's thread asks of the loop once its body is over.
_MORE, _END, _RESET = 0, 1, 2


class ResponsePipe:
    """A streamed response: its head, then its body parts, from the app's thread to the
    loop. `put` blocks while more than PIPE_HIGH_WATER bytes wait; it raises
    ClientDisconnected once the exchange is gone, so that the app's iterable stops being
    consumed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, exchange: Exchange, head: Response) -> None:
        self._loop = loop
        self._exchange = exchange
        self._head: Response | None = head
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._parts: list[bytes] = []  # from the thread, not yet taken by the loop
        self._queued = 0
        self._ending = _MORE
        self._scheduled = False  # a drain is due or running on the loop
        self._broken = False  # the exchange is gone
        self._writing: deque[bytes | memoryview] = deque()  # taken, written as it can be

    # -- the app's thread -------------------------------------------------------------------

    def put(self, data: bytes) -> None:
        with self._lock:
            if self._broken:
                raise ClientDisconnected("the client went away during the response")
            self._parts.append(data)
            self._queued += len(data)
            self._schedule()
            while self._queued > PIPE_HIGH_WATER and not self._broken:
                self._room.wait()

    def finish(self, ending: int = _END) -> None:
        """The body is complete (`_END`), or broken off (`_RESET`)."""
        with self._lock:
            self._ending = ending
            if not self._broken:
                self._schedule()

    def abort(self) -> None:
        self.finish(_RESET)

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    # -- the loop ---------------------------------------------------------------------------

    def _drain(self) -> None:
        """Write what the thread queued while the exchange takes it; then end or reset
        the response once the thread says the body is over."""
        exchange = self._exchange
        writing = self._writing
        try:
            if self._head is not None:
                head, self._head = self._head, None
                exchange.start(head)
                if exchange.response_state != STARTED:
                    # Answered already (the 503 of AnswerDeadlines): the app's next part
                    # raises, so that its iterable stops being consumed.
                    self._break()
                    return
            while not exchange.gone:
                if not writing:
                    parts, ending = self._take()
                    if not parts:
                        if ending == _END:
                            exchange.end()
                        elif ending == _RESET:
                            exchange.reset()
                        return  # _MORE: the thread schedules the next drain
                    _slice_into(parts, writing)
                if not exchange.writable:
                    self._loop.create_task(self._drain_when_writable())
                    return
                exchange.write(writing.popleft())
            self._break()
        except Exception:
            log.exception("sending a WSGI response failed for %r", exchange)
            exchange.reset()
            self._break()

    def _take(self) -> tuple[list[bytes], int]:
        """The parts queued so far (the thread may queue more at once), or none and how
        the body ends; with none and more to come, the next put schedules a drain."""
        with self._lock:
            parts = self._parts
            if parts:
                self._parts = []
                self._queued = 0
                self._room.notify()
            elif self._ending == _MORE:
                self._scheduled = False
            return parts, self._ending

    async def _drain_when_writable(self) -> None:
        await self._exchange.wait_writable()  # False once gone: _drain sees it
        self._drain()

    def _break(self) -> None:
        self._writing.clear()
        with self._lock:
            self._broken = True
            self._parts = []
            self._queued = 0
            self._room.notify_all()


def _slice_into(parts: list[bytes], out: deque[bytes | memoryview]) -> None:
    """Small parts joined into one write; a big one cut into slices the transport can
    take one at a time (as Exchange.respond does with a big body)."""
    if len(parts) > 1 and sum(map(len, parts)) < _JOIN_BELOW:
        out.append(b"".join(parts))
        return
    for part in parts:
        if len(part) <= BODY_SLICE:
            out.append(part)
        else:
            view = memoryview(part)
            out.extend(
                view[start : start + BODY_SLICE] for start in range(0, len(part), BODY_SLICE)
            )


class FileWrapper:
    """`wsgi.file_wrapper`: a file sent in big blocks, read in the app's thread (file reads
    release the GIL); closing the wrapper closes the file, as PEP 3333 asks."""

    def __init__(self, filelike: IO[bytes], block_size: int = BODY_SLICE) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        size = self.block_size
        while data := read(size):
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class AnswerDeadlines:
    """The time a WSGI app gets to start its answer (`--response-timeout`), for every call
    in flight, kept by one sweep timer instead of a timer per request: a call costs a dict
    entry. The time counts from the request body's last byte, or from the app's last read
    of it when it reads it in parts (`touch`): a steady reader keeps its time. While the
    body is still arriving nothing runs out (a slow upload is the stall rule's to bound),
    unless a whole sweep brought no byte of it (an app that does not read while its window
    is shut). The deadline falls between `timeout` and `timeout` + one sweep period after
    the last byte or read. Past it the request gets `answer` (a 503) and a log line. The
    app's thread cannot be stopped: the exchange is marked `expired`, what the thread
    sends later is dropped, a streamed response finds its pipe broken, and a read of the
    rest of the body raises ClientDisconnected (a body cut short must not look whole)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, answer: Response) -> None:
        if timeout <= 0:
            raise ValueError(f"a response timeout must be positive, not {timeout}")
        self._loop = loop
        self._timeout = timeout
        self._period = min(1.0, timeout / 4)
        self._answer = answer
        # The calls in flight: their deadline (None while the body still arrives), and,
        # for a body still arriving, its size at the last sweep.
        self._due: dict[Exchange, float | None] = {}
        self._sizes: dict[Exchange, int] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def watch(self, exchange: Exchange) -> None:
        self._due[exchange] = self._loop.time() + self._timeout
        if not exchange.body_complete:
            self._sizes[exchange] = exchange.body_size
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._period, self._sweep)

    def respond(self, exchange: Exchange, response: Response) -> None:
        """The app's whole answer (on the loop): the call leaves the watch, and the answer
        goes out unless the 503 went first."""
        self._due.pop(exchange, None)
        if self._sizes:  # uploads in progress only: nearly free for the common call
            self._sizes.pop(exchange, None)
        exchange.respond(response)

    def touch(self, exchange: Exchange) -> None:
        """The app reads its body (on the loop): its time counts from now."""
        if self._due.get(exchange) is not None:
            self._due[exchange] = self._loop.time() + self._timeout

    def _sweep(self) -> None:
        self._sweeper = None
        now = self._loop.time()
        due, sizes = self._due, self._sizes
        for exchange, deadline in list(due.items()):
            if exchange.gone or exchange.response_state != PENDING:
                del due[exchange]  # answered (streamed, failed) or left
                sizes.pop(exchange, None)
                continue
            if not exchange.body_complete and exchange.body_size != sizes.get(exchange, -1):
                sizes[exchange] = exchange.body_size  # the upload moves on
                due[exchange] = None
                continue
            if deadline is None:  # the first sweep since the body stopped arriving
                due[exchange] = now + self._timeout
            elif deadline <= now:
                del due[exchange]
                sizes.pop(exchange, None)
                log.error("WSGI app did not answer %r within %g s: 503", exchange, self._timeout)
                exchange.expired = True
                exchange.respond(self._answer)
        if due and self._sweeper is None:
            self._sweeper = self._loop.call_later(self._period, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._due.clear()
        self._sizes.clear()
