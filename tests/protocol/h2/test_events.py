"""Events are plain value objects."""

from __future__ import annotations

from h2books.protocol.h2 import ErrorCode
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
        ev.ResponseReceived(1, 200, [], False),
        ev.InformationalResponseReceived(1, 103, []),
        ev.DataReceived(1, b"x", 1, False),
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


def test_a_requests_stream_and_event_made_inline_have_every_field_of_their_factories() -> None:
    # heads._on_header_block makes both inline (a call each per request saved): a field
    # added to Stream/new_stream or RequestReceived/request_received must be set there too.
    from h2books.protocol.h2.stream import HALF_CLOSED_REMOTE, Stream, new_stream
    from tests.protocol.h2.support import RawClient

    client = RawClient()
    [event] = client.send(client.headers(1))
    assert isinstance(event, ev.RequestReceived)
    assert all(hasattr(event, slot) for slot in ev.RequestReceived.__slots__)
    assert event == ev.request_received(1, b"GET", b"https", b"example.com", b"/", [], True)
    stream = client.conn._streams[1]
    made = new_stream(1, stream.send_window, HALF_CLOSED_REMOTE, None, True)
    for slot in Stream.__slots__:
        assert getattr(stream, slot) == getattr(made, slot), slot
