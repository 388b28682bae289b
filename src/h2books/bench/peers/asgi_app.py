"""One small ASGI app for Hypercorn, Granian and Uvicorn: the bookstore, precomputed.

Servers import the ready app by name from `h2books.bench.peers.asgi_entry`, which
reads the data directory from the environment (`DATA_DIR_VARIABLE`).
Each response is two prebuilt ASGI messages: the work per request is a dict
lookup, like every other server in the benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from h2books.bench.peers.catalog import Bodies

__all__ = ["BookstoreApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_Reply = tuple[Message, Message]


def _reply(status: int, body: bytes) -> _Reply:
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def _error(status: int, message: str) -> _Reply:
    return _reply(status, json.dumps({"error": message}).encode())


_NOT_FOUND = _error(404, "not found")
_BOOK_NOT_FOUND = _error(404, "no book with this id")
_ID_MISSING = _error(400, "missing query parameter: id")


class BookstoreApp:
    """``/`` and ``/book?id=N`` as an ASGI 3 app."""

    __slots__ = ("_books", "_books_by_query", "_index")

    def __init__(self, bodies: Bodies) -> None:
        self._books = {book_id: _reply(200, body) for book_id, body in bodies.books.items()}
        # The plain request's query is exactly b"id=N": one lookup, like our bookstore.
        self._books_by_query = {
            f"id={book_id}".encode(): reply for book_id, reply in self._books.items()
        }
        self._index = _reply(200, bodies.index)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            start, body = self._route(scope)
            await send(start)
            await send(body)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    def _route(self, scope: Scope) -> _Reply:
        path = scope["path"]
        if path == "/book":
            query: bytes = scope["query_string"]
            reply = self._books_by_query.get(query)
            if reply is not None:
                return reply
            ids = parse_qs(query.decode("latin-1")).get("id")
            if not ids:
                return _ID_MISSING
            return self._books.get(ids[0], _BOOK_NOT_FOUND)
        if path == "/":
            return self._index
        return _NOT_FOUND


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
