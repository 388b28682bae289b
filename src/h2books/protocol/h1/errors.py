"""The one exception type of the HTTP/1.1 core."""

from __future__ import annotations

__all__ = ["H1Error"]


class H1Error(Exception):
    """Malformed or unsupported HTTP/1.1, or a misuse of the core's API.

    ``status`` is the response status a server answers with when the peer's
    input caused the error (400 unless a more specific one applies). The server
    core never lets this escape from ``receive_data``: it turns it into a
    `ProtocolError` event. The client core and `serialize_head` raise it.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
