"""Client role: our client against our server, against the `h2` library's server,
and against hand-built server frames for the error cases."""

from __future__ import annotations

import struct
from dataclasses import replace

import h2.config
import h2.connection
import h2.events
import hpack
import pytest

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection, H2UsageError
from h2books.protocol.h2 import events as ev
from tests.protocol.h2.support import (
    ACK,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PREFACE,
    PUSH_PROMISE,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    frame,
    goaway_code,
    parse,
    rst_codes,
    settings_frame,
    window_update,
)

CLIENT = H2Config(client_side=True)


class OwnPair:
    def __init__(self, server: H2Config | None = None, client: H2Config = CLIENT) -> None:
        self.client = H2Connection(client)
        self.server = H2Connection(server)
        self.client.initiate(0.0)
        self.server.initiate(0.0)
        self.client_events: list[ev.Event] = []
        self.server_events: list[ev.Event] = []
        self.pump()

    def pump(self) -> tuple[list[ev.Event], list[ev.Event]]:
        new_server: list[ev.Event] = []
        new_client: list[ev.Event] = []
        for _ in range(1000):
            to_server = self.client.data_to_send()
            if to_server:
                new_server += self.server.receive_data(to_server, 0.0)
            to_client = self.server.data_to_send()
            if to_client:
                new_client += self.client.receive_data(to_client, 0.0)
            if not to_server and not to_client:
                break
        self.server_events += new_server
        self.client_events += new_client
        return new_server, new_client


def body_of(events: list[ev.Event], stream_id: int) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, ev.DataReceived) and e.stream_id == stream_id
    )


def test_client_preface_and_settings() -> None:
    conn = H2Connection(CLIENT)
    conn.initiate(0.0)
    data = conn.data_to_send()
    assert data.startswith(PREFACE)
    frames = parse(data[len(PREFACE) :])
    assert frames[0].type == SETTINGS
    assert dict(struct.iter_unpack(">HI", frames[0].payload))[2] == 0  # ENABLE_PUSH=0


def test_own_client_against_own_server() -> None:
    pair = OwnPair()
    sid = pair.client.send_request(
        [*REQUEST, (b"user-agent", b"own")], body=b"question", end_stream=True
    )
    assert sid == 1 and pair.client.get_next_stream_id() == 3
    server_events, _ = pair.pump()
    req = next(e for e in server_events if isinstance(e, ev.RequestReceived))
    assert req.headers == [(b"user-agent", b"own")] and not req.end_stream
    assert body_of(server_events, sid) == b"question"
    data_event = next(e for e in server_events if isinstance(e, ev.DataReceived))
    pair.server.acknowledge_received_data(sid, data_event.flow_controlled_length)
    pair.server.send_response(sid, 200, [(b"content-length", b"6")], b"answer")
    _, client_events = pair.pump()
    assert client_events[0] == ev.response_received(sid, 200, [(b"content-length", b"6")], False)
    assert client_events[-1] == ev.data_received(sid, b"answer", 6, True)
    assert pair.client.open_stream_count == 0 and pair.server.open_stream_count == 0


def test_own_pair_large_bodies_both_ways_with_flow_control() -> None:
    small = H2Config(initial_window_size=1000, connection_window_size=3000)
    pair = OwnPair(server=small, client=replace(small, client_side=True))
    upload = bytes(range(256)) * 40  # 10240 > every window
    sid = pair.client.send_request(REQUEST, body=upload)
    received = bytearray()
    for _ in range(200):
        server_events, _ = pair.pump()
        for e in server_events:
            if isinstance(e, ev.DataReceived):
                received += e.data
                pair.server.acknowledge_received_data(e.stream_id, e.flow_controlled_length)
        if not server_events:
            break
    assert bytes(received) == upload
    download = b"d" * 12345
    pair.server.send_response(sid, 200, [], download)
    got = bytearray()
    for _ in range(200):
        _, client_events = pair.pump()
        for e in client_events:
            if isinstance(e, ev.DataReceived):
                got += e.data
                pair.client.acknowledge_received_data(e.stream_id, e.flow_controlled_length)
        if not client_events:
            break
    assert bytes(got) == download
    assert pair.client.open_stream_count == 0 and pair.server.open_stream_count == 0


def test_informational_response_and_trailers_to_client() -> None:
    pair = OwnPair()
    sid = pair.client.send_request(REQUEST)
    pair.pump()
    pair.server.send_headers(sid, [(b":status", b"103"), (b"link", b"</s.css>")])
    pair.server.send_headers(sid, [(b":status", b"200")])
    pair.server.send_data(sid, b"part")
    pair.server.send_trailers(sid, [(b"x-digest", b"1")])
    _, client_events = pair.pump()
    assert client_events == [
        ev.InformationalResponseReceived(sid, 103, [(b"link", b"</s.css>")]),
        ev.response_received(sid, 200, [], False),
        ev.data_received(sid, b"part", 4, False),
        ev.TrailersReceived(sid, [(b"x-digest", b"1")]),
    ]
    assert pair.client.open_stream_count == 0


def test_client_request_trailers_after_streamed_body() -> None:
    pair = OwnPair()
    sid = pair.client.send_request([(b":method", b"POST"), *REQUEST[1:]], end_stream=False)
    pair.client.send_data(sid, b"abc")
    pair.client.send_trailers(sid, [(b"x-t", b"v")])
    server_events, _ = pair.pump()
    assert [type(e) for e in server_events] == [
        ev.RequestReceived,
        ev.DataReceived,
        ev.TrailersReceived,
    ]


def test_head_response_with_content_length_and_no_body() -> None:
    pair = OwnPair()
    sid = pair.client.send_request([(b":method", b"HEAD"), *REQUEST[1:]])
    pair.pump()
    pair.server.send_headers(sid, [(b":status", b"200"), (b"content-length", b"1000")], True)
    _, client_events = pair.pump()
    assert client_events == [ev.response_received(sid, 200, [(b"content-length", b"1000")], True)]


def test_client_send_headers_opens_next_stream() -> None:
    pair = OwnPair()
    sid = pair.client.get_next_stream_id()
    pair.client.send_headers(sid, REQUEST, end_stream=True)
    server_events, _ = pair.pump()
    assert isinstance(server_events[-1], ev.RequestReceived)
    with pytest.raises(H2UsageError):
        pair.client.send_headers(sid + 4, REQUEST)  # skipping ids is not allowed


def test_client_respects_peer_max_concurrent_streams() -> None:
    pair = OwnPair(server=H2Config(max_concurrent_streams=2))
    pair.client.send_request(REQUEST, end_stream=False)
    pair.client.send_request(REQUEST, end_stream=False)
    with pytest.raises(H2UsageError):
        pair.client.send_request(REQUEST)


def test_goaway_refuses_client_streams_above_last() -> None:
    pair = OwnPair()
    first = pair.client.send_request(REQUEST)
    pair.pump()
    second = pair.client.send_request(REQUEST)
    third = pair.client.send_request(REQUEST)
    # The server's GOAWAY crosses the two new requests.
    pair.client.data_to_send()
    pair.server.close()
    events = pair.client.receive_data(pair.server.data_to_send(), 0.0)
    assert events == [
        ev.GoAwayReceived(ErrorCode.NO_ERROR, first, b""),
        ev.StreamReset(second, ErrorCode.REFUSED_STREAM, True),
        ev.StreamReset(third, ErrorCode.REFUSED_STREAM, True),
    ]
    with pytest.raises(H2UsageError):
        pair.client.send_request(REQUEST)
    assert pair.client.open_stream_count == 1
    assert not pair.client.closed


def test_own_client_against_h2_library_server() -> None:
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    server.initiate_connection()
    client = H2Connection(CLIENT)
    client.initiate(0.0)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send())
    sids = [
        client.send_request([*REQUEST[:2], (b":path", b"/%d" % i), REQUEST[3]]) for i in range(5)
    ]
    lib_events = server.receive_data(client.data_to_send())
    requests = [e for e in lib_events if isinstance(e, h2.events.RequestReceived)]
    assert [r.stream_id for r in requests] == sids
    for r in requests:
        path = dict(r.headers)[b":path"]
        server.send_headers(r.stream_id, [(b":status", b"200"), (b"server", b"lib")])
        server.send_data(r.stream_id, path * 1000, end_stream=True)
    events = client.receive_data(server.data_to_send(), 0.0)
    for i, sid in enumerate(sids):
        assert ev.response_received(sid, 200, [(b"server", b"lib")], False) in events
        assert body_of(events, sid) == b"/%d" % i * 1000
    client.ping(b"abcdefgh")
    assert any(
        isinstance(e, h2.events.PingReceived) for e in server.receive_data(client.data_to_send())
    )
    assert client.receive_data(server.data_to_send(), 0.0) == [ev.PingAckReceived(b"abcdefgh")]


# -- server misbehaviour seen by our client ---------------------------------------------


class RawServer:
    def __init__(self, settings: bytes | None = None) -> None:
        self.conn = H2Connection(CLIENT)
        self.conn.initiate(0.0)
        self.conn.data_to_send()
        self.encoder = hpack.Encoder()
        self.events = self.conn.receive_data(
            (settings if settings is not None else settings_frame()) + frame(SETTINGS, ACK, 0), 0.0
        )

    def response(
        self, sid: int, fields: list[tuple[bytes, bytes]], end_stream: bool = True
    ) -> bytes:
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, sid, self.encoder.encode(fields))


@pytest.mark.parametrize(
    "raw_after_request",
    [
        lambda s: frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"),
        lambda s: s.response(2, [(b":status", b"200")]),
        lambda s: s.response(3, [(b":status", b"200")]),
        lambda s: frame(DATA, 0, 5, b"x"),
    ],
    ids=["push-promise", "even-stream", "idle-odd-stream", "data-idle"],
)
def test_client_connection_errors(raw_after_request: object) -> None:
    s = RawServer()
    s.conn.send_request(REQUEST, end_stream=False)
    s.conn.data_to_send()
    events = s.conn.receive_data(raw_after_request(s), 0.0)  # type: ignore[operator]
    assert isinstance(events[-1], ev.ConnectionTerminated)
    assert goaway_code(parse(s.conn.data_to_send())) == ErrorCode.PROTOCOL_ERROR


def test_server_enabling_push_is_protocol_error() -> None:
    conn = H2Connection(CLIENT)
    conn.initiate(0.0)
    conn.data_to_send()
    conn.receive_data(settings_frame((0x2, 1)), 0.0)
    assert goaway_code(parse(conn.data_to_send())) == ErrorCode.PROTOCOL_ERROR


def test_first_server_frame_must_be_settings() -> None:
    conn = H2Connection(CLIENT)
    conn.initiate(0.0)
    conn.data_to_send()
    conn.receive_data(window_update(0, 10), 0.0)
    assert goaway_code(parse(conn.data_to_send())) == ErrorCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "fields",
    [
        [(b":status", b"101")],
        [(b":status", b"20")],
        [(b":status", b"abc")],
        [(b":status", b"200"), (b":status", b"200")],
        [(b"x-a", b"1"), (b":status", b"200")],
        [(b":status", b"200"), (b":path", b"/")],
        [(b":status", b"200"), (b"connection", b"close")],
        [(b":status", b"200"), (b"Bad", b"1")],
        [],
    ],
)
def test_malformed_responses(fields: list[tuple[bytes, bytes]]) -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    events = s.conn.receive_data(s.response(1, fields), 0.0)
    assert events == [ev.StreamReset(1, ErrorCode.PROTOCOL_ERROR, False)]
    assert rst_codes(parse(s.conn.data_to_send())) == {1: ErrorCode.PROTOCOL_ERROR}


def test_informational_with_end_stream_is_malformed() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    events = s.conn.receive_data(s.response(1, [(b":status", b"100")], end_stream=True), 0.0)
    assert events == [ev.StreamReset(1, ErrorCode.PROTOCOL_ERROR, False)]


def test_data_before_response_head() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    events = s.conn.receive_data(frame(DATA, END_STREAM, 1, b"early"), 0.0)
    assert events == [ev.StreamReset(1, ErrorCode.PROTOCOL_ERROR, False)]


def test_response_content_length_mismatch() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    data = s.response(1, [(b":status", b"200"), (b"content-length", b"3")], end_stream=False)
    events = s.conn.receive_data(data + frame(DATA, END_STREAM, 1, b"toolong"), 0.0)
    assert events[-1] == ev.StreamReset(1, ErrorCode.PROTOCOL_ERROR, False)


def test_204_with_content_length_is_fine() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    data = s.response(1, [(b":status", b"204"), (b"content-length", b"3")], end_stream=True)
    assert s.conn.receive_data(data, 0.0) == [
        ev.response_received(1, 204, [(b"content-length", b"3")], True)
    ]


def test_oversized_response_head_cancels_stream() -> None:
    s = RawServer()
    s.conn = H2Connection(replace(CLIENT, max_header_list_size=100))
    s.conn.initiate(0.0)
    s.conn.receive_data(settings_frame(), 0.0)
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    events = s.conn.receive_data(s.response(1, [(b":status", b"200"), (b"x-big", b"v" * 200)]), 0.0)
    assert events == [ev.StreamReset(1, ErrorCode.CANCEL, False)]


def test_server_reset_reaches_client() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    events = s.conn.receive_data(frame(RST_STREAM, 0, 1, struct.pack(">I", 7)), 0.0)
    assert events == [ev.StreamReset(1, ErrorCode.REFUSED_STREAM, True)]


def test_goaway_with_error_terminates_client() -> None:
    s = RawServer()
    events = s.conn.receive_data(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 11) + b"calm"), 0.0)
    assert events[-1] == ev.ConnectionTerminated(ErrorCode.ENHANCE_YOUR_CALM, 0, b"calm", True)
    assert s.conn.closed
    with pytest.raises(H2UsageError):
        s.conn.send_request(REQUEST)


def test_send_request_initiates_and_ids_run_out() -> None:
    conn = H2Connection(CLIENT)
    sid = conn.send_request(REQUEST)
    data = conn.data_to_send()
    assert sid == 1 and data.startswith(PREFACE)
    conn._next_local = 2**31 + 1  # as if two billion streams had been used
    with pytest.raises(H2UsageError):
        conn.get_next_stream_id()
    with pytest.raises(H2UsageError):
        conn.send_request(REQUEST)


def test_client_send_headers_before_initiate() -> None:
    conn = H2Connection(CLIENT)
    conn.send_headers(1, REQUEST, end_stream=True)
    assert conn.data_to_send().startswith(PREFACE)


def test_client_response_with_content_length_but_end_stream() -> None:
    s = RawServer()
    s.conn.send_request(REQUEST)
    s.conn.data_to_send()
    data = s.response(1, [(b":status", b"200"), (b"content-length", b"3")], end_stream=True)
    assert s.conn.receive_data(data, 0.0) == [ev.StreamReset(1, ErrorCode.PROTOCOL_ERROR, False)]


def _client_in_force(config: H2Config) -> H2Connection:
    """A client whose SETTINGS the server has acknowledged (its windows are in force)."""
    conn = H2Connection(config)
    conn.initiate(0.0)
    conn.data_to_send()
    conn.receive_data(settings_frame() + frame(SETTINGS, ACK, 0), 0.0)
    conn.data_to_send()
    return conn


ONE_FRAME_HEAD = frame(HEADERS, END_HEADERS, 1, b"\x88")  # :status 200, static index


def test_responses_in_one_data_frame_give_the_connection_window_back() -> None:
    # Each body comes whole in its first DATA (no stream window is made for it): what it
    # took from the connection window comes back without the application acknowledging,
    # or the fifth response here would break the 65,535-octet connection window.
    conn = _client_in_force(replace(CLIENT, connection_window_size=65535))
    body = b"b" * 16000
    for sid in range(1, 19, 2):
        conn.send_request(REQUEST)
        head = frame(HEADERS, END_HEADERS, sid, b"\x88")
        events = conn.receive_data(head + frame(DATA, END_STREAM, sid, body), 0.0)
        assert events == [
            ev.response_received(sid, 200, [], False),
            ev.data_received(sid, body, 16000, True),
        ]
    updates = [f for f in parse(conn.data_to_send()) if f.type == WINDOW_UPDATE]
    assert {f.stream_id for f in updates} == {0}  # none for the closed streams
    assert sum(struct.unpack(">I", f.payload)[0] for f in updates) == 9 * 16000


def test_one_data_frame_past_the_stream_window_resets_the_stream_only() -> None:
    small = _client_in_force(replace(CLIENT, initial_window_size=1000))
    small.send_request(REQUEST)
    events = small.receive_data(ONE_FRAME_HEAD + frame(DATA, END_STREAM, 1, b"x" * 1001), 0.0)
    assert events[-1] == ev.StreamReset(1, ErrorCode.FLOW_CONTROL_ERROR, False)
    assert rst_codes(parse(small.data_to_send())) == {1: ErrorCode.FLOW_CONTROL_ERROR}
    # The same frame within the window is the response.
    conn = _client_in_force(CLIENT)
    conn.send_request(REQUEST)
    events = conn.receive_data(ONE_FRAME_HEAD + frame(DATA, END_STREAM, 1, b"x" * 1001), 0.0)
    assert events[-1] == ev.data_received(1, b"x" * 1001, 1001, True)
