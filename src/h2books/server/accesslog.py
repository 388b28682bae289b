"""Access log in the combined log format, written once per batch rather than per line.

A request line shows the protocol the way the 2016 post's Twisted log did:
``127.0.0.1 - - [24/Nov/2026:02:53:38 +0000] "GET / HTTP/2.0" 200 22 "-" "curl/7.88.1"``
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from h2books.server.clock import WallClock


def _quote(text: str) -> str:
    # Peer-controlled text must not forge log lines or fields.
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class AccessLog:
    __slots__ = ("_clock", "_flush_scheduled", "_lines", "_stream")

    def __init__(self, stream: TextIO, clock: WallClock) -> None:
        self._stream = stream
        self._clock = clock
        self._lines: list[str] = []
        self._flush_scheduled = False

    def record(
        self,
        client: str,
        method: str,
        target: str,
        protocol: str,
        status: int,
        size: int,
        referer: str | None,
        user_agent: str | None,
    ) -> None:
        self._lines.append(
            f'{client} - - {self._clock.log_time} "{_quote(method)} {_quote(target)} {protocol}" '
            f'{status} {size if size else "-"} "{_quote(referer) if referer else "-"}" '
            f'"{_quote(user_agent) if user_agent else "-"}"\n'
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._lines:
            lines, self._lines = self._lines, []
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken log stream must never take the server down
