"""Limits and deadlines of the HTTP/1.1 core: everything an untrusted peer controls is bounded."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["H1Config"]


@dataclass(slots=True)
class H1Config:
    """Per-connection limits.

    The client role uses the same limits for responses (``max_request_line``
    then bounds the status line).
    """

    max_request_line: int = 8192  # longer request-line -> 414
    max_header_bytes: int = 65536  # whole head (request-line to blank line) -> 431
    max_header_count: int = 100  # more field lines -> 431
    max_body_size: int = 8 * 1024 * 1024  # Content-Length or de-chunked total -> 413
    max_pipelined: int = 32  # requests delivered but unanswered before parsing pauses
    # Deadlines of the server role, in seconds; None turns a rule off.
    request_head_timeout: float | None = None  # a started head must be complete by then
    idle_timeout: float | None = None  # keep-alive: nothing owed or arriving
    stall_timeout: float | None = None  # work in flight, no byte in or out
