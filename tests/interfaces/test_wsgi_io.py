"""`AnswerDeadlines`, the WSGI response timeout, on a fake clock: real in-process HTTP/2
exchanges, a loop stand-in whose time the test moves and whose one timer it fires."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import h2.events
import pytest

from h2books.http import Response
from h2books.interfaces.wsgi_io import (
    AnswerDeadlines,
    ClientDisconnected,
    LoopInbox,
    ResponsePipe,
    WorkerPool,
    _next_part,
    streamed_head,
)
from h2books.server.responses import APP_TOO_SLOW
from tests.server.inprocess import GET, POST, RecordingTransport, collecting_h2

TIMEOUT = 8.0  # sweeps every second


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """What AnswerDeadlines uses of a loop: time() and call_later()."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], Any]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = end


def statuses(client: Any, transport: RecordingTransport) -> list[bytes]:
    events = client.receive_data(transport.data)
    transport.writes.clear()
    return [
        dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived)
    ]


def test_an_app_past_its_time_gets_a_503_and_one_in_time_is_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, GET, end_stream=True)
        client.send_headers(3, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        slow, quick = exchanges
        deadlines.watch(slow)
        deadlines.watch(quick)
        quick.respond(Response(200, body=b"in time"))
        clock.advance(TIMEOUT - 1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"200"]
        clock.advance(1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"503"]
        assert "did not answer" in caplog.text
        assert not [t for t in clock.timers if not t.cancelled]  # nothing left to watch

    asyncio.run(main())


def test_the_time_counts_from_the_bodys_last_byte() -> None:
    """An upload that keeps arriving never runs out (the stall rule's to bound); once
    complete, mid-way between two sweeps, the app has between TIMEOUT and TIMEOUT plus a
    sweep period."""

    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, POST, end_stream=False)
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[0])
        for _ in range(3 * int(TIMEOUT)):  # a byte a second, for three periods
            client.send_data(1, b"x")
            protocol.data_received(client.data_to_send())
            clock.advance(1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == []
        clock.advance(0.5)
        client.send_data(1, b"end", end_stream=True)
        protocol.data_received(client.data_to_send())
        clock.advance(TIMEOUT - 0.1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == []  # never early
        clock.advance(1.1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"503"]  # at most a period late

    asyncio.run(main())


def test_an_upload_that_stops_arriving_lets_the_time_run() -> None:
    """No byte for a whole sweep: the app does not read while its window is shut (or the
    client stalls); its time runs, or a hung app would hold the request forever."""

    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, POST, end_stream=False)
        client.send_data(1, b"part")
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[0])
        clock.advance(TIMEOUT + 1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"503"]
        assert exchanges[0].expired

    asyncio.run(main())


def test_an_app_reading_its_body_keeps_its_time() -> None:
    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, POST, end_stream=False)
        client.send_data(1, b"all of it", end_stream=True)
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[0])
        for _ in range(3):
            clock.advance(TIMEOUT - 1)
            deadlines.touch(exchanges[0])  # what each read of wsgi.input does
        await asyncio.sleep(0)
        assert statuses(client, transport) == []
        clock.advance(TIMEOUT + 1)
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"503"]

    asyncio.run(main())


def test_the_rest_of_a_body_after_the_503_is_no_end_of_input() -> None:
    """The 503 went out while the app read its body in parts: its next read must not see
    a short body as a whole one."""

    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, _transport, exchanges, client = collecting_h2()
        client.send_headers(1, POST, end_stream=False)
        client.send_data(1, b"a" * 300, end_stream=True)
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[0])
        clock.advance(TIMEOUT + 1)  # the 503: the app is past its time
        assert exchanges[0].expired
        assert await _next_part(exchanges[0], deadlines) is None

    asyncio.run(main())


def test_close_stops_the_sweep() -> None:
    clock = FakeClock()
    deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]

    async def main() -> None:
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[0])
        deadlines.close()
        clock.advance(2 * TIMEOUT)
        await asyncio.sleep(0)
        assert statuses(client, transport) == []

    asyncio.run(main())


def test_a_streamed_answer_after_the_503_breaks_its_pipe() -> None:
    """The thread's first part finds the exchange answered (the timeout's 503): the pipe
    breaks, and the app's next part raises, so that its iterable stops being consumed."""

    async def main() -> None:
        protocol, transport, exchanges, client = collecting_h2()
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        exchange = exchanges[0]
        exchange.respond(APP_TOO_SLOW)
        pipe = ResponsePipe(asyncio.get_running_loop(), exchange, streamed_head(200, []))
        pipe.put(b"late")
        await asyncio.sleep(0)  # the loop takes it: the head cannot go out
        with pytest.raises(ClientDisconnected):
            pipe.put(b"later")
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"503"]

    asyncio.run(main())


def test_answered_calls_leave_as_new_ones_come() -> None:
    """A call answered whole leaves the watch with its answer: between sweeps the table
    holds the calls in flight, not every answered one."""

    async def main() -> None:
        clock = FakeClock()
        deadlines = AnswerDeadlines(clock, TIMEOUT, APP_TOO_SLOW)  # type: ignore[arg-type]
        protocol, transport, exchanges, client = collecting_h2()
        for stream_id in range(1, 200, 2):
            client.send_headers(stream_id, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        for exchange in exchanges:
            deadlines.watch(exchange)
            deadlines.respond(exchange, Response(200, body=b"ok"))
        assert not deadlines._due
        await asyncio.sleep(0)
        assert statuses(client, transport) == [b"200"] * 100
        # An upload answered whole (after reading it, or with a 413) leaves no trace either.
        client.send_headers(201, POST, end_stream=False)
        client.send_data(201, b"part")
        protocol.data_received(client.data_to_send())
        deadlines.watch(exchanges[-1])
        client.send_data(201, b"rest", end_stream=True)
        protocol.data_received(client.data_to_send())
        deadlines.respond(exchanges[-1], Response(200, body=b"ok"))
        assert not deadlines._due and not deadlines._sizes

    asyncio.run(main())


# -- the thread pool and the way back to the loop ----------------------------------------


def test_a_blocked_job_leaves_the_queued_ones_to_the_idle_threads() -> None:
    # Three jobs block (an app waiting on I/O); the ones queued behind them in the same
    # burst (one read of many HTTP/2 requests) are taken by the fourth thread meanwhile.
    pool = WorkerPool(4, "test-pool")
    release = threading.Event()
    blocked = [threading.Event() for _ in range(3)]
    done = [threading.Event() for _ in range(20)]
    try:
        for started in blocked:
            pool.submit(lambda started: (started.set(), release.wait()), started)
        for event in done:
            pool.submit(threading.Event.set, event)
        assert all(event.wait(10) for event in done)
        assert all(started.is_set() for started in blocked) and not release.is_set()
    finally:
        release.set()
        pool.stop()


def in_a_thread(function: Callable[[], Any]) -> None:
    """Run `function` in another thread, and wait for it (the loop waits too: nothing it
    was asked meanwhile runs before the caller yields)."""
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def test_inbox_calls_run_in_order_and_share_one_wake_up() -> None:
    # A call posted while a drain is due joins it: it runs before a callback the loop
    # scheduled after the first call was posted (a wake-up per call would run it after).
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        inbox = LoopInbox(loop)
        ran: list[str] = []
        in_a_thread(lambda: inbox.call(ran.append, "first"))
        loop.call_soon(ran.append, "loop")
        in_a_thread(lambda: [inbox.call(ran.append, str(i)) for i in range(3)])
        await asyncio.sleep(0)  # one turn of the loop: the drain, then "loop"
        in_a_thread(lambda: inbox.call(ran.append, "later"))  # a new drain
        await asyncio.sleep(0)
        return ran

    assert asyncio.run(main()) == ["first", "0", "1", "2", "loop", "later"]


def test_a_failing_inbox_call_is_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("an answer that cannot be sent")

    async def main() -> list[int]:
        inbox = LoopInbox(asyncio.get_running_loop())
        ran: list[int] = []
        in_a_thread(lambda: (inbox.call(broken), inbox.call(ran.append, 1)))
        await asyncio.sleep(0)
        return ran

    assert asyncio.run(main()) == [1]
    assert "an answer that cannot be sent" in caplog.text


def test_an_inbox_whose_loop_is_closed_refuses_every_call() -> None:
    """After shutdown the loop is closed: each call says so, none is queued for nothing."""
    loop = asyncio.new_event_loop()
    inbox = LoopInbox(loop)
    loop.close()
    for _ in range(2):
        with pytest.raises(RuntimeError, match="closed"):
            inbox.call(print, "never")
