"""The bookstore as a WSGI app, called as a WSGI server calls it, against the native bookstore."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from h2books.app.bookstore import Bookstore
from h2books.bench.peers.replies import open_bookstore
from h2books.bench.peers.wsgi_app import BookstoreWsgiApp
from h2books.bench.workspace import Workspace
from h2books.http import Request


@pytest.fixture(scope="module")
def native(bench_space: Workspace) -> Iterator[tuple[Bookstore, list[str]]]:
    bookstore, ids = open_bookstore(bench_space.paths.data_dir)
    yield bookstore, ids
    bookstore.close()


def call(
    app: BookstoreWsgiApp, path: str, query: str = "", method: str = "GET", **extra: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, **extra}
    body = b"".join(app(environ, lambda status, headers: started.append((status, headers))))
    ((status, headers),) = started
    return status, headers, body


@pytest.mark.parametrize(
    ("path", "query", "status_line"),
    [
        ("/", "", "200 OK"),
        ("/book", "id={first}", "200 OK"),
        ("/book", "id=999999999", "404 Not Found"),
        ("/book", "", "400 Bad Request"),
        ("/nope", "", "404 Not Found"),
    ],
)
def test_byte_identical_to_the_native_bookstore(
    native: tuple[Bookstore, list[str]], path: str, query: str, status_line: str
) -> None:
    bookstore, ids = native
    query = query.format(first=ids[0])
    expected = bookstore(Request("GET", path, query, []))
    status, headers, body = call(BookstoreWsgiApp(bookstore, ids), path, query)
    assert status == status_line
    assert body == expected.body
    fields = [(name.encode(), value.encode()) for name, value in headers]
    assert fields == [*expected.headers, (b"content-length", str(len(body)).encode())]


def test_revalidation_and_head(native: tuple[Bookstore, list[str]]) -> None:
    bookstore, ids = native
    app = BookstoreWsgiApp(bookstore, ids)
    _, headers, _ = call(app, "/book", f"id={ids[0]}")
    etag = dict(headers)["etag"]
    status, _, body = call(app, "/book", f"id={ids[0]}", HTTP_IF_NONE_MATCH=etag)
    assert (status, body) == ("304 Not Modified", b"")
    status, head_headers, body = call(app, "/book", f"id={ids[0]}", method="HEAD")
    assert (status, head_headers, body) == ("200 OK", headers, b"")
