"""SETTINGS (RFC 9113 §6.5): identifiers, validation, the peer's values and ours.

Our own values take effect only when the peer acknowledges them (§6.5.3), so
`LocalSettings` keeps the frames we sent in order and applies each one on its ACK.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Final

from .errors import ErrorCode, H2ConnectionError

__all__ = [
    "DEFAULT_HEADER_TABLE_SIZE",
    "DEFAULT_INITIAL_WINDOW_SIZE",
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_FRAME_SIZE_LIMIT",
    "MAX_WINDOW_SIZE",
    "UNLIMITED",
    "LocalSettings",
    "PeerSettings",
    "SettingCode",
    "validate_setting",
]

DEFAULT_HEADER_TABLE_SIZE: Final = 4096
DEFAULT_INITIAL_WINDOW_SIZE: Final = 65535
DEFAULT_MAX_FRAME_SIZE: Final = 16384
MAX_FRAME_SIZE_LIMIT: Final = (1 << 24) - 1
MAX_WINDOW_SIZE: Final = (1 << 31) - 1
# SETTINGS values are 32-bit: "no limit" is represented by the largest one.
UNLIMITED: Final = (1 << 32) - 1


class SettingCode(IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441
    NO_RFC7540_PRIORITIES = 0x9  # RFC 9218

    @classmethod
    def name_of(cls, ident: int) -> str:
        try:
            return cls(ident).name
        except ValueError:
            return f"UNKNOWN_{ident:#x}"


_BOOLEAN_SETTINGS: Final = frozenset(
    {
        SettingCode.ENABLE_PUSH,
        SettingCode.ENABLE_CONNECT_PROTOCOL,
        SettingCode.NO_RFC7540_PRIORITIES,
    }
)


def validate_setting(ident: int, value: int) -> None:
    """Raise the connection error RFC 9113 §6.5.2 mandates for an invalid value."""
    if ident in _BOOLEAN_SETTINGS:
        if value > 1:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, f"{SettingCode.name_of(ident)} must be 0 or 1"
            )
    elif ident == SettingCode.INITIAL_WINDOW_SIZE:
        if value > MAX_WINDOW_SIZE:
            raise H2ConnectionError(
                ErrorCode.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1"
            )
    elif ident == SettingCode.MAX_FRAME_SIZE and not (
        DEFAULT_MAX_FRAME_SIZE <= value <= MAX_FRAME_SIZE_LIMIT
    ):
        raise H2ConnectionError(
            ErrorCode.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE outside [2^14, 2^24-1]"
        )


class PeerSettings:
    """The values the peer announced (defaults until its first SETTINGS frame)."""

    __slots__ = (
        "enable_connect_protocol",
        "enable_push",
        "header_table_size",
        "initial_window_size",
        "max_concurrent_streams",
        "max_frame_size",
        "max_header_list_size",
    )

    def __init__(self) -> None:
        self.header_table_size = DEFAULT_HEADER_TABLE_SIZE
        self.enable_push = 1
        self.max_concurrent_streams = UNLIMITED
        self.initial_window_size = DEFAULT_INITIAL_WINDOW_SIZE
        self.max_frame_size = DEFAULT_MAX_FRAME_SIZE
        self.max_header_list_size = UNLIMITED
        self.enable_connect_protocol = 0

    def apply(self, pairs: list[tuple[int, int]], peer_is_server: bool) -> dict[int, int]:
        """Validate and apply one frame's settings in order; the last value of an
        identifier wins. Returns every identifier received with its final value
        (unknown identifiers included, ignored otherwise)."""
        changes: dict[int, int] = {}
        for ident, value in pairs:
            validate_setting(ident, value)
            if ident == SettingCode.HEADER_TABLE_SIZE:
                self.header_table_size = value
            elif ident == SettingCode.ENABLE_PUSH:
                if peer_is_server and value:
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, "a server cannot enable server push"
                    )
                self.enable_push = value
            elif ident == SettingCode.MAX_CONCURRENT_STREAMS:
                self.max_concurrent_streams = value
            elif ident == SettingCode.INITIAL_WINDOW_SIZE:
                self.initial_window_size = value
            elif ident == SettingCode.MAX_FRAME_SIZE:
                self.max_frame_size = value
            elif ident == SettingCode.MAX_HEADER_LIST_SIZE:
                self.max_header_list_size = value
            elif ident == SettingCode.ENABLE_CONNECT_PROTOCOL:
                self.enable_connect_protocol = value
            changes[ident] = value
        return changes


class LocalSettings:
    """What we announced. `acknowledged` holds the values in force (defaults until
    the first ACK); `send` queues a change, `on_ack` makes the oldest one current."""

    __slots__ = ("_unacked", "acknowledged")

    def __init__(self) -> None:
        # Shared, never changed in place: every connection of a server ends up with the
        # same values, so one dict serves them all (~350 B less per idle connection).
        self.acknowledged: Mapping[int, int] = _DEFAULTS_IN_FORCE
        self._unacked: list[dict[int, int]] = []  # rarely more than one; a deque costs 624 B

    def send(self, values: dict[int, int]) -> list[tuple[int, int]]:
        """Record a SETTINGS frame we are about to send; returns its pairs."""
        for ident, value in values.items():
            validate_setting(ident, value)
        self._unacked.append(dict(values))
        return list(values.items())

    def on_ack(self) -> dict[int, int] | None:
        """Apply the oldest unacknowledged frame; returns the values that changed
        (``{}`` if none), or None for an ACK we did not ask for."""
        if not self._unacked:
            return None
        acknowledged = self.acknowledged
        changed = {
            ident: value
            for ident, value in self._unacked.pop(0).items()
            if acknowledged.get(ident) != value
        }
        if changed:
            self.acknowledged = _shared({**acknowledged, **changed})
        return changed


_DEFAULTS_IN_FORCE: Mapping[int, int] = {
    SettingCode.HEADER_TABLE_SIZE: DEFAULT_HEADER_TABLE_SIZE,
    SettingCode.ENABLE_PUSH: 1,
    SettingCode.MAX_CONCURRENT_STREAMS: UNLIMITED,
    SettingCode.INITIAL_WINDOW_SIZE: DEFAULT_INITIAL_WINDOW_SIZE,
    SettingCode.MAX_FRAME_SIZE: DEFAULT_MAX_FRAME_SIZE,
    SettingCode.MAX_HEADER_LIST_SIZE: UNLIMITED,
}
# Settings in force, by content: a handful per server (bounded all the same).
_in_force: dict[tuple[tuple[int, int], ...], Mapping[int, int]] = {}
_IN_FORCE_KEPT = 64


def _shared(values: dict[int, int]) -> Mapping[int, int]:
    key = tuple(sorted(values.items()))
    found = _in_force.get(key)
    if found is None:
        if len(_in_force) >= _IN_FORCE_KEPT:
            _in_force.clear()
        found = _in_force[key] = values
    return found
