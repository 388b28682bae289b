"""Serving an app from Python: `h2books.run(app, ...)` and `await h2books.serve(app, config)`.

    import h2books
    h2books.run(app, port=8443)          # blocks, like uvicorn.run; Ctrl+C stops it

    async def main():
        await h2books.serve(app, port=8443)   # in your own event loop (or a ServerConfig)

`app` is an ASGI, WSGI or native app (detected, or `interface=`), or a "main:app" string.
TLS uses your certificate (`certfile`/`keyfile`) or, by default, the local CA's
localhost certificate, created on first use in the data directory, as `h2books serve`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from h2books.interfaces.loader import build_interface, describe, detect_interface, load_app
from h2books.server.config import ServerConfig

log = logging.getLogger("h2books.server")

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(ServerConfig)}


def config_from(options: dict[str, Any]) -> ServerConfig:
    """A ServerConfig from keyword options named like its fields (host, port, root_path...)."""
    unknown = sorted(set(options) - _CONFIG_FIELDS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    for name in ("data_dir", "certfile", "keyfile"):
        if isinstance(options.get(name), str):
            options[name] = Path(options[name]).expanduser()
    return ServerConfig(**options)


def _resolve(app: Any, interface: str) -> tuple[Any, str, str]:
    """(the app object, its kind, how to name it)."""
    if isinstance(app, str):
        spec = app
        app = load_app(spec)
    else:
        spec = getattr(app, "__qualname__", None) or type(app).__name__
    kind = detect_interface(app) if interface == "auto" else interface
    return app, kind, describe(spec, kind)


def _certificates(config: ServerConfig) -> ssl.SSLContext:
    from h2books.certs import ensure_certificates
    from h2books.server.runner import check_data_dir, load_ssl_context

    if config.certfile is None:
        check_data_dir(config.data_dir)
        paths = ensure_certificates(config.data_dir / "tls")
        config.certfile, config.keyfile = paths.cert, paths.key
    return load_ssl_context(config)


def run(app: Any, *, interface: str = "auto", **options: Any) -> int:
    """Serve `app` until SIGINT/SIGTERM, in this process (or `workers` forked ones)."""
    from h2books.cli import serve_until_stopped
    from h2books.server.runner import check_data_dir, configure_logging

    config = config_from(options)
    configure_logging(config.log_level)
    app, kind, served = _resolve(app, interface)
    build_interface(app, kind, config)  # fails here, once, if it cannot be served
    check_data_dir(config.data_dir)
    return serve_until_stopped(config, lambda: build_interface(app, kind, config), served)


async def serve(
    app: Any, config: ServerConfig | None = None, *, interface: str = "auto", **options: Any
) -> None:
    """Serve `app` in the running event loop until SIGINT/SIGTERM (when this is the main
    thread) or until this coroutine is cancelled; either way the shutdown is graceful.
    The settings come as a `config`, or as keyword options named like its fields (as
    `run` takes them), not both."""
    from h2books.server.server import Server

    if config is not None and options:
        raise TypeError(f"pass a config or options ({', '.join(sorted(options))}), not both")
    config = config if config is not None else config_from(options)
    app, kind, served = _resolve(app, interface)
    context = _certificates(config)
    server = Server(config, build_interface(app, kind, config), context)
    await server.start()
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
    port = server.sockets[0].getsockname()[1]
    log.info("serving %s on https://%s:%d/", served, config.host, port)
    try:
        await server.serve_until_stopped()
    except asyncio.CancelledError:
        await server.shutdown()
        raise
