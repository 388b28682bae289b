"""Flow-control accounting (RFC 9113 §5.2, §6.9).

Send windows are plain ints on the connection and on each stream (they are touched
on every DATA frame we write). This module holds the receive side: how much the
peer may still send, and when to give credit back.

Replenish policy: a WINDOW_UPDATE goes out only once the application has consumed
at least half of the window, as one frame covering everything consumed so far. That
keeps the number of WINDOW_UPDATE frames low (not one per DATA frame) while the
peer never stalls for more than half a window.
"""

from __future__ import annotations

from .settings import MAX_WINDOW_SIZE

__all__ = ["MAX_WINDOW_SIZE", "ReceiveWindow"]


class ReceiveWindow:
    """The window we grant the peer on one stream or on the connection.

    `available`: octets the peer may still send. `target`: the size we keep
    re-opening to. `unannounced`: octets consumed by the application that we have
    not yet given back. Octets received but not yet consumed are
    ``target - available - unannounced`` (`outstanding`).
    """

    __slots__ = ("available", "target", "unannounced")

    def __init__(self, size: int) -> None:
        self.available = size
        self.target = size
        self.unannounced = 0

    @property
    def outstanding(self) -> int:
        return self.target - self.available - self.unannounced

    def release(self, size: int) -> int:
        """The application consumed `size` octets (clamped to what is outstanding).

        Returns the WINDOW_UPDATE increment to send now, 0 while below the threshold.
        """
        outstanding = self.target - self.available - self.unannounced
        if size > outstanding:
            size = outstanding
        if size <= 0:
            return 0
        unannounced = self.unannounced + size
        if unannounced * 2 < self.target:
            self.unannounced = unannounced
            return 0
        self.unannounced = 0
        self.available += unannounced
        return unannounced

    def resize(self, new_target: int) -> None:
        """Our SETTINGS_INITIAL_WINDOW_SIZE changed (on ACK): shift by the difference.
        `available` may go negative; the peer then has to wait for credit."""
        delta = new_target - self.target
        self.target = new_target
        self.available += delta
