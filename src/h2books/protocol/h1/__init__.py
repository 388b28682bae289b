"""HTTP/1.1 sans-IO core (RFC 9112): server and client connections.

Bytes in, events out, bytes to send; no sockets, clocks or threads here: the
caller passes the time in.

Driving `H1ServerConnection` (``H1ServerConnection(config, now)``):

* ``events = conn.receive_data(data, now)`` (``b""`` on EOF), then write
  ``conn.data_to_send()`` (the core may queue ``100 Continue`` or an error
  response by itself).
* A `RequestReceived` whose ``body`` is None has its body still arriving:
  `BodyReceived` parts follow, then `BodyEnded` (with the trailer fields). A body
  left unread when its answer is complete is read and dropped when short, else the
  connection closes after that answer (see `body`).
* Answer every `RequestReceived` in order with ``send_response(head, body)`` or
  ``start_response(head)`` / ``send_body`` / ``end_response(trailers)``; ``head`` is the
  `ResponseHead` `serialize_head` returns. Write ``data_to_send()`` after each.
* Once ``max_pipelined`` answers are owed the core stops parsing
  (``conn.paused``): stop reading the socket, and after answering call
  ``conn.resume(now)`` for the events held back.
* Deadlines: call ``conn.handle_timer(now)`` at ``conn.get_timer()``; a
  `ConnectionTimedOut` ends the connection (close when ``graceful``, else
  abort, after writing what is queued). `start_graceful_shutdown` finishes the
  requests received or arriving, then sets ``must_close``.
* `ProtocolError`: the error response is queued after the answers still owed;
  keep answering those. Close once ``conn.must_close`` is true.
* `UpgradeRequested`: a WebSocket Upgrade; answer with 101 to hand the
  connection over (``take_trailing_data``), or refuse with any final
  response (see `upgrade`).
* `ConnectionClosed`: the peer's EOF at a message boundary; owed answers may
  still be sent (the last carries ``connection: close``). EOF inside a
  request is a `ProtocolError` (400), whose response is queued like any other.
"""

from h2books.protocol.h1.client import H1ClientConnection
from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import (
    BodyEnded,
    BodyReceived,
    ConnectionClosed,
    ConnectionTimedOut,
    Event,
    InformationalResponse,
    ProtocolError,
    RequestReceived,
    ResponseReceived,
    UpgradeRequested,
)
from h2books.protocol.h1.serializer import ResponseHead, serialize_head
from h2books.protocol.h1.server import H1ServerConnection

__all__ = [
    "BodyEnded",
    "BodyReceived",
    "ConnectionClosed",
    "ConnectionTimedOut",
    "Event",
    "H1ClientConnection",
    "H1Config",
    "H1Error",
    "H1ServerConnection",
    "InformationalResponse",
    "ProtocolError",
    "RequestReceived",
    "ResponseHead",
    "ResponseReceived",
    "UpgradeRequested",
    "serialize_head",
]
