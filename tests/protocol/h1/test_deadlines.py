"""The server core's deadline rules and graceful shutdown, on a fake clock (plain floats).

Every rule is checked at its exact boundary: a hair before the deadline nothing
happens, at the deadline the rule fires.
"""

from __future__ import annotations

import pytest

from h2books.protocol.h1 import (
    BodyEnded,
    BodyReceived,
    ConnectionTimedOut,
    H1Config,
    H1ServerConnection,
    serialize_head,
)
from h2books.protocol.h1.deadlines import Deadlines

HEAD_TIMEOUT, IDLE_TIMEOUT, STALL_TIMEOUT = 10.0, 30.0, 20.0
EPS = 1e-6
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
OK = serialize_head(200, [(b"content-type", b"text/plain")])


def timed(now: float = 0.0, **limits: int) -> H1ServerConnection:
    config = H1Config(
        request_head_timeout=HEAD_TIMEOUT,
        idle_timeout=IDLE_TIMEOUT,
        stall_timeout=STALL_TIMEOUT,
        **limits,  # type: ignore[arg-type]
    )
    return H1ServerConnection(config, now)


def fires_at(conn: H1ServerConnection, deadline: float, rule: str, graceful: bool) -> None:
    """Nothing a hair before ``deadline``; ``rule`` at it, which ends the connection."""
    assert conn.get_timer() == pytest.approx(deadline)
    assert conn.handle_timer(deadline - EPS) == []
    assert not conn.must_close
    assert conn.handle_timer(deadline) == [ConnectionTimedOut(rule, graceful)]
    assert conn.must_close
    assert conn.get_timer() is None
    assert conn.handle_timer(deadline + 100) == []


# -- no rules unless configured ------------------------------------------------------------


def test_rules_are_off_by_default() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHo", 1.0)
    assert conn.get_timer() is None
    assert conn.handle_timer(1e9) == []
    assert not conn.must_close


def test_one_rule_at_a_time_and_an_unset_one_is_off() -> None:
    # A partial head puts the head rule in force; with it off, no other rule stands in.
    conn = H1ServerConnection(H1Config(idle_timeout=1.0, stall_timeout=1.0), 0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHo", 0.0)
    assert conn.get_timer() is None


# -- idle ----------------------------------------------------------------------------------


def test_idle_from_the_start() -> None:
    fires_at(timed(100.0), 100.0 + IDLE_TIMEOUT, "idle", graceful=True)


def test_idle_after_an_answer_counts_from_the_output() -> None:
    conn = timed()
    assert len(conn.receive_data(GET, 5.0)) == 1
    conn.send_response(OK, b"hi")
    assert conn.data_to_send()
    # The output is dated by the next call with a time: here, an early timer call.
    assert conn.get_timer() == 5.0 + IDLE_TIMEOUT
    assert conn.handle_timer(12.0) == []
    fires_at(conn, 12.0 + IDLE_TIMEOUT, "idle", graceful=True)


def test_input_pushes_idle_back() -> None:
    conn = timed()
    conn.receive_data(b"\r\n", IDLE_TIMEOUT - EPS)  # an empty line: activity, no request
    fires_at(conn, 2 * IDLE_TIMEOUT - EPS, "idle", graceful=True)


# -- request_head --------------------------------------------------------------------------


def test_slow_head() -> None:
    conn = timed()
    assert conn.receive_data(b"GET / HTTP/1.1\r\n", 5.0) == []
    assert conn.has_partial_request
    # More of the head is activity, but the head clock runs from its first bytes.
    assert conn.receive_data(b"Host: h\r\n", 14.0) == []
    fires_at(conn, 5.0 + HEAD_TIMEOUT, "request_head", graceful=False)


def test_head_completed_in_time_stops_the_head_clock() -> None:
    conn = timed()
    conn.receive_data(b"GET / HTTP/1.1\r\n", 5.0)
    events = conn.receive_data(b"Host: h\r\n\r\n", 5.0 + HEAD_TIMEOUT - EPS)
    assert len(events) == 1
    assert conn.handle_timer(5.0 + HEAD_TIMEOUT) == []
    # Now an answer is owed: the stall rule, from the last input.
    assert conn.get_timer() == pytest.approx(5.0 + HEAD_TIMEOUT - EPS + STALL_TIMEOUT)


def test_empty_lines_do_not_start_a_head() -> None:
    conn = timed()
    conn.receive_data(b"\r\n\r\n", 1.0)
    assert conn.get_timer() == 1.0 + IDLE_TIMEOUT


def test_slow_body_is_not_a_slow_head() -> None:
    conn = timed()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", 0.0)
    assert not conn.has_partial_request
    assert conn.handle_timer(HEAD_TIMEOUT + 1) == []
    conn.receive_data(b"def", 15.0)  # progress: the stall clock starts again
    fires_at(conn, 15.0 + STALL_TIMEOUT, "stall", graceful=False)


def test_head_clock_waits_while_parsing_is_paused() -> None:
    conn = timed(max_pipelined=1)
    assert len(conn.receive_data(GET + b"GET /next HTTP/1.1\r\n", 0.0)) == 1
    assert conn.paused
    # The partial head is held back behind the owed answer: that is a stall, not a slow head.
    assert conn.get_timer() == STALL_TIMEOUT
    conn.send_response(OK, b"")
    conn.data_to_send()
    assert conn.resume(7.0) == []
    fires_at(conn, 7.0 + HEAD_TIMEOUT, "request_head", graceful=False)


# -- stall ---------------------------------------------------------------------------------


def test_owed_answer_stalls_and_is_dropped() -> None:
    conn = timed()
    conn.receive_data(GET, 3.0)
    fires_at(conn, 3.0 + STALL_TIMEOUT, "stall", graceful=False)
    assert conn.unanswered == 0
    conn.send_response(OK, b"late")  # discarded: the connection is over
    assert conn.data_to_send() == b""
    assert conn.receive_data(GET, 100.0) == []


def test_streamed_output_is_activity() -> None:
    conn = timed()
    conn.receive_data(GET, 0.0)
    conn.start_response(OK)
    conn.send_body(b"part")
    assert conn.data_to_send()
    assert conn.handle_timer(STALL_TIMEOUT - 1) == []  # dates the output
    assert conn.get_timer() == 2 * STALL_TIMEOUT - 1
    assert conn.handle_timer(2 * STALL_TIMEOUT - 1 - EPS) == []  # nothing new went out
    fires_at(conn, 2 * STALL_TIMEOUT - 1, "stall", graceful=False)


def test_no_output_no_push() -> None:
    conn = timed()
    conn.receive_data(GET, 0.0)
    assert conn.data_to_send() == b""  # nothing handed out: not activity
    assert conn.handle_timer(STALL_TIMEOUT - EPS) == []
    fires_at(conn, STALL_TIMEOUT, "stall", graceful=False)


def test_no_timer_once_the_connection_ends() -> None:
    conn = timed()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0.0)
    conn.send_response(OK, b"")
    assert conn.must_close
    assert conn.get_timer() is None
    assert conn.handle_timer(1e9) == []


def test_deadlines_unit() -> None:
    deadlines = Deadlines(H1Config(request_head_timeout=1.0, idle_timeout=2.0), 10.0)
    assert deadlines.rule_in_force(busy=False) == (12.0, "idle")
    assert deadlines.rule_in_force(busy=True) is None  # stall is off
    deadlines.track_head(True, 11.0)
    deadlines.track_head(True, 11.5)  # still the same head
    assert deadlines.rule_in_force(busy=True) == (12.0, "request_head")
    deadlines.track_head(False, 11.7)
    assert deadlines.head_started is None
    deadlines.handed_out = True
    deadlines.date_output(11.8)
    assert deadlines.rule_in_force(busy=False) == (13.8, "idle")
    deadlines.date_output(50.0)  # no output since: no activity
    assert deadlines.last_activity == 11.8


# -- graceful shutdown ---------------------------------------------------------------------


def test_shutdown_of_an_idle_connection_ends_it_at_once() -> None:
    conn = timed()
    conn.start_graceful_shutdown()
    assert conn.must_close
    assert conn.receive_data(GET, 1.0) == []


def test_shutdown_finishes_the_owed_answer_and_says_close() -> None:
    conn = timed()
    conn.receive_data(GET, 0.0)
    conn.start_graceful_shutdown()
    assert not conn.must_close
    conn.send_response(OK, b"ok")
    assert b"\r\nconnection: close\r\n" in conn.data_to_send()
    assert conn.must_close


def test_shutdown_keeps_a_request_still_arriving() -> None:
    conn = timed()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab", 0.0)
    conn.start_graceful_shutdown()
    assert not conn.must_close
    events = conn.receive_data(b"cd", 1.0)
    assert events == [BodyReceived(b"cd"), BodyEnded(None)]
    conn.send_response(OK, b"")
    assert b"\r\nconnection: close\r\n" in conn.data_to_send()
    assert conn.must_close


def test_shutdown_keeps_a_head_still_arriving() -> None:
    conn = timed()
    conn.receive_data(b"GET / HTTP/1.1\r\n", 0.0)
    conn.start_graceful_shutdown()
    assert not conn.must_close
    assert len(conn.receive_data(b"Host: h\r\n\r\n", 1.0)) == 1
    conn.start_response(OK)
    conn.send_body(b"x")
    conn.end_response()
    assert b"\r\nconnection: close\r\n" in conn.data_to_send()
    assert conn.must_close


def test_shutdown_answers_pipelined_requests_held_back() -> None:
    conn = timed(max_pipelined=1)
    assert len(conn.receive_data(GET + GET, 0.0)) == 1
    conn.start_graceful_shutdown()
    conn.send_response(OK, b"1")
    first = conn.data_to_send()
    assert b"connection: close" not in first  # another request is waiting
    assert not conn.must_close
    assert len(conn.resume(1.0)) == 1
    conn.send_response(OK, b"2")
    assert b"\r\nconnection: close\r\n" in conn.data_to_send()
    assert conn.must_close


def test_shutdown_then_peer_eof() -> None:
    conn = timed()
    conn.receive_data(b"GET / HTTP/1.1\r\n", 0.0)
    conn.start_graceful_shutdown()
    conn.receive_data(b"", 1.0)  # EOF inside a head: an error answer, then the end
    assert conn.must_close
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ")
