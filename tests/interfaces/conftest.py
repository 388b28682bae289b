"""A real server in a thread of the test process, serving any app or interface over real TLS.

    with ThreadedServer(tmp_path, AsgiInterface(app)) as server:
        httpx.get(f"https://localhost:{server.tls_port}/", verify=server.ssl_context())

Its own event loop, real sockets, real TLS (the local CA), and a cleartext port too.
Log records of the server thread are kept in `server.records`.
"""

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
    def __init__(
        self,
        data_dir: Path,
        app: ServerInterface | Callable[..., Any],
        configure: Callable[[ServerConfig], None] | None = None,
    ) -> None:
        paths = ensure_certificates(data_dir / "tls")
        self.ca = paths.ca_cert
        self.config = ServerConfig(port=0, http_port=0, data_dir=data_dir, access_log=False)
        if configure is not None:
            configure(self.config)
        self.context = create_server_ssl_context(paths.cert, paths.key)
        self.loop = asyncio.new_event_loop()
        self.app = app
        self.server: Server | None = None
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = Server(self.config, self.app, self.context)  # type: ignore[arg-type]
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
        assert self.server is not None
        ports = [s.getsockname()[1] for s in self.server.sockets]
        self.tls_port, self.http_port = ports[0], ports[1]
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the server's loop and return its result."""
        done = threading.Event()
        result: list[Any] = []

        def run() -> None:
            result.append(function())
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)
        return result[0]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    @property
    def url(self) -> str:
        return f"https://localhost:{self.tls_port}"

    def client(self, protocol: str, **options: Any) -> httpx.Client:
        """httpx over "h2" or "h1", TLS, the local CA."""
        http2 = protocol == "h2"
        return httpx.Client(
            http2=http2, http1=not http2, verify=self.ssl_context(), base_url=self.url, **options
        )


class LogRecords(logging.Handler):
    """Collects the records of the server's loggers while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.ERROR) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def clear(self) -> None:
        self.records.clear()


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
