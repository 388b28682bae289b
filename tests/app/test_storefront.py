"""The storefront routes: /store, its fingerprinted assets, /books.json, and their caching."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from hashlib import blake2b
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.app.bookstore import Bookstore
from h2books.app.generator import generate_books
from h2books.app.store import CatalogStore, open_catalog
from h2books.app.storefront import (
    ASSETS,
    IMMUTABLE,
    STORE_PATH,
    StorefrontError,
    fingerprinted_name,
    listing_json,
    load_storefront,
    read_storefront,
)
from h2books.http import Request, Response

BOOKS = generate_books()
STATIC_DIR = Path(str(resources.files("h2books.app") / "static"))
HTML_TYPE = b"text/html; charset=utf-8"
JSON_TYPE = b"application/json; charset=utf-8"
ASSET_URL = re.compile(rb'(?:src|href)="(/static/[^"]+)"')


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bookstore]:
    with open_catalog(tmp_path_factory.mktemp("catalog")) as store:
        yield Bookstore(store)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    with open_catalog(tmp_path / "data") as opened:
        yield opened


def get(
    app: Bookstore,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
    query: str = "",
) -> Response:
    return app(Request(method, path, query, headers or [(b"user-agent", b"test")]))


def header(response: Response, name: bytes) -> bytes | None:
    values = [value for field, value in response.headers if field == name]
    assert len(values) <= 1
    return values[0] if values else None


def asset_urls(app: Bookstore) -> list[str]:
    return [url.decode() for url in ASSET_URL.findall(get(app, STORE_PATH).body)]


# --- the page -----------------------------------------------------------------------


def test_store_is_the_page_revalidated_on_every_visit(app: Bookstore) -> None:
    response = get(app, STORE_PATH)
    assert response.status == 200
    assert response.body.startswith(b"<!doctype html>")
    assert header(response, b"content-type") == HTML_TYPE
    assert header(response, b"cache-control") == b"no-cache"
    etag = header(response, b"etag")
    assert etag is not None and re.fullmatch(rb'"[0-9a-f]{16}"', etag)
    assert header(response, b"x-content-type-options") == b"nosniff"


def test_store_forbids_everything_from_elsewhere(app: Bookstore) -> None:
    policy = header(get(app, STORE_PATH), b"content-security-policy")
    assert policy is not None
    directives = dict(part.strip().split(b" ", 1) for part in policy.split(b";"))
    assert directives[b"default-src"] == b"'none'"
    for directive in (b"script-src", b"style-src", b"img-src", b"connect-src"):
        assert directives[directive] == b"'self'"


def test_page_references_only_fingerprinted_assets(app: Bookstore) -> None:
    urls = asset_urls(app)
    assert {url.split("/")[-1].split(".")[0] for url in urls} == {"store", "icon"}
    for url in urls:
        name = url.removeprefix("/static/")
        stem, digest, suffix = name.split(".")
        body = (STATIC_DIR / f"{stem}.{suffix}").read_bytes()
        assert digest == blake2b(body, digest_size=8).hexdigest()[:8], url
    # Every asset the package ships is used by the page.
    assert {url.rsplit(".", 2)[0] + "." + url.rsplit(".", 1)[1] for url in urls} == {
        f"/static/{name}" for name in ASSETS
    }


def test_page_loads_nothing_from_other_origins() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    css = (STATIC_DIR / "store.css").read_text()
    assert "url(" not in css and "@import" not in css
    script = (STATIC_DIR / "store.js").read_text()
    assert "http://" not in script and "https://" not in script
    assert not re.search(r'style="', html)  # the CSP has no 'unsafe-inline' for styles


def test_page_is_labelled_for_assistive_technology() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert re.search(r'<label for="search"[^>]*>Search by title or author</label>', html)
    assert 'id="result-count" class="result-count" role="status"' in html
    assert html.count('aria-live="polite"') >= 2
    assert '<dialog id="detail" class="detail" aria-labelledby="detail-title">' in html


def test_assets_are_immutable_with_their_media_types(app: Bookstore) -> None:
    types = {
        "css": b"text/css; charset=utf-8",
        "js": b"text/javascript; charset=utf-8",
        "svg": b"image/svg+xml",
    }
    for url in asset_urls(app):
        response = get(app, url)
        assert response.status == 200, url
        assert header(response, b"cache-control") == IMMUTABLE[1]
        assert header(response, b"content-type") == types[url.rsplit(".", 1)[1]]
        assert header(response, b"etag") is not None
        stem, _, suffix = url.removeprefix("/static/").split(".")
        assert response.body == (STATIC_DIR / f"{stem}.{suffix}").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/store.js",  # only the fingerprinted name is served
        "/static/store.00000000.js",
        "/static/index.html",
        "/static/",
        "/store/",
        "/store.html",
        "/static/../store",
    ],
)
def test_other_static_paths_are_404(app: Bookstore, path: str) -> None:
    assert get(app, path).status == 404


def test_if_none_match_gets_a_304_that_keeps_the_caching_rules(app: Bookstore) -> None:
    for path in [STORE_PATH, *asset_urls(app)]:
        full = get(app, path)
        etag = header(full, b"etag")
        assert etag is not None
        not_modified = get(app, path, [(b"if-none-match", b'W/"x", ' + etag)])
        assert not_modified.status == 304, path
        assert not_modified.body == b""
        assert header(not_modified, b"etag") == etag
        assert header(not_modified, b"cache-control") == header(full, b"cache-control")
        assert get(app, path, [(b"if-none-match", b'"other"')]) is full


def test_head_gets_the_get_response(app: Bookstore) -> None:
    for path in [STORE_PATH, "/books.json", *asset_urls(app)]:
        assert get(app, path, method="HEAD") is get(app, path)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_on_storefront_paths_are_405(app: Bookstore, method: str) -> None:
    for path in [STORE_PATH, "/books.json", *asset_urls(app)]:
        response = get(app, path, method=method)
        assert response.status == 405, path
        assert header(response, b"allow") == b"GET, HEAD"
    assert get(app, "/static/store.js", method=method).status == 404


# --- the listing --------------------------------------------------------------------


def test_books_json_lists_every_book_in_catalogue_order(app: Bookstore) -> None:
    response = get(app, "/books.json")
    assert response.status == 200
    assert header(response, b"content-type") == JSON_TYPE
    assert header(response, b"cache-control") == b"public, max-age=60"
    listing = json.loads(response.body)
    assert len(listing) == 3000
    assert [entry["id"] for entry in listing] == list(BOOKS)
    for entry in listing:
        book = BOOKS[entry["id"]]
        assert entry == {
            "id": entry["id"],
            "title": book["title"],
            "author": book["author"],
            "score": book["score"],
        }


def test_books_json_is_compact_ascii(app: Bookstore) -> None:
    body = get(app, "/books.json").body
    assert body.isascii()
    assert b'": "' not in body and b'", "' not in body  # no separator whitespace
    assert body.startswith(b'[{"id":"1","title":')
    # The listing is what keeps the page at one request: it must stay well under 3000
    # separate books' worth of bytes.
    assert len(body) < sum(len(json.dumps(book)) for book in BOOKS.values())


def test_books_json_follows_a_catalogue_change(store: CatalogStore) -> None:
    clock = FakeClock()
    app = Bookstore(store, clock=clock)
    page_before = get(app, STORE_PATH)
    store.replace_all({"7": {"title": "Ünïcode", "author": "A", "url": "u", "score": "1"}})
    clock.now += 5
    listing = json.loads(get(app, "/books.json").body)
    assert listing == [{"id": "7", "title": "Ünïcode", "author": "A", "score": "1"}]
    # The storefront is not rebuilt with the catalogue: same objects, same cached encodings.
    assert get(app, STORE_PATH) is page_before


def test_the_book_route_is_unchanged(app: Bookstore) -> None:
    response = get(app, "/book", query="id=42")
    assert response.body == json.dumps(BOOKS["42"]).encode()
    assert get(app, "/book", query="id=42") is response


def test_listing_tolerates_any_stored_json() -> None:
    stored = [
        ("1", b'{"title": "T", "author": "A", "score": "9", "extra": 1}'),
        ("2", b'{"title": 5, "author": null, "score": ["x"]}'),  # wrong types
        ("3", b"[1, 2]"),  # not an object
        ("4", b"not json"),
        ("5", b"\xff\xfe"),  # not UTF-8
        ("6", b"[" * 100_000 + b"]" * 100_000),  # deeper than the parser's recursion
        ("7", b'{"title": "\\ud800 lone surrogate"}'),
        ("8", b"{}"),
    ]
    listing = json.loads(listing_json(stored))
    assert listing[0] == {"id": "1", "title": "T", "author": "A", "score": "9"}
    for entry in listing[1:6] + listing[7:]:
        assert entry == {"id": entry["id"], "title": "", "author": "", "score": ""}
    assert listing[6]["title"] == "\ud800 lone surrogate"
    assert [entry["id"] for entry in listing] == [book_id for book_id, _ in stored]


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[0-9]{1,20}", fullmatch=True),
            st.fixed_dictionaries({"title": st.text(), "author": st.text(), "score": st.text()}),
        ),
        max_size=20,
    )
)
def test_listing_round_trips_any_text(books: list[tuple[str, dict[str, str]]]) -> None:
    stored = [(book_id, json.dumps(book).encode()) for book_id, book in books]
    body = listing_json(stored)
    assert body.isascii()
    assert json.loads(body) == [{"id": book_id, **book} for book_id, book in books]


# --- loading the packaged files -----------------------------------------------------


def test_the_storefront_is_read_once_per_process() -> None:
    assert load_storefront() is load_storefront()


@pytest.fixture
def static_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(STATIC_DIR, tmp_path / "static"))


def test_a_changed_asset_gets_a_new_name(static_copy: Path) -> None:
    before = read_storefront(static_copy).asset_paths
    (static_copy / "store.js").write_text("// changed\n")
    after = read_storefront(static_copy)
    assert after.asset_paths["store.js"] != before["store.js"]
    assert after.asset_paths["store.css"] == before["store.css"]
    html = after.pages[STORE_PATH].body.decode()
    assert after.asset_paths["store.js"] in html and before["store.js"] not in html


def test_fingerprinted_name() -> None:
    digest = blake2b(b"x", digest_size=8).hexdigest()[:8]
    assert fingerprinted_name("store.js", b"x") == f"store.{digest}.js"
    assert fingerprinted_name("LICENSE", b"x") == f"LICENSE.{digest}"


def test_a_missing_file_is_a_clear_error(static_copy: Path) -> None:
    (static_copy / "store.css").unlink()
    with pytest.raises(StorefrontError, match=r"storefront files are missing .* reinstall"):
        read_storefront(static_copy)
    assert StorefrontError.user_facing is True


def test_a_reference_to_an_unshipped_asset_is_an_error(static_copy: Path) -> None:
    index = static_copy / "index.html"
    index.write_text(index.read_text().replace("/static/store.js", "/static/app.js"))
    with pytest.raises(StorefrontError, match=r"references /static/app\.js"):
        read_storefront(static_copy)


def test_a_page_that_is_not_utf8_is_an_error(static_copy: Path) -> None:
    (static_copy / "index.html").write_bytes(b"<!doctype html>\xff")
    with pytest.raises(StorefrontError, match="not UTF-8"):
        read_storefront(static_copy)


def test_store_hints_name_its_assets_for_early_hints_and_push(app: Bookstore) -> None:
    page = get(app, STORE_PATH)
    assert page.hints is not None
    urls = sorted(set(asset_urls(app)))
    assert sorted(page.hints.push) == [u.encode() for u in urls]
    links = [value for name, value in page.hints.early if name == b"link"]
    assert len(links) == len(urls) == 3
    for url, link in zip(page.hints.push, links, strict=True):
        assert link.startswith(b"<" + url + b">; rel=preload; as=")
    # An asset itself refers to nothing.
    assert get(app, urls[0]).hints is None
