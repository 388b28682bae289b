"""A real server in a thread of the test process: its own event loop, real sockets, real
TLS (the local CA) and a cleartext port. Shared by the runtime, interface, WebSocket and
browser tests."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from h2books.certs import ensure_certificates
from h2books.interfaces import ServerInterface
from h2books.server.config import ServerConfig
from h2books.server.server import Server
from h2books.server.tls import create_server_ssl_context

InterfaceOrFactory = ServerInterface | Callable[[ServerConfig], ServerInterface]


class ThreadedServer:
    """`with ThreadedServer(data_dir, interface) as served:` serves on free ports.

    `interface` is a ServerInterface, or a factory called with the config the server runs
    with (ASGI and WSGI interfaces are built from it). `config_changes` are ServerConfig
    fields to set (root_path=..., limits=...); `configure(config)` may change it further."""

    def __init__(
        self,
        data_dir: Path,
        interface: InterfaceOrFactory,
        configure: Callable[[ServerConfig], None] | None = None,
        **config_changes: Any,
    ) -> None:
        paths = ensure_certificates(data_dir / "tls")
        self.ca = paths.ca_cert
        self.config = ServerConfig(
            port=0, http_port=0, data_dir=data_dir, access_log=False, **config_changes
        )
        if configure is not None:
            configure(self.config)
        if not isinstance(interface, ServerInterface):
            interface = interface(self.config)
        self.interface = interface
        self.context = create_server_ssl_context(paths.cert, paths.key)
        self.loop = asyncio.new_event_loop()
        self.server = Server(self.config, interface, self.context)
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.startup_error: BaseException | None = None  # what start() raised (lifespan)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tls_port = self.http_port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_until_complete(self.server.serve_until_stopped())
        self.stopped.set()

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(30)
        if self.startup_error is not None:
            self.thread.join(5)
            raise self.startup_error
        ports = [s.getsockname()[1] for s in self.server.sockets]
        self.tls_port, self.http_port = ports[0], ports[1]
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive() and not self.stopped.is_set():
            self.stop()
        self.thread.join(30)

    # -- addresses and clients ------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://localhost:{self.tls_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def wss(self) -> str:
        return f"wss://localhost:{self.tls_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    client_context = ssl_context

    def threaded_client_context(self) -> ssl.SSLContext:
        """For the `websockets` sync client, which reads its SSLSocket in a thread of its
        own while the caller writes to it: OpenSSL does not allow that, and over TLS 1.3
        the server's session tickets, read while the client sends its handshake, now
        and then (about once in a thousand connections here) lose the client's request
        (python-websockets/websockets#1648, CPython gh-77271). TLS 1.2 sends no tickets
        after the handshake."""
        context = self.ssl_context()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client(
        self, version: str, socket_options: list[tuple[int, int, int]] | None = None, **options: Any
    ) -> httpx.Client:
        """httpx over "h2" or "h1", trusting the local CA (`socket_options`: e.g. a fixed
        SO_RCVBUF, for a client that stops reading to fill up quickly)."""
        http2 = version == "h2"
        transport = httpx.HTTPTransport(
            verify=self.ssl_context(), http2=http2, http1=not http2, socket_options=socket_options
        )
        return httpx.Client(transport=transport, base_url=self.url, **options)

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the server's loop and return its result (to look at state)."""
        done = asyncio.run_coroutine_threadsafe(_call(function), self.loop)
        return done.result(10)


async def _call(function: Callable[[], Any]) -> Any:
    return function()
