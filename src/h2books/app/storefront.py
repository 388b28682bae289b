"""The storefront: the ``/store`` page, its static assets, and the ``/books.json`` listing.

Everything is built once, when the bookstore loads:

* each asset in ``app/static/`` (CSS, JS, SVG) is served under a fingerprinted name,
  ``/static/store.3f2a9c1d.js``, with ``immutable`` caching: a changed file gets a new
  name, so a browser never has to ask again for one it holds;
* ``index.html`` has its ``/static/<name>`` references rewritten to those names and is
  served at ``/store`` with ``no-cache`` and an ETag, so every visit revalidates (a 304
  when nothing changed) and always points at the current assets;
* `listing_json` turns the catalogue into one array of ``{id, title, author, score}``
  for the page, one request instead of one per book;
* ``/store`` carries `Hints` for its assets: a 103 Early Hints with one
  ``link: <...>; rel=preload`` per asset (HTTP/1.1 and HTTP/2), and, with
  ``h2books serve --push``, the assets pushed over HTTP/2.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from hashlib import blake2b
from importlib import resources
from importlib.resources.abc import Traversable

from h2books.http import Hints, Response

__all__ = [
    "ASSETS",
    "IMMUTABLE",
    "INDEX_FILE",
    "LISTING_FIELDS",
    "STORE_PATH",
    "Storefront",
    "StorefrontError",
    "entity_tag",
    "listing_json",
    "load_storefront",
]

STORE_PATH = "/store"
STATIC_PREFIX = "/static/"
INDEX_FILE = "index.html"
# The assets index.html may reference, with their media types. Anything else in the
# directory is not served: the package data is not a file server.
ASSETS: dict[str, bytes] = {
    "store.css": b"text/css; charset=utf-8",
    "store.js": b"text/javascript; charset=utf-8",
    "icon.svg": b"image/svg+xml",
}
# The `as` of each asset's preload link (what the page uses it for).
_PRELOAD_AS: dict[str, bytes] = {"store.css": b"style", "store.js": b"script", "icon.svg": b"image"}
LISTING_FIELDS = ("title", "author", "score")

IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")
_REVALIDATE = (b"cache-control", b"no-cache")
_HTML = (b"content-type", b"text/html; charset=utf-8")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
# The page needs nothing from anywhere else; saying so makes injected markup inert.
_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
)
_REFERRER = (b"referrer-policy", b"no-referrer")

_FINGERPRINT_LENGTH = 8
_STATIC_REFERENCE = re.compile(r"/static/([A-Za-z0-9_.-]+)")


class StorefrontError(Exception):
    """The packaged storefront files are missing or inconsistent (a broken install)."""

    user_facing = True


class Storefront:
    """The storefront's responses, keyed by path, and the validators of each."""

    __slots__ = ("asset_paths", "pages", "revalidation")

    def __init__(self, index_html: bytes, assets: dict[str, bytes]) -> None:
        self.pages: dict[str, Response] = {}
        # Same shape as the bookstore's table: 200 -> (entity-tag, its 304).
        self.revalidation: dict[Response, tuple[bytes, Response]] = {}
        # Asset file name -> the fingerprinted path it is served at.
        self.asset_paths: dict[str, str] = {}
        for name, body in assets.items():
            path = STATIC_PREFIX + fingerprinted_name(name, body)
            self.asset_paths[name] = path
            self._add(path, body, (b"content-type", ASSETS[name]), IMMUTABLE, _NOSNIFF)
        html = _link_assets(index_html.decode("utf-8"), self.asset_paths).encode("utf-8")
        self._add(STORE_PATH, html, _HTML, _REVALIDATE, _NOSNIFF, _CSP, _REFERRER)
        self.pages[STORE_PATH].hints = asset_hints(self.asset_paths)

    def _add(
        self,
        path: str,
        body: bytes,
        content_type: tuple[bytes, bytes],
        caching: tuple[bytes, bytes],
        *extra: tuple[bytes, bytes],
    ) -> None:
        etag = (b"etag", entity_tag(body))
        response = Response(200, (content_type, etag, caching, *extra), body)
        self.pages[path] = response
        # RFC 9110 15.4.5: a 304 repeats ETag and Cache-Control, and has no content.
        self.revalidation[response] = (etag[1], Response(304, (etag, caching)))


def asset_hints(asset_paths: dict[str, str]) -> Hints:
    """The page's assets as 103 Early Hints preload links, and as pushes."""
    paths = [path.encode("ascii") for path in asset_paths.values()]
    early = [
        (b"link", b"<%s>; rel=preload; as=%s" % (path.encode("ascii"), _PRELOAD_AS[name]))
        for name, path in asset_paths.items()
    ]
    return Hints(early=early, push=paths)


def entity_tag(body: bytes) -> bytes:
    """A strong entity-tag for ``body``: a quoted 64-bit BLAKE2b digest in hex."""
    return b'"%s"' % blake2b(body, digest_size=8).hexdigest().encode()


def fingerprinted_name(name: str, body: bytes) -> str:
    """``store.js`` -> ``store.<first 8 hex digits of its digest>.js``."""
    stem, dot, suffix = name.rpartition(".")
    digest = blake2b(body, digest_size=8).hexdigest()[:_FINGERPRINT_LENGTH]
    return f"{stem}.{digest}{dot}{suffix}" if dot else f"{name}.{digest}"


def _link_assets(html: str, asset_paths: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        path = asset_paths.get(match.group(1))
        if path is None:
            raise StorefrontError(f"{INDEX_FILE} references /static/{match.group(1)}, not shipped")
        return path

    return _STATIC_REFERENCE.sub(replace, html)


@functools.cache
def load_storefront() -> Storefront:
    """The packaged storefront (``h2books/app/static``), read once per process."""
    return read_storefront(resources.files("h2books.app") / "static")


def read_storefront(directory: Traversable) -> Storefront:
    """The storefront from ``directory`` (``index.html`` plus every file in `ASSETS`)."""
    try:
        index_html = (directory / INDEX_FILE).read_bytes()
        assets = {name: (directory / name).read_bytes() for name in ASSETS}
    except OSError as exc:
        raise StorefrontError(
            f"the storefront files are missing from {directory} ({exc.strerror or exc}); "
            "reinstall h2books"
        ) from exc
    try:
        return Storefront(index_html, assets)
    except UnicodeDecodeError as exc:
        raise StorefrontError(f"{INDEX_FILE} in {directory} is not UTF-8") from exc


def listing_json(books: Iterable[tuple[str, bytes]]) -> bytes:
    """The catalogue as ``[{"id", "title", "author", "score"}, ...]``, in catalogue order.

    A book's stored JSON is normally an object of strings (the importer checks), but
    the store accepts any JSON text; a field that is missing or not a string is
    listed as ``""`` rather than failing the whole listing.
    """
    listing = []
    for book_id, body in books:
        try:
            book = json.loads(body)
        except (ValueError, RecursionError):
            book = None
        entry = {"id": book_id}
        for field in LISTING_FIELDS:
            value = book.get(field) if isinstance(book, dict) else None
            entry[field] = value if isinstance(value, str) else ""
        listing.append(entry)
    # Compact separators: with 3000 books every byte per entry is 3 KB. ASCII escapes
    # keep a lone surrogate (valid in JSON text, not in UTF-8) from failing the build.
    return json.dumps(listing, separators=(",", ":")).encode("ascii")
