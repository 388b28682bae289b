"""Run an app's coroutine inline, and make it a task only once it really waits.

Most ASGI calls finish without waiting for anything: the body is already in, and
`send` only queues bytes in the protocol core. For those a task per request (its
creation, a trip through the event loop, its bookkeeping) costs more than the app
itself. So the coroutine is stepped right where the request arrived, with
`coro.send(None)`. If it completes, that was all. If it yields a future (it awaits real
I/O), it is handed, suspended as it is, to an asyncio Task that resumes it when that
future is done.

Two things make this correct rather than merely fast:

- *The current task.* Code inside an app asks for it: anyio's cancel scopes (Starlette's
  `is_disconnected`, FastAPI's thread pool for sync endpoints), `asyncio.timeout`. So
  while the coroutine runs inline, a "host" is entered as the loop's current task, and if
  the coroutine then waits, that same object becomes the Task that drives it: a cancel
  scope entered inline and left after the wait sees one task throughout. The host is an
  `asyncio.Task` whose future part is initialized but which has no coroutine and was
  never scheduled; `Task.__init__` on it later (re-initialization is supported: it
  clears the future state first) schedules it with the suspended coroutine. A host whose
  coroutine finished inline is kept for the next request, so the fast path allocates no
  task at all. (Python 3.12 added eager tasks for the same purpose, but they still
  allocate a Task per call, and 3.11 is supported.)
- *The suspended coroutine.* A Task cannot adopt a coroutine that is already suspended
  on a future: its first step would resume it before the future is done. `_Resumed`
  wraps it so that the task's first step hands out the future the coroutine is waiting
  on; from then on the task forwards sends and throws (cancellation included) to it.

Each run gets a copy of the current context, as a Task would, so context variables set
by one request never leak into the next.

A coroutine that returns inline is reported by `run`'s result (`RETURNED`) rather than by
a call of `caller.finish`: that is most requests, and the caller usually has nothing left to do.

*No StopIteration per request.* `coro.send` reports a return by raising StopIteration, and
raising, normalizing and catching it costs about as much as the rest of a step (~0.3 µs).
So coroutines are stepped through a "pump": a generator that runs one coroutine with
`yield from` (the interpreter's own send, which sees a return without an exception) and
then yields `RETURNED` and waits, suspended, for the next coroutine. It serves request
after request while they finish inline; one that waits or raises takes the pump with it,
and the next run makes a new one. (An app's traceback shows one `_pump` frame above it.)
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import enum
import types
from asyncio import tasks
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final, Protocol

# What the app's coroutine ended with: None when it returned, else what it raised.
Finish = Callable[[BaseException | None], None]


class Caller(Protocol):
    """Who `run` tells how a coroutine ended, through its `finish` (the ASGI call). The
    caller itself is passed rather than its bound `finish`: a coroutine that returns
    inline never needs it, and making a bound method per request costs ~450 instructions."""

    @property
    def finish(self) -> Finish: ...


class Ended(enum.Enum):
    """How a coroutine `run` did not hand to a task ended, inline."""

    RETURNED = enum.auto()  # `finish` is not called: the caller settles it if need be
    RAISED = enum.auto()  # `finish` has been called with the exception


RETURNED: Final = Ended.RETURNED
RAISED: Final = Ended.RAISED

_enter_task = tasks._enter_task
_leave_task = tasks._leave_task
_current_task = tasks.current_task
_copy_context = contextvars.copy_context
_task_init = asyncio.Task.__init__
_future_init = asyncio.Future.__init__
# A generator that runs the app's coroutines one after the other (`_pump`).
Pump = Generator[Any, Coroutine[Any, Any, object], None]
# Called with the pump: no bound method per run.
_pump_send: Callable[[Pump, Coroutine[Any, Any, object]], Any] = types.GeneratorType.send  # type: ignore[assignment]


@types.coroutine
def _pump() -> Pump:
    """Runs the coroutines sent to it, one after the other; yields RETURNED after each one
    that returns (see the module's docstring). What a coroutine yields (the future it
    waits on) comes out of the pump's send, and what is sent or thrown in goes to it."""
    coro = yield None
    while True:
        yield from coro  # types.coroutine allows a coroutine here
        coro = yield RETURNED


def _new_pump() -> Pump:
    pump = _pump()
    pump.send(None)  # type: ignore[arg-type]  # to its first yield, ready for a coroutine
    return pump


class _Host(asyncio.Task):  # type: ignore[type-arg]
    """The current task of a coroutine run inline; its Task once it has to wait."""

    __slots__ = ()

    def __repr__(self) -> str:
        if self._coro is None:  # type: ignore[attr-defined]
            return f"<inline app task {id(self):#x}>"
        return super().__repr__()


def _new_host(loop: asyncio.AbstractEventLoop) -> _Host:
    host = _Host.__new__(_Host)
    _future_init(host, loop=loop)  # a pending future: no coroutine, nothing scheduled
    return host


class InlineRunner:
    """Steps coroutines inline on one event loop; see the module's docstring."""

    __slots__ = ("_pump", "_spare", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._spare: _Host | None = None
        self._pump: Pump | None = None  # idle, at its `yield RETURNED`

    def run(self, coro: Coroutine[Any, Any, object], caller: Caller) -> asyncio.Task[Any] | Ended:
        """Run `coro`, a native coroutine (`async def`), until it finishes or waits. Returns
        the task now driving it (`caller.finish` is called when it ends), or how it ended
        inline: RAISED (`caller.finish` has been called with the exception) or RETURNED
        (`finish` is not called)."""
        loop = self.loop
        host = self._spare
        if host is None:
            host = self._spare = _new_host(loop)
        try:
            _enter_task(loop, host)
        except RuntimeError:
            return self._run_in_place_of(_current_task(loop), coro, caller)
        context = _copy_context()
        pump = self._pump
        if pump is None:
            pump = _new_pump()
        # Taken until it yields RETURNED again: if the app raises (or a KeyboardInterrupt
        # comes) in there, the pump is gone with it; and an app that serves another request
        # inline (a push) runs that one in a pump of its own.
        self._pump = None
        try:
            waiting_on = context.run(_pump_send, pump, coro)
        except BaseException as exc:
            waiting_on = RAISED
            caller.finish(exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        finally:
            _leave_task(loop, host)
        if waiting_on is RETURNED:
            self._pump = pump
        if waiting_on is RETURNED or waiting_on is RAISED:
            if host.cancelling():
                self._spare = None  # someone cancelled the host itself: never reuse it
            return waiting_on
        # It waits, suspended in the pump: the host becomes the pump's task, the coroutine
        # resumed once the future is done.
        self._spare = None
        # Task.__init__ forgets cancellations asked for while the app ran inline (the app,
        # or an anyio scope, cancelling its own current task): ask for them again, so the
        # app gets its CancelledError at the await, as under a task of its own.
        cancels = host.cancelling()
        _task_init(host, _Resumed(pump, waiting_on, caller.finish), loop=loop, context=context)
        for _ in range(cancels):
            host.cancel()
        return host

    def _run_in_place_of(
        self, outer: asyncio.Task[Any] | None, coro: Coroutine[Any, Any, object], caller: Caller
    ) -> asyncio.Task[Any] | Ended:
        """`run` called from inside a task (a test, a benchmark driving the protocol from a
        coroutine, or an app run inline that serves another request inline: a push): a
        host stands in for that task while the app runs."""
        assert outer is not None
        if self._spare is not None and outer is self._spare:
            # Nested in an app run inline on the spare host: that host is the outer app's
            # (its task, should it wait), so the inner app gets a host of its own.
            self._spare = None
        _leave_task(self.loop, outer)
        try:
            return self.run(coro, caller)
        finally:
            _enter_task(self.loop, outer)


_NOTHING: Any = object()


class _Resumed(collections.abc.Coroutine):  # type: ignore[type-arg]
    """The pump a suspended coroutine waits in (its RETURNED is the app's return) as a
    Task's coroutine: the first step hands out what it waits on; the rest are
    forwarded. Its end, whatever it is, goes to `finish`, and the task itself always ends
    cleanly (nothing for asyncio to log)."""

    __slots__ = ("_coro", "_finish", "_waiting_on")

    def __init__(self, coro: Pump, waiting_on: Any, finish: Finish) -> None:
        self._coro = coro
        self._waiting_on = waiting_on
        self._finish = finish

    def send(self, value: Any) -> Any:
        waiting_on = self._waiting_on
        if waiting_on is not _NOTHING:
            self._waiting_on = _NOTHING
            return waiting_on
        try:
            waiting_on = self._coro.send(value)
        except StopIteration:
            self._finish(None)
        except BaseException as exc:
            self._finish(exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            if waiting_on is not RETURNED:
                return waiting_on
            self._finish(None)  # the app returned, in its pump
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        # The task was cancelled (or asyncio threw something else in): into the app it goes,
        # at the await where it is suspended, even before the task's first step.
        self._waiting_on = _NOTHING
        try:
            if val is None and tb is None:
                waiting_on = self._coro.throw(typ)
            else:  # pragma: no cover - the old signature
                waiting_on = self._coro.throw(typ, val, tb)
        except StopIteration:
            self._finish(None)
        except BaseException as exc:
            self._finish(exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        else:
            if waiting_on is not RETURNED:
                return waiting_on
            self._finish(None)  # the app caught it and returned, in its pump
        raise StopIteration

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:  # pragma: no cover - tasks use send
        raise TypeError("a task drives this; it is not awaited")
