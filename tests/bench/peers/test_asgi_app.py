"""The bookstore as an ASGI app, called as an ASGI server calls it, against the native bookstore."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from h2books.app.bookstore import Bookstore
from h2books.bench.peers.asgi_app import BookstoreApp
from h2books.bench.peers.catalog import DATA_DIR_VARIABLE
from h2books.bench.peers.replies import open_bookstore
from h2books.bench.workspace import Workspace
from h2books.http import Request


@pytest.fixture(scope="module")
def native(bench_space: Workspace) -> Iterator[tuple[Bookstore, list[str]]]:
    bookstore, ids = open_bookstore(bench_space.paths.data_dir)
    yield bookstore, ids
    bookstore.close()


def call(
    app: Any, path: str, query: bytes = b"", method: str = "GET", headers: Any = ()
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent
    assert start["type"] == "http.response.start"
    assert body["type"] == "http.response.body"
    return start["status"], list(start["headers"]), body["body"]


def native_answer(
    bookstore: Bookstore, path: str, query: str, headers: Any = ()
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = bookstore(Request("GET", path, query, list(headers)))
    length = (b"content-length", str(len(response.body)).encode())
    return response.status, [*response.headers, length], response.body


CASES = [
    ("/", ""),
    ("/book", "id={first}"),
    ("/book", "id={last}"),
    ("/book", "x=1&id={first}"),  # off the hot path: the native handler answers
    ("/book", "id=999999999"),  # 404 no such book
    ("/book", ""),  # 400
    ("/nope", ""),  # 404
]


@pytest.mark.parametrize(("path", "query"), CASES)
def test_byte_identical_to_the_native_bookstore(
    native: tuple[Bookstore, list[str]], path: str, query: str
) -> None:
    bookstore, ids = native
    query = query.format(first=ids[0], last=ids[-1])
    app = BookstoreApp(bookstore, ids)
    assert call(app, path, query.encode()) == native_answer(bookstore, path, query)


def test_the_index_is_the_posts(native: tuple[Bookstore, list[str]]) -> None:
    bookstore, ids = native
    status, headers, body = call(BookstoreApp(bookstore, ids), "/")
    assert status == 200
    assert body == ("[" + ", ".join(f'"{i}"' for i in ids) + "]").encode()
    assert (b"content-length", str(len(body)).encode()) in headers


def test_revalidation_gets_the_native_304(native: tuple[Bookstore, list[str]]) -> None:
    bookstore, ids = native
    app = BookstoreApp(bookstore, ids)
    query = f"id={ids[0]}".encode()
    _, headers, _ = call(app, "/book", query)
    etag = dict(headers)[b"etag"]
    status, _, body = call(app, "/book", query, headers=[(b"if-none-match", etag)])
    assert (status, body) == (304, b"")


def test_head_has_the_get_fields_and_no_body(native: tuple[Bookstore, list[str]]) -> None:
    bookstore, ids = native
    app = BookstoreApp(bookstore, ids)
    _, get_headers, get_body = call(app, "/")
    status, headers, body = call(app, "/", method="HEAD")
    assert (status, headers, body) == (200, get_headers, b"")
    assert get_body


def test_lifespan_completes_startup_and_shutdown(native: tuple[Bookstore, list[str]]) -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    asyncio.run(BookstoreApp(*native)({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_entry_point_needs_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    monkeypatch.delitem(sys.modules, "h2books.bench.peers.asgi_entry", raising=False)
    with pytest.raises(RuntimeError, match=DATA_DIR_VARIABLE):
        importlib.import_module("h2books.bench.peers.asgi_entry")


def test_the_entry_point_serves_the_named_data_directory(
    monkeypatch: pytest.MonkeyPatch, bench_space: Workspace
) -> None:
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(bench_space.paths.data_dir))
    monkeypatch.delitem(sys.modules, "h2books.bench.peers.asgi_entry", raising=False)
    module = importlib.import_module("h2books.bench.peers.asgi_entry")
    status, _, body = call(module.app, "/")
    assert status == 200
    assert body.decode().count('"') == 2 * len(bench_space.book_ids)


def test_a_book_id_that_is_not_latin_1_is_answered_by_the_native_path(
    native: tuple[Bookstore, list[str]],
) -> None:
    """The replies are keyed by the query's bytes; an id with no latin-1 form (possible in
    an imported catalogue) is left to the native handler rather than refusing to start."""
    bookstore, ids = native
    app = BookstoreApp(bookstore, [*ids, "书"])
    assert call(app, "/book", b"id=%E4%B9%A6") == native_answer(bookstore, "/book", "id=%E4%B9%A6")
    assert call(app, "/book", f"id={ids[0]}".encode())[0] == 200
