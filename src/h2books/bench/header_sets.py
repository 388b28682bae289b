"""Realistic header lists for measuring header compression, generated in code (no captures).

Each set is a list of connections, each connection the header lists one encoder sends in
order, since HPACK's dynamic table lives per connection:

* ``browser``: page loads by six browsers (Chrome, Edge, Chrome on Android, Firefox, Safari on
  iOS, an in-app browser), each over three origins (site, CDN, API), with client hints,
  ``accept`` per destination, referers, cookies split into crumbs (RFC 9113 §8.2.3), long
  paths with query strings, and a cookie that changes between pages as analytics cookies do;
* ``crawl``: what ``h2books crawl`` sends: the index, then ``/book?id=N`` for every book;
* ``h2load``: what h2load sends, over the bench's URI list (every book), and on one URL;
* ``responses``: the bookstore's own responses (the real app and the server's field lists,
  the date ticking), for a crawl, for h2load on one URL, and for the storefront page.

Everything comes from seeded ``random.Random`` instances: the same lists on every run.
"""

from __future__ import annotations

import random
import string
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from h2books.app import create_app
from h2books.app.generator import DEFAULT_COUNT
from h2books.app.storefront import load_storefront
from h2books.http import Request, Response
from h2books.protocol.h2.scheduler import STATUS_FIELDS
from h2books.protocol.hpack import Encoder
from h2books.server.responses import h2_fields

__all__ = [
    "HeaderSet",
    "ResponseBlockCache",
    "browser_set",
    "crawl_set",
    "encode_like_the_server",
    "h2load_set",
    "hpack_library_bytes",
    "response_set",
]

Field = tuple[bytes, bytes]
Fields = Sequence[Field]

H2LOAD_USER_AGENT = b"h2load nghttp2/1.52.0"
AUTHORITY = b"localhost:8443"


@dataclass(frozen=True)
class HeaderSet:
    """Named header lists, per connection. ``responses`` sets hold (status, fields) pairs
    whose ``fields`` objects repeat as the server's do, so its block cache applies."""

    name: str
    description: str
    connections: list[list[Fields]]
    responses: list[list[tuple[int, Fields]]] | None = None

    @property
    def header_lists(self) -> int:
        if self.responses is not None:
            return sum(len(connection) for connection in self.responses)
        return sum(len(connection) for connection in self.connections)


def hpack_library_bytes(header_set: HeaderSet) -> int:
    """Octets the `hpack` library's encoder (a test oracle, installed with the dev extra)
    makes of the set, one encoder per connection, given the never-index flags `h2` gives
    it: credentials, and cookie crumbs under 20 octets."""
    import hpack

    total = 0
    for connection in header_set.connections:
        encoder = hpack.Encoder()
        for fields in connection:
            flagged = [
                hpack.NeverIndexedHeaderTuple(name, value)
                if name in (b"authorization", b"proxy-authorization")
                or (name == b"cookie" and len(value) < 20)
                else hpack.HeaderTuple(name, value)
                for name, value in fields
            ]
            total += len(encoder.encode(flagged))
    return total


# -- browsers --------------------------------------------------------------------------------

_CHROME_HINTS = b'"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
_EDGE_HINTS = b'"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
# (user agent, client hints or None, platform hint, mobile hint)
_BROWSERS: list[tuple[bytes, bytes | None, bytes, bytes]] = [
    (
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/131.0.0.0 Safari/537.36",
        _CHROME_HINTS,
        b'"Windows"',
        b"?0",
    ),
    (
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        _EDGE_HINTS,
        b'"Windows"',
        b"?0",
    ),
    (
        b"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/131.0.0.0 Mobile Safari/537.36",
        _CHROME_HINTS,
        b'"Android"',
        b"?1",
    ),
    (b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", None, b"", b""),
    (
        b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 "
        b"(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        None,
        b"",
        b"",
    ),
    (
        b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        b"(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/475.0.0.44.109;FBBV/640131466;"
        b"FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;"
        b"FBOP/80]",
        None,
        b"",
        b"",
    ),
]

_ACCEPT = {
    "document": b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "style": b"text/css,*/*;q=0.1",
    "script": b"*/*",
    "image": b"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "font": b"*/*",
    "empty": b"application/json, text/plain, */*",
}
_PRIORITY = {
    "document": b"u=0, i",
    "style": b"u=0",
    "script": b"u=1",
    "image": b"u=5, i",
    "font": b"u=0",
    "empty": b"u=1, i",
}
_SECTIONS = ["science-fiction", "space-opera", "cyberpunk", "hard-sf", "first-contact", "dystopia"]


def _token(
    rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits
) -> bytes:
    return "".join(rng.choice(alphabet) for _ in range(length)).encode("ascii")


def _digits(rng: random.Random, length: int) -> bytes:
    return _token(rng, length, string.digits)


def _cookie_crumbs(rng: random.Random) -> list[bytes]:
    """One visitor's cookies for the site: analytics, a session, consent, preferences."""
    crumbs = [
        b"_ga=GA1.1." + _digits(rng, 10) + b"." + _digits(rng, 10),
        b"_fbp=fb.1." + _digits(rng, 13) + b"." + _digits(rng, 10),
        b"sessionid=" + _token(rng, 40),
        b"csrftoken=" + _token(rng, 64),
        b"lang=en-US",
        b"cart=%d" % rng.randrange(10),
        b"OptanonConsent=isGpcEnabled=0&datestamp=Thu+Dec+03+2026+10%3A12%3A"
        + _digits(rng, 2)
        + b"+GMT%2B0100&version=202409.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId="
        + _token(rng, 36, string.hexdigits.lower())
        + b"&interactionCount=1&isAnonUser=1&landingPath=NotLandingPage"
        b"&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A0",
        b"auth_token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        + _token(rng, 120, string.ascii_letters + string.digits + "-_")
        + b"."
        + _token(rng, 43, string.ascii_letters + string.digits + "-_"),
    ]
    if rng.random() < 0.5:
        crumbs.append(b"theme=dark")
    return crumbs


def _browser_visit(rng: random.Random, browser: int) -> list[list[Fields]]:
    """Three pages on a shop, as one browser loads them: one connection per origin."""
    user_agent, hints, platform, mobile = _BROWSERS[browser]
    site, cdn, api = b"www.shop.example", b"cdn.shop.example", b"api.shop.example"
    crumbs = _cookie_crumbs(rng)
    connections: dict[bytes, list[Fields]] = {site: [], cdn: [], api: []}
    assets = [b"/static/css/main.%s.css" % _token(rng, 8, "0123456789abcdef")] + [
        b"/static/js/%s.%s.js" % (name, _token(rng, 8, "0123456789abcdef"))
        for name in (b"runtime", b"vendors", b"main")
    ]
    page = b"https://www.shop.example/"
    for page_number in range(3):
        section = rng.choice(_SECTIONS).encode()
        path = (
            b"/c/%s?sort=rating&page=%d&utm_source=newsletter&utm_medium=email"
            b"&utm_campaign=winter-sale-2026" % (section, page_number + 1)
        )
        # The analytics cookie carries the time of the last page view.
        crumbs[0:1] = [b"_ga_7QK3XB2N1D=GS1.1." + _digits(rng, 10) + b".3.1." + _digits(rng, 10)]

        def request(
            origin: bytes, target: bytes, destination: str, cookies: bool, referer: bytes | None
        ) -> Fields:
            fields: list[Field] = [
                (b":method", b"GET"),
                (b":authority", origin),
                (b":scheme", b"https"),
                (b":path", target),
            ]
            if hints is not None:
                fields += [
                    (b"sec-ch-ua", hints),
                    (b"sec-ch-ua-mobile", mobile),
                    (b"sec-ch-ua-platform", platform),
                ]
            if destination == "document":
                fields.append((b"upgrade-insecure-requests", b"1"))
            fields += [
                (b"user-agent", user_agent),
                (b"accept", _ACCEPT[destination]),
                (b"sec-fetch-site", b"same-origin" if origin == site else b"same-site"),
                (b"sec-fetch-mode", b"navigate" if destination == "document" else b"cors"),
                (b"sec-fetch-dest", destination.encode()),
            ]
            if referer is not None:
                fields.append((b"referer", referer))
            fields += [
                (b"accept-encoding", b"gzip, deflate, br, zstd"),
                (b"accept-language", b"en-US,en;q=0.9,fr;q=0.8"),
            ]
            if cookies:
                fields += [(b"cookie", crumb) for crumb in crumbs]
            fields.append((b"priority", _PRIORITY[destination]))
            return fields

        connections[site].append(
            request(site, path, "document", True, page if page_number else None)
        )
        page = b"https://www.shop.example" + path
        for asset in assets:
            kind = "style" if asset.endswith(b".css") else "script"
            connections[cdn].append(request(cdn, asset, kind, False, page))
        for _ in range(rng.randrange(12, 24)):
            product = rng.randrange(10_000, 99_999)
            image = b"/img/products/%d/%s-cover-%dx%d.webp?auto=format&fit=crop&w=640&q=75&s=%s" % (
                product,
                section,
                640,
                960,
                _token(rng, 32, "0123456789abcdef"),
            )
            connections[cdn].append(request(cdn, image, "image", False, page))
        for call in (b"recommendations", b"cart", b"prices"):
            target = b"/api/v2/%s?section=%s&limit=24&session=%s" % (
                call,
                section,
                _token(rng, 16),
            )
            connections[api].append(request(api, target, "empty", True, page))
    return list(connections.values())


def browser_set(seed: int = 11) -> HeaderSet:
    rng = random.Random(seed)
    connections = [
        connection
        for browser in range(len(_BROWSERS))
        for connection in _browser_visit(rng, browser)
    ]
    return HeaderSet(
        "browser",
        "6 browsers x 3 pages over 3 origins: crumbled cookies, long paths, client hints",
        connections,
    )


# -- our clients and h2load ------------------------------------------------------------------

_BOOK_IDS = [str(number) for number in range(1, DEFAULT_COUNT + 1)]


def crawl_set() -> HeaderSet:
    """What `h2books crawl` sends (client/connection_h2.py): the index, then every book."""
    targets = [b"/"] + [b"/book?id=" + book_id.encode() for book_id in _BOOK_IDS]
    lists: list[Fields] = [
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", AUTHORITY), (b":path", t)]
        for t in targets
    ]
    return HeaderSet("crawl", f"h2books crawl: the index, then {len(_BOOK_IDS)} books", [lists])


def _h2load_request(target: bytes) -> Fields:
    return [
        (b":method", b"GET"),
        (b":path", target),
        (b":scheme", b"https"),
        (b":authority", AUTHORITY),
        (b"accept-encoding", b"gzip, deflate"),
        (b"user-agent", H2LOAD_USER_AGENT),
    ]


def h2load_set() -> HeaderSet:
    """h2load over the bench's URI list (every book), and 1,000 requests for one URL."""
    every_book = [_h2load_request(b"/book?id=" + book_id.encode()) for book_id in _BOOK_IDS]
    one_url = [_h2load_request(b"/book?id=1")] * 1000
    return HeaderSet(
        "h2load",
        f"h2load: the URI list ({len(every_book)} books), then one URL x 1000",
        [every_book, one_url],
    )


# -- our responses ---------------------------------------------------------------------------


def _dates(responses_per_second: int) -> Callable[[int], bytes]:
    """The Date the server would send for the n-th response, at a steady rate."""
    start = 1_796_292_000  # Thu, 03 Dec 2026 10:00:00 GMT
    cache: dict[int, bytes] = {}

    def date(number: int) -> bytes:
        second = number // responses_per_second
        if second not in cache:
            cache[second] = formatdate(start + second, usegmt=True).encode()
        return cache[second]

    return date


def _serve(
    app: Callable[[Request], Response], targets: Iterator[bytes], rate: int
) -> list[tuple[int, Fields]]:
    date = _dates(rate)
    served: list[tuple[int, Fields]] = []
    for number, target in enumerate(targets):
        path, _, query = target.decode().partition("?")
        response = app(Request("GET", path, query, []))
        served.append((response.status, h2_fields(response, b"h2books", date(number))))
    return served


def response_set(data_dir: Path | None = None) -> HeaderSet:
    """The bookstore's responses: a crawl (2,000 a second), one URL for h2load (20,000 a
    second) and the storefront page with its assets (a page load, then a reload)."""
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(data_dir or Path(scratch))
        crawl = [b"/"] + [b"/book?id=" + book_id.encode() for book_id in _BOOK_IDS]
        store = [b"/store"] + [
            path.encode() for path in load_storefront().pages if path.startswith("/static/")
        ]
        connections = [
            _serve(app, iter(crawl), 2000),
            _serve(app, iter([b"/book?id=1"] * 5000), 20_000),
            _serve(app, iter(store * 2), 10),
        ]
    return HeaderSet(
        "responses",
        "bookstore responses: a crawl, h2load on one URL, the storefront page",
        [[[STATUS_FIELDS[status], *fields] for status, fields in c] for c in connections],
        connections,
    )


class ResponseBlockCache:
    """The `hpack_block` slot the server keeps on each Response (scheduler.BlockCache)."""

    __slots__ = ("hpack_block",)

    def __init__(self) -> None:
        self.hpack_block: tuple[int, int, Fields, bytes] | None = None


def encode_like_the_server(
    encoder: Encoder, responses: list[tuple[int, Fields]]
) -> tuple[list[bytes], int]:
    """The blocks `OutboundScheduler.send_response` sends for these responses, with its
    block cache (same rule: a block that inserted nothing is sent again while the table
    state holds); returns (all blocks, cache hits)."""
    caches: dict[int, ResponseBlockCache] = {}
    blocks: list[bytes] = []
    hits = 0
    for status, fields in responses:
        cache = caches.setdefault(id(fields), ResponseBlockCache())
        state = encoder.table_state()
        cached = cache.hpack_block
        if cached is not None and cached[2] is fields and cached[0] == state >= 0:
            blocks.append(cached[3])
            hits += 1
            continue
        block = encoder.encode([STATUS_FIELDS[status], *fields])
        if state >= 0 and encoder.table_state() == state:
            cache.hpack_block = (state, status, fields, block)
        blocks.append(block)
    return blocks, hits
