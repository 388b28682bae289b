"""Token buckets that cap how fast a peer may make us do work for nothing
(rapid reset, MadeYouReset, PING/SETTINGS/PRIORITY floods), refilled from `now`.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """`capacity` tokens, `refill_per_second` more per second of `now`.

    The refill is computed lazily, only when the bucket runs dry, so the common
    case of `spend` is one subtraction and one comparison.
    """

    __slots__ = ("_stamp", "capacity", "refill_per_second", "tokens")

    def __init__(self, capacity: int, refill_per_second: float) -> None:
        self.capacity = float(capacity)
        self.refill_per_second = refill_per_second
        self.tokens = float(capacity)
        self._stamp = 0.0

    def spend(self, now: float) -> bool:
        """Take one token; False once the peer is over budget."""
        tokens = self.tokens
        if tokens >= self.capacity:
            # Full: time spent full earns nothing, so accrual starts from here.
            self._stamp = now
        elif tokens < 1.0:
            elapsed = now - self._stamp
            self._stamp = now
            if elapsed > 0.0:
                tokens = min(self.capacity, tokens + elapsed * self.refill_per_second)
            if tokens < 1.0:
                self.tokens = tokens
                return False
        self.tokens = tokens - 1.0
        return True
