"""Wall-clock strings that change once a second, formatted once a second."""

from __future__ import annotations

import time
from email.utils import formatdate

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class WallClock:
    """Caches the HTTP Date value and the access-log timestamp for the current second."""

    __slots__ = ("_second", "http_date", "log_time")

    def __init__(self) -> None:
        self._second = -1
        self.http_date = b""
        self.log_time = ""
        self.tick()

    def tick(self, now: float | None = None) -> None:
        second = int(time.time() if now is None else now)
        if second == self._second:
            return
        self._second = second
        self.http_date = formatdate(second, usegmt=True).encode("ascii")
        t = time.gmtime(second)
        self.log_time = (
            f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]"
        )
