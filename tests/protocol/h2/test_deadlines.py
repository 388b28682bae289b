"""The timeout rules and graceful shutdown of the h2 core, on a fake clock (plain
floats): every deadline does nothing just before it and fires exactly at it."""

from __future__ import annotations

import struct

import pytest

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection
from h2books.protocol.h2 import events as ev
from tests.protocol.h2.support import (
    ACK,
    DATA,
    END_HEADERS,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    SETTINGS,
    RawClient,
    frame,
    parse,
    settings_frame,
)

EPS = 1e-6


def timed_out(rule: str, graceful: bool) -> list[ev.Event]:
    return [ev.ConnectionTimedOut(rule, graceful)]


def goaways(data: bytes) -> list[tuple[int, int, bytes]]:
    """(last stream id, error code, debug) of each GOAWAY in our output."""
    return [
        (*struct.unpack_from(">II", f.payload), f.payload[8:])  # type: ignore[misc]
        for f in parse(data)
        if f.type == GOAWAY
    ]


def client_at(now: float, **timeouts: float) -> RawClient:
    """A server core that got the client preface and SETTINGS at `now`."""
    conn = H2Connection(H2Config(**timeouts))  # type: ignore[arg-type]
    conn.initiate(now)
    client = RawClient.__new__(RawClient)
    client.conn = conn
    import hpack

    client.encoder = hpack.Encoder()
    client.decoder = hpack.Decoder()
    client.events = []
    client.send(PREFACE + settings_frame() + frame(SETTINGS, ACK, 0), now)
    client.take()
    return client


def test_no_rule_in_force_by_default() -> None:
    c = RawClient()
    assert c.conn.get_timer() is None
    assert c.conn.handle_timer(1e9) == []
    client = H2Connection(H2Config(client_side=True))
    client.initiate(5.0)
    assert client.get_timer() is None


def test_timeouts_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        H2Config(idle_timeout=-1.0)


# -- preface ---------------------------------------------------------------------------


def test_preface_deadline_counts_from_initiate() -> None:
    conn = H2Connection(H2Config(preface_timeout=5.0))
    conn.initiate(100.0)
    conn.data_to_send()
    assert conn.get_timer() == 105.0
    conn.receive_data(PREFACE[:10], 101.0)  # a partial preface does not count
    assert conn.get_timer() == 105.0
    assert conn.handle_timer(105.0 - EPS) == []
    assert not conn.closed
    assert conn.handle_timer(105.0) == timed_out("preface", False)
    assert conn.closed
    assert conn.data_to_send() == b""  # nothing to say before the preface
    assert conn.get_timer() is None and conn.handle_timer(200.0) == []


def test_preface_and_settings_in_time_end_the_preface_rule() -> None:
    conn = H2Connection(H2Config(preface_timeout=5.0))
    conn.initiate(100.0)
    conn.receive_data(PREFACE, 101.0)
    assert conn.get_timer() == 105.0  # the first SETTINGS is part of the preface
    conn.receive_data(settings_frame(), 104.0)
    assert conn.get_timer() is None
    assert conn.handle_timer(1000.0) == []


def test_only_the_preface_rule_runs_before_the_preface() -> None:
    conn = H2Connection(H2Config(preface_timeout=50.0, idle_timeout=1.0, stall_timeout=1.0))
    conn.initiate(0.0)
    assert conn.get_timer() == 50.0
    assert conn.handle_timer(49.0) == []


# -- request head ----------------------------------------------------------------------


def test_header_block_awaiting_continuation_has_a_deadline() -> None:
    c = client_at(0.0, request_head_timeout=10.0)
    c.send(frame(HEADERS, 0, 1, c.block()), 50.0)  # no END_HEADERS
    assert c.conn.has_partial_request
    assert c.conn.get_timer() == 60.0
    c.send(frame(0x9, 0, 1, b""), 55.0)  # more of the block, still not the end of it
    assert c.conn.get_timer() == 60.0
    assert c.conn.handle_timer(60.0 - EPS) == []
    assert c.conn.handle_timer(60.0) == timed_out("request_head", False)
    assert c.conn.closed
    assert goaways(c.conn.data_to_send()) == [(0, ErrorCode.NO_ERROR, b"request head too slow")]


def test_partial_headers_frame_is_a_slow_head_but_partial_data_is_not() -> None:
    c = client_at(0.0, request_head_timeout=10.0)
    raw = c.headers(1)
    c.send(raw[:5], 3.0)
    assert c.conn.get_timer() == 13.0
    c.send(raw[5:], 12.0)  # completed in time: the clock stops
    assert c.conn.get_timer() is None
    c.send(c.headers(3, end_stream=False), 20.0)
    c.send(frame(DATA, 0, 3, b"abcdef")[:11], 21.0)  # a slow body is not a slow head
    assert c.conn.get_timer() is None


def test_completed_head_restarts_the_clock_for_the_next_one() -> None:
    c = client_at(0.0, request_head_timeout=10.0)
    c.send(frame(HEADERS, 0, 1, c.block()), 1.0)
    c.send(frame(0x9, END_HEADERS, 1, b""), 9.0)  # CONTINUATION ends the block
    assert c.conn.get_timer() is None
    c.send(frame(HEADERS, 0, 3, c.block()), 30.0)
    assert c.conn.get_timer() == 40.0


# -- idle ------------------------------------------------------------------------------


def test_idle_connection_is_closed_gracefully() -> None:
    c = client_at(0.0, idle_timeout=30.0)
    assert c.conn.get_timer() == 30.0
    c.send(frame(PING, 0, 0, b"\0" * 8), 20.0)  # activity pushes the deadline back
    assert c.conn.get_timer() == 50.0
    assert c.conn.handle_timer(50.0 - EPS) == []
    assert c.conn.handle_timer(50.0) == timed_out("idle", True)
    assert c.conn.closed
    assert (0, ErrorCode.NO_ERROR, b"idle timeout") in goaways(c.conn.data_to_send())


def test_idle_rule_waits_while_a_stream_is_open() -> None:
    c = client_at(0.0, idle_timeout=30.0)
    c.send(c.headers(1), 1.0)
    assert c.conn.get_timer() is None  # a request in flight is not idle
    c.conn.send_response(1, 200, [], b"ok")
    assert c.conn.get_timer() == 31.0
    c.conn.data_to_send()  # handing out the response is activity...
    assert c.conn.handle_timer(10.0) == []  # ...learnt at the next call with a time
    assert c.conn.get_timer() == 40.0


# -- stall -----------------------------------------------------------------------------


def test_stalled_stream_aborts() -> None:
    c = client_at(0.0, stall_timeout=10.0, idle_timeout=100.0)
    c.send(c.headers(1, end_stream=False), 5.0)
    assert c.conn.get_timer() == 15.0
    assert c.conn.handle_timer(15.0 - EPS) == []
    c.send(frame(DATA, 0, 1, b"x"), 14.0)  # the body moves: not stalled
    assert c.conn.get_timer() == 24.0
    assert c.conn.handle_timer(24.0) == timed_out("stall", False)
    assert c.conn.closed
    assert goaways(c.conn.data_to_send())[-1] == (1, ErrorCode.NO_ERROR, b"no progress")


def test_output_handed_out_counts_as_activity() -> None:
    c = client_at(0.0, stall_timeout=10.0)
    c.send(c.headers(1, end_stream=False), 0.0)
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"part")
    assert c.conn.data_to_send()
    assert c.conn.handle_timer(8.0) == []
    assert c.conn.get_timer() == 18.0
    assert c.conn.handle_timer(18.0 - EPS) == []
    assert c.conn.handle_timer(18.0) == timed_out("stall", False)


# -- flow blocked ----------------------------------------------------------------------


def test_output_behind_a_shut_window_aborts_whatever_else_the_peer_sends() -> None:
    c = client_at(0.0, stall_timeout=10.0)
    c.send(settings_frame((0x4, 0)), 1.0)  # SETTINGS_INITIAL_WINDOW_SIZE = 0
    c.send(c.headers(1), 2.0)
    c.conn.send_response(1, 200, [], b"body")
    assert c.conn.flow_blocked_since == 2.0
    for now in (4.0, 6.0, 8.0, 10.0, 11.0):
        c.send(frame(PING, 0, 0, b"\0" * 8), now)  # activity, but the window stays shut
        c.conn.data_to_send()
    assert c.conn.get_timer() == 12.0
    assert c.conn.handle_timer(12.0 - EPS) == []
    assert c.conn.handle_timer(12.0) == timed_out("flow_blocked", False)
    assert goaways(c.conn.data_to_send())[-1][2] == b"flow-control window shut too long"


def test_window_opening_ends_the_flow_blocked_rule() -> None:
    c = client_at(0.0, stall_timeout=10.0)
    c.send(settings_frame((0x4, 0)), 1.0)
    c.send(c.headers(1), 2.0)
    c.conn.send_response(1, 200, [], b"body")
    c.send(frame(0x8, 0, 1, struct.pack(">I", 100)), 5.0)  # WINDOW_UPDATE on the stream
    assert c.conn.flow_blocked_since is None
    assert c.conn.open_stream_count == 0
    assert c.conn.get_timer() is None


# -- graceful shutdown -----------------------------------------------------------------


def test_final_goaway_at_the_grace_deadline() -> None:
    c = client_at(0.0)
    c.send(c.headers(1), 1.0)
    c.conn.start_graceful_shutdown(100.0)
    first = goaways(c.conn.data_to_send())
    assert first == [((1 << 31) - 1, ErrorCode.NO_ERROR, b"")]
    assert c.conn.get_timer() == 102.0
    assert c.conn.handle_timer(102.0 - EPS) == []
    assert c.conn.data_to_send() == b""
    assert c.conn.handle_timer(102.0) == []  # bytes to send, not a timeout
    assert goaways(c.conn.data_to_send()) == [(1, ErrorCode.NO_ERROR, b"")]
    assert not c.conn.closed  # stream 1 is still owed its response
    c.conn.send_response(1, 204, [], b"")
    assert c.conn.closed


def test_ping_ack_sends_the_final_goaway_before_the_deadline() -> None:
    c = client_at(0.0)
    c.conn.start_graceful_shutdown(10.0)
    ping = next(f for f in parse(c.conn.data_to_send()) if f.type == PING)
    c.send(frame(PING, ACK, 0, ping.payload), 10.5)
    assert goaways(c.conn.data_to_send()) == [(0, ErrorCode.NO_ERROR, b"")]
    assert c.conn.closed and c.conn.get_timer() is None


def test_shutdown_grace_follows_the_config() -> None:
    c = client_at(0.0, shutdown_grace=0.5)
    c.conn.start_graceful_shutdown(10.0)
    assert c.conn.get_timer() == 10.5
    off = client_at(0.0, shutdown_grace=None)  # type: ignore[arg-type]
    off.conn.start_graceful_shutdown(10.0)
    assert off.conn.get_timer() is None
