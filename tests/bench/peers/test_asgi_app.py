"""The peers' ASGI app, called directly as an ASGI server would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from h2books.bench.peers.asgi_app import BookstoreApp
from h2books.bench.peers.catalog import DATA_DIR_VARIABLE, Bodies, load_bodies
from h2books.bench.workspace import Workspace

BODIES = Bodies(b'["1", "22"]', {"1": b'{"title": "one"}', "22": b'{"title": "twenty-two"}'})


def call(app: BookstoreApp, path: str, query: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    asyncio.run(app(scope, receive, send))
    start, body = sent
    assert start["type"] == "http.response.start"
    assert body["type"] == "http.response.body"
    return start["status"], dict(start["headers"]), body["body"]


def test_index() -> None:
    status, headers, body = call(BookstoreApp(BODIES), "/")
    assert status == 200
    assert body == b'["1", "22"]'
    assert headers[b"content-length"] == b"11"
    assert headers[b"content-type"] == b"application/json"


@pytest.mark.parametrize("query", [b"id=22", b"id=22&x=1", b"x=1&id=22"])
def test_book(query: bytes) -> None:
    status, _, body = call(BookstoreApp(BODIES), "/book", query)
    assert (status, body) == (200, b'{"title": "twenty-two"}')


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [("/book", b"id=3", 404), ("/book", b"", 400), ("/book", b"idx=1", 400), ("/nope", b"", 404)],
)
def test_errors_are_json(path: str, query: bytes, status: int) -> None:
    got, _, body = call(BookstoreApp(BODIES), path, query)
    assert got == status
    assert "error" in json.loads(body)


def test_lifespan_completes_startup_and_shutdown() -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    asyncio.run(BookstoreApp(BODIES)({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_bodies_are_our_catalogue(bench_space: Workspace) -> None:
    bodies = load_bodies(bench_space.paths.data_dir)
    assert json.loads(bodies.index) == list(bench_space.book_ids)
    assert set(bodies.books) == set(bench_space.book_ids)
    first = bench_space.book_ids[0]
    status, _, body = call(BookstoreApp(bodies), "/book", f"id={first}".encode())
    assert (status, body) == (200, bodies.books[first])


def test_the_entry_point_needs_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    monkeypatch.delitem(sys.modules, "h2books.bench.peers.asgi_entry", raising=False)
    with pytest.raises(RuntimeError, match=DATA_DIR_VARIABLE):
        importlib.import_module("h2books.bench.peers.asgi_entry")


def test_the_entry_point_serves_the_named_data_directory(
    monkeypatch: pytest.MonkeyPatch, bench_space: Workspace
) -> None:
    import importlib
    import sys

    monkeypatch.setenv(DATA_DIR_VARIABLE, str(bench_space.paths.data_dir))
    monkeypatch.delitem(sys.modules, "h2books.bench.peers.asgi_entry", raising=False)
    module = importlib.import_module("h2books.bench.peers.asgi_entry")
    status, _, body = call(module.app, "/")
    assert (status, json.loads(body)) == (200, list(bench_space.book_ids))
