"""Proxy headers: honoured only from trusted peers, read from the right."""

from __future__ import annotations

import pytest

from h2books.interfaces.proxy import TrustedProxies, forwarded_origin

PEER = ("127.0.0.1", 40000)


def test_trusted_set() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")
    assert "127.0.0.1" in trusted and "10.1.2.3" in trusted and "::1" in trusted
    assert "192.168.0.1" not in trusted
    assert "anything" in TrustedProxies("*")
    with pytest.raises(ValueError):
        TrustedProxies("10.0.0.0/99")


def test_untrusted_peer_is_ignored() -> None:
    headers = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https")]
    assert forwarded_origin(headers, ("8.8.8.8", 1), "http", TrustedProxies("127.0.0.1")) == (
        ("8.8.8.8", 1),
        "http",
    )


def test_x_forwarded_from_a_trusted_peer() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"), (b"x-forwarded-proto", b"https")]
    client, scheme = forwarded_origin(headers, PEER, "http", TrustedProxies("127.0.0.1,10.0.0.0/8"))
    assert client == ("203.0.113.9", 0)  # the nearest hop that is not a trusted proxy
    assert scheme == "https"


def test_a_forged_leftmost_entry_does_not_win() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")]
    client, _ = forwarded_origin(headers, PEER, "http", TrustedProxies("127.0.0.1"))
    assert client == ("203.0.113.9", 0)


def test_forwarded_header() -> None:
    headers = [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https, for=10.0.0.2')]
    client, scheme = forwarded_origin(headers, PEER, "http", TrustedProxies("127.0.0.1,10.0.0.2"))
    assert client == ("2001:db8::1", 4711) and scheme == "https"


def test_nonsense_scheme_is_ignored() -> None:
    headers = [(b"x-forwarded-proto", b"javascript")]
    assert forwarded_origin(headers, PEER, "http", TrustedProxies("127.0.0.1"))[1] == "http"
