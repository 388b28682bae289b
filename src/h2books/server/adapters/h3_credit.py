"""How many requests an HTTP/3 client may open: QUIC's MAX_STREAMS, counted as HTTP/2 counts
SETTINGS_MAX_CONCURRENT_STREAMS.

aioquic gives a stream's credit back only when it drops the stream: both halves ended and
every byte of the answer acknowledged. An answer's credit then reaches the client one round
trip after the answer (its ACK out, MAX_STREAMS back), so each request held a slot for two
round trips, and the client's 100 requests in flight did not fit in 128 slots: on the
loopback up to 73 of them waited in the client for MAX_STREAMS, and at 50 ms RTT the crawl
moved ~45 requests per round trip instead of 100. HTTP/2 frees a slot when the answer's
END_STREAM leaves; here too a slot comes back once the server is done with a request (the
answer handed to QUIC whole, or the request refused), so MAX_STREAMS leaves with the answer.

Two bounds hold, whatever a client does:
- requests in progress (opened, not yet done) <= `concurrent`, as over HTTP/2;
- streams aioquic keeps (those, plus done ones whose last bytes are not yet acknowledged)
  <= `concurrent + unacknowledged`: past that, credit comes back only as aioquic drops
  streams, as before. A client that never acknowledges gets no more than that.
"""

from __future__ import annotations

from collections.abc import Mapping

from aioquic.quic.connection import Limit, QuicConnection

__all__ = ["RequestStreamCredit"]


class RequestStreamCredit(Limit):
    """aioquic's limit on the peer's bidirectional streams (`_local_max_streams_bidi`,
    pinned: aioquic 1.x), with `value` (the MAX_STREAMS granted, cumulative) computed from
    two counts: `done` (requests the adapter finished or refused) and `dropped` (streams
    aioquic dropped; its only write to `value` is `value += 1` as it drops one)."""

    def __init__(
        self,
        limit: Limit,
        concurrent: int,
        unacknowledged: int,
        kept: Mapping[int, object] | None = None,
    ) -> None:
        self._concurrent = concurrent
        self._unacknowledged = unacknowledged
        self.done = 0
        self.dropped = 0
        # Request streams already counted in `done`: each counts once, whichever way it
        # ended (answered, refused, dropped, reset), or a client could count one stream
        # twice (a refused head, then trailers on it) and open more than `concurrent`.
        # Pruned to the streams aioquic still keeps (`kept`): the others bring no events.
        self._released: set[int] = set()
        self._kept = kept if kept is not None else {}
        self._prune_at = 2 * (concurrent + unacknowledged) + 16
        super().__init__(limit.frame_type, limit.name, concurrent)

    def release(self, stream_id: int) -> None:
        """The server is done with the request on `stream_id`: its slot is free again."""
        released = self._released
        if stream_id in released:
            return
        released.add(stream_id)
        self.done += 1
        if len(released) > self._prune_at:
            released.intersection_update(self._kept)

    def released(self, stream_id: int) -> bool:
        """Whether that request stream's slot came back already (its request is over)."""
        return stream_id in self._released

    @property
    def value(self) -> int:
        # Never below aioquic's own count, never past the bound on streams it keeps.
        dropped = self.dropped
        return self._concurrent + max(dropped, min(self.done, dropped + self._unacknowledged))

    @value.setter
    def value(self, value: int) -> None:
        self.dropped += value - self.value

    @classmethod
    def install(cls, quic: QuicConnection, concurrent: int) -> RequestStreamCredit:
        """Replace the connection's limit before its transport parameters are sent (they
        announce `concurrent` as initial_max_streams_bidi, where aioquic fixes 128)."""
        credit = cls(
            quic._local_max_streams_bidi,
            concurrent,
            unacknowledged=concurrent,
            kept=quic._streams,  # pinned like the limit itself: aioquic 1.x
        )
        quic._local_max_streams_bidi = credit
        return credit
