"""A handler for bulk-transfer benchmarks: ``GET /bytes/N`` answers N bytes.

    h2books serve --app h2books.bench.payload:create_payload_app

Bodies are built once per size and kept, so a run measures the server's send path
(framing, flow control, TLS, writes), not the building of the body. Sizes are
bounded and so is the number of sizes kept: this app may face an untrusted peer.
"""

from __future__ import annotations

from h2books.http import Handler, Request, Response

__all__ = ["MAX_PAYLOAD", "create_payload_app"]

MAX_PAYLOAD = 256 * 1024 * 1024
# A handful of sizes is what a benchmark asks for; beyond it the oldest is dropped.
_MAX_CACHED_SIZES = 8
# A pattern rather than zeros, so a truncated or shifted body is visible in a dump.
_PATTERN = bytes(range(256))
_PREFIX = "/bytes/"
_CONTENT_TYPE = (b"content-type", b"application/octet-stream")
_NOT_FOUND = Response(404, [(b"content-type", b"text/plain; charset=utf-8")], b"not found\n")
_TOO_LARGE = Response(
    400,
    [(b"content-type", b"text/plain; charset=utf-8")],
    b"size must be an integer from 0 to %d\n" % MAX_PAYLOAD,
)
_NOT_ALLOWED = Response(
    405, [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain; charset=utf-8")], b""
)


def payload(size: int) -> bytes:
    """``size`` bytes of the repeating 0..255 pattern."""
    whole, rest = divmod(size, len(_PATTERN))
    return _PATTERN * whole + _PATTERN[:rest]


class PayloadApp:
    """``/bytes/N`` -> N bytes (``0 <= N <= MAX_PAYLOAD``), cached per size."""

    __slots__ = ("_responses",)

    def __init__(self) -> None:
        self._responses: dict[str, Response] = {}

    def __call__(self, request: Request) -> Response:
        path = request.path
        if not path.startswith(_PREFIX):
            return _NOT_FOUND
        if request.method != "GET" and request.method != "HEAD":
            return _NOT_ALLOWED
        text = path[len(_PREFIX) :]
        response = self._responses.get(text)
        if response is not None:
            return response
        # isdecimal also accepts non-ASCII digits, which int() reads; isascii rules them out.
        if not (text.isascii() and text.isdecimal()) or len(text) > 12:
            return _TOO_LARGE
        size = int(text)
        if size > MAX_PAYLOAD:
            return _TOO_LARGE
        response = Response(200, [_CONTENT_TYPE], payload(size))
        responses = self._responses
        if len(responses) >= _MAX_CACHED_SIZES:
            del responses[next(iter(responses))]
        responses[text] = response
        return response


def create_payload_app() -> Handler:
    return PayloadApp()
