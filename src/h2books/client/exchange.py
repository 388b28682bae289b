"""One request on its way: what to send, where its response goes, when it started."""

from __future__ import annotations

import asyncio

from h2books.client.response import Response

__all__ = ["Exchange"]

# How many connections a request may be moved to when the one it was queued on
# could not send it (GOAWAY before it went out, keep-alive refused, REFUSED_STREAM).
MAX_ATTEMPTS = 3


# Interim (1xx) responses kept per request; more are read and dropped.
MAX_INFORMATIONAL = 16


class Exchange:
    """A request and the future its response resolves.

    ``target`` and ``method`` are bytes as they go on the wire; ``fields`` are the
    caller's extra header fields (lowercase names). The response parts are filled
    in by the connection that carries it.
    """

    __slots__ = (
        "attempts",
        "body",
        "chunks",
        "fields",
        "future",
        "informational",
        "method",
        "pushed",
        "received",
        "response_headers",
        "response_trailers",
        "started",
        "status",
        "target",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        fields: tuple[tuple[bytes, bytes], ...],
        body: bytes,
        future: asyncio.Future[Response],
        started: float,
    ) -> None:
        self.method = method
        self.target = target
        self.fields = fields
        self.body = body
        self.future = future
        self.started = started
        self.attempts = 0
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.response_trailers: list[tuple[bytes, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.received = 0
        self.informational: list[tuple[int, list[tuple[bytes, bytes]]]] | None = None
        self.pushed = False  # a response the server pushed (HTTP/2), not a request of ours

    @property
    def label(self) -> str:
        """``GET /book?id=1``, for messages."""
        return f"{self.method.decode('latin-1')} {self.target.decode('latin-1')}"

    def resolve(self, content: bytes, http_version: str) -> None:
        future = self.future
        if not future.done():
            future.set_result(
                Response(
                    self.status,
                    self.response_headers,
                    content,
                    http_version,
                    self.method.decode("latin-1"),
                    self.target.decode("latin-1"),
                    self.response_trailers,
                    self.informational,
                    self.pushed,
                )
            )

    def inform(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """A 1xx response (103 Early Hints) arrived ahead of the final one. The first
        `MAX_INFORMATIONAL` are kept: a server may send any number, the client's memory
        must not follow (the request's timeout bounds the wait)."""
        if self.informational is None:
            self.informational = []
        if len(self.informational) < MAX_INFORMATIONAL:
            self.informational.append((status, headers))

    def fail(self, error: BaseException) -> None:
        future = self.future
        if not future.done():
            future.set_exception(error)
