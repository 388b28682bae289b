"""Events are plain value objects."""

from __future__ import annotations

import pytest

from h2books.protocol.h2 import ErrorCode, SettingCode
from h2books.protocol.h2 import events as ev


def test_repr_and_equality() -> None:
    event = ev.StreamReset(3, ErrorCode.CANCEL, True)
    assert repr(event) == "StreamReset(error_code=<ErrorCode.CANCEL: 8>, remote=True, stream_id=3)"
    assert event == ev.StreamReset(3, 8, True)
    assert event != ev.StreamReset(3, 8, False)
    assert event != ev.WindowUpdated(3)
    assert repr(ev.SettingsAcknowledged()) == "SettingsAcknowledged()"
    assert ev.SettingsAcknowledged() == ev.SettingsAcknowledged()


def test_every_event_has_slots_only() -> None:
    samples = [
        ev.request_received(1, b"GET", b"https", b"a", b"/", [], True),
        ev.response_received(1, 200, [], False),
        ev.InformationalResponseReceived(1, 103, []),
        ev.data_received(1, b"x", 1, False),
        ev.TrailersReceived(1, []),
        ev.WindowUpdated(0),
        ev.PingAckReceived(b"12345678"),
        ev.RemoteSettingsChanged({}),
        ev.GoAwayReceived(0, 0, b""),
        ev.ConnectionTerminated(1, 0, b"", False),
    ]
    for event in samples:
        assert not hasattr(event, "__dict__")
        assert event == event


PEER_INITIAL_WINDOW = 1234  # the client's SETTINGS_INITIAL_WINDOW_SIZE, not the default
POST = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
    (b"content-length", b"5"),
]


@pytest.mark.parametrize("end_stream", [True, False])
def test_a_requests_stream_and_event_made_inline_have_every_field_of_their_factories(
    end_stream: bool,
) -> None:
    # heads._on_header_block makes both inline (a call each per request saved): a field
    # added to Stream/new_stream or RequestReceived/request_received must be set there too.
    # The expected stream is built from what the peer announced, not read off the stream
    # under test; a request with a body (end_stream=False) also carries its content-length.
    from h2books.protocol.h2.stream import HALF_CLOSED_REMOTE, OPEN, Stream, new_stream
    from tests.protocol.h2.support import RawClient, settings_frame

    client = RawClient(
        settings=settings_frame((SettingCode.INITIAL_WINDOW_SIZE, PEER_INITIAL_WINDOW))
    )
    fields = None if end_stream else POST
    [event] = client.send(client.headers(1, fields, end_stream=end_stream))
    assert isinstance(event, ev.RequestReceived)
    assert all(hasattr(event, slot) for slot in ev.RequestReceived.__slots__)
    if end_stream:
        expected = ev.request_received(1, b"GET", b"https", b"example.com", b"/", [], True)
        made = new_stream(1, PEER_INITIAL_WINDOW, HALF_CLOSED_REMOTE, None, True)
    else:
        headers = [(b"content-length", b"5")]
        expected = ev.request_received(1, b"POST", b"https", b"example.com", b"/", headers, False)
        made = new_stream(1, PEER_INITIAL_WINDOW, OPEN, 5, True)
    assert event == expected
    stream = client.conn._streams[1]
    for slot in Stream.__slots__:
        assert getattr(stream, slot) == getattr(made, slot), slot
