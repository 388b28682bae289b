"""The clock and the one loop timer of an aioquic connection, for the server and the client.

aioquic is sans-IO: every call takes `now`, and `get_timer()` says when it next needs
`handle_timer` (loss detection, ACK delay, pacing, idle). Two rules of the event loop decide
how well that works, and both differ between asyncio and uvloop:

- **The clock.** uvloop's `loop.time()` counts whole milliseconds (libuv's `uv_now`).
  Fed to aioquic, it stopped the pacer's clock within each millisecond: a pacer waiting
  60 µs for its next packet saw no time pass until the millisecond turned, and RTT samples
  came in whole milliseconds. aioquic gets `time.monotonic()` instead, the clock
  both loops count from (asyncio's `loop.time()` is it; uvloop's is it, truncated), kept
  from going backwards (below).
- **Timers that fire early.** uvloop rounds a timer's delay to the nearest millisecond, so a
  deadline 0.4 ms away runs at once. aioquic, asked too early, does nothing and sets the same
  deadline again: the pacer's waits became busy loops of no-op timer callbacks until the
  millisecond turned (seen: up to ~50 in a row, ~25 µs each with the empty flush). A timer
  that runs before its deadline is taken as due, as aioquic's own asyncio glue takes it
  (`max(timer_at, loop.time())`): aioquic is told the deadline's time, and the clock never
  reads earlier than that after. It is early by less than the loop's timer resolution
  (under 1 ms); asyncio's never is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aioquic.quic.connection import QuicConnection

__all__ = ["QuicTimer"]


class QuicTimer:
    """`now()` for every aioquic call of one connection, and its timer: `arm()` after each
    call that may move `quic.get_timer()`; `on_expire(now)` runs once the deadline is due
    (it calls `handle_timer(now)`, handles the events, sends, and arms again)."""

    __slots__ = ("_at", "_clock", "_handle", "_latest", "_loop", "_on_expire", "_quic")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        quic: QuicConnection,
        on_expire: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._quic = quic
        self._on_expire = on_expire
        # The loop schedules by its own time(), so `clock` must count from the same origin
        # (time.monotonic for asyncio and uvloop; tests pass a fake clock).
        self._clock = clock
        self._latest = 0.0  # the latest time handed out: time never goes back for aioquic
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    @property
    def deadline(self) -> float | None:
        """When the armed timer is due (None: not armed)."""
        return self._at

    def now(self) -> float:
        now = self._clock()
        if now < self._latest:
            return self._latest  # after a timer taken as due early: no earlier than it
        self._latest = now
        return now

    def arm(self) -> None:
        """One loop timer at `quic.get_timer()`, moved only when the deadline moved (most
        reads and writes leave it where it was: no timer handle per packet)."""
        deadline = self._quic.get_timer()
        if deadline == self._at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._at = deadline
        self._handle = None if deadline is None else self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._at = None

    def _fire(self) -> None:
        deadline = self._at
        self._handle = self._at = None
        now = self.now()
        if deadline is not None and now < deadline:
            # Run early by the loop's rounding (module docstring): due all the same.
            self._latest = now = deadline
        self._on_expire(now)
