from __future__ import annotations

import hashlib
import json
import re
import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.app.generator import DEFAULT_COUNT, URL_PREFIX, generate_books

RANKED_KEYS = ["vote_count", "score", "title", "url", "author"]
UNRANKED_KEYS = ["author", "url", "title", "score"]
SCORE_FORMAT = re.compile(r"[1-9][0-9]{0,2}(,[0-9]{3})*")
URL_FORMAT = re.compile(re.escape(URL_PREFIX) + r"[1-9][0-9]*\.[0-9A-Za-z]+(_[0-9A-Za-z]+)*")
SERIES_SUFFIX = re.compile(r" \([^()]+, #[0-9]+(\.5)?\)$")

# The default catalogue is served byte for byte (and its ETags derive from it): a
# change to the generator must be deliberate, and then this digest is updated.
DEFAULT_CATALOGUE_SHA256 = "8663de17e69e26be0e3183a277001dae5e3904db7ecf6e6eb3f8976fd34283c1"


def sizes(books: dict[str, dict[str, Any]]) -> list[int]:
    return [len(json.dumps(book)) for book in books.values()]


@pytest.fixture(scope="module")
def books() -> dict[str, dict[str, str]]:
    return generate_books()


def test_same_seed_same_catalogue_byte_for_byte(books: dict[str, dict[str, str]]) -> None:
    assert json.dumps(generate_books()) == json.dumps(books)


def test_default_catalogue_is_pinned(books: dict[str, dict[str, str]]) -> None:
    digest = hashlib.sha256(json.dumps(books).encode()).hexdigest()
    assert digest == DEFAULT_CATALOGUE_SHA256


def test_other_seed_other_catalogue(books: dict[str, dict[str, str]]) -> None:
    assert generate_books(seed=7) != books


def test_ids_are_one_to_count_in_order(books: dict[str, dict[str, str]]) -> None:
    assert list(books) == [str(n) for n in range(1, DEFAULT_COUNT + 1)]


def test_key_orders_are_the_posts_and_unvoted_books_are_the_tail(
    books: dict[str, dict[str, str]],
) -> None:
    orders = [list(book) for book in books.values()]
    assert {tuple(order) for order in orders} == {tuple(RANKED_KEYS), tuple(UNRANKED_KEYS)}
    first_unvoted = orders.index(UNRANKED_KEYS)
    assert all(order == UNRANKED_KEYS for order in orders[first_unvoted:])
    unvoted_share = (len(orders) - first_unvoted) / len(orders)
    assert 0.25 <= unvoted_share <= 0.31  # the post: 829 of 3000


def test_field_formats(books: dict[str, dict[str, str]]) -> None:
    for book in books.values():
        assert all(isinstance(value, str) for value in book.values())
        assert SCORE_FORMAT.fullmatch(book["score"]), book
        assert URL_FORMAT.fullmatch(book["url"]), book
        assert re.fullmatch(r"\S.*\S", book["author"]), book
        if "vote_count" in book:
            assert re.fullmatch(r"[1-9][0-9]{0,2}", book["vote_count"]), book


def test_url_slug_is_the_title_without_series(books: dict[str, dict[str, str]]) -> None:
    for book in books.values():
        main_title = SERIES_SUFFIX.sub("", book["title"])
        expected = re.sub(r"[^0-9A-Za-z]+", "_", main_title).strip("_")
        assert book["url"].endswith("." + expected), book


def test_titles_are_unique_and_some_are_in_a_series(books: dict[str, dict[str, str]]) -> None:
    titles = [book["title"] for book in books.values()]
    assert len(set(titles)) == len(titles)
    in_series = sum(1 for title in titles if SERIES_SUFFIX.search(title))
    assert 0.4 <= in_series / len(titles) <= 0.6


def test_some_books_need_ascii_escaping(books: dict[str, dict[str, str]]) -> None:
    escaped = [book for book in books.values() if "\\u" in json.dumps(book)]
    assert escaped, "non-ASCII names exercise json.dumps' escaping, as in the post's data"


def test_scores_fall_with_rank_like_the_posts(books: dict[str, dict[str, str]]) -> None:
    scores = [int(book["score"].replace(",", "")) for book in books.values()]
    assert scores == sorted(scores, reverse=True)
    assert 300_000 <= scores[0] <= 900_000
    assert 60_000 <= scores[9] <= 250_000
    assert 200 <= scores[999] <= 800
    assert 10 <= scores[-1] < 100


def test_vote_counts_fall_with_rank(books: dict[str, dict[str, str]]) -> None:
    votes = [int(book["vote_count"]) for book in books.values() if "vote_count" in book]
    top, bottom = votes[:200], votes[-200:]
    assert statistics.median(top) > 10 * statistics.median(bottom)


def test_sizes_spread_like_the_posts_without_the_post() -> None:
    for seed in (1, 2, 3):
        spread = sizes(generate_books(seed=seed))
        assert 100 <= min(spread) <= 140
        assert 300 <= max(spread) <= 390
        assert 160 <= statistics.mean(spread) <= 200


def test_sizes_match_the_posts(
    books: dict[str, dict[str, str]], post_books: dict[str, dict[str, Any]]
) -> None:
    ours, theirs = sizes(books), sizes(post_books)
    assert len(ours) == len(theirs)
    assert abs(statistics.mean(ours) - statistics.mean(theirs)) <= 0.15 * statistics.mean(theirs)
    assert abs(min(ours) - min(theirs)) <= 0.15 * min(theirs)
    assert abs(max(ours) - max(theirs)) <= 0.15 * max(theirs)
    assert abs(statistics.median(ours) - statistics.median(theirs)) <= 0.15 * statistics.median(
        theirs
    )


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64), count=st.integers(0, 400))
def test_any_seed_and_count_give_a_well_formed_catalogue(seed: int, count: int) -> None:
    books = generate_books(seed=seed, count=count)
    assert list(books) == [str(n) for n in range(1, count + 1)]
    assert generate_books(seed=seed, count=count) == books
    for book in books.values():
        assert list(book) in (RANKED_KEYS, UNRANKED_KEYS)
        assert SCORE_FORMAT.fullmatch(book["score"])
        assert 100 <= len(json.dumps(book)) <= 390


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_books(count=-1)
