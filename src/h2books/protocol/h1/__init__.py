"""HTTP/1.1 sans-IO core (RFC 9112): server and client connections.

Bytes in, events out, bytes to send; no sockets, clocks or threads here.

Driving `H1ServerConnection`:

* ``events = conn.receive_data(data)`` (``b""`` on EOF), then write
  ``conn.data_to_send()`` (the core may queue ``100 Continue`` or an error
  response by itself).
* Answer every `RequestReceived` in order with ``send_response(head, body)`` or
  ``start_response(head)`` / ``send_body`` / ``end_response``; ``head`` comes
  from `serialize_head`. Write ``data_to_send()`` after each.
* Once ``max_pipelined`` answers are owed the core stops parsing
  (``conn.paused``): stop reading the socket, and after answering call
  ``conn.resume()`` for the events held back.
* `ProtocolError`: the error response is queued after the answers still owed;
  keep answering those. Close once ``conn.must_close`` is true.
* `ConnectionClosed`: the peer's EOF at a message boundary; owed answers may
  still be sent (the last carries ``connection: close``). EOF inside a
  request is a `ProtocolError` (400), whose response is queued like any other.
"""

from h2books.protocol.h1.client import H1ClientConnection
from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import (
    ConnectionClosed,
    Event,
    InformationalResponse,
    ProtocolError,
    RequestReceived,
    ResponseReceived,
)
from h2books.protocol.h1.serializer import serialize_head
from h2books.protocol.h1.server import H1ServerConnection

__all__ = [
    "ConnectionClosed",
    "Event",
    "H1ClientConnection",
    "H1Config",
    "H1Error",
    "H1ServerConnection",
    "InformationalResponse",
    "ProtocolError",
    "RequestReceived",
    "ResponseReceived",
    "serialize_head",
]
