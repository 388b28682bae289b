"""HTTP/2 error codes (RFC 9113 §7) and the exceptions of the connection core."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ErrorCode",
    "H2ConnectionError",
    "H2Error",
    "H2UsageError",
]


class ErrorCode(IntEnum):
    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class H2Error(Exception):
    """Base of every exception raised by the HTTP/2 core."""


class H2ConnectionError(H2Error):
    """The peer broke a rule that ends the whole connection (GOAWAY with `error_code`).

    Raised inside the core while it parses; `H2Connection.receive_data` turns it into
    a GOAWAY plus a `ConnectionTerminated` event, so callers never see it.
    """

    __slots__ = ("error_code",)

    def __init__(self, error_code: ErrorCode, message: str = "") -> None:
        super().__init__(message or error_code.name)
        self.error_code = error_code


class H2UsageError(H2Error):
    """The local application misused the API (for example sent on a stream it never had)."""
