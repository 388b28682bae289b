"""The exact boundary of every flow-control window (RFC 9113 §6.9): the peer may
send exactly the window and not one octet more; we send exactly up to the window
and not one octet more; windows may reach 2^31-1 and not one more."""

from __future__ import annotations

from h2books.protocol.h2 import ErrorCode, H2Config
from h2books.protocol.h2 import events as ev
from tests.protocol.h2.support import (
    DATA,
    END_STREAM,
    GOAWAY,
    PADDED,
    RawClient,
    frame,
    goaway_code,
    rst_codes,
    settings_frame,
    window_update,
)

MAX_WINDOW = (1 << 31) - 1
INITIAL_WINDOW_SIZE = 0x4


def data_sizes(c: RawClient, stream_id: int) -> list[int]:
    return [len(f.payload) for f in c.take() if f.type == DATA and f.stream_id == stream_id]


def fill(stream_id: int, total: int, end_stream: bool = False) -> bytes:
    """DATA frames of at most 16384 octets carrying `total` octets."""
    out = b""
    while total > 0:
        size = min(total, 16384)
        total -= size
        last = end_stream and total == 0
        out += frame(DATA, END_STREAM if last else 0, stream_id, b"x" * size)
    return out


# -- what the peer may send us ---------------------------------------------------------


def connection_window_client() -> RawClient:
    # The connection window (65535) binds before the stream windows (1 MiB).
    c = RawClient(H2Config(connection_window_size=65535, initial_window_size=1 << 20))
    c.send(c.headers(1, end_stream=False) + c.headers(3, end_stream=False))
    c.take()
    return c


def test_peer_may_fill_the_connection_window_exactly() -> None:
    c = connection_window_client()
    events = c.send(fill(1, 40000) + fill(3, 65535 - 40000))
    assert sum(e.flow_controlled_length for e in events if isinstance(e, ev.DataReceived)) == 65535
    assert c.terminated() is None
    assert goaway_code(c.take()) is None


def test_one_octet_beyond_the_connection_window_is_a_connection_error() -> None:
    c = connection_window_client()
    c.send(fill(1, 40000) + fill(3, 65535 - 40000))
    c.send(frame(DATA, 0, 3, b"x"))
    terminated = c.terminated()
    assert terminated is not None and terminated.error_code == ErrorCode.FLOW_CONTROL_ERROR
    assert goaway_code(c.take()) == ErrorCode.FLOW_CONTROL_ERROR


def test_padding_counts_against_the_connection_window() -> None:
    c = connection_window_client()
    # 300 octets left: a padded frame of 300 flow-controlled octets (1 + 44 + 255) fits...
    c.send(fill(1, 65535 - 300))
    c.send(frame(DATA, PADDED, 3, bytes([255]) + b"y" * 44 + b"\0" * 255))
    assert c.terminated() is None
    # ...and the next octet, padding or not, does not.
    c.send(frame(DATA, PADDED, 3, b"\0"))
    terminated = c.terminated()
    assert terminated is not None and terminated.error_code == ErrorCode.FLOW_CONTROL_ERROR


def stream_window_client() -> RawClient:
    # The stream window (1000, in force once the peer acknowledged it) binds.
    c = RawClient(H2Config(initial_window_size=1000))
    c.send(c.headers(1, end_stream=False))
    c.take()
    return c


def test_peer_may_fill_a_stream_window_exactly() -> None:
    c = stream_window_client()
    events = c.send(frame(DATA, 0, 1, b"x" * 600) + frame(DATA, 0, 1, b"x" * 400))
    assert [e.flow_controlled_length for e in events if isinstance(e, ev.DataReceived)] == [
        600,
        400,
    ]
    assert rst_codes(c.take()) == {}


def test_one_octet_beyond_a_stream_window_is_a_stream_error() -> None:
    c = stream_window_client()
    c.send(frame(DATA, 0, 1, b"x" * 1000))
    events = c.send(frame(DATA, 0, 1, b"x"))
    assert events == [ev.StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)]
    frames = c.take()
    assert rst_codes(frames) == {1: ErrorCode.FLOW_CONTROL_ERROR}
    assert not [f for f in frames if f.type == GOAWAY]  # only the stream suffers
    assert not c.conn.closed


# -- what we may send --------------------------------------------------------------------


def test_we_send_exactly_the_stream_window_and_not_one_octet_more() -> None:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, 100)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"z" * 250)
    assert data_sizes(c, 1) == [100]
    assert c.conn.pending_send_bytes(1) == 150
    c.send(window_update(1, 49))
    assert data_sizes(c, 1) == [49]
    c.send(window_update(1, 1000))
    assert data_sizes(c, 1) == [101]


def test_we_send_exactly_the_connection_window_and_not_one_octet_more() -> None:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, MAX_WINDOW)))
    c.send(c.headers(1) + c.headers(3))
    c.conn.send_response(1, 200, [], b"a" * 50000)
    c.conn.send_response(3, 200, [], b"b" * 50000)
    frames = c.take()
    assert sum(len(f.payload) for f in frames if f.type == DATA) == 65535
    c.send(window_update(0, 1))
    frames = c.take()
    assert [len(f.payload) for f in frames if f.type == DATA] == [1]


def test_initial_window_size_changes_move_open_stream_windows_by_the_difference() -> None:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, 100)))
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"z" * 1000)
    assert data_sizes(c, 1) == [100]
    c.send(settings_frame((INITIAL_WINDOW_SIZE, 150)))  # +50
    assert data_sizes(c, 1) == [50]
    c.send(settings_frame((INITIAL_WINDOW_SIZE, 50)))  # -100: the window is -100 now
    assert data_sizes(c, 1) == []
    c.send(window_update(1, 100))  # back to 0
    assert data_sizes(c, 1) == []
    c.send(window_update(1, 1))
    assert data_sizes(c, 1) == [1]


def test_initial_window_size_of_2_31_minus_1_is_allowed_and_one_more_is_not() -> None:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, MAX_WINDOW)))
    assert c.terminated() is None
    c.send(settings_frame((INITIAL_WINDOW_SIZE, MAX_WINDOW + 1)))
    assert goaway_code(c.take()) == ErrorCode.FLOW_CONTROL_ERROR


def test_initial_window_size_change_may_not_push_a_stream_window_past_2_31_minus_1() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(window_update(1, MAX_WINDOW - 65535))  # the stream window is at the maximum
    c.take()
    c.send(settings_frame((INITIAL_WINDOW_SIZE, 65535)))  # no change: fine
    assert goaway_code(c.take()) is None
    c.send(settings_frame((INITIAL_WINDOW_SIZE, 65536)))
    assert goaway_code(c.take()) == ErrorCode.FLOW_CONTROL_ERROR


def test_connection_window_update_to_2_31_minus_1_exactly_then_one_more() -> None:
    c = RawClient()
    c.send(window_update(0, MAX_WINDOW - 65535))
    assert c.terminated() is None and goaway_code(c.take()) is None
    c.send(window_update(0, 1))
    assert goaway_code(c.take()) == ErrorCode.FLOW_CONTROL_ERROR


def test_stream_window_update_to_2_31_minus_1_exactly_then_one_more() -> None:
    c = RawClient()
    c.send(c.headers(1, end_stream=False))
    c.send(window_update(1, MAX_WINDOW - 65535))
    assert rst_codes(c.take()) == {}
    c.send(window_update(1, 1))
    frames = c.take()
    assert rst_codes(frames) == {1: ErrorCode.FLOW_CONTROL_ERROR}
    assert goaway_code(frames) is None
