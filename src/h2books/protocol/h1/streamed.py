"""A streamed HTTP/1.1 response body on its way out: framed as its head promised."""

from __future__ import annotations

from collections.abc import Iterable

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.serializer import encode_trailers

__all__ = ["CHUNK", "DROP", "LENGTH", "RAW", "StreamedBody"]

# How the body goes out: not at all (HEAD, 204, 304), as is (delimited by closing
# the connection), counted against a content-length, or in chunks.
DROP, RAW, LENGTH, CHUNK = 0, 1, 2, 3

_LAST_CHUNK = b"0\r\n\r\n"


class StreamedBody:
    __slots__ = ("close", "mode", "remaining")

    def __init__(self, mode: int, remaining: int, close: bool) -> None:
        self.mode = mode
        self.remaining = remaining  # octets the content-length still owes
        self.close = close  # the connection ends with this response

    def frame(self, data: bytes, out: list[bytes]) -> None:
        """Append ``data`` (not empty), framed, to ``out``."""
        mode = self.mode
        if mode == CHUNK:
            out += (b"%x\r\n" % len(data), data, b"\r\n")
        elif mode == LENGTH:
            if len(data) > self.remaining:
                raise H1Error("response body longer than its content-length")
            self.remaining -= len(data)
            out.append(data)
        elif mode == RAW:
            out.append(data)

    def finish(
        self, out: list[bytes], trailers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> bool:
        """Append the end of the body, with ``trailers`` when it is chunked (other framings
        have no trailer section: they are dropped); False when the body fell short of
        its content-length."""
        if self.mode == CHUNK:
            out.append(encode_trailers(trailers) if trailers else _LAST_CHUNK)
        return self.mode != LENGTH or not self.remaining
