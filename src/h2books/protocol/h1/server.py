"""The server side of an HTTP/1.1 connection (RFC 9112), sans-IO.

Requests are delivered in order: a head as soon as it is complete, its body in
parts as it arrives (whole with the head when it all came with it; `body` says
what happens to a rest nobody reads). Responses are given back in the same order
and the core frames them: it adds the content-length or chunked coding (with
trailers), ``connection: close`` on the last response, ``connection: keep-alive``
for persistent HTTP/1.0, drops bodies of HEAD/204/304 answers, and sends
``100 Continue`` and error responses at the right place in the response stream.

Input after the request that ends the connection, or after malformed input,
is ignored: the core never parses a request it will not answer.

Deadlines (slow heads, idle keep-alive, stalls; the rules are in `deadlines`)
are the core's too: it reads no clock, every entry point that takes input
takes the time, `get_timer` says when the rule in force expires and
`handle_timer` applies it.
"""

from __future__ import annotations

from h2books.protocol.h1.answers import (
    _CLOSE,
    _IS_HEAD,
    _IS_HTTP10,
    _IS_UPGRADE,
    _MAX_CACHED_FIELDS,
    _UPGRADE_ASKED,
    H1ServerAnswers,
)
from h2books.protocol.h1.body import IncomingBody, expects_continue
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import (
    ConnectionClosed,
    Event,
    Fields,
    ProtocolError,
    RequestReceived,
    UpgradeRequested,
)
from h2books.protocol.h1.framing import CHUNKED, FIXED, NO_BODY, body_framing
from h2books.protocol.h1.parser import (
    HTTP_10,
    HTTP_11,
    SLASH,
    check_method_and_target,
    keep_alive_of,
    parse_fields,
    parse_request_line,
    target_authority,
    validate_host,
)
from h2books.protocol.h1.serializer import error_response
from h2books.protocol.h1.upgrade import requested_upgrade

__all__ = ["H1ServerConnection"]


class H1ServerConnection(H1ServerAnswers):
    """One HTTP/1.1 server connection: bytes in, `Event`s out, bytes to send.

    The driver feeds `receive_data`, answers each `RequestReceived` in order
    with `send_response` (or `start_response`/`send_body`/`end_response`),
    writes `data_to_send`, and closes once `must_close` is set. When `paused`
    (``max_pipelined`` answers owed) parsing stops; call `resume` after
    responses went out, and stop reading from the socket meanwhile. `held_back`
    says that the last parse left input unparsed for that reason (or behind an
    upgrade request): answered inline, those requests leave the core no longer
    paused, and `resume` parses the rest.
    """

    __slots__ = ()

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes received at ``now`` (``b""`` for EOF); returns the events they complete.

        A keep-alive client sends the same field lines with every request. When ``data`` is
        exactly one bodiless head whose field lines repeat, byte for byte, those of the last
        bodiless request, only the request line is parsed and the fields' parse is reused
        (the repeated-fields path, inline here: a call fewer per request). Identical bytes
        parse identically, so it gives what the general path would; anything else (a body,
        more than one head, a partial head, a limit reached, an error) takes the general
        path, which produces the errors.
        """
        deadlines = self._deadlines
        deadlines.last_activity = now
        deadlines.handed_out = False
        if not self._reading:
            return []
        if not data:
            self._eof = True
            return self._parse(now)
        cache = self._fields_cache
        if (
            cache is not None
            and self._body is None
            and (self._reader_untouched or self._reader.idle)
        ):
            rest, size_limit, version, headers, host, keep_alive = cache
            # `rest` is what follows the target: the version (as sent), CRLF, the field
            # lines, CRLF CRLF. So data of the form "method SP target SP rest" is a request
            # line the general path would split into the same three parts (neither part
            # holds a space), with the version it parsed before; the method's and target's
            # rules reject any CR or LF (so any second head) they might hold. One split
            # does it: slicing off the line and the tail, then splitting the line, cost
            # ~1,800 instructions more. Only with nothing owed: then max_pipelined (at
            # least 1 once a request was parsed) is not reached, and no answer is pending
            # that could hold the bytes back (an Upgrade's: until it is answered, what
            # follows may not be HTTP at all). With answers owed, the general path
            # applies both rules.
            if len(data) <= size_limit and not self._owed and self._stream is None:
                try:
                    method, target, after_target = data.split(b" ", 2)
                    repeated = after_target == rest
                    if repeated:
                        check_method_and_target(method, target)
                except (ValueError, H1Error):
                    repeated = False  # fewer than two spaces, or an error the general path answers
                if repeated:
                    if target[0] != SLASH:  # (check_method_and_target refuses an empty target)
                        host = target_authority(method, target) or host
                    # The reader was idle, and this path leaves it alone: so it stays, and
                    # the next read need not ask it.
                    self._reader_untouched = True
                    # The request's own list of the fields ([*t] costs ~250 instructions
                    # less than list(t) on CPython 3.11).
                    return [
                        self._deliver(method, target, version, [*headers], b"", keep_alive, host)
                    ]
        self._reader.feed(data)
        return self._parse(now)

    def resume(self, now: float) -> list[Event]:
        """Parse input held back while `paused`; ``now`` starts the clock of a partial
        head that comes to light."""
        self.held_back = False  # also when nothing more will be parsed
        if not self._reading:
            return []
        return self._parse(now)

    def _parse(self, now: float) -> list[Event]:
        self._reader_untouched = False
        self.held_back = False
        events: list[Event] = []
        try:
            self._parse_into(events)
        except H1Error as exc:
            self._fail(exc, events)
        self._deadlines.track_head(self.has_partial_request, now)
        if self._shutting_down:
            self._finish_shutdown_if_done()
        return events

    def _parse_into(self, events: list[Event]) -> None:
        reader = self._reader
        while True:
            if self._upgrade:
                # What follows an upgrade request may be the new protocol's: it waits
                # for the answer (a refusal lets HTTP/1.1 go on with it, see resume()).
                self.held_back = bool(reader.buffered)
                return
            body = self._body
            if body is None:
                if len(self._owed) + (self._stream is not None) >= self._max_pipelined:
                    if reader.buffered and not reader.only_empty_lines_left():
                        self.held_back = True
                        return  # paused: the rest stays buffered until resume()
                    break
                lines = reader.read_head()
                if lines is None:
                    break
                request = self._start_request(lines)
                if request is None:
                    continue
                events.append(request)
            elif not self._read_body(body, events):
                break
            if not self._reading:
                return
        if self._eof:
            if self._body is None and reader.only_empty_lines_left():
                self._reading = False
                self._peer_closed = True
                self._awaits_last_answer = True
                if not self.unanswered:
                    self.must_close = True
                events.append(ConnectionClosed())
                return
            raise H1Error("connection closed in the middle of a request")
        self._maybe_continue()

    def _read_body(self, body: IncomingBody, events: list[Event]) -> bool:
        """Deliver what is buffered of the body being received; True once it has ended."""
        if not body.read_into(events, self._deliver):
            return False
        self._body = None
        self._continue_wanted = False
        if not body.keep_alive:
            self._reading = False  # RFC 9112 §9.6: no requests after "close"
        return True

    def _start_request(self, lines: list[bytes]) -> RequestReceived | UpgradeRequested | None:
        """Act on a parsed head: the request if it has no body, else None (body pending)."""
        method, target, version = parse_request_line(lines[0])
        self._method = method
        headers, framing = parse_fields(lines)

        hosts = framing.get(b"host")
        field_host: bytes | None = None
        if hosts is None:
            if version == HTTP_11:
                raise H1Error("missing host header")
        elif len(hosts) > 1:
            raise H1Error("multiple host headers")
        else:
            field_host = hosts[0]
            if field_host != self._last_host:
                validate_host(field_host)
                self._last_host = field_host
        host = field_host
        if target[0] != SLASH:  # (check_method_and_target refuses an empty target)
            host = target_authority(method, target) or host

        body, length = body_framing(framing, version)
        if length > self._max_body:
            raise H1Error("request body too large", 413)

        keep_alive = keep_alive_of(framing.get(b"connection"), version)

        # HTTP/1.0 expectations are ignored.
        wants_continue = version == HTTP_11 and expects_continue(framing.get(b"expect"))

        if body == NO_BODY:
            if b"upgrade" in framing:
                protocol = requested_upgrade(method, version, framing)
                if protocol is not None:
                    request = self._deliver(method, target, version, headers, b"", keep_alive, host)
                    self._owed[-1] |= _IS_UPGRADE
                    self._upgrade = _UPGRADE_ASKED
                    self._awaits_last_answer = True
                    return UpgradeRequested(request, protocol)
            else:
                # Field lines that ask for an upgrade are never cached: the fast path
                # matches the lines alone, and a GET after a HEAD with the same lines
                # would slip past requested_upgrade.
                self._remember_fields(lines, version, headers, field_host, keep_alive)
            return self._deliver(method, target, version, headers, b"", keep_alive, host)
        if body == FIXED:
            whole = self._reader.read_fixed(length)
            if whole is not None:  # the common case: all of a small body came with its head
                return self._deliver(method, target, version, headers, whole, keep_alive, host)
        self._body = self._incoming.begin(
            (method, target, version, headers, keep_alive, host), body == CHUNKED, length
        )
        self._continue_wanted = wants_continue
        return None

    def _remember_fields(
        self,
        lines: list[bytes],
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        host: bytes | None,
        keep_alive: bool,
    ) -> None:
        tail = b"\r\n".join([b"", *lines[1:], b"", b""])
        if len(tail) > _MAX_CACHED_FIELDS:
            return
        # What follows the target: the version as sent (the line parsed: two spaces), then
        # the tail. It says the version too, so one comparison finds the same entry.
        line = lines[0]
        rest = line[line.rindex(b" ") + 1 :] + tail
        cache = self._fields_cache
        if cache is not None and cache[0] == rest:
            return
        # A request line up to line_limit keeps both the line and the head in bounds: a
        # head of the form "method SP target SP rest" up to size_limit octets.
        line_limit = min(self._max_line, self._max_head - len(tail))
        size_limit = line_limit + len(tail)
        self._fields_cache = (rest, size_limit, version, tuple(headers), host, keep_alive)

    def _deliver(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        keep_alive: bool,
        host: bytes | None,
        trailers: Fields | None = None,
    ) -> RequestReceived:
        flags = 0 if keep_alive else _CLOSE
        if method == b"HEAD":
            flags |= _IS_HEAD
        if version == HTTP_10:
            flags |= _IS_HTTP10
        self._owed.append(flags)
        self._method = b""
        if not keep_alive and body is not None:
            self._reading = False  # RFC 9112 §9.6: no requests after "close"
        request = RequestReceived()
        request.method = method
        request.target = target
        request.http_version = version
        request.headers = headers
        request.body = body
        request.keep_alive = keep_alive
        request.host = host
        request.trailers = trailers
        return request

    def _fail(self, exc: H1Error, events: list[Event]) -> None:
        self._reading = False
        self._continue_wanted = False
        response = error_response(exc.status, exc.reason, head_only=self._method == b"HEAD")
        if self._body is not None and self._body.head is None:
            # In the body of a delivered request: unanswered, the error is its answer
            # (the newest owed); answered, nothing more can be said before closing.
            if self._owed:
                self._owed.pop()
            else:
                response = b""
        events.append(ProtocolError(exc.status, exc.reason))
        if self.unanswered:
            self._error_response = response
            self._awaits_last_answer = True
        else:
            self._out.append(response)
            self.must_close = True
