"""Deadlines and the end of a connection: the timeout rules, graceful shutdown and
`close` (the rules are listed in the `connection` module docstring).

Every deadline is computed from `now` values the caller gave; `get_timer` is the
earliest one in force and `handle_timer(now)` applies those that have passed. A
deadline fires at exactly its time (`now >= deadline`), not before.
"""

from __future__ import annotations

from typing import Final

from . import events as ev
from .errors import ErrorCode
from .framer import FrameReader
from .frames import build_goaway, build_ping
from .stream_ids import MAX_STREAM_ID

__all__ = ["Deadlines"]

# Opaque data of the PING that closes the first stage of a graceful shutdown.
SHUTDOWN_PING: Final = b"h2b-shut"

_DEBUG: Final = {
    "request_head": b"request head too slow",
    "idle": b"idle timeout",
    "stall": b"no progress",
    "flow_blocked": b"flow-control window shut too long",
}


class Deadlines(FrameReader):
    __slots__ = ()

    # -- timers ----------------------------------------------------------------------

    def _deadlines(self) -> list[tuple[float, str]]:
        """(deadline, rule) for every rule in force."""
        if self._terminated:
            return []
        cfg = self._config
        found: list[tuple[float, str]] = []
        shutdown = self._shutdown_deadline
        if shutdown is not None:
            found.append((shutdown, "shutdown"))
        if self._awaiting_settings and not self._client:
            # Before the client preface and its SETTINGS, only the preface rule runs.
            if cfg.preface_timeout is not None and self._initiated:
                found.append((self._started + cfg.preface_timeout, "preface"))
            return found
        head_since = self._head_since
        if head_since is not None and cfg.request_head_timeout is not None:
            found.append((head_since + cfg.request_head_timeout, "request_head"))
        stall = cfg.stall_timeout
        if stall is not None and self._blocked:
            found.append((self._blocked_since + stall, "flow_blocked"))
        if self._streams:
            if stall is not None:
                found.append((self._last_activity + stall, "stall"))
        elif cfg.idle_timeout is not None and self._initiated:
            found.append((self._last_activity + cfg.idle_timeout, "idle"))
        return found

    def get_timer(self) -> float | None:
        """The earliest deadline of any rule in force, or None."""
        deadlines = self._deadlines()
        return min(deadlines)[0] if deadlines else None

    def handle_timer(self, now: float) -> list[ev.Event]:
        """Apply every rule whose deadline is `now` or earlier. A rule that ends the
        connection queues its GOAWAY (none before the preface) and returns
        `ConnectionTimedOut`; `closed` is True after it. Calling early returns []."""
        if self._terminated:
            return []
        self._now = now
        if self._output_taken:
            # Output went out since the last call with a time: that was activity.
            self._output_taken = False
            self._last_activity = now
        for deadline, rule in sorted(self._deadlines()):
            if deadline > now:
                break
            if rule == "shutdown":
                self.finish_graceful_shutdown()
                continue
            if rule == "preface":
                self._terminate()
                return [ev.ConnectionTimedOut(rule, graceful=False)]
            self.close(ErrorCode.NO_ERROR, _DEBUG[rule])
            return [ev.ConnectionTimedOut(rule, graceful=rule == "idle")]
        return []

    # -- shutdown --------------------------------------------------------------------

    def start_graceful_shutdown(self, now: float) -> None:
        """GOAWAY(2^31-1, NO_ERROR) and a PING; the final GOAWAY with the last stream
        id we processed follows on the PING ACK, or at `now + shutdown_grace` (from
        `handle_timer`), or on `finish_graceful_shutdown`."""
        if self._terminated or self._goaway_last is not None:
            return
        self._goaway_last = MAX_STREAM_ID
        self._shutdown_ping = SHUTDOWN_PING
        grace = self._config.shutdown_grace
        self._shutdown_deadline = None if grace is None else now + grace
        self._out += build_goaway(MAX_STREAM_ID, ErrorCode.NO_ERROR)
        self._out += build_ping(SHUTDOWN_PING)

    def finish_graceful_shutdown(self) -> None:
        if self._terminated or self._goaway_final:
            return
        self._shutdown_ping = None
        self._shutdown_deadline = None
        self._goaway_final = True
        self._goaway_last = self._highest_peer
        self._out += build_goaway(self._highest_peer, ErrorCode.NO_ERROR)

    def close(self, error_code: ErrorCode = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """GOAWAY now; the connection is over (further input is ignored)."""
        if self._terminated:
            return
        self._terminate()
        self._out += build_goaway(self._highest_peer, error_code, debug)
