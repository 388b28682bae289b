"""The deadline rules of an HTTP/1.1 server connection, sans-IO.

No clock is read here: the connection passes the time of every call in. One
rule is in force at a time, picked by what the connection waits for:

* ``request_head``: part of a request head is buffered (and parsing is not
  paused), and the head is not complete ``request_head_timeout`` after its
  first bytes came to light. A body that is slow to arrive is not a slow head.
* ``idle``: nothing owed, nothing arriving, no activity for ``idle_timeout``.
* ``stall``: work in flight (an answer owed, a body arriving) and no activity
  for ``stall_timeout``.

Activity is every input, and every output handed out by ``data_to_send``. The
latter happens without a time: it is marked, then dated by the next call that
brings one. So a stall is detected within one stall period of the true moment.
"""

from __future__ import annotations

from h2books.protocol.h1.config import H1Config

__all__ = ["IDLE", "REQUEST_HEAD", "STALL", "Deadlines"]

REQUEST_HEAD, IDLE, STALL = "request_head", "idle", "stall"


class Deadlines:
    """What the rules need to know: times, and the timeouts (None: rule off)."""

    __slots__ = (
        "handed_out",
        "head_started",
        "idle_timeout",
        "last_activity",
        "request_head_timeout",
        "stall_timeout",
    )

    def __init__(self, config: H1Config, now: float) -> None:
        self.request_head_timeout = config.request_head_timeout
        self.idle_timeout = config.idle_timeout
        self.stall_timeout = config.stall_timeout
        self.last_activity = now  # the last input, or the first call after output went out
        self.handed_out = False  # output went out since the last call with a time
        self.head_started: float | None = None  # when the partial head now waiting came to light

    def date_output(self, now: float) -> None:
        if self.handed_out:
            self.last_activity = now
            self.handed_out = False

    def track_head(self, partial_head: bool, now: float) -> None:
        """After parsing: start the head clock when a partial head comes to light, stop
        it when none is waiting."""
        if not partial_head:
            self.head_started = None
        elif self.head_started is None:
            self.head_started = now

    def rule_in_force(self, busy: bool) -> tuple[float, str] | None:
        """(deadline, rule) of the rule in force; ``busy``: an answer is owed or input is
        arriving. None when that rule is off."""
        head_started = self.head_started
        if head_started is not None:
            timeout = self.request_head_timeout
            return None if timeout is None else (head_started + timeout, REQUEST_HEAD)
        if busy:
            timeout = self.stall_timeout
            return None if timeout is None else (self.last_activity + timeout, STALL)
        timeout = self.idle_timeout
        return None if timeout is None else (self.last_activity + timeout, IDLE)
