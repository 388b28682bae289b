"""What can go wrong talking to a server, one exception type per cause.

Every message is one readable line that names the server and, where there is one,
the request it concerns; `h2books crawl` prints it as is.
"""

from __future__ import annotations

__all__ = [
    "ClientError",
    "ConnectError",
    "GoAwayError",
    "ProtocolError",
    "RemoteClosedError",
    "RequestTimeout",
    "StreamResetError",
    "TLSError",
]


class ClientError(Exception):
    """Base of every error the h2books client raises."""


class ConnectError(ClientError):
    """The TCP connection could not be opened (refused, unreachable, unknown host)."""


class TLSError(ClientError):
    """The TLS handshake failed (unknown CA, wrong name) or ALPN did not agree."""


class ProtocolError(ClientError):
    """The server broke HTTP/1.1 or HTTP/2 (garbage, malformed response, bad frames)."""


class GoAwayError(ClientError):
    """A GOAWAY cut off this request: the server will not (or did not) process it."""

    def __init__(self, message: str, error_code: int, last_stream_id: int) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.last_stream_id = last_stream_id

    def __reduce__(self) -> tuple[type[GoAwayError], tuple[str, int, int]]:
        # copy/pickle rebuild from these (the client copies one error per failed request).
        return type(self), (str(self), self.error_code, self.last_stream_id)


class StreamResetError(ClientError):
    """The server reset this request's stream (RST_STREAM)."""

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code

    def __reduce__(self) -> tuple[type[StreamResetError], tuple[str, int]]:
        return type(self), (str(self), self.error_code)


class RemoteClosedError(ClientError):
    """The server closed the connection before the response was complete."""


class RequestTimeout(ClientError, TimeoutError):
    """No complete response within the request timeout."""
