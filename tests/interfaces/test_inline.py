"""The inline runner: coroutines stepped where they are called, tasks only when they wait."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from h2books.interfaces.inline import RAISED, RETURNED, InlineRunner

VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("var", default=None)


def run_as_callback(body: Callable[[InlineRunner, list[Any]], Any]) -> list[Any]:
    """Run `body` the way the server calls an interface: in a loop callback, no task."""
    ended: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        runner = InlineRunner(loop)
        done = loop.create_future()
        loop.call_soon(lambda: done.set_result(body(runner, ended)))
        result = await done
        tasks = (
            [t for t in result if isinstance(t, asyncio.Task)] if isinstance(result, list) else []
        )
        if isinstance(result, asyncio.Task):
            tasks = [result]
        for task in tasks:
            await asyncio.wait_for(asyncio.shield(task), 10)

    asyncio.run(main())
    return ended


def start(runner: InlineRunner, ended: list[Any], coro: Coroutine[Any, Any, Any]) -> Any:
    return runner.run(coro, SimpleNamespace(finish=ended.append))


def test_a_coroutine_that_does_not_wait_runs_inline() -> None:
    async def app() -> None:
        VAR.set("inline")
        assert asyncio.current_task() is not None  # what anyio and asyncio.timeout need
        with anyio.CancelScope():
            pass

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        task = start(runner, ended, app())
        assert task is RETURNED and ended == []  # a return inline is the result, no call
        assert VAR.get() is None  # the app's context variables stay its own
        return None

    run_as_callback(body)


def test_a_waiting_coroutine_keeps_its_task_and_context() -> None:
    async def app() -> str:
        VAR.set("mine")
        with anyio.CancelScope():  # entered inline, left after the wait: one task throughout
            before = asyncio.current_task()
            await asyncio.sleep(0.01)
            assert asyncio.current_task() is before
            assert await anyio.to_thread.run_sync(lambda: 5) == 5
        assert VAR.get() == "mine"
        return "done"

    ended = run_as_callback(lambda runner, ended: start(runner, ended, app()))
    assert ended == [None]


def test_an_exception_inline_goes_to_finish() -> None:
    error = ValueError("boom")

    async def app() -> None:
        raise error

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        assert start(runner, ended, app()) is RAISED and ended == [error]
        return None

    run_as_callback(body)


def test_an_exception_after_the_wait_goes_to_finish() -> None:
    async def app() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    ended = run_as_callback(lambda runner, ended: start(runner, ended, app()))
    assert len(ended) == 1 and isinstance(ended[0], ValueError)


def test_cancelling_the_task_reaches_the_coroutine() -> None:
    seen: list[str] = []

    async def app() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        task = start(runner, ended, app())
        assert task is not None
        task.cancel()  # even before the task's first step
        return task

    ended = run_as_callback(body)
    assert seen == ["cancelled"] and isinstance(ended[0], asyncio.CancelledError)


def test_a_cancel_the_app_asks_for_itself_before_waiting_is_kept() -> None:
    # Under a task of its own the app would get CancelledError at its first await.
    seen: list[str] = []

    async def app() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    ended = run_as_callback(lambda runner, ended: start(runner, ended, app()))
    assert seen == ["cancelled"] and isinstance(ended[0], asyncio.CancelledError)


def test_anyio_timeouts_work_in_an_app() -> None:
    async def app() -> None:
        with anyio.fail_after(0.01):
            await asyncio.sleep(5)

    ended = run_as_callback(lambda runner, ended: start(runner, ended, app()))
    assert isinstance(ended[0], TimeoutError)


def test_run_from_inside_a_task() -> None:
    async def app() -> None:
        assert asyncio.current_task() is not outer

    async def main() -> None:
        nonlocal outer
        outer = asyncio.current_task()
        ended: list[Any] = []
        assert (
            InlineRunner(asyncio.get_running_loop()).run(
                app(), SimpleNamespace(finish=ended.append)
            )
            is RETURNED
        )
        assert ended == []
        assert asyncio.current_task() is outer

    outer: Any = None
    asyncio.run(main())


@pytest.mark.parametrize("count", [3])
def test_the_host_task_is_reused_when_apps_finish_inline(count: int) -> None:
    hosts: list[Any] = []

    async def app() -> None:
        hosts.append(asyncio.current_task())

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        for _ in range(count):
            start(runner, ended, app())
        return None

    run_as_callback(body)
    assert len({id(h) for h in hosts}) == 1


def test_a_return_inline_raises_no_stop_iteration() -> None:
    # `coro.send` reports a return with StopIteration; the runner's pump sees it without one.
    # (Under a trace function the pump's own `yield from` does raise one, for the tracer: so
    # only the exceptions that reach the runner's frame count.)
    raised: list[type[BaseException]] = []

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if event == "exception" and frame.f_code is InlineRunner.run.__code__:
            raised.append(arg[0])
        return trace

    async def app() -> None:
        pass

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        start(runner, ended, app())  # the first run makes the pump
        previous = sys.gettrace()  # coverage's, or a debugger's: put back after
        sys.settrace(trace)
        try:
            results = [start(runner, ended, app()) for _ in range(3)]
        finally:
            sys.settrace(previous)
        assert results == [RETURNED] * 3 and ended == []
        return None

    run_as_callback(body)
    assert raised == []


def test_runs_after_a_raise_and_a_wait_still_run_inline() -> None:
    # A raise ends the pump the app ran in, and a wait takes it into the app's task: the
    # runs after them each get a working one.
    ran: list[str] = []
    error = ValueError("boom")

    async def returns(name: str) -> None:
        ran.append(name)

    async def raises() -> None:
        raise error

    async def waits() -> str:
        await asyncio.sleep(0.01)
        ran.append("waited")
        return "ignored"

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        assert start(runner, ended, returns("first")) is RETURNED
        assert start(runner, ended, raises()) is RAISED and ended == [error]
        assert start(runner, ended, returns("after the raise")) is RETURNED
        task = start(runner, ended, waits())
        assert isinstance(task, asyncio.Task)
        assert start(runner, ended, returns("while it waits")) is RETURNED
        return task

    ended = run_as_callback(body)
    assert ran == ["first", "after the raise", "while it waits", "waited"]
    assert ended == [error, None]  # the waiting app's return reaches finish, once


def test_an_app_that_returns_after_its_cancellation_ends_cleanly() -> None:
    seen: list[str] = []

    async def app() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled, and returns")

    def body(runner: InlineRunner, ended: list[Any]) -> Any:
        task = start(runner, ended, app())
        assert isinstance(task, asyncio.Task)
        task.cancel()
        return task

    ended = run_as_callback(body)
    assert seen == ["cancelled, and returns"] and ended == [None]


def test_a_nested_run_that_waits_survives_its_callers_wait() -> None:
    # An app answering inline that pushes (http.response.push) has the pushed request
    # served inline, nested in its own run. Both then wait: each needs a task of its own
    # (sharing the spare host, the inner app was lost and its stream hung).
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        runner = InlineRunner(loop)
        log: list[object] = []
        inner_may_go, outer_may_go = loop.create_future(), loop.create_future()
        tasks: list[object] = []

        async def inner() -> None:
            await inner_may_go
            log.append("inner returned")

        async def outer() -> None:
            tasks.append(runner.run(inner(), SimpleNamespace(finish=log.append)))
            await outer_may_go
            log.append("outer returned")

        loop.call_soon(
            lambda: tasks.append(runner.run(outer(), SimpleNamespace(finish=log.append)))
        )
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        inner_may_go.set_result(None)
        outer_may_go.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(tasks) == 2 and tasks[0] is not tasks[1]
        return log

    log = asyncio.run(asyncio.wait_for(main(), 10))
    assert log.count("inner returned") == 1 and log.count("outer returned") == 1
    assert log.count(None) == 2  # each app's end reached its caller
