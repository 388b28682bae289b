"""Base URLs: what goes into :authority/Host, where to connect, the default target."""

from __future__ import annotations

import pytest

from h2books.client.origin import Origin


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "authority", "path"),
    [
        ("https://localhost:8443", "https", "localhost", 8443, "localhost:8443", "/"),
        ("https://localhost:443/", "https", "localhost", 443, "localhost", "/"),
        ("http://example.org", "http", "example.org", 80, "example.org", "/"),
        (
            "HTTP://Example.org:8080/api?x=1",
            "http",
            "example.org",
            8080,
            "example.org:8080",
            "/api?x=1",
        ),
        ("http://[::1]:8080/", "http", "::1", 8080, "[::1]:8080", "/"),
    ],
)
def test_origin_parts(
    url: str, scheme: str, host: str, port: int, authority: str, path: str
) -> None:
    origin = Origin(url)
    assert (origin.scheme, origin.host, origin.port, origin.authority, origin.path) == (
        scheme,
        host,
        port,
        authority,
        path,
    )
    assert origin.tls == (scheme == "https")


def test_address_for_messages() -> None:
    assert Origin("http://[::1]:81").address == "[::1]:81"
    assert Origin("https://h").address == "h:443"
    assert repr(Origin("https://h:1")) == "Origin(https://h:1)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x", "scheme"),
        ("localhost:8443", "scheme"),
        ("http://", "no host"),
        ("http://user:pw@x/", "user information"),
        ("http://x:99999/", "invalid URL"),
    ],
)
def test_invalid_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Origin(url)
