"""RFC 9113 §8.2-8.3 field rules, checked directly on field lists."""

from __future__ import annotations

import contextlib
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h2.validation import (
    MalformedHeaders,
    check_name,
    check_value,
    parse_content_length,
    validate_request,
    validate_response,
    validate_trailers,
)

BASE = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/p?q=1"),
    (b":authority", b"a.b"),
]


def test_valid_request() -> None:
    method, scheme, authority, path, headers, length, protocol = validate_request(
        [*BASE, (b"accept", b"*/*"), (b"x-empty", b""), (b"content-length", b"12")]
    )
    assert (method, scheme, authority, path, length) == (b"GET", b"https", b"a.b", b"/p?q=1", 12)
    assert protocol is None
    assert headers == [(b"accept", b"*/*"), (b"x-empty", b""), (b"content-length", b"12")]


def test_host_used_when_authority_missing() -> None:
    result = validate_request([*BASE[:3], (b"host", b"h.example")])
    assert result[2] == b"h.example" and result[4] == [(b"host", b"h.example")]
    assert validate_request([*BASE, (b"host", b"A.B")])[2] == b"a.b"
    with pytest.raises(MalformedHeaders):
        validate_request([*BASE, (b"host", b"other")])
    # Two Host fields, the last agreeing with :authority: the first would reach the app.
    with pytest.raises(MalformedHeaders, match="more than one host"):
        validate_request([*BASE, (b"host", b"evil"), (b"host", b"a.b")])


def test_a_host_field_comes_first_of_the_regular_fields() -> None:
    """Whoever needs the Host field (ASGI's scope) tests the first field, not the list;
    a cookie join before it, and fields after it, keep their order."""
    fields = [
        *BASE,
        (b"accept", b"*/*"),
        (b"cookie", b"a=1"),
        (b"host", b"a.b"),
        (b"cookie", b"b=2"),
        (b"x-last", b"1"),
    ]
    headers = validate_request(fields)[4]
    assert headers == [
        (b"host", b"a.b"),
        (b"accept", b"*/*"),
        (b"cookie", b"a=1; b=2"),
        (b"x-last", b"1"),
    ]
    assert validate_request([*BASE, (b"accept", b"*/*")])[4] == [(b"accept", b"*/*")]


def test_options_asterisk_and_other_schemes() -> None:
    assert validate_request([(b":method", b"OPTIONS"), (b":scheme", b"https"), (b":path", b"*")])
    with pytest.raises(MalformedHeaders):
        validate_request([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"*")])
    with pytest.raises(MalformedHeaders):
        validate_request([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"rel")])
    assert validate_request([(b":method", b"GET"), (b":scheme", b"urn"), (b":path", b"x:y")])


def test_cookie_crumbs_joined_in_place() -> None:
    headers = validate_request(
        [*BASE, (b"a", b"1"), (b"cookie", b"x=1"), (b"b", b"2"), (b"cookie", b"y=2")]
    )[4]
    assert headers == [(b"a", b"1"), (b"cookie", b"x=1; y=2"), (b"b", b"2")]
    assert validate_request([*BASE, (b"cookie", b"only=1")])[4] == [(b"cookie", b"only=1")]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_the_four_pseudo_fields_in_any_order(order: tuple[int, ...]) -> None:
    fields = [BASE[i] for i in order]
    expected = (b"GET", b"https", b"a.b", b"/p?q=1", [(b"accept", b"*/*")], None, None)
    assert validate_request([*fields, (b"accept", b"*/*")]) == expected
    assert validate_request(fields)[:4] == expected[:4]
    connect = [(b":method", b"CONNECT") if i == 0 else BASE[i] for i in order]
    extended = validate_request([*connect, (b":protocol", b"websocket")])
    assert extended[:4] + extended[6:] == (b"CONNECT", b"https", b"a.b", b"/p?q=1", b"websocket")
    for name, value in ((b":path", b"/"), (b":status", b"200"), (b":protocol", b"ws")):
        with pytest.raises(MalformedHeaders):
            validate_request([*fields, (name, value)])
    bad = [(name, value + b"\r") if name == b":path" else (name, value) for name, value in fields]
    with pytest.raises(MalformedHeaders):
        validate_request(bad)


def test_connect() -> None:
    assert validate_request([(b":method", b"CONNECT"), (b":authority", b"h:443")])[:4] == (
        b"CONNECT",
        b"",
        b"h:443",
        b"",
    )
    with pytest.raises(MalformedHeaders):
        validate_request([(b":method", b"CONNECT"), (b":authority", b"h:443"), (b":path", b"/")])
    with pytest.raises(MalformedHeaders):
        validate_request([(b":method", b"CONNECT")])


@pytest.mark.parametrize(
    "fields",
    [
        [*BASE, (b"Accept", b"x")],
        [BASE[0], (b"accept", b"x"), *BASE[1:]],
        [*BASE, (b":protocol", b"websocket")],
        [*BASE, (b":status", b"200")],
        [*BASE, (b":method", b"GET")],
        [*BASE, (b":scheme", b"https")],
        [*BASE, (b":path", b"/")],
        [*BASE, (b":authority", b"x")],
        BASE[1:],
        [BASE[0], *BASE[2:]],
        [*BASE[:2], BASE[3]],
        [*BASE[:2], (b":path", b""), BASE[3]],
        [(b":method", b""), *BASE[1:]],
        [(b":method", b"G T"), *BASE[1:]],
        [*BASE, (b"connection", b"close")],
        [*BASE, (b"te", b"trailers, deflate")],
        [*BASE, (b"content-length", b"1"), (b"content-length", b"2")],
        [*BASE, (b"content-length", b"-1")],
        [*BASE, (b"x", b"\x00")],
        [*BASE, (b"x", b"a\r\nb")],
        [*BASE, (b"x", b" lead")],
        [*BASE, (b"x", b"trail\t")],
        [*BASE, (b"x\x7f", b"1")],
        [*BASE, (b"\xe9", b"1")],
        [*BASE, (b"a:b", b"1")],
        [*BASE, (b"", b"1")],
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/\n"), BASE[3]],
    ],
)
def test_malformed_requests(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(MalformedHeaders):
        validate_request(fields)


def test_te_trailers_any_case() -> None:
    assert validate_request([*BASE, (b"te", b"Trailers")])


def test_content_length_parsing() -> None:
    assert parse_content_length(b"0") == 0
    assert parse_content_length(b"42, 42") == 42
    assert parse_content_length(b"9" * 18) == 10**18 - 1
    for bad in (b"", b"4 2", b"0x10", b"1,2", b"9" * 19, b"+1"):
        with pytest.raises(MalformedHeaders):
            parse_content_length(bad)


def test_response_validation() -> None:
    assert validate_response([(b":status", b"204"), (b"content-length", b"0"), (b"x", b"y")]) == (
        204,
        [(b"content-length", b"0"), (b"x", b"y")],
        0,
    )
    for bad in (
        [(b":status", b"2000")],
        [(b":status", b"20x")],
        [(b":status", b"200"), (b":method", b"GET")],
        [(b":status", b"200"), (b"keep-alive", b"1")],
        [(b":status", b"200"), (b"X", b"1")],
        [(b"x", b"1"), (b":status", b"200")],
        [(b"content-type", b"text/plain"), (b":status", b"200")],  # a plain name first
    ):
        with pytest.raises(MalformedHeaders):
            validate_response(bad)


def test_response_validation_keeps_the_fields_after_the_status_whatever_they_are() -> None:
    fields = [(b":status", b"200"), (b"etag", b'"a1"'), (b"content-length", b"3"), (b"x", b"")]
    status, headers, content_length = validate_response(fields)
    assert (status, headers, content_length) == (200, fields[1:], 3)
    # Each rule still holds after a valid :status: values, names, pseudo-headers, status.
    for bad, message in (
        ([(b":status", b"200"), (b"etag", b'"a\r\n"')], "NUL, CR or LF"),
        ([(b":status", b"200"), (b"x", b"1"), (b":status", b"200")], "after a regular field"),
        ([(b":status", b"200"), (b":status", b"200")], "duplicated :status"),
        ([(b":status", b"200"), (b":path", b"/")], "invalid response pseudo-header"),
        ([(b":status", b"2 0")], "invalid :status"),
        ([(b":status", b"")], "invalid :status"),
    ):
        with pytest.raises(MalformedHeaders, match=message):
            validate_response(bad)


def test_trailers_validation() -> None:
    assert validate_trailers([(b"x-sum", b"1")]) == [(b"x-sum", b"1")]
    for bad in (
        [(b":path", b"/")],
        [(b"transfer-encoding", b"x")],
        [(b"Up", b"1")],
        [(b"x", b"\n")],
    ):
        with pytest.raises(MalformedHeaders):
            validate_trailers(bad)


_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")


@given(st.binary(max_size=20))
def test_check_name_matches_reference(name: bytes) -> None:
    valid = _NAME.fullmatch(name) is not None
    try:
        check_name(name)
    except MalformedHeaders:
        assert not valid
    else:
        assert valid


@given(st.binary(max_size=20))
def test_check_value_matches_reference(value: bytes) -> None:
    valid = _BAD_VALUE.search(value) is None
    try:
        check_value(value)
    except MalformedHeaders:
        assert not valid
    else:
        assert valid


@given(st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=8)), max_size=8))
def test_arbitrary_fields_only_raise_malformed(fields: list[tuple[bytes, bytes]]) -> None:
    for validate in (validate_request, validate_response, validate_trailers):
        with contextlib.suppress(MalformedHeaders):
            validate(fields)  # type: ignore[operator]


def test_response_content_length_rules() -> None:
    ok = [(b":status", b"200"), (b"content-length", b"5"), (b"content-length", b"5")]
    assert validate_response(ok)[2] == 5  # a repeated equal value is tolerated
    for bad in (
        [(b":status", b"200"), (b"content-length", b"5"), (b"content-length", b"6")],
        [(b":status", b"200"), (b"content-length", b"5x")],
        [(b":status", b"200"), (b"content-length", b"")],
    ):
        with pytest.raises(MalformedHeaders):
            validate_response(bad)


def test_plain_request_checks_each_new_pseudo_value() -> None:
    # The other values were seen valid (remembered); the new one is checked, whichever it is.
    validate_request(BASE)
    for at, bad in ((3, b"a.b\r\nx: y"), (3, b" a.b"), (2, b"/p\x00"), (0, b"GET\n")):
        fields = list(BASE)
        fields[at] = (fields[at][0], bad)
        with pytest.raises(MalformedHeaders):
            validate_request(fields)


def test_the_names_looked_up_per_request_are_the_decoders_own_objects() -> None:
    # A lookup that finds the very object is an identity test; an equal copy costs a
    # bytes comparison. The decoder hands out the static table's objects.
    from h2books.protocol.h2 import validation
    from h2books.protocol.hpack import Decoder, Encoder

    request = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/a"),
        (b":authority", b"a"),
    ]
    fields = Decoder().decode(Encoder().encode(request))
    assert fields == request
    names = tuple(name for name, _ in fields)
    [order] = [key for key in validation._PSEUDO_ORDERS if key == names]
    assert all(ours is decoded for ours, decoded in zip(order, names, strict=True))
    assert any(method is fields[0][1] for method in validation._KNOWN_METHODS)
