"""The server a client talks to, taken from a base URL."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["Origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin:
    """scheme://host:port of a base URL, plus its path as the default target.

    ``authority`` is what goes into ``:authority`` / ``Host``: the host as written
    in the URL, with the port only when it is not the scheme's default.
    """

    __slots__ = ("authority", "host", "path", "port", "scheme")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"invalid URL {url!r}: the scheme must be http or https")
        host = parts.hostname
        if not host:
            raise ValueError(f"invalid URL {url!r}: no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"invalid URL {url!r}: user information is not supported")
        self.scheme = scheme
        self.host = host
        self.port = port if port is not None else _DEFAULT_PORTS[scheme]
        shown = f"[{host}]" if ":" in host else host
        self.authority = (
            shown if port is None or port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
        )
        path = parts.path or "/"
        self.path = f"{path}?{parts.query}" if parts.query else path

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def address(self) -> str:
        """host:port, for messages."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"

    def __repr__(self) -> str:
        return f"Origin({self.scheme}://{self.authority})"
