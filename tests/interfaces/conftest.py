"""Serving an interface for real in a thread of the test process: its own event loop, real
sockets, real TLS (the local CA), a cleartext port too. Shared by the interface tests."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from h2books.certs import ensure_certificates
from h2books.interfaces import ServerInterface
from h2books.server.config import ServerConfig
from h2books.server.server import Server
from h2books.server.tls import create_server_ssl_context


class ThreadedServer:
    """`with ThreadedServer(data_dir, make_interface) as served:` serves on free ports.

    `make_interface(config)` builds the interface (ASGI, WSGI, native) from the config the
    server runs with; `config_changes` are ServerConfig fields to set (root_path=...)."""

    def __init__(
        self,
        data_dir: Path,
        make_interface: Callable[[ServerConfig], ServerInterface],
        **config_changes: Any,
    ) -> None:
        paths = ensure_certificates(data_dir / "tls")
        self.ca = paths.ca_cert
        self.config = ServerConfig(
            port=0, http_port=0, data_dir=data_dir, access_log=False, **config_changes
        )
        self.interface = make_interface(self.config)
        self.context = create_server_ssl_context(paths.cert, paths.key)
        self.loop = asyncio.new_event_loop()
        self.server = Server(self.config, self.interface, self.context)
        self.ready = threading.Event()
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

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(30)
        if self.startup_error is not None:
            self.thread.join(5)
            raise self.startup_error
        ports = [s.getsockname()[1] for s in self.server.sockets]
        self.tls_port, self.http_port = ports[0], ports[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(30)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    @property
    def url(self) -> str:
        return f"https://localhost:{self.tls_port}"

    def client(
        self, version: str, socket_options: list[tuple[int, int, int]] | None = None, **options: Any
    ) -> httpx.Client:
        """httpx over "h2" or "h1", trusting the local CA (`socket_options`: e.g. a fixed
        SO_RCVBUF, for a client that stops reading to fill up quickly)."""
        http2 = version == "h2"
        transport = httpx.HTTPTransport(
            verify=ssl.create_default_context(cafile=str(self.ca)),
            http2=http2,
            http1=not http2,
            socket_options=socket_options,
        )
        return httpx.Client(transport=transport, base_url=self.url, **options)

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the server's loop and return its result (to look at state)."""
        done: asyncio.Future[Any] = asyncio.run_coroutine_threadsafe(_call(function), self.loop)  # type: ignore[assignment]
        return done.result(10)


async def _call(function: Callable[[], Any]) -> Any:
    return function()


class LogRecords(logging.Handler):
    """The records of the server's loggers while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.ERROR) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def server_logs() -> Iterator[LogRecords]:
    handler = LogRecords()
    loggers = [logging.getLogger("h2books.asgi"), logging.getLogger("h2books.server")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(params=["h2", "h1"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)
