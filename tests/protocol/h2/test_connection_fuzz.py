"""Property tests: whatever a peer sends after a valid preface, the core only ever
returns events (at most one ConnectionTerminated, never for an internal error) and
never raises; its output always parses as whole frames."""

from __future__ import annotations

import hpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection
from h2books.protocol.h2 import events as ev
from tests.protocol.h2.support import PREFACE, REQUEST, frame, parse, settings_frame

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(conn: H2Connection, chunks: list[bytes], now_step: float = 0.0) -> None:
    terminated = 0
    now = 0.0
    for chunk in chunks:
        events = conn.receive_data(chunk, now)
        now += now_step
        for event in events:
            assert isinstance(event, ev.Event)
            if isinstance(event, ev.ConnectionTerminated):
                terminated += 1
                if not event.remote:
                    assert event.error_code != ErrorCode.INTERNAL_ERROR, event
        parse(conn.data_to_send())  # our output is whole, well-formed frames
    assert terminated <= 1
    if terminated:
        assert conn.closed


def server() -> H2Connection:
    conn = H2Connection(H2Config(max_concurrent_streams=4, initial_window_size=300))
    conn.receive_data(PREFACE + settings_frame(), 0.0)
    conn.data_to_send()
    return conn


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_after_preface(chunks: list[bytes]) -> None:
    check(server(), chunks)


_block = hpack.Encoder().encode(REQUEST)

frames = st.builds(
    frame,
    st.sampled_from([0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 0x20]),
    st.integers(0, 255),
    st.sampled_from([0, 1, 1, 3, 3, 5, 2, 0x80000001, 7]),
    st.one_of(
        st.binary(max_size=40),
        st.just(_block),
        st.just(b"\x00\x00\x00\x05"),
        st.just(b"\x00\x04\x00\x00\x00\x00"),
        st.builds(lambda pad: bytes([pad]) + _block, st.integers(0, 40)),
    ),
)


# Context-free HPACK blocks (static table only), valid in any order: GET and POST.
_GET = b"\x82\x87\x84\x01\x0bexample.com"
_POST = b"\x83\x87\x84\x01\x0bexample.com"
_sids = st.sampled_from([1, 3, 5, 7, 9])
plausible = st.one_of(
    st.builds(
        lambda sid, block, flags: frame(1, flags | 0x4, sid, block),
        _sids,
        st.sampled_from([_GET, _POST]),
        st.sampled_from([0, 1]),
    ),
    st.builds(
        lambda sid, size, flags: frame(0, flags, sid, b"d" * size),
        _sids,
        st.integers(0, 400),
        st.sampled_from([0, 1]),
    ),
    st.builds(
        lambda sid, inc: frame(8, 0, sid, inc.to_bytes(4, "big")),
        st.sampled_from([0, 1, 3, 5]),
        st.integers(0, 2**31 - 1),
    ),
    st.builds(
        lambda sid, code: frame(3, 0, sid, code.to_bytes(4, "big")), _sids, st.integers(0, 13)
    ),
    st.builds(lambda sid: frame(2, 0, sid, b"\0\0\0\0\x10"), _sids),
    st.builds(lambda data: frame(6, 0, 0, data), st.binary(min_size=8, max_size=8)),
    st.builds(
        lambda ident, value: settings_frame((ident, value)),
        st.sampled_from([1, 3, 4, 5, 6, 9]),
        st.integers(0, 70000),
    ),
    frames,
)


@FUZZ
@given(st.lists(plausible, max_size=30))
def test_plausible_frame_sequences(sequence: list[bytes]) -> None:
    conn = server()
    for raw in sequence:
        for event in conn.receive_data(raw, 0.0):
            if isinstance(event, ev.RequestReceived) and event.stream_id % 3:
                conn.send_response(event.stream_id, 200, [], b"r" * 1000)
            elif isinstance(event, ev.DataReceived):
                conn.acknowledge_received_data(event.stream_id, event.flow_controlled_length)
            assert not (
                isinstance(event, ev.ConnectionTerminated)
                and event.error_code == ErrorCode.INTERNAL_ERROR
            )
        parse(conn.data_to_send())


@FUZZ
@given(st.lists(frames, max_size=25), st.integers(1, 50))
def test_random_frame_sequences(sequence: list[bytes], split: int) -> None:
    data = b"".join(sequence)
    chunks = [data[i : i + split] for i in range(0, len(data), split)]
    check(server(), chunks, now_step=0.01)


@FUZZ
@given(st.lists(frames, max_size=25))
def test_random_frames_against_client_role(sequence: list[bytes]) -> None:
    conn = H2Connection(H2Config(client_side=True))
    conn.initiate(0.0)
    conn.send_request(REQUEST, end_stream=False)
    conn.send_request(REQUEST)
    conn.data_to_send()
    check(conn, [settings_frame(), *sequence])


@FUZZ
@given(st.lists(frames, max_size=15), st.lists(st.sampled_from(["respond", "data", "reset"])))
def test_application_calls_interleaved(sequence: list[bytes], actions: list[str]) -> None:
    conn = server()
    for raw in sequence:
        for event in conn.receive_data(raw, 0.0):
            if isinstance(event, ev.RequestReceived) and actions:
                action = actions.pop()
                sid = event.stream_id
                if action == "respond":
                    conn.send_response(sid, 200, [(b"x", b"y")], b"z" * 500)
                elif action == "data":
                    conn.send_headers(sid, [(b":status", b"200")])
                    conn.send_data(sid, b"q" * 70000)
                else:
                    conn.reset_stream(sid)
            assert not (
                isinstance(event, ev.ConnectionTerminated)
                and event.error_code == ErrorCode.INTERNAL_ERROR
            )
        parse(conn.data_to_send())
