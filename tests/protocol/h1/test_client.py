"""H1ClientConnection: request serialisation and response framing (RFC 9112 §6.3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h1 import (
    ConnectionClosed,
    H1ClientConnection,
    H1Config,
    H1Error,
    InformationalResponse,
    ResponseReceived,
)

HOST = [(b"host", b"example.com")]


def client_after(*methods: bytes) -> H1ClientConnection:
    client = H1ClientConnection()
    for method in methods:
        client.send_request(method, b"/", HOST)
    client.data_to_send()
    return client


# -- requests ----------------------------------------------------------------------------


def test_get_request_bytes() -> None:
    client = H1ClientConnection()
    client.send_request(b"GET", b"/x?y=1", [(b"host", b"h"), (b"accept", b"*/*")])
    assert client.data_to_send() == b"GET /x?y=1 HTTP/1.1\r\nhost: h\r\naccept: */*\r\n\r\n"
    assert client.unanswered == 1


def test_body_gets_content_length() -> None:
    client = H1ClientConnection()
    client.send_request(b"PUT", b"/", HOST, b"data")
    assert client.data_to_send() == (
        b"PUT / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 4\r\n\r\ndata"
    )


def test_empty_post_announces_zero_length() -> None:
    client = H1ClientConnection()
    client.send_request(b"POST", b"/", HOST)
    assert b"content-length: 0\r\n" in client.data_to_send()


def test_given_content_length_must_match() -> None:
    client = H1ClientConnection()
    client.send_request(b"POST", b"/", [*HOST, (b"Content-Length", b"3")], b"abc")
    assert client.data_to_send().count(b"ontent-") == 1
    with pytest.raises(H1Error):
        client.send_request(b"POST", b"/", [*HOST, (b"content-length", b"4")], b"abc")


def test_chunked_request_body() -> None:
    client = H1ClientConnection()
    client.send_request(b"POST", b"/", [*HOST, (b"transfer-encoding", b"chunked")], b"hello")
    assert client.data_to_send().endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    client.send_request(b"POST", b"/", [*HOST, (b"transfer-encoding", b"chunked")])
    assert client.data_to_send().endswith(b"\r\n\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("method", "target", "fields"),
    [
        (b"GET", b"/", []),  # no host
        (b"G T", b"/", HOST),
        (b"", b"/", HOST),
        (b"GET", b"", HOST),
        (b"GET", b"/a b", HOST),
        (b"GET", b"/\r\nX: y", HOST),
        (b"GET", b"/", [*HOST, (b"x", b"a\r\nInjected: 1")]),
        (b"GET", b"/", [*HOST, (b"x y", b"v")]),
        (b"GET", b"/", [*HOST, (b"x", b"\x00")]),
        (b"CONNECT", b"h:443", HOST),
        (b"POST", b"/", [*HOST, (b"transfer-encoding", b"gzip")]),
        (b"POST", b"/", [*HOST, (b"transfer-encoding", b"chunked"), (b"content-length", b"0")]),
    ],
)
def test_invalid_requests_rejected(
    method: bytes, target: bytes, fields: list[tuple[bytes, bytes]]
) -> None:
    client = H1ClientConnection()
    with pytest.raises(H1Error):
        client.send_request(method, target, fields)
    assert client.data_to_send() == b""
    assert client.unanswered == 0


def test_no_request_after_connection_close() -> None:
    client = H1ClientConnection()
    client.send_request(b"GET", b"/", [*HOST, (b"connection", b"close")])
    with pytest.raises(H1Error):
        client.send_request(b"GET", b"/", HOST)


_CACHEABLE_FIELDS = st.lists(
    st.sampled_from(
        [
            (b"accept", b"*/*"),
            (b"user-agent", b"h2books/1"),
            (b"Accept", b"text/html"),
            (b"connection", b"close"),
            (b"connection", b"keep-alive"),
            (b"content-length", b"2"),
            (b"transfer-encoding", b"chunked"),
            (b"x", b"a\r\nInjected: 1"),
        ]
    ),
    max_size=3,
)


@given(
    _CACHEABLE_FIELDS,
    st.lists(
        st.tuples(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT"]), st.binary(max_size=3)),
        min_size=1,
        max_size=3,
    ),
)
def test_a_fields_tuple_sent_again_gives_what_a_fresh_list_gives(
    extra: list[tuple[bytes, bytes]], requests: list[tuple[bytes, bytes]]
) -> None:
    fields = ((b"host", b"example.com"), *extra)
    reused, fresh = H1ClientConnection(), H1ClientConnection()
    for method, body in requests:
        outcomes = []
        for client, given_fields in ((reused, fields), (fresh, list(fields))):
            try:
                client.send_request(method, b"/x", given_fields, body)
                outcome: object = (client.data_to_send(), client.unanswered)
            except H1Error as exc:
                outcome = exc.reason
            outcomes.append(outcome)
        assert outcomes[0] == outcomes[1]


def test_a_fields_tuple_is_encoded_once() -> None:
    client = H1ClientConnection()
    fields = ((b"host", b"h"), (b"accept", b"*/*"))
    client.send_request(b"GET", b"/1", fields)
    assert client._plain_fields == (fields, b"host: h\r\naccept: */*\r\n")
    client.send_request(b"POST", b"/2", fields, b"hi")
    assert client.data_to_send() == (
        b"GET /1 HTTP/1.1\r\nhost: h\r\naccept: */*\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nhost: h\r\naccept: */*\r\ncontent-length: 2\r\n\r\nhi"
    )


def test_a_fields_list_is_not_remembered() -> None:
    # A list may change between two calls: only tuples are remembered.
    client = H1ClientConnection()
    fields = [(b"host", b"h")]
    client.send_request(b"GET", b"/", fields)
    assert client._plain_fields is None
    fields.append((b"x", b"\x00"))
    with pytest.raises(H1Error):
        client.send_request(b"GET", b"/", fields)


# -- responses ----------------------------------------------------------------------------


def test_content_length_response() -> None:
    client = client_after(b"GET")
    events = client.receive_data(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", 0.0
    )
    assert events == [
        ResponseReceived(
            200,
            b"OK",
            b"1.1",
            [(b"content-type", b"text/plain"), (b"content-length", b"5")],
            b"hello",
            True,
        )
    ]
    assert client.unanswered == 0


def test_chunked_response_with_trailers() -> None:
    client = client_after(b"GET")
    events = client.receive_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer-Field: 1\r\n\r\n",
        0.0,
    )
    assert len(events) == 1
    assert isinstance(events[0], ResponseReceived)
    assert events[0].body == b"abcde"


def test_close_delimited_response_completes_at_eof() -> None:
    client = client_after(b"GET")
    assert client.receive_data(b"HTTP/1.1 200 OK\r\n\r\nsome ", 0.0) == []
    assert client.receive_data(b"body", 0.0) == []
    events = client.receive_data(b"", 0.0)
    assert len(events) == 1
    assert isinstance(events[0], ResponseReceived)
    assert events[0].body == b"some body"
    assert events[0].keep_alive is False


def test_transfer_coding_without_final_chunked_reads_until_close() -> None:
    client = client_after(b"GET")
    assert client.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", 0.0) == []
    events = client.receive_data(b"", 0.0)
    assert isinstance(events[0], ResponseReceived)
    assert events[0].body == b"zz"


@pytest.mark.parametrize(
    ("method", "status"), [(b"GET", 204), (b"GET", 304), (b"HEAD", 200), (b"HEAD", 404)]
)
def test_bodyless_responses(method: bytes, status: int) -> None:
    client = client_after(method, b"GET")
    events = client.receive_data(
        b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" % status,
        0.0,
    )
    assert [(e.status, e.body) for e in events if isinstance(e, ResponseReceived)] == [
        (status, b""),
        (200, b"ok"),
    ]


def test_informational_responses() -> None:
    client = client_after(b"POST")
    events = client.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        0.0,
    )
    assert events == [
        InformationalResponse(100, []),
        InformationalResponse(103, [(b"link", b"</a>")]),
        ResponseReceived(201, b"Created", b"1.1", [(b"content-length", b"0")], b"", True),
    ]


def test_pipelined_responses_matched_in_order() -> None:
    client = client_after(b"HEAD", b"GET", b"GET")
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
    )
    events = client.receive_data(data, 0.0)
    assert [e.body for e in events if isinstance(e, ResponseReceived)] == [b"", b"abc", b"z"]


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_response_split_anywhere(cuts: list[int]) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nz\r\n0\r\nT: 1\r\n\r\n"
        b"HTTP/1.0 200 OK\r\n\r\nuntil close"
    )
    client = client_after(b"GET", b"GET", b"GET")
    events: list[object] = []
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        if end > start:  # b"" would mean EOF
            events += client.receive_data(data[start:end], 0.0)
    events += client.receive_data(b"", 0.0)
    assert [e.body for e in events if isinstance(e, ResponseReceived)] == [
        b"abc",
        b"z",
        b"until close",
    ]


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
    ],
)
def test_response_keep_alive(version: bytes, connection: bytes, keep_alive: bool) -> None:
    client = client_after(b"GET")
    events = client.receive_data(
        b"HTTP/" + version + b" 200 OK\r\n" + connection + b"Content-Length: 0\r\n\r\n", 0.0
    )
    assert isinstance(events[0], ResponseReceived)
    assert events[0].keep_alive is keep_alive
    assert events[0].http_version == version


def test_status_line_without_reason() -> None:
    client = client_after(b"GET", b"GET")
    events = client.receive_data(
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 0.0
    )
    assert [(e.status, e.reason) for e in events if isinstance(e, ResponseReceived)] == [
        (200, b""),
        (404, b""),
    ]


def test_eof_at_boundary() -> None:
    client = client_after(b"GET")
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0.0)
    assert client.receive_data(b"", 0.0) == [ConnectionClosed()]


def test_eof_mid_response_raises() -> None:
    client = client_after(b"GET")
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0.0)
    with pytest.raises(H1Error):
        client.receive_data(b"", 0.0)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # RFC 9112 6.1
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"garbage\r\n\r\n",
    ],
)
def test_malformed_responses_raise(data: bytes) -> None:
    client = client_after(b"GET")
    with pytest.raises(H1Error):
        client.receive_data(data, 0.0)
    with pytest.raises(H1Error):  # the connection stays broken
        client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0.0)


def test_response_without_request_raises() -> None:
    client = H1ClientConnection()
    with pytest.raises(H1Error):
        client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0.0)


def test_error_after_good_response_is_raised_on_next_call() -> None:
    client = client_after(b"GET", b"GET")
    events = client.receive_data(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0.0
    )
    assert len(events) == 1
    with pytest.raises(H1Error):
        client.receive_data(b"", 0.0)


def test_body_limit() -> None:
    client = H1ClientConnection(H1Config(max_body_size=4))
    client.send_request(b"GET", b"/", HOST)
    with pytest.raises(H1Error):
        client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0.0)
    client = H1ClientConnection(H1Config(max_body_size=4))
    client.send_request(b"GET", b"/", HOST)
    with pytest.raises(H1Error):
        client.receive_data(b"HTTP/1.1 200 OK\r\n\r\n12345", 0.0)


def test_data_after_closing_response_is_ignored() -> None:
    client = client_after(b"GET")
    events = client.receive_data(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\njunk", 0.0
    )
    assert len(events) == 1
    assert client.receive_data(b"more junk", 0.0) == []
    with pytest.raises(H1Error):
        client.send_request(b"GET", b"/", HOST)
