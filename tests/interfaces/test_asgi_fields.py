"""The checks of an app's response fields, and what is remembered of them."""

from __future__ import annotations

from h2books.interfaces.asgi_fields import response_fields


def test_a_value_with_whitespace_checked_over_h1_goes_out_stripped_over_h2() -> None:
    # RFC 9113 §8.2.1: no leading or trailing whitespace in an HTTP/2 field value; the
    # cache of checked fields is shared by both protocols and must not carry h1's form.
    field = (b"x-spaced", b" v ")
    assert response_fields([field], False)[0] == [(b"x-spaced", b" v ")]
    assert response_fields([field], True)[0] == [(b"x-spaced", b"v")]


def test_hop_by_hop_fields_checked_over_h1_are_dropped_over_h2() -> None:
    field = (b"connection", b"keep-alive")
    assert response_fields([field], False)[0] == [field]
    assert response_fields([field], True)[0] == []
