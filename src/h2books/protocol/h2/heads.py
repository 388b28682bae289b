"""A complete header block, decoded and checked: a request head (server), a
response head (client), or trailers (RFC 9113 §8.1, §8.3)."""

from __future__ import annotations

from h2books.protocol.hpack import HeaderListBombError, HeaderListTooLargeError, HPACKError

from . import events as ev
from .errors import ErrorCode, H2ConnectionError
from .frames import HEADERS, build_rst_stream
from .scheduler import STATUS_FIELDS, OutboundScheduler
from .stream import (
    FRAME_RULES,
    HALF_CLOSED_REMOTE,
    OPEN,
    RECV_HEADERS,
    RESERVED_LOCAL,
    RESERVED_REMOTE,
    RESET_BY_US,
    TRANSITIONS,
    Stream,
    new_stream,
)
from .validation import MalformedHeaders, validate_request, validate_response, validate_trailers

__all__ = ["HeadHandler", "raise_unless_too_large"]


class HeadHandler(OutboundScheduler):
    __slots__ = ()

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]] | None:
        """The field list, or None when it exceeds our header list size (the HPACK
        state is still in sync then, so only the stream suffers)."""
        try:
            return self._decoder.decode(block)
        except HPACKError as exc:
            raise_unless_too_large(exc)
            return None

    def _on_header_block(
        self, sid: int, end_stream: bool, block: bytes, bad_priority: bool
    ) -> None:
        if (sid & 1) != self._peer_parity or sid <= self._highest_peer:
            # Not a new stream: each the peer opened (or we reserved for its push) has an
            # id up to _highest_peer, so a new request needs no look in _streams.
            stream = self._streams.get(sid)
            if stream is not None:
                self._on_stream_headers(stream, end_stream, block, bad_priority)
            else:
                self._on_headers_without_stream(sid, block)
            return
        if self._client:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "server opened a stream")
        # A new request stream.
        self._highest_peer = sid
        try:  # _decode, inline: this runs for every request
            fields: list[tuple[bytes, bytes]] | None = self._decoder.decode(block)
        except HPACKError as exc:
            raise_unless_too_large(exc)
            fields = None
        goaway_last = self._goaway_last
        if goaway_last is not None and sid > goaway_last:
            return  # after our GOAWAY: not processed, ignored (HPACK state kept in sync)
        if bad_priority:
            self._stream_error(None, sid, ErrorCode.PROTOCOL_ERROR)
            return
        if fields is None or (
            len(fields) > self._max_fields and _counted_fields(fields) > self._max_fields
        ):
            self._reject_oversized_request(sid, end_stream)
            return
        # Our limit counts the client's requests only: our pushes count against its own
        # (RFC 9113 §5.1.2), and are bounded apart (push.py).
        live = len(self._streams)
        if live >= self._max_streams and live - self._pushed_live >= self._max_streams:
            self._stream_error(None, sid, ErrorCode.REFUSED_STREAM)
            return
        try:
            method, scheme, authority, path, headers, content_length, protocol = validate_request(
                fields
            )
        except MalformedHeaders:
            self._reject_malformed_request(sid)
            return
        if end_stream and content_length:
            self._reject_malformed_request(sid)
            return
        if protocol is not None:
            self._on_extended_connect(
                sid, end_stream, method, scheme, authority, path, headers, protocol
            )
            return
        self._streams[sid] = new_stream(
            sid,
            self._peer_initial_window,
            HALF_CLOSED_REMOTE if end_stream else OPEN,
            content_length,
            True,  # head_received: positional, as a call with keywords is not specialized
        )
        self._events.append(
            ev.request_received(sid, method, scheme, authority, path, headers, end_stream)
        )

    def _on_extended_connect(
        self,
        sid: int,
        end_stream: bool,
        method: bytes,
        scheme: bytes,
        authority: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        protocol: bytes,
    ) -> None:
        """An RFC 8441 extended CONNECT (a WebSocket over HTTP/2): a malformed request
        unless we sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (§4; our preface, queued before
        any request is read, carries it when the config enables it). The stream then
        carries DATA both ways like any request and response body. The head is delivered
        as opening the stream even when it came with END_STREAM; an empty DataReceived
        then ends the peer's side, so the layer above sees a tunnel closed by the peer."""
        if self._client or not self._config.enable_connect_protocol:
            self._reject_malformed_request(sid)
            return
        self._streams[sid] = new_stream(
            sid,
            self._peer_initial_window,
            HALF_CLOSED_REMOTE if end_stream else OPEN,
            head_received=True,
        )
        events = self._events
        events.append(
            ev.request_received(
                sid, method, scheme, authority, path, headers, False, protocol.lower()
            )
        )
        if end_stream:
            events.append(ev.data_received(sid, b"", 0, True))

    def _on_headers_without_stream(self, sid: int, block: bytes) -> None:
        """HEADERS on an id with no open stream that cannot open a new one."""
        if FRAME_RULES[(HEADERS, self.id_state(sid))].error is None:
            self._decode(block)  # dropped, but the HPACK state must stay in sync
            return
        self._apply_frame_rule(HEADERS, sid)

    def _on_stream_headers(
        self, stream: Stream, end_stream: bool, block: bytes, bad_priority: bool
    ) -> None:
        try:  # _decode, inline: this runs for every response (and pushed response)
            fields: list[tuple[bytes, bytes]] | None = self._decoder.decode(block)
        except HPACKError as exc:
            raise_unless_too_large(exc)
            fields = None
        state = stream.state
        if state == HALF_CLOSED_REMOTE:
            self._stream_error(stream, stream.stream_id, ErrorCode.STREAM_CLOSED)
            return
        if state == RESERVED_REMOTE:  # the response to a push: the stream leaves "reserved"
            stream.state = TRANSITIONS[(state, RECV_HEADERS)]
        elif state == RESERVED_LOCAL:
            rule = FRAME_RULES[(HEADERS, state)]
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, rule.reason)
        if bad_priority:
            self._stream_error(stream, stream.stream_id, ErrorCode.PROTOCOL_ERROR)
            return
        if fields is None or len(fields) > self._max_fields:
            self._stream_error(stream, stream.stream_id, ErrorCode.CANCEL)
            return
        if not stream.head_received:
            self._on_response_head(stream, end_stream, fields)
            return
        # Trailers.
        sid = stream.stream_id
        if not end_stream:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        try:
            headers = validate_trailers(fields)
        except MalformedHeaders:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        expected = stream.content_length
        if expected is not None and expected != stream.received:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        self._events.append(ev.TrailersReceived(sid, headers))
        self._remote_ended(stream)

    def _on_response_head(
        self, stream: Stream, end_stream: bool, fields: list[tuple[bytes, bytes]]
    ) -> None:
        sid = stream.stream_id
        try:
            status, headers, content_length = validate_response(fields)
        except MalformedHeaders:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        if status < 200:
            # 101 does not exist in HTTP/2 (§8.6); an informational head never ends a stream.
            if status == 101 or status < 100 or end_stream:
                self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
                return
            self._events.append(ev.InformationalResponseReceived(sid, status, headers))
            return
        stream.head_received = True
        # Responses without content (HEAD, 204, 304) may announce a length anyway.
        if not stream.is_head_request and status not in (204, 304):
            if end_stream and content_length:
                self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
                return
            stream.content_length = content_length
        self._events.append(ev.response_received(sid, status, headers, end_stream))
        if end_stream:
            self._remote_ended(stream)

    def _reject_oversized_request(self, sid: int, end_stream: bool) -> None:
        """A request head over our header list size or field count: answer 431 (RFC 6585) ourselves;
        the application never sees the stream."""
        self._charge_reset()
        self._write_header_block(sid, self._encoder.encode([STATUS_FIELDS[431]]), True)
        if not end_stream:
            self._queue_control(build_rst_stream(sid, ErrorCode.NO_ERROR))
        self._remember_closed(sid, RESET_BY_US)

    def _reject_malformed_request(self, sid: int) -> None:
        """A malformed request (§8.1.1): a 400 first, as the RFC asks servers to do, then
        the stream error. The 400 leaves the stream open (no END_STREAM) so that the
        RST_STREAM PROTOCOL_ERROR is what ends it."""
        self._write_header_block(sid, self._encoder.encode([STATUS_FIELDS[400]]), False)
        self._stream_error(None, sid, ErrorCode.PROTOCOL_ERROR)


def raise_unless_too_large(exc: HPACKError) -> None:
    """A header block that did not decode: a list over our header list size leaves the
    HPACK state in sync, so only the stream suffers (the caller refuses it); anything
    else is the connection error raised here."""
    if isinstance(exc, HeaderListTooLargeError):
        return
    if isinstance(exc, HeaderListBombError):
        raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, str(exc)) from None
    raise H2ConnectionError(ErrorCode.COMPRESSION_ERROR, str(exc)) from None


def _counted_fields(fields: list[tuple[bytes, bytes]]) -> int:
    """The field count of a request as HTTP/1.1 would count its lines: cookie crumbs
    (RFC 9113 §8.2.3) count as the one field they are joined into, so a browser's many
    cookies get no 431 over HTTP/2 that they would not get over HTTP/1.1. The crumbs
    themselves are bounded by the header list size, and are released once joined."""
    crumbs = 0
    for field in fields:
        if field[0] == b"cookie":
            crumbs += 1
    return len(fields) - crumbs + (1 if crumbs else 0)
