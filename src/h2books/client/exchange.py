"""One request on its way: what to send, where its response goes, when it started."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from h2books.client.response import Response

__all__ = ["Exchange", "ResponseCallback"]

# Called once with the response, or with None and the error (CancelledError when the
# client closed first): `Client.send`'s way, without a future and its loop callback.
ResponseCallback = Callable[[Response | None, BaseException | None], None]

# How many times in all a request is sent that the server says it did not process
# (`Exchange.retry_unprocessed`: REFUSED_STREAM, above a GOAWAY's last stream id,
# H3_REQUEST_REJECTED). A request never sent (queued when its connection went away)
# moves to the next connection without counting: nothing of it reached the server.
MAX_ATTEMPTS = 3


# Interim (1xx) responses kept per request; more are read and dropped.
MAX_INFORMATIONAL = 16


class Exchange:
    """A request and where its response goes: a future, or a callback
    (`ResponseCallback`) called at once from the read that completed it.

    ``target`` and ``method`` are bytes as they go on the wire; ``fields`` are the
    caller's extra header fields (lowercase names). The response parts are filled
    in by the connection that carries it.
    """

    __slots__ = (
        "attempts",
        "body",
        "callback",
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
        future: asyncio.Future[Response] | None,
        started: float,
        callback: ResponseCallback | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.fields = fields
        self.body = body
        self.future = future  # None: `callback` takes the answer
        self.callback = callback
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

    def response(self, content: bytes, http_version: str) -> Response:
        """The `Response` made of what arrived and `content`."""
        return Response(
            self.status,
            self.response_headers,
            content,
            http_version,
            self.method,
            self.target,
            self.response_trailers,
            self.informational,
            self.pushed,
        )

    def resolve(self, content: bytes, http_version: str) -> None:
        response = self.response(content, http_version)
        future = self.future
        if future is None:
            self._answer(response, None)
        elif not future.done():
            future.set_result(response)

    def inform(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """A 1xx response (103 Early Hints) arrived ahead of the final one. The first
        `MAX_INFORMATIONAL` are kept: a server may send any number, the client's memory
        must not follow (the request's timeout bounds the wait)."""
        if self.informational is None:
            self.informational = []
        if len(self.informational) < MAX_INFORMATIONAL:
            self.informational.append((status, headers))

    def retry_unprocessed(self) -> bool:
        """The server did not process this request (HTTP/2: refused, or above a GOAWAY's
        last stream id, RFC 9113 §8.7; HTTP/3: rejected, RFC 9114 §4.1.1): it is safe to
        send again, whatever its method. True if it may go once more (`MAX_ATTEMPTS` in
        all), with what arrived of an answer dropped; False: the caller fails it."""
        self.attempts += 1
        if self.attempts >= MAX_ATTEMPTS:
            return False
        self.status = 0
        self.response_headers = []
        self.response_trailers = None
        self.informational = None
        self.chunks = []
        self.received = 0
        return True

    def fail(self, error: BaseException) -> None:
        future = self.future
        if future is None:
            self._answer(None, error)
        elif not future.done():
            future.set_exception(error)

    def _answer(self, response: Response | None, error: BaseException | None) -> None:
        """The callback's one call. What it raises is the caller's bug, reported as the
        loop reports a failing done-callback of a future: raised here, it would end the
        read in progress, and with it the connection's other requests."""
        callback = self.callback
        if callback is None:
            return
        self.callback = None
        try:
            callback(response, error)
        except Exception as exc:
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"response callback of {self.label} failed", "exception": exc}
            )

    def cancel(self) -> None:
        """The client closed before the answer: the future is cancelled, a callback gets
        a CancelledError."""
        if self.future is None:
            self.fail(asyncio.CancelledError())
        else:
            self.future.cancel()
