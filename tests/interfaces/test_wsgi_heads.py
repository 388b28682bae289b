"""The heads of WSGI answers: checked and encoded once, then looked up."""

from __future__ import annotations

from typing import Any

import pytest

from h2books.interfaces import templates, wsgi_heads
from h2books.interfaces.wsgi_heads import head_of

HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "4")]
HEADS: wsgi_heads.WsgiHeads = {}  # an interface's cache


def test_a_head_seen_before_is_the_same_checked_head() -> None:
    head = head_of("200 OK", HEADERS, HEADS)
    assert (head.status, head.fields, head.declared) == (
        200,
        [(b"content-type", b"text/plain"), (b"content-length", b"4")],
        4,
    )
    assert head_of("200 OK", list(HEADERS), HEADS) is head  # an equal list, not the same one
    assert head_of("201 Created", HEADERS, HEADS) is not head
    assert head_of("200 OK", [*HEADERS, ("ETag", '"1"')], HEADS).declared == 4


def test_fields_given_as_lists_are_checked_too() -> None:
    head = head_of("200 OK", [["X-Answer", "42"]], HEADS)  # type: ignore[list-item]
    assert head.fields == [(b"x-answer", b"42")] and head.declared == -1
    with pytest.raises(ValueError, match="control character"):
        head_of("200 OK", [["X-Injected", "a\r\nset-cookie: stolen=1"]], HEADS)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        ("200 OK", [("X-Injected", "a\r\nset-cookie: stolen=1")], ValueError),
        ("200 OK", [("Transfer-Encoding", "chunked")], ValueError),
        ("200 OK", [("Content-Length", "four")], ValueError),
        ("OK", HEADERS, ValueError),
        (b"200 OK", HEADERS, TypeError),
        ("200 OK", {"Content-Type": "text/plain"}, TypeError),
    ],
)
def test_a_bad_head_is_refused_every_time(status: Any, headers: Any, error: type) -> None:
    for _ in range(2):  # never cached
        with pytest.raises(error):
            head_of(status, headers, HEADS)


def test_headers_that_are_not_a_list_are_refused_without_being_consumed() -> None:
    fields = iter(HEADERS)
    with pytest.raises(TypeError, match="must be a list"):
        head_of("200 OK", fields, HEADS)  # type: ignore[arg-type]
    assert next(fields) == HEADERS[0]


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "HEADS_MAX", 8)
    heads: wsgi_heads.WsgiHeads = {}
    for i in range(20):  # an etag per answer: every head is new
        head_of("200 OK", [("ETag", f'"{i}"')], heads)
        assert len(heads) <= 8
