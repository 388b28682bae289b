"""Running a server process (or a supervisor of N worker processes) from a ServerConfig."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from h2books.http import Handler
from h2books.interfaces import ServerInterface
from h2books.server.config import ServerConfig
from h2books.server.server import Server, bind_socket, bind_udp_socket
from h2books.server.tls import create_server_ssl_context

log = logging.getLogger("h2books.server")


class StartupError(Exception):
    """Something the user can fix; the message is one line."""


@dataclass(slots=True)
class Listeners:
    tls: list[socket.socket]
    http: list[socket.socket]
    # HTTP/3's UDP sockets, at the HTTPS port number: bound here with the others, so that a
    # port in use is one line before the banner, not a traceback in a worker after it.
    quic: list[socket.socket] = field(default_factory=list)


def raise_open_file_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit: each connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def pin_malloc_mmap_threshold() -> bool:
    """Keep glibc from moving large buffers off mmap (an idle connection stays small).

    uvloop gives every TLS connection a 256 KiB read buffer of which only a page or two
    is ever touched. Served by mmap, untouched pages cost nothing; but glibc raises its
    mmap threshold the first time such a block is freed, and from then on serves them
    from the heap, where each connection's share ends up resident: 48 KB per idle TLS
    connection instead of 26 KB here. Setting the threshold explicitly turns that
    adjustment off (mallopt(3), M_MMAP_THRESHOLD).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False  # not glibc: nothing to tune


_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024  # glibc's own default, made fixed


def install_event_loop_policy() -> str:
    """uvloop when it is installed, unless H2BOOKS_LOOP=asyncio asks for the stdlib loop."""
    if os.environ.get("H2BOOKS_LOOP", "auto") == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def bind_listeners(config: ServerConfig) -> Listeners:
    reuse_port = config.workers > 1
    count = config.workers if reuse_port else 1
    listeners = Listeners([], [])
    tls_port, http_port = config.port, config.http_port
    try:
        for _ in range(count):
            # Port 0 means "any free port": later workers join the one the first got.
            listeners.tls.append(_bind(config.host, tls_port, reuse_port))
            tls_port = listeners.tls[0].getsockname()[1]
            if http_port is not None:
                listeners.http.append(_bind(config.host, http_port, reuse_port))
                http_port = listeners.http[0].getsockname()[1]
            if config.http3:
                listeners.quic.append(_bind(config.host, tls_port, reuse_port, udp=True))
    except BaseException:
        for sock in listeners.tls + listeners.http + listeners.quic:
            sock.close()
        raise
    return listeners


def _bind(host: str, port: int, reuse_port: bool, *, udp: bool = False) -> socket.socket:
    where = f"{'UDP ' if udp else ''}port {port} on {host}"
    try:
        if udp:
            return bind_udp_socket(host, port, reuse_port=reuse_port)
        return bind_socket(host, port, reuse_port=reuse_port)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"{where} is already in use") from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"no permission to listen on {where}") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"address {host} is not available on this machine") from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None


def load_ssl_context(config: ServerConfig) -> ssl.SSLContext:
    from h2books.server.tls import TLSConfigError

    assert config.certfile is not None and config.keyfile is not None
    try:
        return create_server_ssl_context(config.certfile, config.keyfile)
    except TLSConfigError as exc:
        raise StartupError(str(exc)) from None


async def _serve(
    config: ServerConfig,
    app: Handler | ServerInterface,
    context: ssl.SSLContext,
    tls_socket: socket.socket | None,
    http_socket: socket.socket | None,
    quic_socket: socket.socket | None,
    on_started: Callable[[Server], None] | None,
) -> None:
    server = Server(config, app, context)
    await server.start(tls_socket=tls_socket, http_socket=http_socket, quic_socket=quic_socket)
    server.install_signal_handlers()
    if on_started is not None:
        on_started(server)
    await server.serve_until_stopped()


def serve_in_this_process(
    config: ServerConfig,
    make_app: Callable[[], Handler | ServerInterface],
    context: ssl.SSLContext,
    tls_socket: socket.socket | None,
    http_socket: socket.socket | None,
    on_started: Callable[[Server], None] | None = None,
    quic_socket: socket.socket | None = None,
) -> None:
    install_event_loop_policy()
    pin_malloc_mmap_threshold()
    app = make_app()  # in each worker: an app's state is its own process's
    asyncio.run(_serve(config, app, context, tls_socket, http_socket, quic_socket, on_started))


def run_workers(
    config: ServerConfig,
    make_app: Callable[[], Handler | ServerInterface],
    context: ssl.SSLContext,
    listeners: Listeners,
    on_started: Callable[[Server], None] | None = None,
) -> int:
    """Fork one process per SO_REUSEPORT socket and supervise them until SIGINT/SIGTERM."""
    if config.workers <= 1:
        serve_in_this_process(
            config,
            make_app,
            context,
            listeners.tls[0],
            _nth(listeners.http, 0),
            on_started,
            _nth(listeners.quic, 0),
        )
        return 0

    children: dict[int, int] = {}  # pid -> worker index
    started: dict[int, float] = {}  # pid -> when it was forked
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                own = (
                    listeners.tls[index],
                    _nth(listeners.http, index),
                    _nth(listeners.quic, index),
                )
                for sock in listeners.tls + listeners.http + listeners.quic:
                    if sock not in own:
                        sock.close()
                serve_in_this_process(
                    config,
                    make_app,
                    context,
                    listeners.tls[index],
                    _nth(listeners.http, index),
                    on_started if index == 0 else None,
                    _nth(listeners.quic, index),
                )
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index
        started[pid] = time.monotonic()

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for index in range(config.workers):
        spawn(index)
    log.info("started %d workers", config.workers)
    failures = 0
    gave_up = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, -1)
        if index < 0 or stopping:
            continue
        # Only deaths in quick succession count: a worker lost now and then (say, to the
        # OOM killer) over weeks must not add up to a shutdown.
        now = time.monotonic()
        if now - started.pop(pid, now) > _HEALTHY_RUN:
            failures = 0
        failures += 1
        log.error("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
        if failures > 10 * config.workers:
            log.error("workers keep failing; giving up")
            gave_up = True
            forward(signal.SIGTERM, None)
            continue
        time.sleep(0.5)
        if stopping:  # a signal during the pause: no new worker
            continue
        spawn(index)
    return 1 if gave_up else 0  # a supervisor above us must see the failure


_HEALTHY_RUN = 60.0  # seconds a worker must live for its death not to count as a crash loop


def _nth(socks: list[socket.socket], index: int) -> socket.socket | None:
    return socks[index] if index < len(socks) else None


def check_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data directory {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise StartupError(f"data directory {path} is not a directory")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise StartupError(f"data directory {path} is not readable and writable")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
