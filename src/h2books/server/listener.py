"""Accepting connections by hand, so that `--max-connections` is a bound.

`loop.create_server` accepts every connection it can and starts its TLS handshake
before the application hears of it, so a server at its cap could only close
connections that had already cost a handshake, and never saw the ones whose
handshake was still running. Here the listening socket is read with `add_reader`:
each connection is counted from `accept()` until it ends, its handshake (or, on
cleartext, the wait for its first bytes) included. At the cap, with no idle
connection to evict, a new connection is reset at once: no TLS, no protocol object.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import struct

from h2books.server.acceptor import CleartextAcceptor, TLSAcceptor
from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")

# Connections accepted per wakeup of the listening socket before other connections get
# their turn (asyncio's own server accepts up to its backlog, 100 by default, per wakeup).
_ACCEPTS_PER_WAKEUP = 100
# Out of descriptors or memory: stop accepting this long, as asyncio's server does.
_ACCEPT_RETRY_DELAY = 1.0
# A refused connection is reset (SO_LINGER 0): the peer learns at once, and no
# TIME_WAIT is left behind per refusal.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# Errors that end one accept() but say nothing about the next.
_TRANSIENT_ACCEPT_ERRORS = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.EHOSTUNREACH}
)
# Seconds between two "refusing connections" warnings while the cap holds.
_REFUSAL_LOG_INTERVAL = 10.0


class Admission:
    """One accepted connection that is not yet a served connection (in `state.connections`).

    `settle()` is called once it becomes one (the acceptor hands it to HTTP/1.1 or
    HTTP/2) or once it is gone (handshake failed, timed out, or the peer left); only
    the first call counts.
    """

    __slots__ = ("_gate",)

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate: ConnectionGate | None = gate
        gate.pending += 1

    def settle(self) -> None:
        gate = self._gate
        if gate is not None:
            self._gate = None
            gate.pending -= 1


class ConnectionGate:
    """The connection cap: served connections plus those still being admitted."""

    def __init__(self, state: ServerState, cap: int) -> None:
        self.state = state
        self.cap = cap
        self.pending = 0  # accepted, still in the TLS handshake or protocol detection
        self.refused = 0
        self._last_warning = -_REFUSAL_LOG_INTERVAL

    @property
    def open_connections(self) -> int:
        return len(self.state.connections) + self.pending

    def try_admit(self) -> Admission | None:
        """An admission for one more connection, or None at the cap with nothing to evict."""
        if self.open_connections >= self.cap:
            self._evict_idle(self.open_connections - self.cap + 1)
            if self.open_connections >= self.cap:
                self.refused += 1
                self._warn()
                return None
        return Admission(self)

    def _evict_idle(self, count: int) -> None:
        """Close the `count` idlest idle connections, if there are that many."""
        connections = self.state.connections
        idle = sorted((c for c in connections if c.is_idle()), key=lambda c: c.last_activity)
        for connection in idle[:count]:
            # Idle, so nothing is in flight: one GOAWAY (h2) and close now. A two-stage
            # shutdown would keep it open, and unswept, for seconds more.
            connection.evict()
            connections.discard(connection)

    def _warn(self) -> None:
        now = self.state.loop.time()
        if now - self._last_warning >= _REFUSAL_LOG_INTERVAL:
            self._last_warning = now
            log.warning(
                "at the connection cap (%d open, --max-connections %d), none idle: "
                "refusing new connections (%d so far)",
                self.open_connections,
                self.cap,
                self.refused,
            )


class Listener:
    """Accepts on one listening socket for as long as it is open.

    `tls` is the server's SSL context for the HTTPS listener, None for cleartext.
    """

    def __init__(
        self,
        sock: socket.socket,
        gate: ConnectionGate,
        tls: ssl.SSLContext | None,
        *,
        handshake_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.gate = gate
        self.state = gate.state
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.shutdown_timeout = shutdown_timeout
        self._fd = sock.fileno()
        self._accepting = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        # Connections still inside `connect_accepted_socket` (the TLS handshake).
        self._admitting: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if not self._accepting and not self._closed:
            self.state.loop.add_reader(self._fd, self._accept_ready)
            self._accepting = True

    def _pause(self) -> None:
        if self._accepting:
            self.state.loop.remove_reader(self._fd)
            self._accepting = False

    def _accept_ready(self) -> None:
        gate = self.gate
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _TRANSIENT_ACCEPT_ERRORS:
                    continue
                # EMFILE, ENFILE, ENOBUFS, ENOMEM...: the next accept would fail the same
                # way; give the connections we have a moment to end.
                log.error("accept() failed (%s); pausing for %.0f s", exc, _ACCEPT_RETRY_DELAY)
                self._pause()
                self._retry = self.state.loop.call_later(_ACCEPT_RETRY_DELAY, self.start)
                return
            admission = gate.try_admit()
            if admission is None:
                _refuse(conn)
                continue
            conn.setblocking(False)
            task = self.state.loop.create_task(self._admit(conn, admission))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)

    async def _admit(self, conn: socket.socket, admission: Admission) -> None:
        state = self.state
        try:
            if self.tls is not None:
                await state.loop.connect_accepted_socket(
                    lambda: TLSAcceptor(state, admission.settle),
                    conn,
                    ssl=self.tls,
                    ssl_handshake_timeout=self.handshake_timeout,
                    # After our last bytes, wait this long at most for the peer's
                    # close_notify: a client that never closes must not hold a descriptor.
                    ssl_shutdown_timeout=self.shutdown_timeout,
                )
            else:
                await state.loop.connect_accepted_socket(
                    lambda: CleartextAcceptor(state, admission.settle), conn
                )
        except (OSError, EOFError) as exc:
            # The handshake failed or timed out (ssl.SSLError and TimeoutError are
            # OSErrors); the loop has closed the transport.
            log.debug("connection ended in its TLS handshake: %r", exc)
            admission.settle()
        except Exception:
            log.exception("could not set up an accepted connection")
            admission.settle()
        except BaseException:  # cancelled at shutdown: the loop closes the transport
            admission.settle()
            raise

    def close(self) -> None:
        """Stop accepting, close the listening socket, and drop handshakes in progress
        (they have no request yet; a server going away need not finish them)."""
        self._closed = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()
        self.sock.close()
        for task in list(self._admitting):
            task.cancel()

    async def wait_closed(self) -> None:
        """Until every cancelled handshake has let go of its socket."""
        if self._admitting:
            await asyncio.gather(*self._admitting, return_exceptions=True)


def _refuse(conn: socket.socket) -> None:
    # An OSError here means the peer reset it already: closing is all there is to do.
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    conn.close()
