"""The link model, sans-IO: what happens to a packet between the two ends, one direction.

A `LinkDirection` is a FIFO serializer followed by a delay line, like a real link:

1. **loss**: each packet is lost with probability ``loss`` (the RNG is passed in, so a
   seeded run loses the same packets every time);
2. **queue**: a packet that finds more than ``queue_bytes`` waiting to be serialized is
   dropped (drop-tail), as a router's buffer would. With no rate there is no serializer,
   and ``queue_bytes`` bounds the delay line instead (the bytes in flight, as netem's
   ``limit`` does): with a rate, the rate bounds it already (``rate * delay``);
3. **rate**: the packet leaves the serializer ``len * 8 / rate`` seconds after the one
   before it left (or after it arrived, if the link was idle);
4. **delay**: it arrives ``delay`` seconds later (plus a uniform ``±jitter``, which can
   reorder packets as jitter does; with probability ``reorder`` a packet skips the delay
   line altogether and overtakes the ones in it, as netem's ``reorder`` does).

No clock and no I/O: `send(packet, now)` takes a packet in, `next_due()` says when the
next one arrives at the far end, `take_due(now)` hands over those that have. The queue
needs no per-packet bookkeeping: with a FIFO serializer, the bytes still waiting at
``now`` are ``(busy_until - now) * rate / 8``.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

__all__ = ["LinkDirection", "LinkSpec", "LinkStats"]


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One direction of a link."""

    delay: float = 0.0  # one way, seconds
    rate: float | None = None  # bits per second; None: no limit
    loss: float = 0.0  # probability in [0, 1)
    queue_bytes: int = 1 << 20  # drop-tail bound of the serializer's queue (no rate: in flight)
    jitter: float = 0.0  # seconds, uniform in [-jitter, +jitter], never below zero delay
    reorder: float = 0.0  # probability that a packet skips the delay line

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0:
            raise ValueError("delay and jitter must not be negative")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("the rate must be positive (None for no limit)")
        if not 0 <= self.loss < 1 or not 0 <= self.reorder <= 1:
            raise ValueError("loss must be in [0, 1) and reorder in [0, 1]")
        if self.queue_bytes < 1:
            raise ValueError("the queue must hold at least one byte")


@dataclass(slots=True)
class LinkStats:
    packets_in: int = 0
    bytes_in: int = 0
    lost: int = 0  # by random loss
    dropped: int = 0  # by the full queue (drop-tail), or the full delay line without a rate
    delivered: int = 0
    bytes_delivered: int = 0
    reordered: int = 0  # sent past the delay line


class LinkDirection:
    """One direction of the emulated link; see the module docstring."""

    __slots__ = (
        "_busy_until",
        "_in_flight",
        "_in_flight_bytes",
        "_rng",
        "_seconds_per_byte",
        "_seq",
        "spec",
        "stats",
    )

    def __init__(self, spec: LinkSpec, rng: random.Random) -> None:
        self.spec = spec
        self.stats = LinkStats()
        self._rng = rng
        self._seconds_per_byte = 8.0 / spec.rate if spec.rate is not None else 0.0
        self._busy_until = 0.0  # when the serializer finishes the last packet it took
        self._in_flight: list[tuple[float, int, bytes]] = []  # heap of (due, seq, packet)
        self._in_flight_bytes = 0
        self._seq = 0  # ties keep arrival order

    def queued_bytes(self, now: float) -> float:
        """Bytes waiting to be serialized at `now` (the packet on the wire included)."""
        if not self._seconds_per_byte:
            return 0.0
        return max(0.0, self._busy_until - now) / self._seconds_per_byte

    def send(self, packet: bytes, now: float) -> bool:
        """Take a packet in at `now`; False if it was lost or dropped."""
        spec = self.spec
        stats = self.stats
        size = len(packet)
        stats.packets_in += 1
        stats.bytes_in += size
        rng = self._rng
        if spec.loss and rng.random() < spec.loss:
            stats.lost += 1
            return False
        start = now
        if self._seconds_per_byte:
            if self.queued_bytes(now) + size > spec.queue_bytes:
                stats.dropped += 1
                return False
            start = max(now, self._busy_until)
            self._busy_until = start + size * self._seconds_per_byte
            start = self._busy_until
        elif self._in_flight_bytes + size > spec.queue_bytes:
            stats.dropped += 1  # nothing paces the sender: the delay line itself is bounded
            return False
        delay = spec.delay
        if spec.reorder and rng.random() < spec.reorder:
            delay = 0.0
            stats.reordered += 1
        elif spec.jitter:
            delay = max(0.0, delay + rng.uniform(-spec.jitter, spec.jitter))
        self._seq += 1
        heapq.heappush(self._in_flight, (start + delay, self._seq, packet))
        self._in_flight_bytes += size
        return True

    def next_due(self) -> float | None:
        """When the next packet reaches the far end, or None when none is in flight."""
        return self._in_flight[0][0] if self._in_flight else None

    def take_due(self, now: float) -> list[bytes]:
        """The packets that have reached the far end by `now`, in arrival order."""
        in_flight = self._in_flight
        due: list[bytes] = []
        while in_flight and in_flight[0][0] <= now:
            due.append(heapq.heappop(in_flight)[2])
        if due:
            size = sum(map(len, due))
            self._in_flight_bytes -= size
            self.stats.delivered += len(due)
            self.stats.bytes_delivered += size
        return due

    def __len__(self) -> int:
        return len(self._in_flight)
