"""Server settings: every limit an untrusted peer could push against has a bound here.

Defaults follow nginx, h2o and nghttp2 in spirit; docs/security.md gives the reasoning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """$H2BOOKS_DATA_DIR, else $XDG_DATA_HOME/h2books, else ~/.local/share/h2books."""
    explicit = os.environ.get("H2BOOKS_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "h2books"


@dataclass(slots=True)
class Limits:
    # HTTP/2
    max_concurrent_streams: int = 128
    initial_window_size: int = 1 << 20
    connection_window_size: int = 1 << 24
    max_frame_size: int = 16384
    max_header_list_size: int = 65536
    # HTTP/1.1
    max_request_line: int = 8192
    max_header_bytes: int = 65536
    max_header_count: int = 100
    max_pipelined: int = 32
    # Both
    max_body_size: int = 8 * 1024 * 1024
    # Request body bytes one HTTP/2 connection may hold for its handlers; past it the
    # peer's window stays shut (flow control is the back-pressure).
    max_buffered_body: int = 4 * 1024 * 1024
    max_connections: int = 10000
    # Bytes a connection may have waiting in the kernel-side write buffer before we stop
    # reading from that peer (it is not reading its responses).
    write_buffer_high: int = 256 * 1024
    write_buffer_low: int = 64 * 1024


@dataclass(slots=True)
class Timeouts:
    tls_handshake: float = 10.0
    # h1: time allowed from the start of a request to its complete head (slowloris);
    # h2: time allowed for the client preface and first SETTINGS.
    request_head: float = 10.0
    keep_alive: float = 75.0  # an idle h1 connection / an h2 connection with no streams
    # No progress at all (no bytes read, no bytes written) while work is pending.
    stall: float = 60.0
    graceful_shutdown: float = 10.0
    # Time an app (ASGI, WSGI) gets to start its answer (send the response head), counted
    # from the request body's last byte or the app's last read of a body it reads in parts
    # (a stalled upload lets it run); past it the request gets a 503 and the app is
    # cancelled (a WSGI thread cannot be: what it would still read or send is cut off).
    # A streamed body, once started, is bounded by the stall rule instead (long polls
    # and event streams stay possible).
    response: float = 300.0


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8443
    http_port: int | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True
    server_name: bytes = b"h2books"
    # HTTP/3 over QUIC on UDP, on the HTTPS port number (server/quic.py), advertised with
    # Alt-Svc on every response. quic_retry: validate every client address with a Retry
    # first (without it, Retry starts by itself under a flood of Initials).
    http3: bool = False
    quic_retry: bool = False
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # For the app above the server (interfaces/: ASGI, WSGI).
    # The path prefix the app is mounted at behind a proxy (ASGI root_path, WSGI SCRIPT_NAME).
    root_path: str = ""
    # ASGI lifespan: "auto" (used if the app supports it), "on" (required), "off".
    lifespan: str = "auto"
    # Trust X-Forwarded-For/-Proto and Forwarded from these peers (IPs, CIDR networks, "*").
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    # Threads per worker process that run a WSGI app. Apps block in their I/O (a database,
    # an upstream API), so there are more threads than cores; the bound keeps memory and
    # GIL contention in check. Requests beyond it wait in order for a free thread.
    wsgi_threads: int = 16
    # WebSockets (server/websocket.py). A message over ws_max_size bytes ends the socket
    # with close code 1009; at most ws_max_queue received messages wait for the app,
    # past which the peer is no longer read. A ping goes out after ws_ping_interval
    # seconds without a word from the peer (None: never), and a pong must come back
    # within ws_ping_timeout; our close frame waits ws_close_timeout for the peer's.
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_close_timeout: float = 5.0
    ws_per_message_deflate: bool = True
    # HTTP/2 server push (RFC 9113 §8.4), `--push`: off by default (browsers dropped it,
    # and a client that leaves SETTINGS_ENABLE_PUSH at 1 has not asked for pushes). On,
    # `Exchange.push` promises a GET and serves it through the same interface, only to
    # clients whose SETTINGS_ENABLE_PUSH is 1, within their SETTINGS_MAX_CONCURRENT_STREAMS
    # and our max_concurrent_streams pushed streams at once, never after a GOAWAY.
    push: bool = False
    # 103 Early Hints (RFC 8297), `--no-early-hints` turns them off: on, a response's
    # informational 103 (the native `Hints.early`, ASGI `http.response.early_hint`) goes
    # out ahead of it over HTTP/1.1 and HTTP/2; off, the server drops every 103, so the
    # same app can be measured with and without them (benchmarks/early_hints.py).
    early_hints: bool = True
