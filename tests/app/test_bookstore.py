from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.app.bookstore import Bookstore, create_app
from h2books.app.generator import generate_books
from h2books.app.store import CATALOG_FILENAME, CatalogStore, open_catalog
from h2books.http import Request, Response

JSON_TYPE = b"application/json; charset=utf-8"
BOOKS = generate_books()
SMALL = {
    "1": {"title": "New", "author": "A", "url": "u", "score": "9"},
    "4": {"title": "Four", "author": "B", "url": "v", "score": "8"},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogStore]:
    with open_catalog(tmp_path_factory.mktemp("catalog")) as store:
        yield store


@pytest.fixture(scope="module")
def app(shared_store: CatalogStore) -> Bookstore:
    """A bookstore over the default catalogue; tests using it must not change it."""
    return Bookstore(shared_store)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    with open_catalog(tmp_path) as opened:
        yield opened


def get(
    app: Bookstore,
    path: str,
    query: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
) -> Response:
    return app(Request(method, path, query, headers or [(b"user-agent", b"test")]))


def header(response: Response, name: bytes) -> bytes | None:
    values = [value for field, value in response.headers if field == name]
    assert len(values) <= 1
    return values[0] if values else None


def error_of(response: Response) -> str:
    assert header(response, b"content-type") == JSON_TYPE
    document = json.loads(response.body)
    assert list(document) == ["error"]
    return str(document["error"])


# --- routes -----------------------------------------------------------------------


def test_index_is_the_posts_format(app: Bookstore) -> None:
    response = get(app, "/")
    assert response.status == 200
    assert response.body == json.dumps(list(BOOKS)).encode()
    assert response.body.startswith(b'["1", "2", ')
    assert header(response, b"content-type") == JSON_TYPE


def test_every_book_is_its_stored_json(app: Bookstore) -> None:
    for book_id, book in BOOKS.items():
        response = get(app, "/book", f"id={book_id}")
        assert response.status == 200
        assert response.body == json.dumps(book).encode(), book_id


def test_book_headers(app: Bookstore) -> None:
    response = get(app, "/book", "id=1")
    etag = header(response, b"etag")
    assert etag is not None
    assert len(etag) == 18 and etag.startswith(b'"') and etag.endswith(b'"')
    int(etag[1:-1], 16)
    assert header(response, b"content-type") == JSON_TYPE
    assert header(response, b"cache-control") == b"public, max-age=60"
    # The server adds these; a handler that set them would be trusted blindly.
    assert header(response, b"content-length") is None
    assert header(response, b"date") is None


def test_etags_differ_between_books(app: Bookstore) -> None:
    etags = {header(get(app, "/book", f"id={n}"), b"etag") for n in range(1, 101)}
    assert len(etags) == 100


def test_hello_is_the_posts_first_example(app: Bookstore) -> None:
    response = get(app, "/hello")
    assert (response.status, response.body) == (200, b"hello world (in HTTP2)")
    assert header(response, b"content-type") == b"text/plain; charset=utf-8"


def test_head_gets_the_get_response(app: Bookstore) -> None:
    # The server sends a GET response's headers without its body for HEAD.
    for path, query in (("/", ""), ("/book", "id=7"), ("/hello", ""), ("/book", "id=x")):
        assert get(app, path, query, method="HEAD") is get(app, path, query)


def test_responses_are_prebuilt_and_share_header_fields(app: Bookstore) -> None:
    first, again, other = (
        get(app, "/book", "id=1"),
        get(app, "/book", "id=1"),
        get(app, "/book", "id=2"),
    )
    assert first is again
    assert first.headers[0] is other.headers[0]  # content-type
    assert header(first, b"cache-control") is header(other, b"cache-control")
    not_modified = get(app, "/book", "id=1", [(b"if-none-match", header(first, b"etag") or b"")])
    assert not_modified.headers[0] is first.headers[1]  # the etag field itself


# --- book queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "book_id"),
    [
        ("id=5&x=1", "5"),
        ("x=1&id=5", "5"),
        ("id=%35", "5"),
        ("id=1%32", "12"),
        ("id=5&id=6", "5"),  # the first value wins, like Request.query_params
        ("id=3000", "3000"),
    ],
)
def test_unusual_queries_still_find_the_book(app: Bookstore, query: str, book_id: str) -> None:
    response = get(app, "/book", query)
    assert response.status == 200
    assert response.body == json.dumps(BOOKS[book_id]).encode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "missing query parameter: id"),
        ("x=1", "missing query parameter: id"),
        ("ID=5", "missing query parameter: id"),
        ("id", "malformed book id"),  # a bare name is an empty value
        ("id=", "malformed book id"),
        ("id=abc", "malformed book id"),
        ("id=-1", "malformed book id"),
        ("id=1.5", "malformed book id"),
        ("id=+1", "malformed book id"),
        ("id=%20", "malformed book id"),
        ("id=%ZZ", "malformed book id"),
        ("id=" + "1" * 21, "malformed book id"),
        ("id=١٢", "malformed book id"),  # non-ASCII digits are not ids
    ],
)
def test_missing_or_malformed_id_is_400(app: Bookstore, query: str, message: str) -> None:
    response = get(app, "/book", query)
    assert response.status == 400
    assert message in error_of(response)
    assert header(response, b"cache-control") == b"no-store"


@pytest.mark.parametrize("query", ["id=0", "id=3001", "id=007", "id=99999999999999999999"])
def test_unknown_id_is_404(app: Bookstore, query: str) -> None:
    response = get(app, "/book", query)
    assert response.status == 404
    assert error_of(response) == "no book with this id"


@pytest.mark.parametrize("path", ["/books", "/book/", "/hello/", "/index.html", "//", "*", ""])
def test_unknown_path_is_404(app: Bookstore, path: str) -> None:
    response = get(app, path)
    assert response.status == 404
    assert error_of(response) == "not found"
    assert get(app, path, method="POST").status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"])
@pytest.mark.parametrize(
    ("path", "query"), [("/", ""), ("/book", "id=1"), ("/book", "id=x"), ("/hello", "")]
)
def test_other_methods_are_405_with_allow(
    app: Bookstore, method: str, path: str, query: str
) -> None:
    response = get(app, path, query, method=method)
    assert response.status == 405
    assert header(response, b"allow") == b"GET, HEAD"
    assert error_of(response) == "method not allowed"


# --- conditional requests ------------------------------------------------------------


def etag_of(app: Bookstore, path: str, query: str = "") -> bytes:
    value = header(get(app, path, query), b"etag")
    assert value is not None
    return value


@pytest.mark.parametrize(
    "if_none_match",
    [
        "{etag}",
        "W/{etag}",
        '"other", {etag}',
        ' , "other" ,, W/{etag} ,',
        "*",
        " * ",
    ],
)
@pytest.mark.parametrize(("path", "query"), [("/book", "id=42"), ("/", ""), ("/hello", "")])
def test_matching_if_none_match_is_304(
    app: Bookstore, path: str, query: str, if_none_match: str
) -> None:
    etag = etag_of(app, path, query)
    value = if_none_match.replace("{etag}", etag.decode()).encode()
    for method in ("GET", "HEAD"):
        response = get(app, path, query, [(b"accept", b"*/*"), (b"if-none-match", value)], method)
        assert response.status == 304
        assert response.body == b""
        assert response.headers == ((b"etag", etag), (b"cache-control", b"public, max-age=60"))


@pytest.mark.parametrize(
    "if_none_match",
    [
        '"other"',
        '"other", W/"another"',
        "{bare}",  # unquoted: not an entity-tag
        "{etag} {etag}",  # no comma: not a list
        "garbage, {etag}",
        "*, {etag}",
        "w/{etag}",  # the weak prefix is case-sensitive
        "",
    ],
)
def test_other_if_none_match_gets_the_full_response(app: Bookstore, if_none_match: str) -> None:
    full = get(app, "/book", "id=42")
    etag = etag_of(app, "/book", "id=42").decode()
    value = if_none_match.replace("{etag}", etag).replace("{bare}", etag.strip('"')).encode()
    assert get(app, "/book", "id=42", [(b"if-none-match", value)]) is full


def test_etag_of_another_book_does_not_match(app: Bookstore) -> None:
    other = etag_of(app, "/book", "id=43")
    assert get(app, "/book", "id=42", [(b"if-none-match", other)]).status == 200


def test_any_of_several_if_none_match_fields_can_match(app: Bookstore) -> None:
    etag = etag_of(app, "/book", "id=9")
    fields = [(b"if-none-match", b'"nope"'), (b"x", b"y"), (b"if-none-match", etag)]
    assert get(app, "/book", "id=9", fields).status == 304


def test_errors_are_never_304(app: Bookstore) -> None:
    star = [(b"if-none-match", b"*")]
    assert get(app, "/book", "id=99999", star).status == 404
    assert get(app, "/book", "id=x", star).status == 400
    assert get(app, "/nowhere", "", star).status == 404
    assert get(app, "/", "", star, method="POST").status == 405


# --- robustness -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=40), path=st.sampled_from(["/book", "/", "/x"]))
def test_any_query_gets_a_prebuilt_answer(app: Bookstore, query: str, path: str) -> None:
    response = get(app, path, query)
    assert response.status in (200, 400, 404)
    if response.status == 200 and path == "/book":
        assert json.loads(response.body) in BOOKS.values()


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=60))
def test_any_if_none_match_value_is_handled(app: Bookstore, value: bytes) -> None:
    response = get(app, "/book", "id=1", [(b"if-none-match", value)])
    assert response.status in (200, 304)


@settings(max_examples=200, deadline=None)
@given(book_id=st.sampled_from(sorted(BOOKS)), extra=st.sampled_from(["", "&a=b", "&id=0"]))
def test_any_book_is_found_by_its_id(app: Bookstore, book_id: str, extra: str) -> None:
    assert get(app, "/book", f"id={book_id}{extra}").body == json.dumps(BOOKS[book_id]).encode()


# --- reloading --------------------------------------------------------------------------


def test_reload_after_replace_all_waits_for_the_next_check(store: CatalogStore) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    old_body = get(app, "/book", "id=1").body
    with open_catalog(store.path.parent) as writer:
        writer.replace_all(SMALL)
    clock.now += 0.5
    assert get(app, "/book", "id=1").body == old_body
    clock.now += 0.5
    assert get(app, "/book", "id=1").body == json.dumps(SMALL["1"]).encode()
    assert get(app, "/").body == b'["1", "4"]'
    assert get(app, "/book", "id=2").status == 404
    assert app.book_count == 2
    assert app.version == store.version()


def test_reload_through_the_same_connection(store: CatalogStore) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    store.replace_all(SMALL)
    clock.now += 1
    assert get(app, "/").body == b'["1", "4"]'


def test_new_catalogue_means_new_etags(store: CatalogStore) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    old_etag = etag_of(app, "/book", "id=1")
    store.replace_all(SMALL)
    clock.now += 1
    conditional = get(app, "/book", "id=1", [(b"if-none-match", old_etag)])
    assert conditional.status == 200
    assert conditional.body == json.dumps(SMALL["1"]).encode()


def test_unchanged_catalogue_keeps_its_tables(store: CatalogStore) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    before = get(app, "/book", "id=1")
    clock.now += 5
    assert get(app, "/book", "id=1") is before
    assert app.reload() is False


def test_reload_now(store: CatalogStore) -> None:
    app = Bookstore(store, clock=FakeClock())
    store.replace_all(SMALL)
    assert app.reload() is True
    assert get(app, "/").body == b'["1", "4"]'


class CountingStore(CatalogStore):
    """The real store, counting how often the handler asks for the version."""

    version_calls = 0

    def version(self) -> str:
        self.version_calls += 1
        return super().version()


def test_the_database_is_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    open_catalog(tmp_path).close()
    store = CountingStore(tmp_path / CATALOG_FILENAME)
    clock = FakeClock()
    app = Bookstore(store, clock=clock, check_interval=1.0)
    for step in range(100):
        clock.now += 0.05  # 100 requests over 5 seconds
        get(app, "/book", f"id={step + 1}")
    assert 4 <= store.version_calls <= 5
    store.close()


def test_a_broken_catalogue_keeps_the_last_good_one(
    store: CatalogStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    good = get(app, "/book", "id=1")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a database" * 100)
    os.replace(garbage, store.path)
    clock.now += 1
    with caplog.at_level(logging.WARNING, logger="h2books.app"):
        assert get(app, "/book", "id=1") is good
    assert "catalogue check failed" in caplog.text


def test_create_app_generates_the_catalogue(tmp_path: Path) -> None:
    app = create_app(tmp_path / "data")
    try:
        assert (tmp_path / "data" / CATALOG_FILENAME).is_file()
        assert get(app, "/book", "id=1").body == json.dumps(BOOKS["1"]).encode()
        assert app.book_count == 3000
    finally:
        app.close()


def test_index_hints_push_every_book_it_lists(app: Bookstore) -> None:
    index = get(app, "/")
    assert index.hints is not None and not index.hints.early
    ids = json.loads(index.body)
    assert index.hints.push == tuple(f"/book?id={i}".encode() for i in ids)
    first = index.hints.push[0].decode()
    path, _, query = first.partition("?")
    assert get(app, path, query).body == get(app, "/book", f"id={ids[0]}").body


def test_index_of_the_first_n_books_lists_and_pushes_only_those(app: Bookstore) -> None:
    first = get(app, "/", "books=3")
    assert first.status == 200
    assert first.body == json.dumps(list(BOOKS)[:3]).encode()
    assert first.hints is not None
    assert first.hints.push == tuple(f"/book?id={i}".encode() for i in list(BOOKS)[:3])
    assert get(app, "/", "books=3") is first  # built once


@pytest.mark.parametrize("query", ["books=99999999", "books=x", "books=-1", "books=٣", "a=1"])
def test_index_query_beyond_or_beside_n_is_the_whole_index(app: Bookstore, query: str) -> None:
    assert get(app, "/", query).body == json.dumps(list(BOOKS)).encode()


def test_index_sizes_kept_are_bounded(app: Bookstore) -> None:
    bodies = {get(app, "/", f"books={n}").body for n in range(1, 60)}
    assert len(bodies) == min(59, len(BOOKS))  # every size is right, kept or not
    assert len(app._tables._first) <= 32 + 1


def test_any_index_size_is_a_prefix_and_keeps_nothing_beyond_the_bound(app: Bookstore) -> None:
    ids = list(BOOKS)
    for n in range(len(ids) + 1):
        index = get(app, "/", f"books={n}")
        assert json.loads(index.body) == ids[:n]
        assert index.hints is not None and len(index.hints.push) == n
    # A peer choosing ever new sizes gets them built, never remembered: no validators,
    # no entry per size in the 304 table.
    kept = len(app._tables.revalidation)
    for n in range(len(ids) + 1):
        get(app, "/", f"books={n}")
    assert len(app._tables.revalidation) == kept
