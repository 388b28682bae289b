"""The bookstore API, as the 2016 post served it, with every response precomputed.

Routes (GET, and HEAD which the server answers from the GET response):

* ``/``            the JSON array of all book ids, ``json.dumps(ids)`` like the post
                   (with ``--push``, the books it lists are pushed over HTTP/2);
                   ``/?books=N``: the first N of them (what `h2books crawl --books N`
                   asks for, so that a push brings those N books and no others);
* ``/book?id=N``   one book, its stored JSON bytes unchanged; 400 for a missing or
                   malformed id, 404 for an unknown one;
* ``/hello``       ``hello world (in HTTP2)``, the post's first example;
* ``/books.json``  every book as ``{id, title, author, score}`` in one array, for the page;
* ``/store``       the storefront page, and its assets under ``/static/<name>.<hash>.<ext>``
                   (see `h2books.app.storefront`).

Everything a request can get back is built when the catalogue is loaded: one
`Response` per book, its 304, the index, the errors. A request is a couple of
dict lookups and a scan of its header list for ``if-none-match``. About once a
second (on the next request) the catalogue's version is checked and, if it
changed, the tables are rebuilt and swapped in with one assignment.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from hashlib import blake2b
from pathlib import Path

from h2books.app.store import CatalogError, CatalogStore, is_valid_book_id, open_catalog
from h2books.app.storefront import listing_json, load_storefront
from h2books.http import Hints, Request, Response

__all__ = ["CHECK_INTERVAL", "Bookstore", "create_app"]

CHECK_INTERVAL = 1.0

HELLO_BODY = b"hello world (in HTTP2)"

log = logging.getLogger("h2books.app")

# Header fields are shared tuples: every response that carries one holds the same object.
_JSON = (b"content-type", b"application/json; charset=utf-8")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_CACHEABLE = (b"cache-control", b"public, max-age=60")
# An error must not outlive a catalogue update in some cache (404s are cacheable by default).
_UNCACHEABLE = (b"cache-control", b"no-store")
_ALLOW = (b"allow", b"GET, HEAD")


def _error(status: int, message: str, *extra: tuple[bytes, bytes]) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(status, (_JSON, _UNCACHEABLE, *extra), body)


_NOT_FOUND = _error(404, "not found")
_BOOK_NOT_FOUND = _error(404, "no book with this id")
_ID_MISSING = _error(400, "missing query parameter: id")
_ID_MALFORMED = _error(400, "malformed book id: expected a decimal number")
_METHOD_NOT_ALLOWED = _error(405, "method not allowed", _ALLOW)

_BOOK_PATH = "/book"
_INDEX_PATH = "/"
_MAX_INDEX_SIZES = 32  # `/?books=N` indexes kept
_LISTING_PATH = "/books.json"

# An If-None-Match list (RFC 9110 8.8.3, 13.1.2): entity-tags, weak or strong, with
# the list syntax's optional whitespace and empty elements. Tags never contain DQUOTE,
# so once the whole value is known to be such a list, its quoted strings are its tags.
_ENTITY_TAG = rb'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_TAG_LIST = re.compile(
    rb"[ \t,]*" + _ENTITY_TAG + rb"(?:[ \t]*,[ \t,]*" + _ENTITY_TAG + rb")*[ \t,]*"
)
_OPAQUE_TAG = re.compile(rb'"[^"]*"')


class _Tables:
    """Everything one catalogue version answers with. Never mutated once built."""

    __slots__ = (
        "_first",
        "_index_ends",
        "_push_paths",
        "books",
        "books_by_query",
        "ids",
        "pages",
        "revalidation",
        "version",
    )

    def __init__(self, version: str, books: Iterable[tuple[str, bytes]]) -> None:
        self.version = version
        # The 304 and entity-tag for each cacheable 200, keyed by the 200 itself.
        self.revalidation: dict[Response, tuple[bytes, Response]] = {}
        self.books: dict[str, Response] = {}
        books = list(books)
        ids = []
        for book_id, body in books:
            self.books[book_id] = self._cacheable(_JSON, body)
            ids.append(book_id)
        # Ids never need percent-encoding, so "id=<id>" is exactly how a plain request
        # for a book arrives; keying on it makes that request a single lookup.
        self.books_by_query = {f"id={book_id}": self.books[book_id] for book_id in ids}
        self.ids = ids
        # The post's index: json.dumps(list(BOOKS.keys())). `/?books=N` answers with a
        # prefix of it, cut where the Nth id ends, and the first N push paths.
        index_body = json.dumps(ids).encode()
        self._index_ends = _element_ends(ids)
        self._push_paths = [f"{_BOOK_PATH}?id={book_id}".encode("ascii") for book_id in ids]
        index = self._cacheable(_JSON, index_body)
        # With `h2books serve --push`, an HTTP/2 client that allows pushes gets the books
        # the index lists pushed along with it, as many as its limits let through.
        index.hints = Hints(push=self._push_paths)
        # The sizes asked for first are kept (with their 304s); see first_books.
        self._first: dict[int, Response] = {len(ids): index}
        hello = self._cacheable(_TEXT, HELLO_BODY)
        listing = self._cacheable(_JSON, listing_json(books))
        # The storefront never changes while the process runs: every version shares
        # the same response objects (and so the server's cached encodings of them).
        storefront = load_storefront()
        self.revalidation.update(storefront.revalidation)
        self.pages: dict[str, Response] = {
            **storefront.pages,
            "/": index,
            "/hello": hello,
            _LISTING_PATH: listing,
        }

    def first_books(self, count: int) -> Response:
        """The index of the first `count` books (all of them beyond the catalogue's size).

        A peer picks `count`, so an answer costs a slice of the full index, not a new
        JSON encoding and hash of it: any size is cheap. The first `_MAX_INDEX_SIZES`
        sizes asked for are kept, with an entity-tag and their 304; others are built per
        request and answer without validators (nothing per size is kept for them)."""
        count = min(count, len(self.ids))
        index = self._first.get(count)
        if index is not None:
            return index
        full = self.pages[_INDEX_PATH].body
        body = full[: self._index_ends[count - 1]] + b"]" if count else b"[]"
        if len(self._first) < _MAX_INDEX_SIZES:
            # (The one mutation of the tables: a bounded cache, filled from the loop's thread.)
            index = self._first[count] = self._cacheable(_JSON, body)
        else:
            index = Response(200, (_JSON, _CACHEABLE), body)
        index.hints = Hints(push=self._push_paths[:count])
        return index

    def _cacheable(self, content_type: tuple[bytes, bytes], body: bytes) -> Response:
        etag = (b"etag", b'"%s"' % blake2b(body, digest_size=8).hexdigest().encode())
        response = Response(200, (content_type, etag, _CACHEABLE), body)
        # RFC 9110 15.4.5: a 304 repeats ETag and Cache-Control, and has no content.
        self.revalidation[response] = (etag[1], Response(304, (etag, _CACHEABLE)))
        return response


class Bookstore:
    """The bookstore handler: ``bookstore(request) -> Response``, synchronous and cheap."""

    __slots__ = ("_check_interval", "_clock", "_next_check", "_reload_lock", "_store", "_tables")

    def __init__(
        self,
        store: CatalogStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._check_interval = check_interval
        self._reload_lock = threading.Lock()
        version, books = store.snapshot()
        self._tables = _Tables(version, books)
        self._next_check = clock() + check_interval

    @property
    def version(self) -> str:
        """The catalogue version being served."""
        return self._tables.version

    @property
    def book_count(self) -> int:
        return len(self._tables.books)

    def __call__(self, request: Request) -> Response:
        if self._clock() >= self._next_check:
            self._check_for_changes()
        tables = self._tables
        path = request.path
        method = request.method
        if method != "GET" and method != "HEAD":
            known = path == _BOOK_PATH or path in tables.pages
            return _METHOD_NOT_ALLOWED if known else _NOT_FOUND
        if path == _BOOK_PATH:
            # Hot path: the query is exactly "id=<id>"; anything else (an unknown id,
            # extra parameters, percent-encoding) goes through the full query parser.
            response = tables.books_by_query.get(request.query)
            if response is None:
                response = _book_from_query(tables, request)
        elif path == _INDEX_PATH and request.query:
            response = _index_from_query(tables, request)
        else:
            response = tables.pages.get(path)
            if response is None:
                return _NOT_FOUND
        for name, _ in request.headers:
            if name == b"if-none-match":
                return _revalidate(tables, request, response)
        return response

    def reload(self) -> bool:
        """Check the catalogue now; returns whether a new version was loaded."""
        with self._reload_lock:
            return self._reload()

    def close(self) -> None:
        self._store.close()

    def _check_for_changes(self) -> None:
        # One caller checks; concurrent callers keep serving the current tables.
        if not self._reload_lock.acquire(blocking=False):
            return
        try:
            now = self._clock()
            if now < self._next_check:
                return
            self._next_check = now + self._check_interval
            self._reload()
        except CatalogError as exc:
            # Keep serving the last good catalogue; try again at the next check.
            log.warning("catalogue check failed, still serving %s: %s", self.version, exc)
        finally:
            self._reload_lock.release()

    def _reload(self) -> bool:
        if self._store.version() == self._tables.version:
            return False
        version, books = self._store.snapshot()
        self._tables = _Tables(version, books)
        log.info("catalogue reloaded: version %s, %d books", version, len(books))
        return True


def create_app(data_dir: Path) -> Bookstore:
    """The bookstore over ``data_dir/catalog.sqlite3`` (generated on first run)."""
    return Bookstore(open_catalog(Path(data_dir)))


def _element_ends(ids: list[str]) -> list[int]:
    """Where each id's JSON string ends in ``json.dumps(ids)`` (elements joined by ", ")."""
    ends = []
    end = 1  # the opening bracket
    for book_id in ids:
        end += len(json.dumps(book_id).encode())
        ends.append(end)
        end += 2
    return ends


def _index_from_query(tables: _Tables, request: Request) -> Response:
    """``/?books=N``: the first N books; any other query is ignored, as before."""
    count = request.query_params.get("books")
    if count is None or not (count.isascii() and count.isdigit()) or len(count) > 9:
        return tables.pages[_INDEX_PATH]
    return tables.first_books(int(count))


def _book_from_query(tables: _Tables, request: Request) -> Response:
    book_id = request.query_params.get("id")
    if book_id is None:
        return _ID_MISSING
    if not is_valid_book_id(book_id):
        return _ID_MALFORMED
    return tables.books.get(book_id, _BOOK_NOT_FOUND)


def _revalidate(tables: _Tables, request: Request, response: Response) -> Response:
    validators = tables.revalidation.get(response)
    if validators is None:
        return response
    etag, not_modified = validators
    for name, value in request.headers:
        if name == b"if-none-match" and _if_none_match_hits(value, etag):
            return not_modified
    return response


def _if_none_match_hits(field_value: bytes, etag: bytes) -> bool:
    """Whether an If-None-Match field value matches ``etag`` (weak comparison).

    ``*`` matches any current representation. A malformed value matches nothing, so
    the full response is sent: the safe reading of a field we cannot understand.
    """
    if field_value.strip(b" \t") == b"*":
        return True
    if _TAG_LIST.fullmatch(field_value) is None:
        return False
    return etag in _OPAQUE_TAG.findall(field_value)
