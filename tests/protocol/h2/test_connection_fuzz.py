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

FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    conn.receive_data(PREFACE + settings_frame())
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
    conn.initiate()
    conn.send_request(REQUEST, end_stream=False)
    conn.send_request(REQUEST)
    conn.data_to_send()
    check(conn, [settings_frame(), *sequence])


@FUZZ
@given(st.lists(frames, max_size=15), st.lists(st.sampled_from(["respond", "data", "reset"])))
def test_application_calls_interleaved(sequence: list[bytes], actions: list[str]) -> None:
    conn = server()
    for raw in sequence:
        for event in conn.receive_data(raw):
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
