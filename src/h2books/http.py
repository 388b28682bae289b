"""The handler API: what a handler receives and what it returns.

Both protocols (HTTP/1.1 and HTTP/2) build the same `Request` and send the same
`Response`. Header names are lowercase ``bytes`` and values are ``bytes``, exactly
as they travel, so nothing is decoded unless a handler asks for it.

A `Response` may be built once at start-up and returned for many requests: the
server caches each protocol's encoding of its fixed part on the object itself
(``_h1_head``, ``_h2_fields``), so a precomputed response costs almost nothing
to send again. Treat a returned response as immutable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

from h2books.protocol.h1.serializer import ResponseHead
from h2books.protocol.status import REASONS

__all__ = ["REASONS", "Handler", "Hints", "Request", "Response"]


class Request:
    """One request, as the protocol core delivered it.

    ``path`` is the raw request path without the query (percent-encoding kept),
    ``query`` the raw query string without ``?``. ``authority`` comes from
    ``:authority`` (HTTP/2) or ``Host`` (HTTP/1.1). ``http_version`` is ``"1.0"``,
    ``"1.1"`` or ``"2"``.
    """

    __slots__ = (
        "_query_params",
        "authority",
        "body",
        "client",
        "headers",
        "http_version",
        "method",
        "path",
        "query",
        "scheme",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        http_version: str = "2",
        scheme: str = "https",
        authority: str = "",
        client: tuple[str, int] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.http_version = http_version
        self.scheme = scheme
        self.authority = authority
        self.client = client
        self._query_params: dict[str, str] | None = None

    def header(self, name: str | bytes) -> str | None:
        """The first value of a header (case-insensitive name), decoded as latin-1."""
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        for field_name, value in self.headers:
            if field_name == key:
                return value.decode("latin-1")
        return None

    @property
    def query_params(self) -> dict[str, str]:
        """The query string parsed into a dict (the first value of each name wins)."""
        params = self._query_params
        if params is None:
            params = {}
            for name, value in parse_qsl(self.query, keep_blank_values=True):
                params.setdefault(name, value)
            self._query_params = params
        return params

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.http_version}>"


class Hints:
    """What goes out ahead of a response, for the resources it refers to.

    ``early`` are the fields of a 103 Early Hints response (``link`` fields with
    ``rel=preload``), sent before the response over HTTP/1.1 and HTTP/2. ``push`` are
    request targets (``b"/static/app.css"``) the server pushes over HTTP/2 when push is
    on (``h2books serve --push``) and the client allows it, in order, until the client's
    limits stop them; the client requests the rest as usual. Like a `Response`, one
    `Hints` can serve many responses.
    """

    __slots__ = ("early", "push")

    def __init__(
        self,
        early: Sequence[tuple[bytes, bytes]] = (),
        push: Sequence[bytes] = (),
    ) -> None:
        self.early = tuple(early)
        self.push = tuple(push)


class Response:
    """What a handler returns.

    ``headers`` are the handler's own fields (lowercase ``bytes`` names). The server
    adds ``date``, ``server`` and, for a ``bytes`` body, ``content-length``; a handler
    that sets ``content-length`` itself is trusted. For ``HEAD`` the server sends the
    headers of the GET response and no body. ``stream`` (an async iterator of bytes)
    replaces ``body`` for a streaming response; it is sent as the peer's flow
    control allows. ``hints`` (`Hints`): a 103 Early Hints and server pushes to send
    ahead of it.
    """

    __slots__ = (
        "_h1_head",
        "_h2_fields",
        "body",
        "headers",
        "hints",
        "hpack_block",
        "status",
        "stream",
    )

    def __init__(
        self,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (),
        body: bytes = b"",
        stream: AsyncIterator[bytes] | None = None,
        hints: Hints | None = None,
    ) -> None:
        self.status = status
        self.hints = hints
        self.headers = tuple(headers)
        self.body = body
        self.stream = stream
        # Per-protocol encodings of the fixed part, filled lazily by the server and
        # keyed by the Date value they were built with (it changes once a second).
        # (the Date it was built for, the server's name and alt-svc, the encoding)
        self._h1_head: tuple[bytes, bytes, bytes | None, ResponseHead] | None = None
        self._h2_fields: (
            tuple[bytes, bytes, bytes | None, tuple[tuple[bytes, bytes], ...]] | None
        ) = None
        # The HTTP/2 core's cache of the HPACK block of those fields (scheduler.BlockCache).
        self.hpack_block: tuple[int, int, Sequence[tuple[bytes, bytes]], bytes] | None = None

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


Handler = Callable[[Request], "Response | Awaitable[Response]"]
