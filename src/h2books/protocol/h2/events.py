"""What `H2Connection.receive_data` reports. Plain __slots__ classes: cheap to build.

Header names and values are ``bytes`` exactly as received (names are lowercase: the
core rejects anything else). Error codes are ints; known ones are `ErrorCode` members.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConnectionTerminated",
    "ConnectionTimedOut",
    "DataReceived",
    "Event",
    "GoAwayReceived",
    "InformationalResponseReceived",
    "PingAckReceived",
    "PushPromiseReceived",
    "RemoteSettingsChanged",
    "RequestReceived",
    "ResponseReceived",
    "SettingsAcknowledged",
    "StreamReset",
    "TrailersReceived",
    "WindowUpdated",
    "data_received",
    "push_promise_received",
    "request_received",
    "response_received",
]

Headers = list[tuple[bytes, bytes]]


class Event:
    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


class RequestReceived(Event):
    """Server role: a complete, valid request head. `path` is the raw :path (query kept).

    `protocol` is the lowercased :protocol of an RFC 8441 extended CONNECT (b"websocket"),
    None for any other request; such a request never has `end_stream` (see
    `HeadHandler._on_extended_connect`).
    """

    __slots__ = (
        "authority",
        "end_stream",
        "headers",
        "method",
        "path",
        "protocol",
        "scheme",
        "stream_id",
    )

    stream_id: int
    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes
    headers: Headers
    end_stream: bool
    protocol: bytes | None

    # No __init__: `request_received` makes each one. On CPython 3.11 calling a class
    # that has a Python __init__ costs ~900 instructions more than one without (the call
    # of __init__ is not inlined), and a server gets one of these per request.


def request_received(
    stream_id: int,
    method: bytes,
    scheme: bytes,
    authority: bytes,
    path: bytes,
    headers: Headers,
    end_stream: bool,
    protocol: bytes | None = None,
) -> RequestReceived:
    event = RequestReceived()
    event.stream_id = stream_id
    event.method = method
    event.scheme = scheme
    event.authority = authority
    event.path = path
    event.headers = headers
    event.end_stream = end_stream
    event.protocol = protocol
    return event


class ResponseReceived(Event):
    """Client role: the final (non-1xx) response head."""

    __slots__ = ("end_stream", "headers", "status", "stream_id")

    stream_id: int
    status: int
    headers: Headers
    end_stream: bool

    # No __init__: `response_received` makes each one (see RequestReceived: a client gets
    # one per response, and a push crawl thousands in a burst).


def response_received(
    stream_id: int, status: int, headers: Headers, end_stream: bool
) -> ResponseReceived:
    event = ResponseReceived()
    event.stream_id = stream_id
    event.status = status
    event.headers = headers
    event.end_stream = end_stream
    return event


class PushPromiseReceived(Event):
    """Client role: the server promised to push the response to a request (RFC 9113
    §8.4) on `stream_id` (even), in the course of our request on `parent_stream_id`. The
    pushed response arrives as `ResponseReceived` and `DataReceived` on `stream_id`;
    `reset_stream(stream_id)` declines it. `method` is GET or HEAD (a promise of any
    other request is refused by the core)."""

    __slots__ = (
        "authority",
        "headers",
        "method",
        "parent_stream_id",
        "path",
        "scheme",
        "stream_id",
    )

    parent_stream_id: int
    stream_id: int
    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes
    headers: Headers

    # No __init__: `push_promise_received` makes each one (see RequestReceived).


def push_promise_received(
    parent_stream_id: int,
    stream_id: int,
    method: bytes,
    scheme: bytes,
    authority: bytes,
    path: bytes,
    headers: Headers,
) -> PushPromiseReceived:
    event = PushPromiseReceived()
    event.parent_stream_id = parent_stream_id
    event.stream_id = stream_id
    event.method = method
    event.scheme = scheme
    event.authority = authority
    event.path = path
    event.headers = headers
    return event


class InformationalResponseReceived(Event):
    """Client role: a 1xx response head (never ends the stream)."""

    __slots__ = ("headers", "status", "stream_id")

    def __init__(self, stream_id: int, status: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers


class DataReceived(Event):
    """Body bytes. Pass `flow_controlled_length` (payload + padding) to
    `acknowledge_received_data` once the application has consumed them."""

    __slots__ = ("data", "end_stream", "flow_controlled_length", "stream_id")

    stream_id: int
    data: bytes
    flow_controlled_length: int
    end_stream: bool

    # No __init__: `data_received` makes each one (see RequestReceived).


def data_received(
    stream_id: int, data: bytes, flow_controlled_length: int, end_stream: bool
) -> DataReceived:
    event = DataReceived()
    event.stream_id = stream_id
    event.data = data
    event.flow_controlled_length = flow_controlled_length
    event.end_stream = end_stream
    return event


class TrailersReceived(Event):
    """Trailer fields; they always end the stream."""

    __slots__ = ("headers", "stream_id")

    def __init__(self, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.headers = headers


class StreamReset(Event):
    """A stream the application knows about is gone: the peer sent RST_STREAM
    (`remote=True`) or the core reset it because of the peer (`remote=False`)."""

    __slots__ = ("error_code", "remote", "stream_id")

    def __init__(self, stream_id: int, error_code: int, remote: bool) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote


class WindowUpdated(Event):
    """The peer opened a send window (stream 0: the connection window)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class PingAckReceived(Event):
    __slots__ = ("opaque",)

    def __init__(self, opaque: bytes) -> None:
        self.opaque = opaque


class SettingsAcknowledged(Event):
    __slots__ = ()


class RemoteSettingsChanged(Event):
    """Every setting the peer sent in one SETTINGS frame, with its final value."""

    __slots__ = ("changes",)

    def __init__(self, changes: dict[int, int]) -> None:
        self.changes = changes


class GoAwayReceived(Event):
    __slots__ = ("debug", "error_code", "last_stream_id")

    def __init__(self, error_code: int, last_stream_id: int, debug: bytes) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.debug = debug


class ConnectionTerminated(Event):
    """The connection is over. `remote=False`: the core found a connection error and
    has already queued its GOAWAY; flush `data_to_send()` and close."""

    __slots__ = ("debug", "error_code", "last_stream_id", "remote")

    def __init__(self, error_code: int, last_stream_id: int, debug: bytes, remote: bool) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.debug = debug
        self.remote = remote


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut(Event):
    """`handle_timer` ended the connection under `rule` ("preface", "request_head",
    "idle", "stall", "flow_blocked"). `graceful`: write what is queued and close
    normally; otherwise write what is queued, then abort the transport."""

    rule: str
    graceful: bool
