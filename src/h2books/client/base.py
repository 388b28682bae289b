"""What the client's connection classes share: the owner interface and timeout checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from h2books.client.errors import ClientError
from h2books.client.exchange import Exchange

__all__ = ["ConnectionOwner", "ConnectionSettings", "Watchdog"]


class ConnectionOwner(Protocol):
    """The client-side slot a connection belongs to (see `h2books.client.client`)."""

    def requeue(self, exchanges: Iterable[Exchange], error: ClientError) -> None:
        """Requests this connection accepted but never sent: try them elsewhere."""

    def retire(self, connection: object) -> None:
        """This connection takes no new requests any more (closing, GOAWAY, keep-alive off)."""


class ConnectionSettings:
    """What every connection of one client shares, computed once."""

    __slots__ = ("extra_fields", "max_response_size", "timeout")

    def __init__(
        self,
        extra_fields: tuple[tuple[bytes, bytes], ...],
        timeout: float | None,
        max_response_size: int,
    ) -> None:
        self.extra_fields = extra_fields  # sent with every request (user-agent, ...)
        self.timeout = timeout  # per request, from submission to the complete response
        self.max_response_size = max_response_size


class Watchdog:
    """One timer per connection that fires only while requests are waiting.

    A timer per request would cost a heap push and a cancel every time; checking
    the oldest requests a few times per timeout period costs nothing on the fast path.
    """

    __slots__ = ("_check", "_handle", "_loop", "_period")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
        check: Callable[[float], bool],
    ) -> None:
        self._loop = loop
        self._period = None if timeout is None else max(timeout / 4, 0.01)
        self._check = check
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self._handle is None and self._period is not None:
            self._handle = self._loop.call_later(self._period, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        # check(now) returns whether requests are still waiting.
        if self._check(self._loop.time()):
            self.arm()
