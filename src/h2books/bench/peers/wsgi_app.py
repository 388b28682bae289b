"""The bookstore as a WSGI (PEP 3333) app: the native bookstore's answers, prebuilt.

Ours (`WsgiInterface`) and Granian's WSGI interface import it by name from
`h2books.bench.peers.wsgi_entry`. Like the ASGI app, each reply is built once from
the native `Response` (see `replies`): a status line, the header list and the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from h2books.app.bookstore import Bookstore
from h2books.bench.peers.replies import PrecomputedBookstore, fields_with_length
from h2books.http import Response

__all__ = ["BookstoreWsgiApp"]

StartResponse = Callable[..., Any]
_Reply = tuple[str, list[tuple[str, str]], list[bytes]]


def _wsgi_reply(response: Response) -> _Reply:
    status = f"{response.status} {HTTPStatus(response.status).phrase}"
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in fields_with_length(response)
    ]
    return status, headers, [response.body]


def _environ_headers(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    # Only what the native bookstore reads: if-none-match.
    value = environ.get("HTTP_IF_NONE_MATCH")
    return [] if value is None else [(b"if-none-match", value.encode("latin-1"))]


class BookstoreWsgiApp:
    """``/`` and ``/book?id=N`` (and the rest of the native API) as a WSGI app."""

    __slots__ = ("_replies",)

    def __init__(self, native: Bookstore, book_ids: Iterable[str]) -> None:
        self._replies = PrecomputedBookstore(native, book_ids, _wsgi_reply)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path: str = environ["PATH_INFO"]
        query: str = environ.get("QUERY_STRING", "")
        method: str = environ["REQUEST_METHOD"]
        reply = None
        if method == "GET" and "HTTP_IF_NONE_MATCH" not in environ:
            if path == "/book":
                reply = self._replies.by_query.get(query)
            elif path == "/" and not query:
                reply = self._replies.index
        if reply is None:
            reply = self._replies.ask(method, path, query, _environ_headers(environ))
        status, headers, body = reply
        start_response(status, headers)
        return [] if method == "HEAD" else body
