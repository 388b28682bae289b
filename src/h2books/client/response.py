"""The response a request resolves to."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Response"]


class Response:
    """A complete response: status, header fields as they arrived, the whole body.

    ``headers`` is a list of ``(name, value)`` bytes pairs with lowercase names
    (without HTTP/2 pseudo-header fields); ``http_version`` is ``"HTTP/2"``,
    ``"HTTP/1.1"`` or ``"HTTP/1.0"``; ``trailers``: the trailer fields (HTTP/2, or a
    chunked HTTP/1.1 body), None when there were none; ``informational``: the 1xx
    responses that came before it (``(103, [(b"link", ...)])`` for Early Hints), in
    order; ``pushed``: the server pushed it (HTTP/2), nobody requested it.
    ``method`` and ``target`` may be given as the bytes that went on the wire: they
    are decoded (latin-1) only when read, which most responses never are.
    """

    __slots__ = (
        "_method",
        "_target",
        "content",
        "headers",
        "http_version",
        "informational",
        "pushed",
        "status",
        "trailers",
    )

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        http_version: str,
        method: str | bytes = "GET",
        target: str | bytes = "/",
        trailers: list[tuple[bytes, bytes]] | None = None,
        informational: list[tuple[int, list[tuple[bytes, bytes]]]] | None = None,
        pushed: bool = False,
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.http_version = http_version
        self._method = method
        self._target = target
        self.trailers = trailers
        self.informational = informational or []
        self.pushed = pushed

    @property
    def method(self) -> str:
        method = self._method
        return method if isinstance(method, str) else method.decode("latin-1")

    @property
    def target(self) -> str:
        target = self._target
        return target if isinstance(target, str) else target.decode("latin-1")

    def header(self, name: str | bytes) -> str | None:
        """The first value of a field (case-insensitive name), decoded as latin-1."""
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        for field_name, value in self.headers:
            if field_name == key:
                return value.decode("latin-1")
        return None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return (
            f"<Response {self.status} {self.http_version} {self.method} {self.target} "
            f"{len(self.content)} bytes>"
        )
