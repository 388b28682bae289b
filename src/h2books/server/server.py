"""The server: listeners, the set of live connections, housekeeping, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import sys
from typing import TYPE_CHECKING, TextIO

from h2books.http import Handler
from h2books.interfaces import ServerInterface
from h2books.interfaces.native import NativeInterface
from h2books.server.accesslog import AccessLog
from h2books.server.clock import WallClock
from h2books.server.config import ServerConfig
from h2books.server.listener import ConnectionGate, Listener
from h2books.server.state import ServerState

if TYPE_CHECKING:
    from h2books.server.quic import QuicEndpoint

log = logging.getLogger("h2books.server")

# How often idle/stalled connections are looked for; timeouts are whole seconds anyway.
_SWEEP_INTERVAL = 1.0
_TLS_SHUTDOWN_TIMEOUT = 2.0
_WAIT_CLOSED_TIMEOUT = 2.0


class Server:
    """Serves one app (a native handler, or an interface: ASGI, WSGI) on an HTTPS listener (h2 + http/1.1) and an optional cleartext one.

    `start()` binds (or adopts pre-bound sockets, as workers do); `serve_until_stopped()`
    runs until SIGINT/SIGTERM or `stop()`, then shuts down gracefully: stop accepting,
    GOAWAY every HTTP/2 connection, let accepted requests finish, close.
    """

    def __init__(
        self,
        config: ServerConfig,
        app: Handler | ServerInterface,
        ssl_context: ssl.SSLContext | None,
        *,
        access_log_stream: TextIO | None = None,
    ) -> None:
        self.config = config
        self.interface = app if isinstance(app, ServerInterface) else NativeInterface(app)
        self.ssl_context = ssl_context
        self._access_log_stream = access_log_stream if access_log_stream is not None else sys.stdout
        self._listeners: list[Listener] = []
        self._stop = asyncio.Event()
        self._sweeper: asyncio.TimerHandle | None = None
        self.state: ServerState | None = None
        self.gate: ConnectionGate | None = None
        self.quic: QuicEndpoint | None = None  # with config.http3

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets: the HTTPS one first, then the cleartext one."""
        return [listener.sock for listener in self._listeners]

    async def start(
        self,
        tls_socket: socket.socket | None = None,
        http_socket: socket.socket | None = None,
        quic_socket: socket.socket | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        clock = WallClock()
        access_log = AccessLog(self._access_log_stream, clock) if self.config.access_log else None
        # The app starts (ASGI lifespan) before the first connection is accepted.
        await self.interface.startup()
        state = ServerState(self.config, self.interface.handle, loop, access_log, clock)
        self.state = state
        config = self.config
        # One cap for both listeners: every connection counts from accept() to its end.
        gate = ConnectionGate(state, config.limits.max_connections)
        self.gate = gate

        def listen(sock: socket.socket, tls: ssl.SSLContext | None) -> None:
            listener = Listener(
                sock,
                gate,
                tls,
                handshake_timeout=config.timeouts.tls_handshake,
                # After our last bytes, wait this long at most for the peer's close_notify:
                # a client that never closes must not hold a shutdown (or a descriptor).
                shutdown_timeout=_TLS_SHUTDOWN_TIMEOUT,
            )
            self._listeners.append(listener)

        if self.ssl_context is not None:
            listen(tls_socket or bind_socket(config.host, config.port), self.ssl_context)
        if config.http_port is not None or http_socket is not None:
            listen(http_socket or bind_socket(config.host, config.http_port or 0), None)
        for listener in self._listeners:
            listener.start()
        if config.http3 and self.ssl_context is not None:
            await self._start_quic(state, gate, quic_socket)
        self._sweeper = loop.call_later(_SWEEP_INTERVAL, self._sweep)

    async def _start_quic(
        self, state: ServerState, gate: ConnectionGate, sock: socket.socket | None
    ) -> None:
        """HTTP/3 on UDP, on the HTTPS listener's port number (`sock` if bound already),
        and Alt-Svc to say so."""
        from h2books.server.quic import open_endpoint  # aioquic loads only when asked for

        port = self._listeners[0].sock.getsockname()[1]
        self.quic = await open_endpoint(
            state,
            gate,
            self.config.host,
            port,
            retry=self.config.quic_retry,
            reuse_port=self.config.workers > 1,
            sock=sock,
        )
        state.alt_svc = b'h3=":%d"; ma=86400' % port

    def _sweep(self) -> None:
        state = self.state
        assert state is not None
        now = state.loop.time()
        state.clock.tick()
        for connection in list(state.connections):
            connection.check_timeouts(now)
        self._sweeper = state.loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop)

    async def serve_until_stopped(self) -> None:
        await self._stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        state = self.state
        if state is None:
            return
        state.shutting_down = True
        for listener in self._listeners:
            listener.close()
        if self.quic is not None:
            self.quic.close()
        for connection in list(state.connections):
            connection.shutdown()
        loop = state.loop
        deadline = loop.time() + self.config.timeouts.graceful_shutdown
        while state.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(state.connections):
            connection.abort()
        if self.quic is not None:
            self.quic.abort()
        for listener in self._listeners:
            # Bounded: a cancelled handshake must not hold the exit.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), _WAIT_CLOSED_TIMEOUT)
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            await self.interface.shutdown()
        except Exception:
            log.exception("the app failed to shut down cleanly")
        if state.access_log is not None:
            state.access_log.flush()


def bind_udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind a UDP socket (QUIC), raising OSError with the usual errno when it can't."""
    return _bound(host, port, socket.SOCK_DGRAM, reuse_port)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind a listening TCP socket, raising OSError with the usual errno when it can't."""
    return _bound(host, port, socket.SOCK_STREAM, reuse_port)


def _bound(host: str, port: int, kind: socket.SocketKind, reuse_port: bool) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
