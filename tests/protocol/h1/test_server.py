"""H1ServerConnection: framing, strictness, pipelining, keep-alive, 100-continue, streaming."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from h2books.protocol.h1 import (
    BodyEnded,
    BodyReceived,
    ConnectionClosed,
    H1Config,
    H1Error,
    H1ServerConnection,
    ProtocolError,
    RequestReceived,
    serialize_head,
)
from h2books.protocol.h1.framing import CHUNKED, FIXED
from tests.protocol.h1.folding import fold_bodies, whole_requests

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
OK_HEAD = serialize_head(200, [(b"content-type", b"text/plain")])


def feed(data: bytes, config: H1Config | None = None) -> tuple[H1ServerConnection, list[object]]:
    conn = H1ServerConnection(config or H1Config(), 0.0)
    return conn, list(conn.receive_data(data, 0.0))


def only_request(data: bytes) -> RequestReceived:
    _, events = feed(data)
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, RequestReceived), event
    return event


def error_status(data: bytes, config: H1Config | None = None) -> int:
    conn, events = feed(data, config)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1, events
    assert conn.must_close
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 %d " % errors[0].status)
    assert b"\r\nconnection: close\r\n" in out
    return errors[0].status


def response_heads(data: bytes) -> list[bytes]:
    """Split a stream of content-length framed responses into their heads."""
    heads = []
    while data:
        end = data.index(b"\r\n\r\n") + 4
        head = data[:end]
        heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        data = data[end + length :]
    return heads


# -- well-formed requests ---------------------------------------------------------


def test_simple_get() -> None:
    request = only_request(
        b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\n"
        b"X-Custom:   padded value \t\r\nAccept: */*\r\n\r\n"
    )
    assert request.method == b"GET"
    assert request.target == b"/a/b?x=1"
    assert request.http_version == b"1.1"
    assert request.headers == [
        (b"host", b"example.com:8080"),
        (b"user-agent", b"curl/8"),
        (b"x-custom", b"padded value"),
        (b"accept", b"*/*"),
    ]
    assert request.body == b""
    assert request.keep_alive is True
    assert request.host == b"example.com:8080"


def test_empty_field_value_and_internal_whitespace_kept() -> None:
    request = only_request(b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Tab: a \t b\r\n\r\n")
    assert request.headers[1:] == [(b"x-empty", b""), (b"x-tab", b"a \t b")]


def test_obs_text_allowed_in_values() -> None:
    request = only_request(b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\n\r\n")
    assert request.headers[1] == (b"x-latin", b"caf\xe9")


def test_unknown_field_names_are_lowercased() -> None:
    request = only_request(b"GET / HTTP/1.1\r\nHost: h\r\nX-SoMe-NaMe_1!: v\r\n\r\n")
    assert request.headers[1] == (b"x-some-name_1!", b"v")


def test_content_length_body() -> None:
    request = only_request(b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    assert request.body == b"hello"


def test_content_length_zero_delivers_immediately() -> None:
    request = only_request(b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
    assert request.body == b""


def test_content_length_with_leading_zeros() -> None:
    assert (
        only_request(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc").body == b"abc"
    )


def test_chunked_body_with_extensions_and_trailers() -> None:
    request = only_request(
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value;flag\r\nhello\r\n"
        b'1 ; q="quoted;\\"str"\r\n,\r\n'
        b"A\r\n0123456789\r\n"
        b"0;last\r\nX-Trailer: t\r\nOther: o\r\n\r\n"
    )
    assert request.body == b"hello,0123456789"
    assert (b"x-trailer", b"t") not in request.headers  # trailers are discarded


def test_chunked_body_without_trailers_and_uppercase_hex() -> None:
    request = only_request(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"1F\r\n" + b"x" * 31 + b"\r\n0\r\n\r\n"
    )
    assert request.body == b"x" * 31


def test_transfer_encoding_list_with_empty_elements() -> None:
    request = only_request(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked,\r\n\r\n0\r\n\r\n"
    )
    assert request.body == b""


def test_http10_request_without_host() -> None:
    request = only_request(b"GET / HTTP/1.0\r\n\r\n")
    assert request.http_version == b"1.0"
    assert request.host is None
    assert request.keep_alive is False


def test_leading_empty_lines_ignored() -> None:
    request = only_request(b"\r\n\r\n" + GET)
    assert request.target == b"/"


def test_absolute_form_target_overrides_host() -> None:
    request = only_request(b"GET http://other.example:81/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert request.target == b"http://other.example:81/p?q"
    assert request.host == b"other.example:81"


def test_asterisk_form_for_options() -> None:
    assert only_request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").target == b"*"


def test_connect_authority_form() -> None:
    request = only_request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert request.target == b"example.com:443"
    assert request.host == b"example.com:443"


def test_percent_encoded_target() -> None:
    assert only_request(b"GET /a%20b%2F HTTP/1.1\r\nHost: h\r\n\r\n").target == b"/a%20b%2F"


def test_ipv6_host_and_empty_host() -> None:
    assert only_request(b"GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n").host == b"[::1]:8443"
    assert only_request(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host == b""


def test_extension_method() -> None:
    assert only_request(b"PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n").method == b"PROPFIND"


# -- rejections ----------------------------------------------------------------------

REJECTIONS = [
    # (id, request bytes, status)
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400),
    ("ws-before-first-field", b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
    ("bare-lf-field", b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400),
    ("bare-lf-only", b"GET / HTTP/1.1\nHost: h\n\n", 400),
    ("bare-cr", b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    ("tab-before-colon", b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400),
    ("no-colon", b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
    ("empty-name", b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400),
    ("bad-name-char", b"GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", 400),
    ("bad-name-nonascii", b"GET / HTTP/1.1\r\nHost: h\r\nX\xe9: v\r\n\r\n", 400),
    ("bad-method-char", b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
    ("ctl-in-value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400),
    ("del-in-value", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400),
    (
        "cl-and-te",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-and-cl",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "duplicate-cl-equal",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        400,
    ),
    (
        "duplicate-cl-differ",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        400,
    ),
    ("cl-list", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\nx", 400),
    ("cl-plus", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx", 400),
    ("cl-minus", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
    ("cl-hex", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n\r\nx", 400),
    ("cl-empty", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400),
    ("cl-internal-space", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400),
    ("cl-unicode-digit", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \xd9\xa1\r\n\r\n", 400),
    (
        "cl-overlong",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + b"0" * 19 + b"1\r\n\r\n",
        400,
    ),
    ("te-gzip-only", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (
        "te-chunked-not-last",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
    ),
    (
        "te-chunked-twice",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-gzip-chunked",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "te-identity-chunked",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("te-empty", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400),
    ("te-in-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (
        "chunk-size-not-hex",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-signed",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-0x",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-empty",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-leading-space",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-trailing-space",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-overlong",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"0" * 17
        + b"1\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-line-overlong",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1;" + b"a" * 5000 + b"\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-line-unterminated",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1" + b"0" * 5000,
        400,
    ),
    (
        "chunk-ext-bad",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a b\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-ext-ctl",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1;a=\x01\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-bare-lf-size",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-missing-crlf",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-lf-only-after-data",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-bad-trailer",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nBad Trailer: x\r\n\r\n",
        400,
    ),
    (
        "chunk-bare-lf-trailer",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n",
        400,
    ),
    (
        "chunk-bare-lf-end",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
        400,
    ),
    ("missing-host", b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400),
    ("missing-host-absolute-form", b"GET http://h/ HTTP/1.1\r\n\r\n", 400),
    ("multiple-host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    ("host-invalid", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host-with-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("host-with-userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    ("target-empty", b"GET  HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-space", b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-relative", b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-fragment", b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-nonascii", b"GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-bad-pct", b"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-truncated-pct", b"GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-backslash", b"GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("target-brace", b"GET /{x} HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("asterisk-not-options", b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("connect-origin-form", b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("connect-no-port", b"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("absolute-userinfo", b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("absolute-no-host", b"GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("request-line-extra-space", b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
    ("request-line-double-space", b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("request-line-tab", b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    ("request-line-two-parts", b"GET /\r\nHost: h\r\n\r\n", 400),
    ("version-garbage", b"GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400),
    ("version-lowercase", b"GET / http/1.1\r\nHost: h\r\n\r\n", 400),
    ("version-no-minor", b"GET / HTTP/2\r\nHost: h\r\n\r\n", 400),
    ("version-two-digit", b"GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400),
    ("version-2.0", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    ("version-1.2", b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505),
    ("version-3.0", b"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
    ("version-0.9", b"GET / HTTP/0.9\r\n\r\n", 505),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (
        "expect-unknown",
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n",
        417,
    ),
    (
        "expect-extra-member",
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\n",
        417,
    ),
    ("too-many-empty-lines", b"\r\n" * 9 + GET, 400),
]


@pytest.mark.parametrize(
    ("data", "status"), [(d, s) for _, d, s in REJECTIONS], ids=[i for i, _, _ in REJECTIONS]
)
def test_rejections(data: bytes, status: int) -> None:
    assert error_status(data) == status


@pytest.mark.parametrize(("_id", "data", "status"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_byte_by_byte(_id: str, data: bytes, status: int) -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    events: list[object] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1], 0.0)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert [e.status for e in errors] == [status]
    # A head may have gone out before its body turned out bad, never a whole request.
    assert not whole_requests(events)


def test_request_line_too_long_is_414() -> None:
    config = H1Config(max_request_line=100)
    assert error_status(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n", config) == 414
    # Detected before the line ends.
    assert error_status(b"GET /" + b"a" * 200, config) == 414


def test_request_line_at_limit_is_accepted() -> None:
    line = b"GET /" + b"a" * 86 + b" HTTP/1.1"
    assert len(line) == 100
    _, events = feed(line + b"\r\nHost: h\r\n\r\n", H1Config(max_request_line=100))
    assert isinstance(events[0], RequestReceived)


def test_long_request_line_wins_over_big_head() -> None:
    config = H1Config(max_request_line=100, max_header_bytes=150)
    assert error_status(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: h\r\n\r\n", config) == 414


def test_header_section_too_large_is_431() -> None:
    config = H1Config(max_header_bytes=200)
    big = b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 300 + b"\r\n\r\n"
    assert error_status(big, config) == 431
    assert error_status(big[:250], config) == 431  # detected before the head ends


def test_head_exactly_at_limit_is_accepted() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 50 + b"\r\n\r\n"
    _, events = feed(data, H1Config(max_header_bytes=len(data)))
    assert isinstance(events[0], RequestReceived)
    assert error_status(data, H1Config(max_header_bytes=len(data) - 1)) == 431


def test_too_many_fields_is_431() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(11))
    config = H1Config(max_header_count=10)
    assert error_status(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", config) == 431
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(9))
    _, events = feed(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n", config)
    assert isinstance(events[0], RequestReceived)


def test_body_too_large_is_413() -> None:
    config = H1Config(max_body_size=10)
    assert error_status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", config) == 413
    chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert error_status(chunked + b"6\r\nabcdef\r\n5\r\nabcde\r\n0\r\n\r\n", config) == 413
    _, events = feed(chunked + b"5\r\nabcde\r\n5\r\nabcde\r\n0\r\n\r\n", config)
    assert isinstance(events[0], RequestReceived)
    assert events[0].body == b"abcde" * 2


def test_error_response_format() -> None:
    conn, events = feed(b"GET / HTTP/1.1\r\n\r\n")
    assert events == [ProtocolError(400, "missing host header")]
    out = conn.data_to_send()
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 400 Bad Request",
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    assert body == b"missing host header\n"


def test_error_answer_to_head_request_has_no_body() -> None:
    conn, _ = feed(b"HEAD / HTTP/1.1\r\n\r\n")
    out = conn.data_to_send()
    assert out.endswith(b"\r\n\r\n")
    assert b"content-length: 20\r\n" in out


def test_no_input_accepted_after_error() -> None:
    conn, _ = feed(b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n")
    conn.data_to_send()
    assert conn.receive_data(GET, 0.0) == []
    assert conn.receive_data(b"", 0.0) == []
    assert conn.data_to_send() == b""


def test_error_waits_for_owed_responses() -> None:
    conn, events = feed(GET + GET + b"GET / HTTP/1.1\r\n\r\n")
    assert [type(e) for e in events] == [RequestReceived, RequestReceived, ProtocolError]
    assert conn.data_to_send() == b""  # responses to the first two are owed first
    assert not conn.must_close
    conn.send_response(OK_HEAD, b"one")
    assert not conn.must_close
    conn.send_response(OK_HEAD, b"two")
    assert conn.must_close
    out = conn.data_to_send()
    assert [h.split(b"\r\n")[0] for h in response_heads(out)] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 400 Bad Request",
    ]
    assert b"connection: close" not in out.split(b"400 Bad Request")[0]


# -- pipelining --------------------------------------------------------------------


def test_three_pipelined_requests_answered_in_order() -> None:
    data = (
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    conn, events = feed(data)
    assert [e.target for e in events if isinstance(e, RequestReceived)] == [b"/1", b"/2", b"/3"]
    assert conn.unanswered == 3
    for i in (1, 2, 3):
        conn.send_response(serialize_head(200, [(b"x-n", b"%d" % i)]), b"r%d" % i)
    assert conn.unanswered == 0
    out = conn.data_to_send()
    assert out == b"".join(
        b"HTTP/1.1 200 OK\r\nx-n: %d\r\ncontent-length: 2\r\n\r\nr%d" % (i, i) for i in (1, 2, 3)
    )
    assert not conn.must_close


PIPELINE = (
    b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
    b"\r\n"  # a stray empty line between requests is tolerated
    b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
    b"DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
)


def test_pipeline_in_one_read() -> None:
    _, events = feed(PIPELINE)
    assert [(e.method, e.body, e.keep_alive) for e in events if isinstance(e, RequestReceived)] == [
        (b"GET", b"", True),
        (b"POST", b"hello world", True),
        (b"PUT", b"wikipedia", True),
        (b"DELETE", b"", False),
    ]


@given(st.lists(st.integers(min_value=0, max_value=len(PIPELINE)), max_size=12))
def test_pipeline_split_anywhere_gives_the_same_events(cuts: list[int]) -> None:
    whole = feed(PIPELINE)[1]
    conn = H1ServerConnection(H1Config(), 0.0)
    events: list[object] = []
    bounds = [0, *sorted(cuts), len(PIPELINE)]
    for start, end in itertools.pairwise(bounds):
        if end > start:
            events += conn.receive_data(PIPELINE[start:end], 0.0)
    assert fold_bodies(events) == whole


def test_pipeline_fed_one_byte_at_a_time() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    events: list[object] = []
    for i in range(len(PIPELINE)):
        events += conn.receive_data(PIPELINE[i : i + 1], 0.0)
    assert fold_bodies(events) == feed(PIPELINE)[1]


def test_max_pipelined_pauses_parsing_until_resumed() -> None:
    conn = H1ServerConnection(H1Config(max_pipelined=2), 0.0)
    events = conn.receive_data(GET * 5, 0.0)
    assert len(events) == 2
    assert conn.paused
    assert conn.receive_data(GET, 0.0) == []  # still paused; data stays buffered
    conn.send_response(OK_HEAD, b"")
    assert not conn.paused
    assert len(conn.resume(0.0)) == 1
    assert conn.paused
    conn.send_response(OK_HEAD, b"")
    conn.send_response(OK_HEAD, b"")
    assert len(conn.resume(0.0)) == 2
    conn.send_response(OK_HEAD, b"")
    assert len(conn.resume(0.0)) == 1
    assert conn.resume(0.0) == []
    assert conn.unanswered == 2


def test_held_back_says_a_parse_left_requests_for_resume() -> None:
    conn = H1ServerConnection(H1Config(max_pipelined=2), 0.0)
    assert len(conn.receive_data(GET * 3, 0.0)) == 2
    assert conn.held_back
    conn.send_response(OK_HEAD, b"")
    conn.send_response(OK_HEAD, b"")
    assert not conn.paused and conn.held_back  # answered: the rest is ready to parse
    assert len(conn.resume(0.0)) == 1
    assert not conn.held_back
    assert len(conn.receive_data(GET, 0.0)) == 1  # one owed, one new: the bound, no rest
    assert not conn.held_back


def test_eof_while_paused_is_reported_after_resume() -> None:
    conn = H1ServerConnection(H1Config(max_pipelined=1), 0.0)
    assert len(conn.receive_data(GET * 2, 0.0)) == 1
    assert conn.receive_data(b"", 0.0) == []
    conn.send_response(OK_HEAD, b"")
    events = conn.resume(0.0)
    assert [type(e) for e in events] == [RequestReceived, ConnectionClosed]
    assert not conn.must_close
    conn.send_response(OK_HEAD, b"")
    assert conn.must_close
    assert conn.data_to_send().count(b"connection: close") == 1


# -- keep-alive ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Close", False),
        (b"1.1", b"keep-alive, CLOSE", False),
        (b"1.1", b"foo,  close ,bar", False),
        (b"1.1", b"keep-alive", True),
        (b"1.1", b"upgrade", True),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"foo, keep-alive", True),
        (b"1.0", b"close", False),
        (b"1.0", b"keep-alive, close", False),
    ],
)
def test_keep_alive_rules(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    data = b"GET / HTTP/" + version + b"\r\nHost: h\r\n"
    if connection is not None:
        data += b"Connection: " + connection + b"\r\n"
    conn, events = feed(data + b"\r\n" + GET)
    assert isinstance(events[0], RequestReceived)
    assert events[0].keep_alive is keep_alive
    # Nothing is parsed after a request that ends the connection.
    assert len(events) == (2 if keep_alive else 1)
    conn.send_response(OK_HEAD, b"x")
    out = conn.data_to_send()
    assert (b"connection: close\r\n" in out) is not keep_alive
    assert conn.must_close is not keep_alive
    if version == b"1.0" and keep_alive:
        assert b"connection: keep-alive\r\n" in out


def test_connection_split_across_lines() -> None:
    request = only_request(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nConnection: close\r\n\r\n"
    )
    assert not request.keep_alive


def test_application_connection_close_ends_connection() -> None:
    conn, _ = feed(GET + GET)
    conn.send_response(serialize_head(200, [(b"Connection", b"close")]), b"")
    assert conn.must_close
    out = conn.data_to_send()
    assert out.count(b"onnection") == 1
    conn.send_response(OK_HEAD, b"discarded")  # the connection is ending
    assert conn.data_to_send() == b""


def test_http10_keep_alive_not_duplicated_when_head_has_connection() -> None:
    conn, _ = feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    conn.send_response(serialize_head(200, [(b"connection", b"keep-alive")]), b"")
    assert conn.data_to_send().count(b"keep-alive") == 1


# -- EOF ------------------------------------------------------------------------------


def test_eof_at_boundary() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    assert conn.receive_data(b"", 0.0) == [ConnectionClosed()]
    assert conn.must_close
    assert conn.data_to_send() == b""


def test_eof_after_trailing_empty_line() -> None:
    conn, _ = feed(GET + b"\r\n")
    assert conn.receive_data(b"", 0.0) == [ConnectionClosed()]


def test_eof_with_owed_response_closes_after_it() -> None:
    conn, _ = feed(GET + GET)
    assert conn.receive_data(b"", 0.0) == [ConnectionClosed()]
    assert not conn.must_close
    conn.send_response(OK_HEAD, b"1")
    assert b"connection: close" not in conn.data_to_send()
    conn.send_response(OK_HEAD, b"2")
    assert b"connection: close\r\n" in conn.data_to_send()
    assert conn.must_close


@pytest.mark.parametrize(
    "partial",
    [
        b"GET / HT",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
    ],
)
def test_eof_mid_request_is_400(partial: bytes) -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    assert not whole_requests(conn.receive_data(partial, 0.0))
    events = conn.receive_data(b"", 0.0)
    assert [type(e) for e in events] == [ProtocolError]
    assert events[0].status == 400
    assert conn.must_close
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ")


# -- 100-continue ---------------------------------------------------------------------

EXPECT = b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_100_continue_sent_when_nothing_owed() -> None:
    conn, events = feed(EXPECT)
    assert [type(e) for e in events] == [RequestReceived]
    assert events[0].body is None  # the head, delivered before the body is asked for
    assert conn.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    events = conn.receive_data(b"hello", 0.0)
    assert events == [BodyReceived(b"hello"), BodyEnded(None)]
    assert conn.data_to_send() == b""


def test_100_continue_case_insensitive_and_chunked() -> None:
    conn, _ = feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert conn.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_100_continue_waits_for_earlier_responses() -> None:
    conn, events = feed(GET + EXPECT)
    assert len(events) == 2
    assert conn.data_to_send() == b""  # the GET's answer must come first
    conn.send_response(OK_HEAD, b"first")
    out = conn.data_to_send()
    assert out.endswith(b"first" + b"HTTP/1.1 100 Continue\r\n\r\n")
    events = conn.receive_data(b"hello", 0.0)
    assert events == [BodyReceived(b"hello"), BodyEnded(None)]


def test_100_continue_after_streamed_response() -> None:
    conn, _ = feed(GET + EXPECT)
    conn.start_response(OK_HEAD)
    conn.send_body(b"part")
    assert b"100 Continue" not in conn.data_to_send()
    conn.end_response()
    assert conn.data_to_send() == b"0\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"


def test_100_continue_not_sent_when_body_already_here() -> None:
    conn, events = feed(EXPECT + b"hello")
    assert events[0].body == b"hello"
    assert conn.data_to_send() == b""


def test_100_continue_dropped_when_body_arrives_before_earlier_response() -> None:
    conn, _ = feed(GET + EXPECT)
    assert conn.receive_data(b"hello", 0.0) == [BodyReceived(b"hello"), BodyEnded(None)]
    conn.send_response(OK_HEAD, b"first")
    assert b"100 Continue" not in conn.data_to_send()


def test_100_continue_too_large_is_413() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n"
    conn, events = feed(data, H1Config(max_body_size=99))
    assert events == [ProtocolError(413, "request body too large")]
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"100 Continue" not in out


def test_expect_ignored_for_http10() -> None:
    conn, events = feed(b"POST / HTTP/1.0\r\nExpect: whatever\r\nContent-Length: 1\r\n\r\n")
    assert [type(e) for e in events] == [RequestReceived]
    assert conn.data_to_send() == b""


def test_expect_without_body_needs_no_continue() -> None:
    conn, events = feed(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")
    assert isinstance(events[0], RequestReceived)
    assert conn.data_to_send() == b""


# -- responses --------------------------------------------------------------------------


def test_send_response_adds_content_length() -> None:
    conn, _ = feed(GET)
    conn.send_response(OK_HEAD, b"hello")
    assert conn.data_to_send() == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
    )


def test_send_response_keeps_given_content_length() -> None:
    conn, _ = feed(GET)
    conn.send_response(serialize_head(200, [(b"Content-Length", b"5")]), b"hello")
    assert conn.data_to_send() == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def test_head_response_drops_body_keeps_length() -> None:
    conn, _ = feed(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + GET)
    conn.send_response(OK_HEAD, b"hello")
    conn.send_response(OK_HEAD, b"hello")
    out = conn.data_to_send()
    first = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
    assert out == first + first + b"hello"


def test_head_response_without_body_gets_no_length() -> None:
    conn, _ = feed(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.send_response(OK_HEAD, b"")
    assert conn.data_to_send() == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    conn, _ = feed(GET)
    conn.send_response(serialize_head(status, []), b"ignored")
    assert conn.data_to_send() == serialize_head(status, []).data


def test_informational_response_before_final() -> None:
    conn, _ = feed(GET)
    conn.send_response(serialize_head(103, [(b"link", b"</s.css>; rel=preload")]), b"")
    assert conn.unanswered == 1
    conn.send_response(OK_HEAD, b"")
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 103 \r\nlink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK")


def test_informational_response_not_sent_to_http10() -> None:
    conn, _ = feed(b"GET / HTTP/1.0\r\n\r\n")
    conn.send_response(serialize_head(103, []), b"")
    assert conn.data_to_send() == b""


def test_101_rejected() -> None:
    conn, _ = feed(GET)
    with pytest.raises(H1Error):
        conn.send_response(serialize_head(101, [(b"upgrade", b"h2c")]), b"")


def test_response_without_request_is_an_error() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    with pytest.raises(H1Error):
        conn.send_response(OK_HEAD, b"")
    with pytest.raises(H1Error):
        conn.start_response(OK_HEAD)
    with pytest.raises(H1Error):
        conn.send_body(b"x")
    with pytest.raises(H1Error):
        conn.end_response()


def test_send_response_rejects_transfer_encoding() -> None:
    conn, _ = feed(GET)
    with pytest.raises(H1Error):
        conn.send_response(serialize_head(200, [(b"transfer-encoding", b"chunked")]), b"")


# -- streaming ---------------------------------------------------------------------------


def test_streamed_chunked_response() -> None:
    conn, _ = feed(GET + GET)
    conn.start_response(OK_HEAD)
    assert conn.unanswered == 2
    conn.send_body(b"hello")
    conn.send_body(b"")  # must not end the body
    conn.send_body(b" world, this is long")
    conn.end_response()
    assert conn.unanswered == 1
    assert conn.data_to_send() == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n14\r\n world, this is long\r\n0\r\n\r\n"
    )
    assert not conn.must_close


def test_streamed_with_content_length() -> None:
    conn, _ = feed(GET)
    conn.start_response(serialize_head(200, [(b"content-length", b"10")]))
    conn.send_body(b"01234")
    conn.send_body(b"56789")
    with pytest.raises(H1Error):
        conn.send_body(b"x")
    conn.end_response()
    assert conn.data_to_send() == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789"
    assert not conn.must_close


def test_streamed_short_body_forces_close() -> None:
    conn, _ = feed(GET + GET)
    conn.start_response(serialize_head(200, [(b"content-length", b"10")]))
    conn.send_body(b"0123")
    with pytest.raises(H1Error):
        conn.end_response()
    assert conn.must_close


def test_streamed_with_explicit_chunked() -> None:
    conn, _ = feed(GET)
    conn.start_response(serialize_head(200, [(b"Transfer-Encoding", b"chunked")]))
    conn.send_body(b"ab")
    conn.end_response()
    out = conn.data_to_send()
    assert out.lower().count(b"transfer-encoding") == 1
    assert out.endswith(b"\r\n\r\n2\r\nab\r\n0\r\n\r\n")


def test_streamed_http10_is_close_delimited() -> None:
    conn, _ = feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    conn.start_response(OK_HEAD)
    conn.send_body(b"abc")
    assert not conn.must_close
    conn.end_response()
    assert conn.must_close
    assert conn.data_to_send() == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nabc"
    )


def test_streamed_head_response_drops_body() -> None:
    conn, _ = feed(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.start_response(OK_HEAD)
    conn.send_body(b"dropped")
    conn.end_response()
    assert conn.data_to_send() == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"


def test_streamed_response_with_close_request() -> None:
    conn, _ = feed(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    conn.start_response(OK_HEAD)
    conn.send_body(b"x")
    conn.end_response()
    assert conn.must_close
    assert b"connection: close\r\n" in conn.data_to_send()


def test_cannot_interleave_responses() -> None:
    conn, _ = feed(GET + GET)
    conn.start_response(OK_HEAD)
    with pytest.raises(H1Error):
        conn.send_response(OK_HEAD, b"")
    with pytest.raises(H1Error):
        conn.start_response(OK_HEAD)


def test_streamed_chunked_rejected_for_http10() -> None:
    conn, _ = feed(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(H1Error):
        conn.start_response(serialize_head(200, [(b"transfer-encoding", b"chunked")]))


# -- robustness ------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_produce_events(data: bytes) -> None:
    conn = H1ServerConnection(H1Config(max_header_bytes=200, max_request_line=64), 0.0)
    events = conn.receive_data(data, 0.0)
    events += conn.receive_data(b"", 0.0)
    for event in events:
        assert isinstance(event, RequestReceived | ProtocolError | ConnectionClosed)
    conn.data_to_send()


_TOKENS = st.sampled_from(
    [
        b"GET",
        b"POST",
        b" ",
        b"/",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b"Host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"chunked",
        b"0",
        b"5",
        b"ff",
        b";",
        b"Expect",
        b"100-continue",
        b"Connection",
        b"close",
        b"\t",
        b"\x00",
        b"%",
        b"*",
        b"hello",
    ]
)


@settings(max_examples=500)
@given(st.lists(_TOKENS, max_size=60), st.integers(min_value=1, max_value=7))
def test_structured_garbage_only_produces_events(parts: list[bytes], step: int) -> None:
    data = b"".join(parts)
    conn = H1ServerConnection(H1Config(max_body_size=100), 0.0)
    events: list[object] = []
    for i in range(0, len(data), step):
        events += conn.receive_data(data[i : i + step], 0.0)
        if conn.unanswered:
            conn.send_response(OK_HEAD, b"ok")
            events += conn.resume(0.0)
    events += conn.receive_data(b"", 0.0)
    for event in events:
        assert isinstance(event, RequestReceived | ProtocolError | ConnectionClosed)


def test_slowloris_head_is_linear() -> None:
    # A 60 KB head delivered one byte at a time: with re-scanning this is
    # ~1.8e9 byte comparisons plus as many copies; linear it is instant.
    config = H1Config(max_header_bytes=65536)
    data = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: " + b"p" * 60000 + b"\r\n\r\n"
    conn = H1ServerConnection(config or H1Config(), 0.0)
    events: list[object] = []
    view = memoryview(data)
    reader = conn._reader
    for i in range(len(data)):
        events += conn.receive_data(bytes(view[i : i + 1]), 0.0)
        if not events:
            # Linear, not by the clock: each search resumes where the last one stopped
            # (less the 3 octets a terminator may straddle), never from the start.
            assert reader._scan >= reader.buffered - 3
    assert len(events) == 1
    assert isinstance(events[0], RequestReceived)


def test_slowloris_chunked_body_is_linear() -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (100, b"c" * 100) for _ in range(300)) + b"0\r\n\r\n"
    data = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    conn = H1ServerConnection(H1Config(), 0.0)
    events: list[object] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1], 0.0)
    (request,) = fold_bodies(events)
    assert isinstance(request, RequestReceived)
    assert request.body == b"c" * 30000


def test_large_body_in_many_reads() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body)
    conn = H1ServerConnection(H1Config(), 0.0)
    events: list[object] = conn.receive_data(head, 0.0)
    for i in range(0, len(body), 65536):
        events += conn.receive_data(body[i : i + 65536], 0.0)
    # The head at once, then each read's part as it came: no copy of the whole body.
    assert [len(e.data) for e in events[1:-1] if isinstance(e, BodyReceived)] == [65536] * 16
    (request,) = fold_bodies(events)
    assert isinstance(request, RequestReceived)
    assert request.body == body


# -- repeated field lines: the keep-alive fast path -----------------------------------------

_REQUEST_LINES = st.sampled_from(
    [
        b"GET / HTTP/1.1",
        b"GET /book?id=7 HTTP/1.1",
        b"HEAD /x HTTP/1.1",
        b"POST /form HTTP/1.1",
        b"GET / HTTP/1.0",
        b"GET http://other.example:81/abs?q HTTP/1.1",
        b"OPTIONS * HTTP/1.1",
        b"CONNECT example.com:443 HTTP/1.1",
        b"GET / HTTP/2.0",
        b"GET /a%zz HTTP/1.1",
        b"GET  / HTTP/1.1",
        b"GET\t/ HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET /\x01 HTTP/1.1",
        b"GET /a b HTTP/1.1",
        b"GET HTTP/1.1",
        b" GET / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b"GET /\r HTTP/1.1",
        b"",
    ]
)
_HOST_LINES = st.sampled_from(
    [b"Host: example.com", b"host: example.com:8080", b"Host: bad host", b"Host:"]
)
_GOOD_FIELD_LINES = st.sampled_from(
    [
        b"User-Agent: h2load nghttp2/1.52.0",
        b"Accept: */*",
        b"Connection: close",
        b"Connection: keep-alive",
        b"Content-Length: 0",
        b"Expect: 100-continue",
        b"X-Empty:",
    ]
)
_BAD_FIELD_LINES = st.sampled_from(
    [
        b"Content-Length: 3",
        b"Content-Length: -1",
        b"Transfer-Encoding: chunked",
        b"Expect: magic",
        b" folded",
        b"Bad Name: x",
        b"X-Ctl: a\x00b",
        b"Host: second.example",
    ]
)
# Mostly heads a client would send again and again (a Host, then common fields), some
# with a line that has a body or is an error.
_FIELD_LINES = st.builds(
    lambda host, good, bad: [*host, *good, *bad],
    st.lists(_HOST_LINES, max_size=1),
    st.lists(_GOOD_FIELD_LINES, max_size=3),
    st.lists(_BAD_FIELD_LINES, max_size=1),
)


def _second_request(first_lines: list[bytes], line: bytes, mutate: int) -> bytes:
    """The request line, then `first_lines` as they were (0), one octet longer (1), or with
    their last octet changed (2)."""
    lines = list(first_lines)
    if mutate and lines:
        if mutate == 1:
            lines[-1] += b"x"
        else:
            lines[-1] = lines[-1][:-1] + (b"y" if lines[-1][-1:] != b"y" else b"z")
    return b"\r\n".join([line, *lines]) + b"\r\n\r\n"


def _after(first: bytes, second: bytes, whole: bool, config: H1Config) -> tuple[object, ...]:
    """Everything observable after `first` (answered) then `second`, given to the core
    whole (the fast path may take it) or in two reads (only the general path can)."""
    conn = H1ServerConnection(config or H1Config(), 0.0)
    for event in conn.receive_data(first, 0.0):
        if isinstance(event, RequestReceived):
            conn.send_response(OK_HEAD, b"ok")
    conn.data_to_send()
    if whole:
        events = conn.receive_data(second, 0.0)
    else:
        events = conn.receive_data(second[:1], 0.0) + conn.receive_data(second[1:], 0.0)
    if any(isinstance(event, RequestReceived) for event in events):
        conn.send_response(OK_HEAD, b"ok")
    later = conn.receive_data(b"", 0.0)
    return (
        events,
        later,
        conn.data_to_send(),
        conn.must_close,
        conn.unanswered,
        conn.has_partial_request,
    )


@settings(max_examples=600)
@given(
    _REQUEST_LINES,
    _FIELD_LINES,
    _REQUEST_LINES,
    st.integers(0, 2),
    st.sampled_from([b"", b"", b"abc", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]),
    st.integers(0, 1),
)
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"GET / HTTP/1.0", 0, b"", 0)
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"GET / HTTP/1.1", 2, b"", 0)
@example(b"GET / HTTP/1.1", [b"Host: a"], b"GET http://other.example:81/abs?q HTTP/1.1", 0, b"", 0)
@example(b"GET / HTTP/1.1", [b"Host: a"], b"GET /book?id=7 HTTP/1.1", 0, b"", 1)
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"HEAD /x HTTP/1.1", 0, b"", 1)
# A method or target the general parser refuses, behind the cached field lines: each is a 400
# there, so the fast path's own check of the method and target must refuse it too.
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"GET /\x01 HTTP/1.1", 0, b"", 0)
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"G(T / HTTP/1.1", 0, b"", 0)
@example(b"GET / HTTP/1.1", [b"Host: example.com"], b"GET\t/ HTTP/1.1", 0, b"", 0)
def test_repeated_fields_fast_path_matches_the_general_path(
    first_line: bytes,
    field_lines: list[bytes],
    second_line: bytes,
    mutate: int,
    extra: bytes,
    limits: int,
) -> None:
    first = b"\r\n".join([first_line, *field_lines]) + b"\r\n\r\n"
    second = _second_request(field_lines, second_line, mutate) + extra
    # Default limits, or ones that the longer request lines and heads run into.
    config = [
        H1Config(max_pipelined=4),
        H1Config(max_pipelined=4, max_header_bytes=38, max_request_line=20),
    ][limits]
    assert _after(first, second, True, config) == _after(first, second, False, config)


def test_repeated_fields_are_remembered_only_for_bodiless_requests() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n", 0.0)
    assert conn._fields_cache is not None
    assert conn._fields_cache[0] == b"HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
    conn.send_response(OK_HEAD, b"ok")
    conn.receive_data(b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 0.0)
    assert conn._fields_cache[0] == b"HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"  # body: not kept


def test_large_field_lines_are_not_remembered() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: " + b"c" * 3000 + b"\r\n\r\n", 0.0)
    assert conn._fields_cache is None  # an idle connection does not keep a big head alive


def test_repeated_fields_give_each_request_its_own_header_list() -> None:
    request = b"GET /%d HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
    conn = H1ServerConnection(H1Config(), 0.0)
    first = conn.receive_data(request % 1, 0.0)[0]
    assert isinstance(first, RequestReceived)
    first.headers.append((b"x-added", b"by a handler"))
    conn.send_response(OK_HEAD, b"ok")
    second = conn.receive_data(request % 2, 0.0)[0]
    assert isinstance(second, RequestReceived)
    assert second.target == b"/2"
    assert second.headers == [(b"host", b"h"), (b"accept", b"*/*")]
    assert second.headers is not first.headers


def test_repeated_fields_respect_the_pipelining_limit() -> None:
    request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    conn = H1ServerConnection(H1Config(max_pipelined=2), 0.0)
    assert len(conn.receive_data(request, 0.0)) == 1
    assert len(conn.receive_data(request, 0.0)) == 1
    assert conn.receive_data(request, 0.0) == []  # paused: held back, not delivered
    assert conn.paused
    conn.send_response(OK_HEAD, b"")
    assert len(conn.resume(0.0)) == 1


def test_repeated_fields_wait_behind_a_streamed_answer_at_the_pipelining_limit() -> None:
    """The cached request arriving while the previous answer is still streaming, at a limit
    of one request in flight: held back like any other request, not delivered."""
    request = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
    conn = H1ServerConnection(H1Config(max_pipelined=1), 0.0)
    conn.receive_data(request, 0.0)
    conn.send_response(OK_HEAD, b"ok")
    assert len(conn.receive_data(request, 0.0)) == 1
    conn.start_response(serialize_head(200, []))
    conn.send_body(b"part")
    assert conn.receive_data(request, 1.0) == []
    assert conn.held_back


# -- responses read back by an independent client (h11) -----------------------------------

_RESPONSE_FIELDS = st.lists(
    st.sampled_from(
        [
            (b"content-type", b"text/plain"),
            (b"content-length", b"2"),
            (b"Content-Length", b"2"),
            (b"connection", b"close"),
            (b"Connection", b"keep-alive"),
            (b"transfer-encoding", b"chunked"),
            (b"x-connection", b"close"),
            (b"etag", b'"1"'),
        ]
    ),
    max_size=4,
)


def _read_back(method: bytes, data: bytes) -> tuple[list[int], bytes, bool]:
    """(statuses, body, keep-alive) of the responses in ``data``, as h11 reads them."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    statuses: list[int] = []
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, (h11.InformationalResponse, h11.Response)):
            statuses.append(event.status_code)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return statuses, body, client.our_state is h11.DONE
        else:
            raise AssertionError(f"incomplete response: {event!r}")


@settings(max_examples=300)
@given(
    st.sampled_from([100, 103, 200, 204, 304, 404, 500]),
    _RESPONSE_FIELDS,
    st.sampled_from([b"", b"ok"]),
    st.sampled_from([b"GET", b"HEAD"]),
)
def test_whole_responses_read_back_by_h11(
    status: int, fields: list[tuple[bytes, bytes]], body: bytes, method: bytes
) -> None:
    try:
        head = serialize_head(status, fields)
    except H1Error:
        return  # framing nobody may send (both fields, say): refused before the core
    # A handler's own content-length is trusted; only a true one can be read back.
    assume(head.framing != FIXED or head.length == len(body) or method == b"HEAD" or head.no_body)
    conn, _ = feed(method + b" / HTTP/1.1\r\nHost: h\r\n\r\n")
    if head.framing == CHUNKED and status >= 200:
        with pytest.raises(H1Error):
            conn.send_response(head, body)
        return
    conn.send_response(head, body)
    if status < 200:
        assert conn.unanswered == 1
        conn.send_response(OK_HEAD, body)
        status = 200
        head = OK_HEAD
    statuses, received, _ = _read_back(method, conn.data_to_send())
    assert statuses[-1] == status
    assert received == (b"" if method == b"HEAD" or head.no_body else body)
    assert conn.must_close is head.close


# -- the fast path of a whole answer ---------------------------------------------------


_AS_IS_REQUESTS = [
    GET,
    GET + GET,  # pipelined: the second is owed after the first answer
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab",  # body still arriving
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999\r\n\r\nab",  # too long to drop
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    GET + b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    GET + b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    GET + b"GET / HTTP/1.1\r\nHost: a\r\n",  # a partial head after the request
    GET + b"\x00bad\r\n\r\n",  # an error response waits behind the answer
]
_AS_IS_HEADS = [
    [(b"content-length", b"2")],
    [(b"content-length", b"0")],
    [(b"content-length", b"2"), (b"connection", b"close")],
    [(b"content-length", b"2"), (b"connection", b"keep-alive")],
    [(b"content-type", b"text/plain")],
]


@pytest.mark.parametrize("eof", [False, True])
@pytest.mark.parametrize("shutdown", [False, True])
@pytest.mark.parametrize("fields", _AS_IS_HEADS)
@pytest.mark.parametrize("request_bytes", _AS_IS_REQUESTS)
def test_a_head_sent_as_is_gives_what_the_general_path_gives(
    request_bytes: bytes, fields: list[tuple[bytes, bytes]], shutdown: bool, eof: bool
) -> None:
    outputs = []
    for fast in (True, False):
        conn, _ = feed(request_bytes)
        if eof:
            conn.receive_data(b"", 0.0)
        if shutdown:
            conn.start_graceful_shutdown()
        head = serialize_head(200, fields)
        assert head.sent_as_is is (fields[0][0] == b"content-length" and len(fields) == 1)
        head.sent_as_is = head.sent_as_is and fast  # False: the general path only
        answered = 0
        while conn.unanswered and answered < 2 and not conn.must_close:
            conn.send_response(head, b"ok"[: head.length] if head.length >= 0 else b"ok")
            answered += 1
        outputs.append(
            (conn.data_to_send(), conn.must_close, conn.unanswered, list(conn.resume(0.0)))
        )
        # What follows (the rest of a body, the next request) is read the same way too.
        outputs.append((list(conn.receive_data(b"cde\r\n0\r\n\r\n" + GET, 0.0)),))
    assert outputs[:2] == outputs[2:]
