"""ASGI lifespan: the app's startup before the first connection, its shutdown after the last.

The app is called once with a `lifespan` scope and runs, as a task, for the life of the
server: `lifespan.startup` then, much later, `lifespan.shutdown`. Its `state` dict is the
one each request's scope gets a shallow copy of.

Modes (`--lifespan`):
- "auto": an app that raises before answering the startup is taken not to support
  lifespan (the spec's rule); the server carries on without, and says so at info level.
  A `lifespan.startup.failed` still stops the server.
- "on": the app must complete its startup; anything else stops the server.
- "off": the app is never called with a lifespan scope.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from h2books.interfaces.asgi_scope import ASGI_VERSION, LIFESPAN_SPEC_VERSION

log = logging.getLogger("h2books.asgi")

MODES = ("auto", "on", "off")


class LifespanError(Exception):
    """The app's startup failed: the server does not start. One line for the user."""

    user_facing = True


class Lifespan:
    __slots__ = (
        "_app",
        "_ended",
        "_events",
        "_mode",
        "_outcome",
        "_shutdown_timeout",
        "_started",
        "_task",
        "state",
    )

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        mode: str,
        state: dict[str, Any],
        shutdown_timeout: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"lifespan must be one of {', '.join(MODES)}, not {mode!r}")
        self._app = app
        self._mode = mode
        self.state = state
        self._task: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[dict[str, Any]] | None = None
        self._outcome: asyncio.Future[dict[str, Any]] | None = None
        self._started = False  # the app answered startup: it will get shutdown
        self._ended = False
        self._shutdown_timeout = shutdown_timeout

    async def startup(self) -> None:
        if self._mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._outcome = loop.create_future()
        scope = {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        self._task = loop.create_task(self._run(scope))
        self._events.put_nowait({"type": "lifespan.startup"})
        outcome = await self._outcome
        kind = outcome["type"]
        if kind == "lifespan.startup.complete":
            self._started = True
            return
        if kind == "lifespan.startup.failed":
            raise LifespanError(
                f"the app's startup failed: {outcome.get('message') or '(no message)'}"
            )
        # The app raised or returned before answering.
        error = outcome.get("error")
        if self._mode == "on":
            detail = f"{type(error).__name__}: {error}" if error else "it returned"
            raise LifespanError(f"the app does not complete the ASGI lifespan startup ({detail})")
        if error is not None:
            log.info(
                "ASGI lifespan unsupported by the app (%s: %s); serving without it",
                type(error).__name__,
                error,
            )
        else:
            log.info("ASGI lifespan: the app returned at startup; serving without it")

    async def shutdown(self) -> None:
        if not self._started or self._events is None:
            return
        if self._ended:
            log.warning("the app's lifespan ended before the shutdown; not calling it again")
            return
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        self._events.put_nowait({"type": "lifespan.shutdown"})
        try:
            outcome = await asyncio.wait_for(asyncio.shield(self._outcome), self._shutdown_timeout)
        except TimeoutError:
            log.error("the app's shutdown took over %g s; leaving it", self._shutdown_timeout)
            if self._task is not None:
                self._task.cancel()
            return
        kind = outcome["type"]
        if kind == "lifespan.shutdown.failed":
            log.error("the app's shutdown failed: %s", outcome.get("message") or "(no message)")
        elif kind != "lifespan.shutdown.complete":
            error = outcome.get("error")
            log.error("the app ended its lifespan without completing its shutdown", exc_info=error)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            self._settle({"type": "ended", "error": exc})
            if not isinstance(exc, Exception):
                raise
        else:
            self._settle({"type": "ended"})
        finally:
            self._ended = True

    async def _receive(self) -> dict[str, Any]:
        assert self._events is not None
        return await self._events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        expected = (
            ("lifespan.startup.complete", "lifespan.startup.failed")
            if not self._started
            else ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
        )
        if kind not in expected or self._outcome is None or self._outcome.done():
            raise RuntimeError(f"unexpected lifespan message {message!r}")
        self._settle(message)

    def _settle(self, outcome: dict[str, Any]) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)
