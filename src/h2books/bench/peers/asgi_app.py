"""The bookstore as an ASGI 3 app: the native bookstore's answers, as ASGI messages.

Every ASGI server in the benchmark (ours through `AsgiInterface`, Granian, Uvicorn,
Hypercorn, Gunicorn) imports the ready app by name from
`h2books.bench.peers.asgi_entry`. Each reply is two prebuilt messages built from
the native `Response` (see `replies`), so the bodies and the app's header fields
are the native bookstore's, and the work per request is a dict lookup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from h2books.app.bookstore import Bookstore
from h2books.bench.peers.replies import PrecomputedBookstore, fields_with_length
from h2books.http import Response

__all__ = ["BookstoreApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_Reply = tuple[Message, Message]
_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}


def _messages(response: Response) -> _Reply:
    start = {
        "type": "http.response.start",
        "status": response.status,
        "headers": fields_with_length(response),
    }
    return start, {"type": "http.response.body", "body": response.body}


class BookstoreApp:
    """``/`` and ``/book?id=N`` (and the rest of the native API) as an ASGI 3 app."""

    __slots__ = ("_by_query", "_replies")

    def __init__(self, native: Bookstore, book_ids: Iterable[str]) -> None:
        self._replies = PrecomputedBookstore(native, book_ids, _messages)
        # The books' replies by the query as it comes, in bytes: no decode per request. A
        # query that is not latin-1 text never comes so from the wire (its bytes would be
        # percent-encoded): such a book is answered by `ask`, as before.
        self._by_query = {}
        for query, reply in self._replies.by_query.items():
            with contextlib.suppress(UnicodeEncodeError):
                self._by_query[query.encode("latin-1")] = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # The route, looked up here: this runs for every request.
            method: str = scope["method"]
            path: str = scope["path"]
            query: bytes = scope["query_string"]
            headers = scope["headers"]
            reply = None
            if method == "GET" and not _revalidates(headers):
                if path == "/book":
                    reply = self._by_query.get(query)
                elif path == "/" and not query:
                    reply = self._replies.index
            if reply is None:
                reply = self._replies.ask(method, path, query.decode("latin-1"), headers)
            start, body = reply
            await send(start)
            await send(_EMPTY_BODY if method == "HEAD" else body)
        elif kind == "lifespan":
            await _lifespan(receive, send)


def _revalidates(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    # The native bookstore scans its header list for this on every request too. A plain
    # loop: any() over a generator costs ~3x as much on CPython 3.11.
    for name, _ in headers:  # noqa: SIM110 - the cheaper form, see above
        if name == b"if-none-match":
            return True
    return False


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
