"""Events produced by the HTTP/1.1 connection cores."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BodyEnded",
    "BodyReceived",
    "ConnectionClosed",
    "ConnectionTimedOut",
    "Event",
    "InformationalResponse",
    "ProtocolError",
    "RequestReceived",
    "ResponseReceived",
    "UpgradeRequested",
]


Fields = list[tuple[bytes, bytes]]


@dataclass(slots=True, init=False)
class RequestReceived:
    """A request head, with the whole (de-chunked) body when it was all there.

    Made by the server core (`H1ServerConnection._deliver` sets every field), without an
    __init__: on CPython 3.11 calling a class that has a Python __init__ costs ~900
    instructions more than one without, and there is one of these per request.

    ``body`` is None when the body is still arriving: `BodyReceived` events bring it,
    then `BodyEnded`. Otherwise the request is complete (``b""`` for no body), and
    ``trailers`` holds the trailer fields of a chunked body that had any.

    Header names are lowercase, values have surrounding whitespace removed.
    ``host`` is the Host field value, or the authority of an absolute-form or
    authority-form target (RFC 9112 §3.2.2 says that one wins); ``None`` only
    for an HTTP/1.0 request that named no host at all.
    """

    method: bytes
    target: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    keep_alive: bool
    host: bytes | None
    trailers: Fields | None


@dataclass(slots=True)
class BodyReceived:
    """Part of the body of the last request delivered (server role); never empty."""

    data: bytes


@dataclass(slots=True)
class BodyEnded:
    """The body of the last request delivered is complete (server role). ``trailers``:
    the trailer fields of a chunked body (validated like head fields), or None."""

    trailers: Fields | None


@dataclass(slots=True)
class UpgradeRequested:
    """A request that asks to switch protocols (server role; see `upgrade`).

    Parsing stops after it. Answer ``request`` with 101 to switch (then take the
    core's `take_trailing_data`), or with any other final response to go on as
    HTTP/1.1.
    """

    request: RequestReceived
    protocol: bytes  # lowercase: b"websocket"


@dataclass(slots=True)
class ResponseReceived:
    """A complete final response (client role)."""

    status: int
    reason: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    trailers: Fields | None = None  # of a chunked body that had any


@dataclass(slots=True)
class InformationalResponse:
    """A 1xx interim response other than 101 (client role)."""

    status: int
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class ProtocolError:
    """The peer sent malformed input (server role).

    The error response is already queued (after any responses still owed) and
    the core reads no further input: flush `data_to_send` and close.
    """

    status: int
    reason: str


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed its side at a message boundary."""


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut:
    """A deadline rule ended the connection (server role, from ``handle_timer``).

    ``rule`` is ``"request_head"``, ``"idle"`` or ``"stall"``. ``graceful``: write
    what is queued and close; otherwise write what is queued and abort.
    """

    rule: str
    graceful: bool


Event = (
    RequestReceived
    | BodyReceived
    | BodyEnded
    | UpgradeRequested
    | ResponseReceived
    | InformationalResponse
    | ProtocolError
    | ConnectionClosed
    | ConnectionTimedOut
)
