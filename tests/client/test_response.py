"""`Response`: the fields a caller reads."""

from __future__ import annotations

import pytest

from h2books.client import Response


def test_response_accessors() -> None:
    response = Response(
        200,
        [(b"content-type", b"application/json"), (b"x", b"1"), (b"x", b"2")],
        b'{"a": "\xc3\xa9"}',
        "HTTP/2",
    )
    assert response.json() == {"a": "é"}
    assert response.text == '{"a": "é"}'
    assert response.header("X") == "1"
    assert response.header(b"content-type") == "application/json"
    assert response.header("absent") is None
    assert repr(response) == "<Response 200 HTTP/2 GET / 11 bytes>"


def test_json_of_a_non_json_body_raises_value_error() -> None:
    with pytest.raises(ValueError):
        Response(200, [], b"<html>", "HTTP/1.1").json()


def test_method_and_target_given_as_wire_bytes_read_as_text() -> None:
    response = Response(200, [], b"", "HTTP/2", b"GET", b"/book?id=%C3%A9")
    assert (response.method, response.target) == ("GET", "/book?id=%C3%A9")
    assert repr(response) == "<Response 200 HTTP/2 GET /book?id=%C3%A9 0 bytes>"
