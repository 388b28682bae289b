"""The answering side of an HTTP/1.1 server connection (RFC 9112), sans-IO.

`H1ServerAnswers` holds the state every part of a server connection shares, and gives
the answers back in request order: it frames them (content-length or chunked coding with
trailers, ``connection: close`` on the last one, ``connection: keep-alive`` for a
persistent HTTP/1.0 peer, no body for HEAD/204/304), sends ``100 Continue`` and error
responses at the right place, switches protocols on a 101, and applies the deadlines
(`deadlines`) and the graceful shutdown. `server.H1ServerConnection` adds the reading
side on top.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from h2books.protocol.h1.body import IncomingBody
from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.deadlines import IDLE, Deadlines
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import (
    ConnectionTimedOut,
    Event,
)
from h2books.protocol.h1.framing import CHUNKED, FIXED
from h2books.protocol.h1.reader import MessageReader
from h2books.protocol.h1.serializer import CONTINUE_RESPONSE, ResponseHead
from h2books.protocol.h1.streamed import CHUNK, DROP, LENGTH, RAW, StreamedBody

__all__ = ["H1ServerAnswers"]

# Facts about a delivered request that its response needs, packed in an int
# so the queue of owed responses holds no objects.
_IS_HEAD = 1
_IS_HTTP10 = 2
_CLOSE = 4
_IS_UPGRADE = 8

# Where a protocol switch stands: none asked; an upgrade request awaits its answer (nothing
# after it is parsed: it may be the new protocol's); switched (101 sent: never parse again).
_NO_UPGRADE, _UPGRADE_ASKED, _SWITCHED = 0, 1, 2

_CLOSE_FIELD = b"connection: close\r\n"
_KEEP_ALIVE_FIELD = b"connection: keep-alive\r\n"
_CHUNKED_FIELD = b"transfer-encoding: chunked\r\n"

# (what follows the target as sent: the version, CRLF, the field lines, CRLF CRLF; the
# longest head of that form within the limits; HTTP version, headers, Host value,
# keep-alive) of a bodiless request.
_FieldsCache = tuple[bytes, int, bytes, tuple[tuple[bytes, bytes], ...], bytes | None, bool]
# Field lines longer than this are not kept: an idle connection stays small.
_MAX_CACHED_FIELDS = 2048


def _with_fields(head: bytes, fields: bytes) -> bytes:
    """A serialized head (`ResponseHead.data`) with the core's own field lines added
    before its blank line."""
    return head[:-2] + fields + b"\r\n"


class H1ServerAnswers:
    """The state of a server connection and its answers (see the module docstring)."""

    __slots__ = (
        "_awaits_last_answer",
        "_body",
        "_continue_wanted",
        "_deadlines",
        "_eof",
        "_error_response",
        "_fields_cache",
        "_incoming",
        "_last_host",
        "_max_body",
        "_max_head",
        "_max_line",
        "_max_pipelined",
        "_method",
        "_out",
        "_owed",
        "_peer_closed",
        "_reader",
        "_reader_untouched",
        "_reading",
        "_shutting_down",
        "_stream",
        "_upgrade",
        "held_back",
        "must_close",
    )

    def __init__(self, config: H1Config, now: float) -> None:
        self._reader = MessageReader(config, 414)
        # The reader is known idle (the last read was a repeated-fields request, which
        # never touches it): see H1ServerConnection.receive_data.
        self._reader_untouched = False
        self._max_body = config.max_body_size
        self._max_head = config.max_header_bytes
        self._max_line = config.max_request_line
        self._max_pipelined = config.max_pipelined
        # The field lines of the last bodiless request and what parsing them gave.
        self._fields_cache: _FieldsCache | None = None
        self._incoming = IncomingBody(self._reader)
        self._body: IncomingBody | None = None  # the body being received, if any
        self._method = b""  # of a request being parsed, so an error answer to HEAD has no body
        self._last_host: bytes | None = None  # already validated
        self._owed: deque[int] = deque()  # flags of delivered requests, oldest first
        self._stream: StreamedBody | None = None  # response being streamed
        self._out: list[bytes] = []
        self._continue_wanted = False
        self._error_response: bytes | None = None  # queued once earlier answers are out
        self._reading = True
        self._eof = False
        self._peer_closed = False
        # The last response this connection will carry has been queued: the driver closes
        # once it is written. A plain attribute, not a property: the driver reads it after
        # every answer. Set by the core only.
        self.must_close = False
        # The last parse left complete input unparsed, paused (see H1ServerConnection).
        self.held_back = False
        self._shutting_down = False
        self._deadlines = Deadlines(config, now)
        self._upgrade = _NO_UPGRADE
        # Something waits for the answers owed to run out (an upgrade request's answer, an
        # error response, the peer's EOF, a graceful shutdown): only then does a whole
        # answer that leaves nothing owed need _response_done (a call fewer per request).
        # Set with each of those, never cleared: the rest of such a connection takes the
        # full path, which checks each again.
        self._awaits_last_answer = False

    @property
    def unanswered(self) -> int:
        """Requests delivered whose response is not completely queued yet."""
        return len(self._owed) + (self._stream is not None)

    @property
    def paused(self) -> bool:
        """Parsing waits for answers (``max_pipelined`` reached, or an upgrade request's
        answer); see `resume`."""
        return self._reading and (
            len(self._owed) + (self._stream is not None) >= self._max_pipelined
            or self._upgrade == _UPGRADE_ASKED
        )

    @property
    def has_partial_request(self) -> bool:
        """Part of a request HEAD is waiting (what runs the slow-head clock). A body
        that is still arriving is not a slow head: it makes progress, or it stalls."""
        reader = self._reader
        if self._body is not None or not reader.buffered:
            return False  # asked after every read: the common answer comes first
        if not self._reading or self.paused:
            return False
        return not reader.only_empty_lines_left()

    @property
    def body_unfinished(self) -> bool:
        """A request body is still arriving, or was when the connection stopped reading:
        the peer may still be sending it."""
        return self._body is not None

    @property
    def has_pending_input(self) -> bool:
        """A request has begun but is not complete (head or body), or complete requests
        wait while parsing is paused: closing now would drop a request."""
        if not self._reading:
            return False
        if self._body is not None:
            return True
        reader = self._reader
        return bool(reader.buffered) and not reader.only_empty_lines_left()

    # -- answers -------------------------------------------------------------

    def _maybe_continue(self) -> None:
        """Send ``100 Continue`` once the request that expects it is the oldest owed an
        answer (its answer comes next): at once when nothing precedes it."""
        if (
            self._continue_wanted
            and self._body is not None
            and len(self._owed) == 1
            and self._stream is None
        ):
            self._out.append(CONTINUE_RESPONSE)
            self._continue_wanted = False

    def _answered_body_unread(self) -> bool:
        """Called as an answer completes: if it answers the request whose body is still
        arriving, that body's rest is dropped; True when it is too long and the
        connection must close instead."""
        body = self._body
        if body is None or self._owed or body.head is not None or body.discarding:
            return False
        if self._error_response is not None:
            return False  # the body was refused (413): its error answer closes
        return not body.abandon()

    def send_response(self, head: ResponseHead, body: bytes) -> None:
        """Answer the oldest unanswered request with a complete response.

        ``head`` comes from `serialize_head`. A 1xx head (not 101) is sent as an
        interim response and leaves the request unanswered. After `must_close`
        responses are discarded: the connection is ending.
        """
        if self.must_close:
            return
        owed = self._owed
        if (
            self._stream is not None or not owed or head.status < 200
        ) and not self._interim_or_refused(head):
            return
        if head.sent_as_is and owed[0] == 0 and self._body is None and not self._awaits_last_answer:
            # The common answer, sent as it is: a head framed by its content-length, with
            # no connection field, to a persistent HTTP/1.1 request that is no HEAD, with
            # no body arriving and nothing waiting for the last answer. The general path
            # below would add no field and not close (~1,800 instructions less here).
            owed.popleft()
            self._out.append(head.data + body)
            if owed:
                self._maybe_continue()
            return
        framing = head.framing
        if framing == CHUNKED:
            raise H1Error("send_response takes a whole body; stream with start_response")
        flags = self._owed.popleft()
        no_body = head.no_body
        added = b""  # the core's own fields
        # A HEAD answer given without a body leaves the length unknown: say nothing.
        if framing != FIXED and not no_body and (body or not flags & _IS_HEAD):
            added = b"content-length: %d\r\n" % len(body)
        close = (
            flags & _CLOSE != 0
            or head.close
            or ((self._peer_closed or self._shutting_down) and not self._owed and self._ending())
            or (self._body is not None and self._answered_body_unread())
        )
        if close:
            if not head.close:
                added += _CLOSE_FIELD
        elif flags & _IS_HTTP10 and not head.has_connection:
            added += _KEEP_ALIVE_FIELD  # an HTTP/1.0 client assumes close otherwise
        data = _with_fields(head.data, added) if added else head.data
        if body and not flags & _IS_HEAD and not no_body:
            data += body
        self._out.append(data)
        if close or self._owed or self._awaits_last_answer:
            self._response_done(close)

    def start_response(self, head: ResponseHead) -> None:
        """Begin a streamed answer to the oldest unanswered request.

        Without a content-length in ``head`` the body is chunked (HTTP/1.1) or
        delimited by closing the connection (HTTP/1.0).
        """
        if self.must_close:
            return
        if (
            self._stream is not None or not self._owed or head.status < 200
        ) and not self._interim_or_refused(head):
            return
        flags = self._owed[0]
        no_body = bool(flags & _IS_HEAD) or head.no_body
        close = (
            flags & _CLOSE != 0
            or head.close
            or (
                (self._peer_closed or self._shutting_down)
                and len(self._owed) == 1
                and self._ending()
            )
        )
        added = b""  # the core's own fields
        remaining = 0
        framing = head.framing
        if framing == CHUNKED:
            if flags & _IS_HTTP10:
                raise H1Error("transfer-encoding cannot be sent to an HTTP/1.0 client")
            mode = CHUNK
        elif framing == FIXED:
            remaining = head.length
            mode = LENGTH
        elif no_body:
            mode = DROP
        elif flags & _IS_HTTP10:
            mode = RAW
            close = True
        else:
            mode = CHUNK
            added = _CHUNKED_FIELD
        self._owed.popleft()
        if close:
            if not head.close:
                added += _CLOSE_FIELD
        elif flags & _IS_HTTP10 and not head.has_connection:
            added += _KEEP_ALIVE_FIELD
        self._out.append(_with_fields(head.data, added) if added else head.data)
        self._stream = StreamedBody(DROP if no_body else mode, remaining, close)

    def send_body(self, data: bytes) -> None:
        """Queue part of the streamed body (chunk-encoded when chunked)."""
        stream = self._stream
        if stream is None:
            if self.must_close:
                return
            raise H1Error("no streamed response in progress")
        if data:  # an empty chunk would end a chunked body
            stream.frame(data, self._out)

    def end_response(self, trailers: Iterable[tuple[bytes, bytes]] | None = None) -> None:
        """Finish the streamed response, with ``trailers`` in a chunked one's trailer
        section; a body framed otherwise has no place for them and they are dropped."""
        stream = self._stream
        if stream is None:
            if self.must_close:
                return
            raise H1Error("no streamed response in progress")
        self._stream = None
        if not stream.finish(self._out, trailers):
            # The peer would read the next response as body: only closing is honest.
            self._response_done(True)
            raise H1Error("response body shorter than its content-length")
        self._response_done(stream.close or self._answered_body_unread())

    def take_trailing_data(self) -> tuple[bytes, bool]:
        """After a 101: the bytes received past the upgrade request's head, and whether
        the peer's EOF followed them. The connection is the new protocol's from here."""
        if self._upgrade != _SWITCHED:
            raise H1Error("take_trailing_data before switching protocols")
        return self._reader.take_rest(), self._eof

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call.

        Handing bytes out is activity; it is dated by the next call that brings the time.
        """
        out = self._out
        if not out:
            return b""
        self._deadlines.handed_out = True
        # One piece goes out as it is: b"".join would copy a body's memoryview slice.
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def _interim_or_refused(self, head: ResponseHead) -> bool:
        """True when ``head`` is a final answer the oldest request may have now; queues
        an interim (1xx) head and returns False; raises when no answer fits."""
        if self._stream is not None:
            raise H1Error("a streamed response is still in progress")
        if not self._owed:
            raise H1Error("no request is awaiting a response")
        if head.status >= 200:
            return True
        if head.status == 101:
            if not self._owed[0] & _IS_UPGRADE:
                raise H1Error("101 Switching Protocols answers only an upgrade request")
            self._owed.popleft()
            self._out.append(head.data)
            # The last HTTP/1.1 bytes of this connection: see take_trailing_data.
            self._upgrade = _SWITCHED
            self._reading = False
            self.must_close = True
            return False
        if not self._owed[0] & _IS_HTTP10:  # RFC 9110 section 15.2: never 1xx to HTTP/1.0
            self._out.append(head.data)
        return False

    def _response_done(self, close: bool) -> None:
        if close:
            self.must_close = True
            self._reading = False
            self._continue_wanted = False
            self._error_response = None
            return
        if self._owed:
            self._maybe_continue()
            return
        if self._upgrade == _UPGRADE_ASKED:
            self._upgrade = _NO_UPGRADE  # refused: HTTP/1.1 goes on (see upgrade.py)
        if self._error_response is not None:
            self._out.append(self._error_response)
            self._error_response = None
            self.must_close = True
        elif self._peer_closed:
            self.must_close = True
        elif self._shutting_down:
            self._finish_shutdown_if_done()

    def _ending(self) -> bool:
        """Asked once the peer is gone or a shutdown began: nothing follows the answers
        owed (no request arriving, no error response waiting), so the last one closes."""
        return self._error_response is None and not self.has_pending_input

    def get_timer(self) -> float | None:
        """When the deadline rule in force expires (see `deadlines`), or None."""
        rule = self._rule_in_force()
        return None if rule is None else rule[0]

    def handle_timer(self, now: float) -> list[Event]:
        """Apply the rule in force if its deadline has passed (early calls do nothing).

        A rule that fires ends the connection: `must_close` is set, answers still owed
        are dropped, and `ConnectionTimedOut` says how to close.
        """
        self._deadlines.date_output(now)
        rule = self._rule_in_force()
        if rule is None or now < rule[0]:
            return []
        self.must_close = True
        self._reading = False
        self._continue_wanted = False
        self._error_response = None
        self._owed.clear()
        self._stream = None
        self._deadlines.head_started = None
        name = rule[1]
        return [ConnectionTimedOut(name, graceful=name == IDLE)]

    def _rule_in_force(self) -> tuple[float, str] | None:
        if self.must_close:
            return None
        busy = bool(self._owed) or self._stream is not None or self.has_pending_input
        return self._deadlines.rule_in_force(busy)

    def start_graceful_shutdown(self) -> None:
        """Finish the requests received or still arriving, then end: the last answer says
        ``connection: close``, and `must_close` is set once nothing is owed or pending."""
        self._shutting_down = True
        self._awaits_last_answer = True
        self._finish_shutdown_if_done()

    def _finish_shutdown_if_done(self) -> None:
        if not self.must_close and not self._owed and self._stream is None and self._ending():
            self.must_close = True
            self._reading = False
            self._continue_wanted = False
