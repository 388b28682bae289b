"""TUN devices: open one, in whichever network namespace the calling thread is in.

A TUN device here is never persistent: it exists while its file descriptor is open,
so a forwarder that exits, crashes or is killed takes its devices with it. It is
opened with ``IFF_TUN_EXCL``, so that asking for a name that is already taken fails
instead of attaching to somebody else's device.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

__all__ = ["MAX_NAME", "TunError", "open_tun"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001  # IP packets, no Ethernet header
_IFF_NO_PI = 0x1000  # no 4-byte packet-information prefix
_IFF_TUN_EXCL = 0x8000  # fail if the name exists (never attach to a device we did not make)
MAX_NAME = 15  # IFNAMSIZ minus the NUL


class TunError(OSError):
    """The TUN device could not be made; the message says why."""


def open_tun(name: str) -> int:
    """A non-blocking descriptor of a new TUN device `name` (IP packets, one per read/write).

    The device lives in the network namespace of the calling thread at the time of the call.
    """
    if not name or len(name) > MAX_NAME or not name.isascii() or "/" in name:
        raise ValueError(f"invalid device name {name!r}")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TunError(exc.errno, f"cannot open /dev/net/tun: {exc.strerror}") from None
    request = struct.pack("16sH22x", name.encode("ascii"), _IFF_TUN | _IFF_NO_PI | _IFF_TUN_EXCL)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, request)
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.EBUSY:
            raise TunError(exc.errno, f"device {name} exists already; not touching it") from None
        raise TunError(exc.errno, f"cannot create TUN device {name}: {exc.strerror}") from None
    return fd
