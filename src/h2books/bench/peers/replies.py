"""The native bookstore's answers, precomputed once in the form another interface sends.

The ASGI and WSGI bookstores are the native `Bookstore` seen through another
interface: every reply is built from the `Response` the native handler returns,
so status, header fields and body are byte for byte the same on every server.
A request is one dict lookup on the hot path (``GET /`` and ``GET /book?id=N``
without ``if-none-match``); anything else asks the native handler itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from h2books.app.bookstore import Bookstore, create_app
from h2books.app.store import open_catalog
from h2books.bench.peers.catalog import data_dir_from_environment
from h2books.http import Request, Response

__all__ = ["PrecomputedBookstore", "fields_with_length", "open_bookstore"]

Reply = TypeVar("Reply")


def fields_with_length(response: Response) -> list[tuple[bytes, bytes]]:
    """The native response's fields plus the ``content-length`` our server adds to it.

    An ASGI or WSGI app states the length itself: without it HTTP/1.1 servers chunk.
    """
    return [*response.headers, (b"content-length", str(len(response.body)).encode())]


class PrecomputedBookstore(Generic[Reply]):
    """Replies of one interface's type, keyed the way a request arrives."""

    __slots__ = ("_convert", "_native", "_replies", "by_query", "index")

    def __init__(
        self, native: Bookstore, book_ids: Iterable[str], convert: Callable[[Response], Reply]
    ) -> None:
        self._native = native
        self._convert = convert
        # Keyed by the native Response object: the native bookstore answers with a
        # fixed set of prebuilt responses, so this holds one reply per response.
        self._replies: dict[Response, Reply] = {}
        self.index = self.ask("GET", "/", "", [])
        self.by_query: dict[str, Reply] = {
            f"id={book_id}": self.ask("GET", "/book", f"id={book_id}", []) for book_id in book_ids
        }

    def ask(
        self, method: str, path: str, query: str, headers: Sequence[tuple[bytes, bytes]]
    ) -> Reply:
        """What the native bookstore answers to this request, converted (and kept)."""
        response = self._native(Request(method, path, query, list(headers)))
        reply = self._replies.get(response)
        if reply is None:
            reply = self._replies[response] = self._convert(response)
        return reply


def open_bookstore(data_dir: Path | None = None) -> tuple[Bookstore, list[str]]:
    """The native bookstore over `data_dir` and its book ids.

    Without `data_dir`, the one the bench names in the environment: servers import
    the app by name, so the environment is how it learns its data.
    """
    if data_dir is None:
        data_dir = data_dir_from_environment()
    with open_catalog(data_dir) as store:
        ids = [book_id for book_id, _ in store.books()]
    return create_app(data_dir), ids
