"""`wake_now`: a future completed from a callback resumes its waiting task inside that call,
as that task, in its context; anywhere else it is an ordinary `set_result`. Run on the
stdlib loop and on uvloop (the server's)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from h2books.server.direct_wake import wake_now

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


def test_a_callback_resumes_the_waiting_task_inside_the_call(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    events: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        async def waiter() -> None:
            request_id.set("mine")
            await future
            events.append(f"resumed as {asyncio.current_task() is task}, {request_id.get()}")

        task = loop.create_task(waiter())
        await asyncio.sleep(0)  # the task now waits on the future

        def protocol_callback() -> None:  # as a read callback: no task is running
            events.append("before")
            wake_now(future)
            events.append("after")

        loop.call_soon(protocol_callback)
        await task

    run(main())
    assert events == ["before", "resumed as True, mine", "after"]


def test_what_the_task_raises_stays_the_tasks(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        async def failing() -> None:
            await future
            raise RuntimeError("app bug")

        task = loop.create_task(failing())
        await asyncio.sleep(0)
        loop.call_soon(wake_now, future)  # must not raise in the callback
        with pytest.raises(RuntimeError, match="app bug"):
            await task

    run(main())


def test_from_inside_a_task_it_is_an_ordinary_set_result(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    events: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        async def waiter() -> None:
            await future
            events.append("resumed")

        task = loop.create_task(waiter())
        await asyncio.sleep(0)
        wake_now(future)  # this coroutine is a running task: the waiter cannot step inside it
        events.append("returned")
        await task

    run(main())
    assert events == ["returned", "resumed"]


def test_without_a_waiting_task_or_with_two_callbacks_nothing_runs_early(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    events: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lone: asyncio.Future[None] = loop.create_future()
        shared: asyncio.Future[None] = loop.create_future()
        shared.add_done_callback(lambda _: events.append("first"))
        shared.add_done_callback(lambda _: events.append("second"))

        def protocol_callback() -> None:
            wake_now(lone)
            wake_now(shared)
            events.append("returned")

        loop.call_soon(protocol_callback)
        await shared
        await asyncio.sleep(0)
        assert lone.done()

    run(main())
    assert events == ["returned", "first", "second"]


def test_a_task_cancelled_after_waking_gets_its_cancellation_at_its_next_wait(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        reached: list[str] = []

        async def waiter() -> None:
            await future
            reached.append("woke")
            await loop.create_future()  # waits for ever, until cancelled
            reached.append("never")

        task = loop.create_task(waiter())
        await asyncio.sleep(0)
        loop.call_soon(wake_now, future)
        await asyncio.sleep(0)
        assert reached == ["woke"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reached == ["woke"]

    run(main())
