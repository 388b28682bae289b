"""h2books: a fast pure-Python HTTP/2 + HTTP/1.1 server with its own sans-IO protocol cores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from h2books.client import Client
from h2books.http import Handler, Request, Response

if TYPE_CHECKING:
    from h2books.server.config import ServerConfig

__all__ = ["Client", "Handler", "Request", "Response", "__version__", "run", "serve"]
__version__ = "0.1.0"


def run(app: Any, **options: Any) -> int:
    """Serve an ASGI, WSGI or native app (or a "main:app" string) until Ctrl+C, like
    uvicorn.run: options are ServerConfig's fields (host, port, http_port, certfile,
    keyfile, workers, root_path, lifespan, ...) and `interface`. See h2books.embed."""
    from h2books.embed import run as run_app

    return run_app(app, **options)


async def serve(app: Any, config: ServerConfig | None = None, **options: Any) -> None:
    """Serve an app in the running event loop until SIGINT/SIGTERM or cancellation; the
    settings are a ServerConfig or run's keyword options (port=..., root_path=...)."""
    from h2books.embed import serve as serve_app

    await serve_app(app, config, **options)
