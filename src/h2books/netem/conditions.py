"""Network conditions as a user states them (`--rtt 50ms --bandwidth 20mbit --loss 1%`).

`Conditions` is the whole link, both directions; `directions()` turns it into the two
`LinkSpec`s of the link model: half the RTT each way, the bandwidth and the loss
rate applied to each direction on its own (so ``--loss 1%`` loses 1% of the packets
each way, as netem on both ends would).
"""

from __future__ import annotations

from dataclasses import dataclass

from h2books.netem.link import LinkSpec

__all__ = ["Conditions", "format_rate", "format_seconds"]

_MIN_QUEUE = 150_000  # bytes: 100 full-size packets, what a small router buffers
# Without a bandwidth, the bound of the bytes in flight each way: far above what the
# forwarder or the proxy can move in one RTT (16 MB in 50 ms is 2.7 Gbit/s), so it never
# shapes a transfer, yet a sender that outruns the link cannot grow memory without limit.
_UNPACED_QUEUE = 16 << 20


def format_seconds(value: float) -> str:
    if value == 0:
        return "0 ms"
    if value < 0.001:
        return f"{value * 1e6:g} µs"
    return f"{value * 1e3:g} ms"


def format_rate(bits_per_second: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits_per_second >= scale:
            return f"{bits_per_second / scale:g} {unit}"
    return f"{bits_per_second:g} bit/s"


@dataclass(frozen=True, slots=True)
class Conditions:
    rtt: float = 0.0  # seconds, both ways together
    bandwidth: float | None = None  # bits per second, each way; None: no limit
    loss: float = 0.0  # each way, in [0, 1)
    jitter: float = 0.0  # seconds, each way
    reorder: float = 0.0  # each way
    queue_bytes: int | None = None  # default: one BDP, at least 150 kB (no bandwidth: 16 MB)

    @property
    def emulated(self) -> bool:
        """Anything to emulate at all (otherwise the link is the loopback as it is)."""
        return bool(self.rtt or self.bandwidth or self.loss or self.jitter or self.reorder)

    def queue_limit(self) -> int:
        if self.queue_bytes is not None:
            return self.queue_bytes
        if self.bandwidth is None:
            return _UNPACED_QUEUE  # no serializer: the bound of the delay line
        return max(_MIN_QUEUE, int(self.bandwidth / 8 * max(self.rtt, 0.01)))

    def directions(self) -> tuple[LinkSpec, LinkSpec]:
        """(client to server, server to client)."""
        spec = LinkSpec(
            delay=self.rtt / 2,
            rate=self.bandwidth,
            loss=self.loss,
            queue_bytes=self.queue_limit(),
            jitter=self.jitter,
            reorder=self.reorder,
        )
        return spec, spec

    def describe(self) -> str:
        """One line for a report: ``RTT 50 ms, 20 Mbit/s each way, 1% loss each way``."""
        if not self.emulated:
            return "loopback, nothing added"
        parts = [f"RTT {format_seconds(self.rtt)}"]
        if self.bandwidth is not None:
            parts.append(f"{format_rate(self.bandwidth)} each way")
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss each way")
        if self.jitter:
            parts.append(f"±{format_seconds(self.jitter)} jitter")
        if self.reorder:
            parts.append(f"{self.reorder * 100:g}% reordered")
        return ", ".join(parts)

    @property
    def key(self) -> str:
        """A short name for tables and file names: ``rtt50ms``, ``rtt50ms-20mbit-loss1%``."""
        if not self.emulated:
            return "loopback"
        parts = [f"rtt{self.rtt * 1e3:g}ms"]
        if self.bandwidth is not None:
            parts.append(f"{self.bandwidth / 1e6:g}mbit")
        if self.loss:
            parts.append(f"loss{self.loss * 100:g}%")
        if self.jitter:
            parts.append(f"jitter{self.jitter * 1e3:g}ms")
        if self.reorder:
            parts.append(f"reorder{self.reorder * 100:g}%")
        return "-".join(parts)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "rtt_s": self.rtt,
            "bandwidth_bit_s": self.bandwidth,
            "loss": self.loss,
            "jitter_s": self.jitter,
            "reorder": self.reorder,
            "queue_bytes": self.queue_limit() if self.bandwidth is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, float | int | None]) -> Conditions:
        queue = data.get("queue_bytes")
        bandwidth = data.get("bandwidth_bit_s")
        return cls(
            rtt=float(data.get("rtt_s") or 0.0),
            bandwidth=float(bandwidth) if bandwidth is not None else None,
            loss=float(data.get("loss") or 0.0),
            jitter=float(data.get("jitter_s") or 0.0),
            reorder=float(data.get("reorder") or 0.0),
            queue_bytes=int(queue) if queue is not None else None,
        )
