"""Request bodies in parts (protocol/h1/body.py through H1ServerConnection): the head at once,
the body as it arrives, trailers, limits, the unread rest of an answered body, deadlines."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.protocol.h1 import (
    BodyEnded,
    BodyReceived,
    ConnectionTimedOut,
    H1Config,
    H1ServerConnection,
    ProtocolError,
    RequestReceived,
    serialize_head,
)
from h2books.protocol.h1.body import DISCARD_LIMIT
from tests.protocol.h1.folding import fold_bodies, whole_requests
from tests.protocol.h1.strategies import field_names, field_values

OK = serialize_head(200, [(b"content-type", b"text/plain")])
CHUNKED_HEAD = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
GET = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"


def fixed_head(length: int, target: bytes = b"/up") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (target, length)


def chunked(body: bytes, step: int, trailers: bytes = b"") -> bytes:
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    return (
        b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)
        + b"0\r\n"
        + trailers
        + b"\r\n"
    )


def connection(**limits: int) -> H1ServerConnection:
    return H1ServerConnection(H1Config(**limits), 0.0)  # type: ignore[arg-type]


# -- the head at once, the body as it arrives ------------------------------------------------


def test_content_length_body_in_parts() -> None:
    conn = connection()
    events = conn.receive_data(fixed_head(10) + b"abc", 0.0)
    assert [type(e) for e in events] == [RequestReceived, BodyReceived]
    assert events[0].body is None and events[1] == BodyReceived(b"abc")
    assert conn.receive_data(b"defg", 0.0) == [BodyReceived(b"defg")]
    assert conn.receive_data(b"hij" + GET, 0.0)[:2] == [BodyReceived(b"hij"), BodyEnded(None)]


def test_head_alone_is_delivered_before_any_body_byte() -> None:
    conn = connection()
    events = conn.receive_data(fixed_head(5), 0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].body is None
    assert conn.unanswered == 1  # the request is owed an answer from now on


def test_a_small_body_all_there_comes_whole_with_its_head() -> None:
    conn = connection()
    (request,) = conn.receive_data(fixed_head(5) + b"hello", 0.0)
    assert isinstance(request, RequestReceived) and request.body == b"hello"
    (request,) = conn.receive_data(CHUNKED_HEAD + chunked(b"hello", 2, b"x-sum: 5\r\n"), 0.0)
    assert isinstance(request, RequestReceived)
    assert (request.body, request.trailers) == (b"hello", [(b"x-sum", b"5")])


def test_chunked_body_in_parts_with_trailers() -> None:
    conn = connection()
    events = conn.receive_data(CHUNKED_HEAD + b"5\r\nhel", 0.0)
    assert [type(e) for e in events] == [RequestReceived, BodyReceived]
    assert events[1] == BodyReceived(b"hel")
    events = conn.receive_data(
        b"lo\r\n3;a=b\r\nabc\r\n0\r\nX-Digest: sha-256=x\r\nX-B:  2 \r\n", 0.0
    )
    assert events == [BodyReceived(b"loabc")]  # one part per read, chunk framing gone
    assert conn.receive_data(b"\r\n", 0.0) == [
        BodyEnded([(b"x-digest", b"sha-256=x"), (b"x-b", b"2")])
    ]


def test_one_part_per_read_whatever_the_chunks() -> None:
    conn = connection()
    conn.receive_data(CHUNKED_HEAD, 0.0)
    events = conn.receive_data(b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n", 0.0)
    assert events == [BodyReceived(b"abc")]


BODY = bytes(range(256)) * 3 + b"tail"
TRAILERS = b"X-Checksum: 42\r\nX-Other: a b\r\n"
STREAM = (
    fixed_head(len(BODY))
    + BODY
    + CHUNKED_HEAD
    + chunked(BODY, 100, TRAILERS)
    + CHUNKED_HEAD
    + b"0\r\n\r\n"
    + GET
)


def test_pipelined_bodies_in_one_read() -> None:
    events = connection().receive_data(STREAM, 0.0)
    requests = whole_requests(events)
    assert [(r.body, r.trailers) for r in requests] == [
        (BODY, None),
        (BODY, [(b"x-checksum", b"42"), (b"x-other", b"a b")]),
        (b"", None),
        (b"", None),
    ]
    assert len(events) == 4  # all there: every request whole


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_a_cut_at_every_offset_gives_the_same_requests(cut: int) -> None:
    whole = fold_bodies(connection().receive_data(STREAM, 0.0))
    conn = connection()
    events = [
        e for part in (STREAM[:cut], STREAM[cut:]) if part for e in conn.receive_data(part, 0.0)
    ]
    assert fold_bodies(events) == whole
    assert all(e.data for e in events if isinstance(e, BodyReceived))


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=30))
def test_any_cuts_give_the_same_requests(cuts: list[int]) -> None:
    whole = fold_bodies(connection().receive_data(STREAM, 0.0))
    conn = connection()
    events: list[object] = []
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        events += conn.receive_data(STREAM[start:end], 0.0)
    assert fold_bodies(events) == whole


# -- trailers: the field rules of a head, and its bounds ------------------------------------------


@pytest.mark.parametrize(
    ("trailers", "status"),
    [
        (b"Bad Name: x\r\n", 400),
        (b"X-A: a\x01b\r\n", 400),
        (b"X-A: a\nX-B: b\r\n", 400),
        (b" folded: x\r\n", 400),
        (b"Content-Length: 5\r\n", 400),
        (b"Transfer-Encoding: chunked\r\n", 400),
        (b"Host: other\r\n", 400),
        (b"".join(b"X-%d: v\r\n" % i for i in range(101)), 431),
        (b"X-Big: " + b"v" * 70000 + b"\r\n", 431),
    ],
    ids=["name", "ctl", "bare-lf", "folding", "content-length", "te", "host", "count", "size"],
)
@pytest.mark.parametrize("split", [False, True])
def test_bad_trailers_are_refused(trailers: bytes, status: int, split: bool) -> None:
    conn = connection()
    data = CHUNKED_HEAD + chunked(b"abc", 3, trailers)
    events = (
        conn.receive_data(data[:70], 0.0) + conn.receive_data(data[70:], 0.0)
        if split
        else (conn.receive_data(data, 0.0))
    )
    assert [e.status for e in events if isinstance(e, ProtocolError)] == [status]
    assert not whole_requests(events)
    assert conn.data_to_send().startswith(b"HTTP/1.1 %d " % status)
    assert conn.must_close


def test_trailer_count_at_the_limit_is_accepted() -> None:
    trailers = b"".join(b"X-%d: v\r\n" % i for i in range(100))
    (request,) = connection().receive_data(CHUNKED_HEAD + chunked(b"abc", 3, trailers), 0.0)
    assert isinstance(request, RequestReceived) and request.trailers is not None
    assert len(request.trailers) == 100


trailer_fields = st.lists(st.tuples(field_names, field_values), min_size=1, max_size=6)


def via_h11(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    assert isinstance(conn.next_event(), h11.Request)
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        else:
            assert isinstance(event, h11.EndOfMessage)
            return body, [(bytes(n), bytes(v)) for n, v in event.headers]


@settings(max_examples=200)
@given(
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=64),
    trailer_fields,
    st.integers(1, 40),
)
def test_chunked_bodies_and_trailers_parse_as_h11_does(
    body: bytes, step: int, fields: list[tuple[bytes, bytes]], read_size: int
) -> None:
    data = CHUNKED_HEAD + chunked(body, step, b"".join(n + b": " + v + b"\r\n" for n, v in fields))
    conn = connection()
    events: list[object] = []
    for i in range(0, len(data), read_size):
        events += conn.receive_data(data[i : i + read_size], 0.0)
    (request,) = whole_requests(events)
    assert (request.body, request.trailers) == via_h11(data)


# -- limits -------------------------------------------------------------------------------------


def test_chunked_body_over_the_limit_is_413_and_its_bytes_never_delivered() -> None:
    conn = connection(max_body_size=10)
    events = conn.receive_data(CHUNKED_HEAD + b"6\r\nabcdef\r\n", 0.0)
    assert [type(e) for e in events] == [RequestReceived, BodyReceived]
    events = conn.receive_data(b"5\r\nghijk\r\n0\r\n\r\n", 0.0)
    assert events == [ProtocolError(413, "body too large")]  # no byte of the chunk past it
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 413 ") and b"\r\nconnection: close\r\n" in out
    assert conn.must_close and conn.unanswered == 0  # the 413 is that request's answer


def test_over_the_limit_waits_for_earlier_answers() -> None:
    conn = connection(max_body_size=4)
    conn.receive_data(GET + CHUNKED_HEAD + b"3\r\nabc\r\n", 0.0)
    assert conn.receive_data(b"3\r\ndef\r\n", 0.0) == [ProtocolError(413, "body too large")]
    assert conn.data_to_send() == b"" and not conn.must_close  # the GET is answered first
    conn.send_response(OK, b"first")
    out = conn.data_to_send()
    assert out.index(b"first") < out.index(b"HTTP/1.1 413 ") and conn.must_close


def test_content_length_over_the_limit_is_413_before_the_head_goes_out() -> None:
    conn = connection(max_body_size=4)
    assert conn.receive_data(fixed_head(5), 0.0) == [ProtocolError(413, "request body too large")]


def test_eof_inside_a_delivered_body_is_400_for_it() -> None:
    conn = connection()
    conn.receive_data(fixed_head(10) + b"abc", 0.0)
    assert conn.receive_data(b"", 0.0) == [
        ProtocolError(400, "connection closed in the middle of a request")
    ]
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ") and conn.must_close


# -- an answer before the body's end: the rest is dropped, or the connection closes ----------------


def test_unread_short_rest_is_dropped_and_the_next_request_parsed() -> None:
    conn = connection()
    conn.receive_data(fixed_head(100) + b"x" * 10, 0.0)
    conn.send_response(OK, b"early")
    out = conn.data_to_send()
    assert b"connection: close" not in out and not conn.must_close
    events = conn.receive_data(b"y" * 90 + GET, 0.0)  # no part of the rest is delivered
    assert [type(e) for e in events] == [RequestReceived]
    assert events[0].target == b"/next"


def test_unread_chunked_rest_is_dropped_and_the_next_request_parsed() -> None:
    conn = connection()
    conn.receive_data(CHUNKED_HEAD + b"3\r\nabc\r\n", 0.0)
    conn.start_response(OK)
    conn.send_body(b"streamed")
    conn.end_response()
    conn.data_to_send()
    events = conn.receive_data(b"3\r\ndef\r\n0\r\nX-T: 1\r\n\r\n" + GET, 0.0)
    assert [(type(e), getattr(e, "target", None)) for e in events] == [(RequestReceived, b"/next")]


def test_unread_long_rest_closes_after_the_answer() -> None:
    conn = connection()
    conn.receive_data(fixed_head(DISCARD_LIMIT + 11) + b"x" * 10, 0.0)
    conn.send_response(OK, b"early")
    assert b"\r\nconnection: close\r\n" in conn.data_to_send()
    assert conn.must_close
    assert conn.receive_data(b"y" * 100, 0.0) == []


def test_unread_rest_at_the_limit_is_still_read() -> None:
    conn = connection()
    conn.receive_data(fixed_head(DISCARD_LIMIT + 10) + b"x" * 10, 0.0)
    conn.send_response(OK, b"early")
    assert not conn.must_close


def test_unread_chunked_rest_past_the_limit_closes_without_another_answer() -> None:
    conn = connection()
    conn.receive_data(CHUNKED_HEAD + b"3\r\nabc\r\n", 0.0)
    conn.send_response(OK, b"early")
    assert not conn.must_close
    conn.data_to_send()
    events = conn.receive_data(b"%x\r\n" % (DISCARD_LIMIT + 1), 0.0)
    assert [type(e) for e in events] == [ProtocolError]
    assert conn.must_close and conn.data_to_send() == b""  # the request had its answer


def test_streamed_answer_while_the_body_arrives_gets_every_part() -> None:
    conn = connection()
    conn.receive_data(CHUNKED_HEAD, 0.0)
    conn.start_response(OK)  # an echo: the answer starts before the body ends
    assert conn.receive_data(b"3\r\nabc\r\n", 0.0) == [BodyReceived(b"abc")]
    conn.send_body(b"abc")
    assert conn.receive_data(b"0\r\n\r\n", 0.0) == [BodyEnded(None)]
    conn.end_response()
    assert not conn.must_close


def test_bad_body_during_a_streamed_answer_closes_after_it_with_nothing_more() -> None:
    conn = connection()
    conn.receive_data(CHUNKED_HEAD, 0.0)
    conn.start_response(OK)
    events = conn.receive_data(b"zz\r\n", 0.0)
    assert [type(e) for e in events] == [ProtocolError]
    conn.send_body(b"part")
    conn.end_response()
    assert conn.data_to_send().endswith(b"0\r\n\r\n")
    assert conn.must_close


def test_close_request_with_a_body_in_parts_is_the_last() -> None:
    conn = connection()
    head = b"POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 3\r\n\r\n"
    conn.receive_data(head + b"a", 0.0)
    events = conn.receive_data(b"bc" + GET, 0.0)
    assert events == [BodyReceived(b"bc"), BodyEnded(None)]  # nothing after "close"


# -- 100-continue -----------------------------------------------------------------------------


def test_100_continue_goes_before_an_early_answer() -> None:
    conn = connection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 0.0
    )
    conn.send_response(serialize_head(401, []), b"")
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 ")


# -- deadlines while a body trickles in ----------------------------------------------------------


def test_a_trickling_body_is_kept_alive_by_its_bytes_and_stalls_without_them() -> None:
    conn = H1ServerConnection(H1Config(request_head_timeout=1.0, stall_timeout=5.0), 0.0)
    conn.receive_data(fixed_head(100), 0.0)
    now = 0.0
    for _ in range(20):  # one byte every 4 s: never 5 s without progress
        now += 4.0
        assert conn.handle_timer(now) == []
        assert conn.receive_data(b"x", now) == [BodyReceived(b"x")]
    assert conn.get_timer() == now + 5.0  # the stall rule, not the head's
    assert conn.handle_timer(now + 5.0) == [ConnectionTimedOut("stall", graceful=False)]
    assert conn.must_close


def test_the_head_clock_stops_once_the_head_is_in() -> None:
    conn = H1ServerConnection(H1Config(request_head_timeout=1.0, stall_timeout=5.0), 0.0)
    conn.receive_data(fixed_head(100)[:20], 0.0)
    assert conn.get_timer() == 1.0
    conn.receive_data(fixed_head(100)[20:], 0.5)
    assert conn.get_timer() == 5.5
