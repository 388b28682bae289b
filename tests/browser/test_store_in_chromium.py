"""The storefront in headless Chromium over HTTP/2, trusting our CA only through `cert --trust`."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from h2books.app.generator import generate_books
from tests.browser.conftest import ARTIFACTS, BrowserFactory, run_h2books
from tests.conftest import ServerProcess

BOOKS = generate_books()
SEARCH = "nebula"
# A book the listing shows, every field checked against the catalogue.
MATCHING = [book_id for book_id, book in BOOKS.items() if SEARCH in book["title"].lower()]


def open_store(context: Any, server: ServerProcess, errors: list[str], query: str = "") -> Any:
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    response = page.goto(f"{server.url}/store{query}")
    assert response is not None and response.status == 200
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    return page


def shown_books(page: Any) -> int:
    return int(page.locator("#books > li:not([hidden])").count())


def _wait_until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Wait until `expression` is true in the page. Checked from here with `evaluate`:
    `wait_for_function` polls inside the page with a compiled string, which the store's
    Content-Security-Policy (script-src 'self', no eval) refuses whenever the first check
    is false (a race: it failed once in CI)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {expression}")
        page.wait_for_timeout(20)


def test_store_loads_over_h2_with_every_book(
    launch_browser: BrowserFactory, store_server: ServerProcess, trusting_home: Path
) -> None:
    errors: list[str] = []
    page = open_store(launch_browser(trusting_home), store_server, errors)

    protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert protocol == "h2"
    assert page.text_content("#protocol") == "served over h2"
    # Every subresource came over the same HTTP/2 connection as the page.
    resources = page.evaluate(
        "performance.getEntriesByType('resource').map(e => [e.name, e.nextHopProtocol])"
    )
    paths = {name.split(str(store_server.port), 1)[1] for name, _ in resources}
    assert {"/books.json"} <= paths
    assert any(p.startswith("/static/store.") and p.endswith(".js") for p in paths)
    assert {hop for _, hop in resources} == {"h2"}

    assert page.locator("#books > li").count() == 3000
    assert shown_books(page) == 3000
    assert page.text_content("#result-count") == "All 3,000 books"
    assert page.text_content("#stock-count") == "3,000"
    first = page.locator("#books > li").first
    assert BOOKS["1"]["title"] in first.inner_text()
    assert BOOKS["1"]["author"] in first.inner_text()
    assert BOOKS["1"]["score"] in first.inner_text()

    _wait_until(page, "document.getElementById('request-stats').dataset.requests >= 4")
    stats = page.text_content("#request-stats") or ""
    assert re.fullmatch(r"\d+ requests, all over h2 · done in [0-9,.]+ ms", stats), stats

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "storefront.png"))
    assert errors == []


def test_search_narrows_the_list(
    launch_browser: BrowserFactory, store_server: ServerProcess, trusting_home: Path
) -> None:
    errors: list[str] = []
    page = open_store(launch_browser(trusting_home), store_server, errors)
    search = page.get_by_label("Search by title or author")

    search.fill(SEARCH)
    assert shown_books(page) == len(MATCHING)
    assert 0 < len(MATCHING) < 3000
    expected = f"{len(MATCHING)} of 3,000 books match “{SEARCH}”"
    assert page.text_content("#result-count") == expected
    titles = page.locator("#books > li:not([hidden]) .book-title").all_text_contents()
    assert titles == [BOOKS[book_id]["title"] for book_id in MATCHING]

    # Every word must match, in title or author, whatever the case and accents.
    author = BOOKS[MATCHING[0]]["author"]
    search.fill(f"{SEARCH.upper()} {author.split()[-1]}")
    assert 1 <= shown_books(page) < len(MATCHING)

    search.fill("zzzz-no-such-book")
    assert shown_books(page) == 0
    assert page.locator("#no-results").is_visible()

    search.fill("")
    assert shown_books(page) == 3000
    assert not page.locator("#no-results").is_visible()
    assert errors == []


def test_detail_view_fetches_the_book_on_demand(
    launch_browser: BrowserFactory, store_server: ServerProcess, trusting_home: Path
) -> None:
    errors: list[str] = []
    page = open_store(launch_browser(trusting_home), store_server, errors)
    book_id = MATCHING[0]
    book = BOOKS[book_id]
    page.get_by_label("Search by title or author").fill(SEARCH)

    # Keyboard only: focus the first card and press Enter.
    link = page.locator("#books > li:not([hidden]) a").first
    link.focus()
    with page.expect_response(lambda r: r.url.endswith(f"/book?id={book_id}")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    assert json.loads(answer.value.body()) == book

    dialog = page.locator("#detail")
    page.wait_for_selector(f"#detail[data-loaded='{book_id}']")
    assert dialog.is_visible()
    assert page.text_content("#detail-title") == book["title"]
    assert page.text_content("#detail-author") == f"by {book['author']}"
    assert page.text_content("#detail-score") == book["score"]
    assert page.text_content("#detail-votes") == book.get("vote_count", "\N{EN DASH}")
    assert page.get_attribute("#detail-json", "href") == f"/book?id={book_id}"
    fetched = page.text_content("#detail-fetch") or ""
    assert fetched.startswith(f"GET /book?id={book_id} → 200 in ") and fetched.endswith(" over h2")
    assert page.evaluate("location.hash") == f"#book-{book_id}"

    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    # The hash is cleared by the page's own handler: wait for it rather than race it.
    _wait_until(page, "location.hash === ''", timeout=5.0)
    # Focus goes back to the card that opened the view.
    assert page.evaluate("document.activeElement.getAttribute('href')") == f"#book-{book_id}"

    # A deep link opens the same view; its JSON link leads to the raw resource.
    page.goto(f"{store_server.url}/store#book-{book_id}")
    page.wait_for_selector(f"#detail[data-loaded='{book_id}']")
    assert errors == []
    page.click("#detail-json")
    assert json.loads(page.inner_text("body")) == book


def test_fetching_each_listed_book_multiplexes_on_one_connection(
    launch_browser: BrowserFactory, store_server: ServerProcess, trusting_home: Path
) -> None:
    errors: list[str] = []
    page = open_store(launch_browser(trusting_home), store_server, errors)
    page.get_by_label("Search by title or author").fill(SEARCH)
    button = page.locator("#multiplex")
    assert button.inner_text() == f"Fetch these {len(MATCHING)} books, one request each"

    button.click()
    page.wait_for_selector("#multiplex-status[data-fetched]", timeout=60_000)
    assert page.get_attribute("#multiplex-status", "data-fetched") == str(len(MATCHING))
    status = page.text_content("#multiplex-status") or ""
    assert status.startswith(f"Fetched {len(MATCHING)} books, one request each, in ")
    assert status.endswith(" ms over h2.")

    books = page.evaluate(
        """performance.getEntriesByType('resource')
            .filter(e => new URL(e.name).pathname === '/book')
            .map(e => [new URL(e.name).search, e.nextHopProtocol, e.connectEnd > e.connectStart])"""
    )
    assert sorted(search for search, _, _ in books) == sorted(f"?id={i}" for i in MATCHING)
    # All of them over h2, none of them on a new connection.
    assert {(hop, connected) for _, hop, connected in books} == {("h2", False)}
    _wait_until(
        page, f"document.getElementById('request-stats').dataset.requests >= {len(MATCHING) + 4}"
    )
    assert ", all over h2 · done in " in (page.text_content("#request-stats") or "")
    assert errors == []


def test_phone_sized_screen_has_no_sideways_scrolling(
    launch_browser: BrowserFactory, store_server: ServerProcess, trusting_home: Path
) -> None:
    errors: list[str] = []
    page = open_store(launch_browser(trusting_home), store_server, errors)
    page.set_viewport_size({"width": 375, "height": 740})
    page.click(".request-log summary")  # the widest part, opened
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    columns = page.evaluate(
        "getComputedStyle(document.getElementById('books')).gridTemplateColumns"
    )
    assert len(columns.split()) == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "storefront-phone.png"))
    assert errors == []


# --- without trust ----------------------------------------------------------------------


def assert_refused(context: Any, server: ServerProcess) -> None:
    """The navigation fails with the certificate error, and no request reaches the app."""
    from playwright.sync_api import Error

    marker = uuid.uuid4().hex
    page = context.new_page()
    with pytest.raises(Error, match="net::ERR_CERT_AUTHORITY_INVALID"):
        page.goto(f"{server.url}/store?probe={marker}")
    assert not any(marker in line for line in server.stdout_lines)


def test_untrusted_ca_is_refused(
    launch_browser: BrowserFactory, store_server: ServerProcess, tmp_path: Path
) -> None:
    empty_home = tmp_path / "home-untrusting"
    empty_home.mkdir()
    assert_refused(launch_browser(empty_home), store_server)


def test_untrust_takes_the_trust_back(
    launch_browser: BrowserFactory, store_server: ServerProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data_dir = str(store_server.data_dir)
    run_h2books("cert", "--trust", "--data-dir", data_dir, home=home)
    errors: list[str] = []
    marker = uuid.uuid4().hex
    open_store(launch_browser(home), store_server, errors, f"?visit={marker}")
    # The access log does show a request that got through (so its silence below counts).
    assert any(f"GET /store?visit={marker} HTTP/2.0" in line for line in store_server.stdout_lines)

    done = run_h2books("cert", "--untrust", "--data-dir", data_dir, home=home)
    assert "untrusted: h2books local CA" in done.stdout
    # NSS is read when the browser starts: a new one sees the change.
    assert_refused(launch_browser(home), store_server)
    assert errors == []
