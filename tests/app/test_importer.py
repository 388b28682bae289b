from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.app.bookstore import Bookstore
from h2books.app.importer import CatalogImportError, import_catalog, parse_catalog, read_source
from h2books.app.store import CatalogError, open_catalog
from h2books.http import Request

BOOK = {"title": "T", "author": "A", "url": "https://example.org/1", "score": "1,234"}


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document))
    return str(path)


# --- the post's own file ---------------------------------------------------------


def test_post_catalogue_is_stored_exactly_as_the_post_served_it(
    tmp_path: Path, post_books_path: Path, post_books: dict[str, dict[str, Any]]
) -> None:
    assert import_catalog(tmp_path, str(post_books_path)) == 3000
    with open_catalog(tmp_path) as store:
        stored = store.books()
        assert store.meta("source") == str(post_books_path)
    assert [book_id for book_id, _ in stored] == list(post_books)
    for book_id, body in stored:
        # The post's server: json.dumps(book).encode("utf8"), key order as in the file.
        assert body == json.dumps(post_books[book_id]).encode("utf8"), book_id


def test_post_catalogue_is_served_byte_for_byte(
    tmp_path: Path, post_books_path: Path, post_books: dict[str, dict[str, Any]]
) -> None:
    import_catalog(tmp_path, str(post_books_path))
    with open_catalog(tmp_path) as store:
        bookstore = Bookstore(store)
        index = bookstore(Request("GET", "/", "", []))
        # The post's index: json.dumps(list(BOOKS.keys())).encode("utf8").
        assert index.body == json.dumps(list(post_books.keys())).encode("utf8")
        assert index.body.startswith(b'["1", "2", "3", ')
        for book_id, book in post_books.items():
            response = bookstore(Request("GET", "/book", f"id={book_id}", []))
            assert response.status == 200
            assert response.body == json.dumps(book).encode("utf8"), book_id


def test_post_catalogue_keeps_both_key_orders(
    post_books_path: Path, post_books: dict[str, dict[str, Any]]
) -> None:
    parsed = parse_catalog(post_books_path.read_bytes())
    assert [list(book) for book in parsed.values()] == [list(book) for book in post_books.values()]
    assert {tuple(book) for book in parsed.values()} == {
        ("vote_count", "score", "title", "url", "author"),
        ("author", "url", "title", "score"),
    }


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"1": {"title": NaN}}', "not valid JSON: NaN is not allowed"),
        (b"[1, 2]", "expected an object of id -> book, got an array"),
        (b'"books"', "got a string"),
        (b"null", "got null"),
        (b"{}", "contains no books"),
        (b'{"1": [1]}', "book 1: expected an object, got an array"),
        (b'{"abc": {}}', "book id 'abc' is not a decimal number"),
        (b'{"": {}}', "book id '' is not a decimal number"),
        (b'{"1.5": {}}', "book id '1.5' is not a decimal number"),
        (b'{"1": {"author": "A", "url": "u", "score": "1"}}', "book 1: missing field 'title'"),
        (
            b'{"1": {"title": "T", "author": "A", "url": "u", "score": 7}}',
            "book 1: field 'score' must be a string, got a number",
        ),
        (
            b'{"1": {"title": "T", "author": null, "url": "u", "score": "1"}}',
            "field 'author' must be a string, got null",
        ),
        (
            b'{"1": {"title": "T", "author": "A", "url": "u", "score": "1", "vote_count": 3}}',
            "field 'vote_count' must be a string, got a number",
        ),
        (b'{"1": {}, "1": {}}', "duplicate key '1'"),
        (b'{"1": {"title": "T", "title": "U"}}', "duplicate key 'title'"),
    ],
)
def test_bad_catalogues_are_refused_with_one_line(raw: bytes, message: str) -> None:
    with pytest.raises(CatalogImportError, match=message) as caught:
        parse_catalog(raw)
    assert "\n" not in str(caught.value)


def test_optional_and_extra_fields_are_kept_in_order() -> None:
    book = '{"score": "1", "extra": [1, {"a": true}], "url": "u", "author": "A", "title": "T"}'
    parsed = parse_catalog(f'{{"7": {book}}}')
    assert json.dumps(parsed["7"]) == book


def test_a_failed_import_changes_nothing(tmp_path: Path) -> None:
    with open_catalog(tmp_path) as store:
        before = store.snapshot()
    bad = write_json(tmp_path / "bad.json", {"1": {"title": "only"}})
    with pytest.raises(CatalogImportError, match="missing field"):
        import_catalog(tmp_path, bad)
    with open_catalog(tmp_path) as store:
        assert store.snapshot() == before


def test_import_replaces_and_is_seen_by_a_running_store(tmp_path: Path) -> None:
    with open_catalog(tmp_path) as running:
        before = running.version()
        source = write_json(tmp_path / "small.json", {"5": BOOK, "3": BOOK})
        assert import_catalog(tmp_path, source) == 2
        assert running.version() != before
        assert [book_id for book_id, _ in running.books()] == ["5", "3"]


def test_import_into_a_bad_data_dir_is_a_catalog_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    source = write_json(tmp_path / "ok.json", {"1": BOOK})
    with pytest.raises(CatalogError, match="data directory"):
        import_catalog(tmp_path / "file", source)


# --- reading local files -------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogImportError, match=r"nope\.json does not exist"):
        import_catalog(tmp_path, str(tmp_path / "nope.json"))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogImportError, match="is a directory"):
        read_source(str(tmp_path))


def test_local_size_cap(tmp_path: Path) -> None:
    source = write_json(tmp_path / "big.json", {"1": BOOK})
    assert read_source(source, max_bytes=1000) == Path(source).read_bytes()
    with pytest.raises(CatalogImportError, match="larger than 10 bytes"):
        read_source(source, max_bytes=10)


# --- fetching URLs ---------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path != "/unsized.json":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_base(tmp_path: Path) -> Iterator[str]:
    small = json.dumps({"1": BOOK, "2": BOOK}).encode()
    _Handler.files = {"/small.json": small, "/unsized.json": small}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_import_the_post_catalogue_over_http(
    tmp_path: Path,
    http_base: str,
    post_books_path: Path,
    post_books: dict[str, dict[str, Any]],
) -> None:
    _Handler.files["/books.json"] = post_books_path.read_bytes()
    assert import_catalog(tmp_path, f"{http_base}/books.json") == 3000
    with open_catalog(tmp_path) as store:
        assert store.books()[0] == ("1", json.dumps(post_books["1"]).encode())
        assert store.meta("source") == f"{http_base}/books.json"


def test_import_over_http(tmp_path: Path, http_base: str) -> None:
    assert import_catalog(tmp_path, f"{http_base}/small.json") == 2


def test_http_error_status(http_base: str) -> None:
    with pytest.raises(CatalogImportError, match="HTTP 404"):
        read_source(f"{http_base}/missing.json")


@pytest.mark.parametrize("path", ["/small.json", "/unsized.json"])
def test_http_size_cap(http_base: str, path: str) -> None:
    # Declared (Content-Length) and undeclared (read until close) sizes are both capped.
    with pytest.raises(CatalogImportError, match="larger than 20 bytes"):
        read_source(f"{http_base}{path}", max_bytes=20)


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CatalogImportError, match="cannot fetch"):
        read_source(f"http://127.0.0.1:{port}/books.json", timeout=5)


def test_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(CatalogImportError, match="timed out"):
            read_source(f"http://127.0.0.1:{port}/books.json", timeout=0.3)


def test_malformed_url() -> None:
    with pytest.raises(CatalogImportError, match="cannot fetch"):
        read_source("http://[not-a-host/books.json")
