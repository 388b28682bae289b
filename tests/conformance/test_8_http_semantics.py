"""RFC 9113 §8: HTTP semantics in HTTP/2 (h2spec http2/8.x): message framing and trailers,
malformed messages and content-length, field validity, connection-specific fields,
pseudo-header fields, server push, CONNECT."""

from __future__ import annotations

import pytest

from tests.conformance.support import Conn, Fields, data, headers, push_promise
from tests.server.h2wire import GOAWAY, PROTOCOL_ERROR, RST_STREAM

CONNECTION_SPECIFIC = {
    "connection",
    "proxy-connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
}


def _expect_malformed(conn: Conn, fields: Fields) -> None:
    """Send `fields` as a complete request on stream 1: malformed, so stream error
    PROTOCOL_ERROR (§8.1.1); the server MAY answer 400 first."""
    conn.send(headers(1, conn.encode(fields)))
    conn.expect_stream_error(1, PROTOCOL_ERROR)


# -- §8.1 HTTP Message Framing -----------------------------------------------------------


def test_8_1_second_headers_without_end_stream(conn: Conn) -> None:
    """h2spec 8.1/1: a HEADERS frame without END_STREAM after the request's HEADERS and
    DATA (trailers that do not end the stream): malformed, stream error PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([("x-test", "ok")]), end_stream=False),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_second_headers_without_end_stream_right_after_the_first(conn: Conn) -> None:
    """§8.1: the same with no DATA in between."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        headers(1, conn.encode([("x-test", "ok")]), end_stream=False),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_request_with_trailers(conn: Conn) -> None:
    """§8.1 (h2spec generic 4/4): HEADERS, DATA, then trailers ending the stream: a complete
    request that gets its response."""
    conn.send(
        headers(1, conn.encode(conn.request("POST", "/", ("trailer", "x-test"))), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([("x-test", "ok")])),
    )
    conn.expect_headers(1)


def test_8_1_trailers_with_a_pseudo_header(conn: Conn) -> None:
    """h2spec 8.1.2.1/3: pseudo-header fields MUST NOT appear in trailers (here also without
    END_STREAM, as h2spec sends them): stream error PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([(":method", "POST")]), end_stream=False),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_trailers_with_a_pseudo_header_ending_the_stream(conn: Conn) -> None:
    """§8.1: the same trailers, well placed with END_STREAM: still malformed."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([(":method", "POST")])),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_trailers_right_after_the_header_section(conn: Conn) -> None:
    """§8.1: zero DATA frames between the header section and the trailers is fine."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        headers(1, conn.encode([("x-test", "ok")])),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


@pytest.mark.parametrize(
    "field",
    [("X-Test", "ok"), ("x-test", "o\nk"), ("connection", "close")],
    ids=["uppercase", "lf-in-value", "connection"],
)
def test_8_1_malformed_trailers(conn: Conn, field: tuple[str, str]) -> None:
    """§8.2.1, §8.2.2: the field rules hold in trailers too: malformed."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([field])),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_expect_100_continue_is_answered_at_once(conn: Conn) -> None:
    """§8.1 (interim responses), RFC 9110 §10.1.1: a request with `expect: 100-continue`
    and content to come MUST get at once either a final status or a 100 (Continue) interim
    response, a HEADERS frame without END_STREAM (§8.1: one with END_STREAM would be
    malformed). The final response follows the content."""
    fields = conn.request("POST", "/book?id=1", ("expect", "100-continue"), ("content-length", "3"))
    conn.send(headers(1, conn.encode(fields), end_stream=False))
    first = conn.expect_head_frame(1)
    if dict(first.fields)[":status"] != "100":  # type: ignore[attr-defined]
        return  # a final status straight away is allowed
    assert not first.ends_stream, "a 100 (Continue) HEADERS frame carried END_STREAM"  # type: ignore[attr-defined]
    conn.send(data(1, b"abc"))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


# -- §8.1.1 Malformed Messages: content-length -------------------------------------------


def test_8_1_1_content_length_above_the_data(conn: Conn) -> None:
    """h2spec 8.1.2.6/1: content-length 1 but 4 octets of DATA: stream error
    PROTOCOL_ERROR."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "1"))), end_stream=False
        ),
        data(1, b"test"),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_1_content_length_against_several_data_frames(conn: Conn) -> None:
    """h2spec 8.1.2.6/2: content-length 1 against two 4-octet DATA frames: PROTOCOL_ERROR."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "1"))), end_stream=False
        ),
        data(1, b"test", end_stream=False),
        data(1, b"test"),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_1_content_length_beyond_the_data(conn: Conn) -> None:
    """§8.1.1: content-length 10 and the stream ends after 4 octets: PROTOCOL_ERROR."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "10"))), end_stream=False
        ),
        data(1, b"test"),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


def test_8_1_1_content_length_without_any_data(conn: Conn) -> None:
    """§8.1.1: a POST announcing 5 octets that ends with its HEADERS: PROTOCOL_ERROR."""
    _expect_malformed(conn, conn.request("POST", "/", ("content-length", "5")))


def test_8_1_1_content_length_matching_the_data(conn: Conn) -> None:
    """§8.1.1: a content-length equal to the DATA received is fine (the bookstore answers
    POST with 405)."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "8"))), end_stream=False
        ),
        data(1, b"test", end_stream=False),
        data(1, b"test"),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


def test_8_1_1_padding_is_not_content(conn: Conn) -> None:
    """§8.1.1: content-length counts the DATA payload, not its padding: 4 octets of data
    with 10 of padding match `content-length: 4`."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "4"))), end_stream=False
        ),
        data(1, b"test", padding=10),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


def test_8_1_1_content_length_mismatch_ended_by_trailers(conn: Conn) -> None:
    """§8.1.1: the content ends with the trailers: 2 octets against `content-length: 4`
    is malformed."""
    conn.send(
        headers(
            1, conn.encode(conn.request("POST", "/", ("content-length", "4"))), end_stream=False
        ),
        data(1, b"te", end_stream=False),
        headers(1, conn.encode([("x-test", "ok")])),
    )
    conn.expect_stream_error(1, PROTOCOL_ERROR)


# -- §8.2 HTTP Fields, §8.2.1 Field Validity ---------------------------------------------


def test_8_2_uppercase_field_name(conn: Conn) -> None:
    """h2spec 8.1.2/1: field names MUST be lowercase: PROTOCOL_ERROR."""
    _expect_malformed(conn, conn.request("GET", "/", ("X-TEST", "ok")))


def test_8_2_1_invalid_field_gets_a_400_before_the_reset(conn: Conn) -> None:
    """§8.2.1: for a request violating the field rules, a server SHOULD generate a 400
    (Bad Request); §8.1.1 lets it send that response before resetting the stream."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/", ("X-TEST", "ok")))))
    head = conn.expect_head_frame(1)
    assert dict(head.fields)[":status"] == "400"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name",
    ["space force", "\x01invalid", "\x7finvalid", "inválid", "invalid:field", "tab\tname"],
    ids=["space", "control", "del", "non-ascii", "colon", "htab"],
)
def test_8_2_1_invalid_field_name(conn: Conn, name: str) -> None:
    """§8.2.1: field names MUST NOT contain 0x00-0x20, 0x41-0x5a, 0x7f-0xff, or a colon
    (except a pseudo-header's leading one): malformed."""
    _expect_malformed(conn, conn.request("GET", "/", (name, "oh no")))


@pytest.mark.parametrize(
    "value",
    ["oh\nno", "oh\rno", "oh\x00no", " oh no", "oh no\t", "oh no "],
    ids=["lf", "cr", "nul", "leading-space", "trailing-htab", "trailing-space"],
)
def test_8_2_1_invalid_field_value(conn: Conn, value: str) -> None:
    """§8.2.1: field values MUST NOT contain NUL, LF or CR, nor start or end with SP or HTAB:
    malformed."""
    _expect_malformed(conn, conn.request("GET", "/", ("invalid-value", value)))


def test_8_2_1_pseudo_header_value_with_lf(conn: Conn) -> None:
    """§8.2.1: the same rules hold for pseudo-header values."""
    _expect_malformed(conn, conn.request("GET", "/hello\nx-injected: 1"))


def test_8_2_response_field_names_are_lowercase_and_valid(conn: Conn) -> None:
    """§8.2, §8.2.2, §8.3.2: the server's responses carry lowercase names, a single
    `:status` and no other pseudo-header, and no connection-specific field."""
    paths = ["/", "/hello", "/book?id=1", "/book?id=999999", "/book"]
    for i, path in enumerate(paths):
        conn.send(headers(1 + 2 * i, conn.encode(conn.request("GET", path))))
        conn.expect_response(1 + 2 * i)
        fields = conn.response_fields[1 + 2 * i]
        names = [name for name, _ in fields]
        assert names.count(":status") == 1 and names[0] == ":status", (path, names)
        assert not [n for n in names[1:] if n.startswith(":")], (path, names)
        assert all(n == n.lower() for n in names), (path, names)
        assert not CONNECTION_SPECIFIC & set(names), (path, names)


def test_8_1_1_response_content_matches_its_content_length(conn: Conn) -> None:
    """§8.1.1: the server's own responses are well formed: content-length equals the DATA
    received, and a 304 or a HEAD response carries no content."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/book?id=1"))))
    head, body = conn.expect_response(1)
    assert int(head["content-length"]) == len(body), head
    checks = [
        ("GET", "/", ()),
        ("GET", "/book?id=999999", ()),
        ("GET", "/book", ()),
        ("HEAD", "/book?id=1", ()),
        ("GET", "/book?id=1", (("if-none-match", head["etag"]),)),
    ]
    for i, (method, path, extra) in enumerate(checks):
        stream_id = 3 + 2 * i
        conn.send(headers(stream_id, conn.encode(conn.request(method, path, *extra))))
        head_i, body_i = conn.expect_response(stream_id)
        if method == "HEAD" or head_i[":status"] == "304":
            assert body_i == b"", (method, path, head_i)
        elif "content-length" in head_i:
            assert int(head_i["content-length"]) == len(body_i), (method, path, head_i)


# -- §8.2.2 Connection-Specific Header Fields --------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("connection", "keep-alive"),
        ("proxy-connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
    ],
)
def test_8_2_2_connection_specific_field(conn: Conn, name: str, value: str) -> None:
    """h2spec 8.1.2.2/1: connection-specific fields make a message malformed."""
    _expect_malformed(conn, conn.request("GET", "/", (name, value)))


@pytest.mark.parametrize("value", ["trailers, deflate", "gzip", ""])
def test_8_2_2_te_other_than_trailers(conn: Conn, value: str) -> None:
    """h2spec 8.1.2.2/2: TE MUST NOT contain anything but "trailers": malformed."""
    _expect_malformed(conn, conn.request("GET", "/", ("trailers", "test"), ("te", value)))


def test_8_2_2_te_trailers_is_allowed(conn: Conn) -> None:
    """§8.2.2: `te: trailers` is the one allowed connection-specific field."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/hello", ("te", "trailers")))))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "200"


# -- §8.3 HTTP Control Data --------------------------------------------------------------


def test_8_3_unknown_pseudo_header(conn: Conn) -> None:
    """h2spec 8.1.2.1/1: an undefined pseudo-header field: malformed."""
    _expect_malformed(conn, conn.request("GET", "/", (":test", "ok")))


def test_8_3_response_pseudo_header_in_a_request(conn: Conn) -> None:
    """h2spec 8.1.2.1/2: `:status` in a request: malformed."""
    _expect_malformed(conn, conn.request("GET", "/", (":status", "200")))


def test_8_3_pseudo_header_after_a_regular_field(conn: Conn) -> None:
    """h2spec 8.1.2.1/4: a pseudo-header field after a regular one: malformed."""
    _expect_malformed(conn, [("x-test", "ok"), *conn.request()])


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_8_3_duplicated_pseudo_header(conn: Conn, name: str) -> None:
    """h2spec 8.1.2.3/5-7: the same pseudo-header twice: malformed."""
    fields = conn.request()
    _expect_malformed(conn, [*fields, (name, dict(fields)[name])])


# -- §8.3.1 Request Pseudo-Header Fields -------------------------------------------------


def test_8_3_1_empty_path(conn: Conn) -> None:
    """h2spec 8.1.2.3/1: `:path` MUST NOT be empty for http(s) URIs: malformed."""
    _expect_malformed(conn, conn.request("GET", ""))


@pytest.mark.parametrize("name", [":method", ":scheme", ":path"])
def test_8_3_1_missing_pseudo_header(conn: Conn, name: str) -> None:
    """h2spec 8.1.2.3/2-4: a request without `:method`, `:scheme` or `:path`: malformed."""
    _expect_malformed(conn, [(n, v) for n, v in conn.request() if n != name])


def test_8_3_1_host_instead_of_authority(conn: Conn) -> None:
    """§8.3.1: `:authority` may be absent; a `host` field then carries the authority and the
    request is well formed."""
    fields = [(":method", "GET"), (":scheme", "https"), (":path", "/hello"), ("host", "localhost")]
    conn.send(headers(1, conn.encode(fields)))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


def test_8_3_1_host_differing_from_authority(conn: Conn) -> None:
    """§8.3.1: a server SHOULD treat a `host` naming another entity than `:authority` as
    malformed (h2books does)."""
    _expect_malformed(conn, conn.request("GET", "/hello", ("host", "elsewhere.example")))


def test_8_3_1_options_asterisk_is_a_valid_request(conn: Conn) -> None:
    """§8.3.1: `OPTIONS` with `:path` "*" is well formed: it gets a response, not a reset."""
    conn.send(headers(1, conn.encode(conn.request("OPTIONS", "*"))))
    conn.expect_headers(1)


# -- §8.4 Server Push --------------------------------------------------------------------


def test_8_4_client_push_promise(conn: Conn) -> None:
    """h2spec 8.2/1: a client cannot push: PUSH_PROMISE is a connection error
    PROTOCOL_ERROR."""
    conn.send(
        headers(1, conn.encode(conn.request()), end_stream=False),
        push_promise(1, 3, conn.encode(conn.request())),
    )
    conn.expect_connection_error(PROTOCOL_ERROR)


# -- §8.5 The CONNECT Method -------------------------------------------------------------


def test_8_5_connect_with_scheme(conn: Conn) -> None:
    """§8.5: `:scheme` MUST be omitted from CONNECT: malformed."""
    _expect_malformed(
        conn, [(":method", "CONNECT"), (":scheme", "https"), (":authority", "example.com:443")]
    )


def test_8_5_connect_with_path(conn: Conn) -> None:
    """§8.5: `:path` MUST be omitted from CONNECT: malformed."""
    _expect_malformed(
        conn, [(":method", "CONNECT"), (":path", "/"), (":authority", "example.com:443")]
    )


def test_8_5_connect_without_authority(conn: Conn) -> None:
    """§8.5: CONNECT carries the target in `:authority`: without it, malformed."""
    _expect_malformed(conn, [(":method", "CONNECT")])


def test_8_5_well_formed_connect_is_not_malformed(conn: Conn) -> None:
    """§8.5: `:method` CONNECT with only `:authority` is well formed. A server that tunnels
    nothing may refuse it with a status or reset it, but not as malformed."""
    conn.send(headers(1, conn.encode([(":method", "CONNECT"), (":authority", "example.com:443")])))
    f = conn.wait_for(
        lambda f: (f.stream_id == 1 and hasattr(f, "fields")) or f.type in (RST_STREAM, GOAWAY),
        "a response or a reset on stream 1",
    )
    if f.type in (RST_STREAM, GOAWAY):
        assert f.error_code != PROTOCOL_ERROR, conn.log


# -- HEAD (§8.1, RFC 9110 §9.3.2) --------------------------------------------------------


def test_8_1_head_response_has_no_content(conn: Conn) -> None:
    """A response to HEAD carries no content: its DATA frames, if any, are empty."""
    conn.send(headers(1, conn.encode(conn.request("HEAD", "/hello"))))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body == b""
    assert not any(e.startswith("DATA") and not e.endswith("length=0)") for e in conn.log)
