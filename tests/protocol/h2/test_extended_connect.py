"""RFC 8441 extended CONNECT in the HTTP/2 core: the setting, the :protocol rules, and a
tunnel that carries DATA both ways, against hand-built frames and the `h2` library."""

from __future__ import annotations

import struct

import h2.events
import h2.settings
import pytest

from h2books.protocol.h2 import ErrorCode, H2Config, H2Connection
from h2books.protocol.h2 import events as ev
from h2books.protocol.h2.validation import MalformedHeaders, validate_request

from .support import (
    DATA,
    END_STREAM,
    HEADERS,
    PREFACE,
    SETTINGS,
    LibClientPair,
    RawClient,
    frame,
    rst_codes,
)

WEBSOCKET = [
    (b":method", b"CONNECT"),
    (b":protocol", b"websocket"),
    (b":scheme", b"https"),
    (b":path", b"/chat?room=1"),
    (b":authority", b"example.com"),
    (b"sec-websocket-version", b"13"),
]


def _settings_sent(config: H2Config | None) -> dict[int, int]:
    conn = H2Connection(config)
    conn.initiate(0.0)
    out = conn.data_to_send().removeprefix(PREFACE)  # a client sends the magic first
    assert out[3] == SETTINGS
    length = int.from_bytes(out[:3], "big")
    return dict(struct.iter_unpack(">HI", out[9 : 9 + length]))


def test_server_advertises_enable_connect_protocol_by_default() -> None:
    assert _settings_sent(None)[0x8] == 1
    assert 0x8 not in _settings_sent(H2Config(enable_connect_protocol=False))
    assert 0x8 not in _settings_sent(H2Config(client_side=True))


def test_validation_accepts_protocol_only_on_a_full_connect() -> None:
    method, scheme, authority, path, headers, _, protocol = validate_request(WEBSOCKET)
    assert (method, scheme, authority, path, protocol) == (
        b"CONNECT",
        b"https",
        b"example.com",
        b"/chat?room=1",
        b"websocket",
    )
    assert headers == [(b"sec-websocket-version", b"13")]
    without = {
        ":scheme": [f for f in WEBSOCKET if f[0] != b":scheme"],
        ":path": [f for f in WEBSOCKET if f[0] != b":path"],
        ":authority": [f for f in WEBSOCKET if f[0] != b":authority"],
    }
    for fields in without.values():
        with pytest.raises(MalformedHeaders):
            validate_request(fields)
    get = [(b":method", b"GET"), *WEBSOCKET[1:]]
    with pytest.raises(MalformedHeaders, match="other than CONNECT"):
        validate_request(get)
    bad_path = [f if f[0] != b":path" else (b":path", b"chat") for f in WEBSOCKET]
    with pytest.raises(MalformedHeaders):
        validate_request(bad_path)
    twice = [*WEBSOCKET[:2], (b":protocol", b"websocket"), *WEBSOCKET[2:]]
    with pytest.raises(MalformedHeaders):
        validate_request(twice)


def test_extended_connect_opens_a_tunnel_carrying_data_both_ways() -> None:
    pair = LibClientPair()
    # The h2 library saw our setting and so lets its client send :protocol.
    assert pair.client.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, WEBSOCKET, end_stream=False)
    server_events, _ = pair.pump()
    requests = [e for e in server_events if isinstance(e, ev.RequestReceived)]
    assert len(requests) == 1
    request = requests[0]
    assert (request.method, request.protocol, request.path, request.end_stream) == (
        b"CONNECT",
        b"websocket",
        b"/chat?room=1",
        False,
    )
    server = pair.server
    server.send_headers(sid, [(b":status", b"200")])
    server.send_data(sid, b"from server")
    pair.client.send_data(sid, b"from client")
    server_events, client_events = pair.pump()
    assert any(isinstance(e, h2.events.ResponseReceived) for e in client_events)
    got = b"".join(e.data for e in client_events if isinstance(e, h2.events.DataReceived))
    assert got == b"from server"
    data = [e for e in server_events if isinstance(e, ev.DataReceived)]
    assert [d.data for d in data] == [b"from client"]
    # Both ends close their side: END_STREAM each way ends the stream cleanly.
    pair.client.end_stream(sid)
    server_events, _ = pair.pump()
    assert any(isinstance(e, ev.DataReceived) and e.end_stream for e in server_events)
    server.send_data(sid, b"", end_stream=True)
    _, client_events = pair.pump()
    assert any(isinstance(e, h2.events.StreamEnded) for e in client_events)
    assert server.open_stream_count == 0


def test_extended_connect_is_malformed_when_the_setting_is_off() -> None:
    client = RawClient(H2Config(enable_connect_protocol=False))
    events = client.send(client.headers(1, WEBSOCKET, end_stream=False))
    assert not [e for e in events if isinstance(e, ev.RequestReceived)]
    assert rst_codes(client.take()) == {1: ErrorCode.PROTOCOL_ERROR}


def test_protocol_on_a_get_is_a_stream_error() -> None:
    client = RawClient()
    fields = [(b":method", b"GET"), *WEBSOCKET[1:]]
    events = client.send(client.headers(1, fields))
    assert not [e for e in events if isinstance(e, ev.RequestReceived)]
    assert rst_codes(client.take()) == {1: ErrorCode.PROTOCOL_ERROR}
    # A stream error only: the connection goes on.
    events = client.send(client.headers(3))
    assert [e.stream_id for e in events if isinstance(e, ev.RequestReceived)] == [3]


def test_extended_connect_with_end_stream_is_a_tunnel_closed_by_the_peer() -> None:
    client = RawClient()
    events = client.send(client.headers(1, WEBSOCKET, end_stream=True))
    assert [type(e) for e in events] == [ev.RequestReceived, ev.DataReceived]
    request, ended = events
    assert isinstance(request, ev.RequestReceived) and not request.end_stream
    assert isinstance(ended, ev.DataReceived) and ended.end_stream and ended.data == b""
    # Our side can still answer and end.
    client.conn.send_headers(1, [(b":status", b"200")], end_stream=True)
    frames = client.take()
    assert [(f.type, f.stream_id) for f in frames] == [(HEADERS, 1)]
    assert frames[0].flags & END_STREAM


def test_tunnel_data_is_flow_controlled_like_a_body() -> None:
    client = RawClient()
    client.send(client.headers(1, WEBSOCKET, end_stream=False))
    client.take()
    events = client.send(frame(DATA, 0, 1, b"x" * 1000))
    data = [e for e in events if isinstance(e, ev.DataReceived)]
    assert data[0].flow_controlled_length == 1000
    client.conn.acknowledge_received_data(1, 1000)
    # Credit is given back (a WINDOW_UPDATE once enough is consumed); nothing is reset.
    assert not rst_codes(client.take())
