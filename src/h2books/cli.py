"""The `h2books` command line: serve, cert, catalog."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from h2books import __version__
from h2books.server.config import ServerConfig, default_data_dir

if TYPE_CHECKING:
    from h2books.http import Handler
    from h2books.interfaces import ServerInterface


class UsageError(Exception):
    """A bad option value; reported in one line."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"H2BOOKS_{name}", default)


def _env_int(name: str, default: int | None) -> int | None:
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"H2BOOKS_{name} must be a whole number, not {raw!r}") from None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


# (flag, type, help); each also reads H2BOOKS_<FLAG>, and _LIMIT_TARGETS says where it goes.
_LIMIT_FLAGS: list[tuple[str, type, str]] = [
    (
        "--max-connections",
        int,
        "open connections at most; at the cap the idlest are closed (10000)",
    ),
    ("--max-concurrent-streams", int, "HTTP/2 streams per connection (128)"),
    ("--max-body-size", int, "request body bytes (8 MiB)"),
    ("--keep-alive-timeout", float, "close a connection idle this long (75)"),
    ("--request-head-timeout", float, "time to send a request head or the h2 preface (10)"),
    ("--stall-timeout", float, "close a busy connection that makes no progress this long (60)"),
    ("--tls-handshake-timeout", float, "time to finish the TLS handshake (10)"),
    ("--graceful-timeout", float, "time accepted requests get to finish on shutdown (10)"),
    ("--response-timeout", float, "time an ASGI/WSGI app gets to start its answer (300)"),
    ("--ws-max-size", int, "largest WebSocket message in bytes (16 MiB)"),
    ("--ws-ping-interval", float, "ping an idle WebSocket this often (20)"),
    ("--wsgi-threads", int, "threads that run a WSGI app; more requests wait (16)"),
]
_LIMIT_TARGETS = {
    "max_connections": ("limits", "max_connections"),
    "max_concurrent_streams": ("limits", "max_concurrent_streams"),
    "max_body_size": ("limits", "max_body_size"),
    "keep_alive_timeout": ("timeouts", "keep_alive"),
    "request_head_timeout": ("timeouts", "request_head"),
    "stall_timeout": ("timeouts", "stall"),
    "tls_handshake_timeout": ("timeouts", "tls_handshake"),
    "graceful_timeout": ("timeouts", "graceful_shutdown"),
    "response_timeout": ("timeouts", "response"),
    "ws_max_size": ("", "ws_max_size"),
    "ws_ping_interval": ("", "ws_ping_interval"),
    "wsgi_threads": ("", "wsgi_threads"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="h2books",
        description="A fast pure-Python HTTP/2 + HTTP/1.1 server, serving a science-fiction bookstore.",
    )
    parser.add_argument("--version", action="version", version=f"h2books {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve your ASGI/WSGI app, or the bookstore, over HTTPS (h2 + http/1.1)",
        description="Serve an app (`h2books serve main:app`: ASGI, WSGI or a native handler) "
        "or, with no APP, the bookstore. Every option has an H2BOOKS_* environment variable "
        "(H2BOOKS_HOST, H2BOOKS_PORT, H2BOOKS_HTTP_PORT, H2BOOKS_CERTFILE, H2BOOKS_KEYFILE, "
        "H2BOOKS_DATA_DIR, H2BOOKS_HTTP3, H2BOOKS_QUIC_RETRY, H2BOOKS_WORKERS, H2BOOKS_LOG_LEVEL, H2BOOKS_ACCESS_LOG, "
        "H2BOOKS_INTERFACE, H2BOOKS_ROOT_PATH, H2BOOKS_LIFESPAN, H2BOOKS_PROXY_HEADERS, "
        "H2BOOKS_FORWARDED_ALLOW_IPS, H2BOOKS_PUSH, and one per limit).",
    )
    serve.add_argument(
        "app_spec",
        nargs="?",
        metavar="APP",
        help="MODULE:ATTRIBUTE of your app, imported from the current directory (main:app); "
        "default: the bookstore",
    )
    serve.add_argument(
        "--factory",
        action="store_true",
        help="APP is a factory: call it (in each worker) to get the app",
    )
    serve.add_argument(
        "--interface",
        choices=["auto", "asgi", "wsgi", "native"],
        help="what kind of app APP is (default auto: detected from how it is called)",
    )
    serve.add_argument(
        "--root-path", help="the path the app is mounted at behind a proxy (ASGI root_path)"
    )
    serve.add_argument(
        "--lifespan",
        choices=["auto", "on", "off"],
        help="ASGI lifespan startup/shutdown (default auto: used if the app supports it)",
    )
    serve.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take the client and scheme from X-Forwarded-For/-Proto and Forwarded, when the "
        "peer is in --forwarded-allow-ips (default off)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxies trusted with those headers: addresses, CIDR networks, "
        "or * (default 127.0.0.1)",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTPS port (default 8443)")
    serve.add_argument(
        "--http-port", type=int, help="also listen for cleartext HTTP/1.1 and h2c on this port"
    )
    serve.add_argument(
        "--push",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="HTTP/2 server push: the app may push what a response refers to (the bookstore "
        "pushes the books of its index and the assets of /store), only to clients that keep "
        "SETTINGS_ENABLE_PUSH at 1 and within their stream limit (default off)",
    )
    serve.add_argument(
        "--early-hints",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="103 Early Hints: send the informational responses the app asks for (the "
        "bookstore's /store names its assets with rel=preload links); --no-early-hints "
        "drops them (default on)",
    )
    serve.add_argument(
        "--http3",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also serve HTTP/3 over QUIC on UDP, on the HTTPS port number, advertised "
        "with Alt-Svc (default off)",
    )
    serve.add_argument(
        "--quic-retry",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="validate every QUIC client's address with a Retry first (default: only "
        "under a flood of new connections)",
    )
    serve.add_argument("--certfile", type=Path, help="your own certificate chain (PEM)")
    serve.add_argument("--keyfile", type=Path, help="the key of --certfile (PEM)")
    serve.add_argument("--data-dir", type=Path, help=f"default {default_data_dir()}")
    serve.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    serve.add_argument(
        "--reload",
        action="store_true",
        help="development: restart the server when a Python file under --reload-dir changes",
    )
    serve.add_argument(
        "--reload-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="a directory --reload watches (repeatable; default the current directory)",
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="combined log format on stdout (default on)",
    )
    limits = serve.add_argument_group(
        "limits and timeouts", "bounds on what a peer can make the server spend (docs/security.md)"
    )
    for flag, kind, help_text in _LIMIT_FLAGS:
        limits.add_argument(
            flag, type=kind, metavar="N" if kind is int else "SECONDS", help=help_text
        )
    serve.add_argument(
        "--app",
        metavar="MODULE:FACTORY",
        help="the older spelling of `APP --factory`: FACTORY() (called in each worker) "
        "returns the app",
    )
    serve.set_defaults(handler=cmd_serve)

    cert = commands.add_parser(
        "cert",
        help="create the local CA and localhost certificate; --trust makes Chrome accept it",
    )
    cert.add_argument("--data-dir", type=Path, help=f"default {default_data_dir()}")
    cert.set_defaults(handler=cmd_cert)
    trust = cert.add_mutually_exclusive_group()
    trust.add_argument(
        "--trust",
        action="store_true",
        help="trust the local CA in ~/.pki/nssdb (Chrome/Chromium on Linux; needs certutil "
        "from libnss3-tools) and print the steps for macOS, Windows and Firefox",
    )
    trust.add_argument(
        "--untrust", action="store_true", help="remove the local CA from ~/.pki/nssdb again"
    )

    catalog = commands.add_parser("catalog", help="manage the book catalogue")
    catalog.set_defaults(handler=cmd_catalog)
    catalog_commands = catalog.add_subparsers(dest="catalog_command", metavar="ACTION")
    catalog_import = catalog_commands.add_parser(
        "import", help="load a books.json (the post's format) from a path or URL"
    )
    catalog_import.add_argument("source", help="path or http(s) URL of books.json")
    catalog_import.add_argument("--data-dir", type=Path, help=f"default {default_data_dir()}")
    catalog_reset = catalog_commands.add_parser("reset", help="go back to the generated catalogue")
    catalog_reset.add_argument("--data-dir", type=Path, help=f"default {default_data_dir()}")
    _register_companions(commands)
    return parser


def _register_companions(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The crawl and bench commands live beside the packages they drive."""
    from h2books.bench.cli import register as register_bench
    from h2books.client.cli import register as register_crawl

    register_crawl(commands)
    register_bench(commands)


def serve_config(args: argparse.Namespace) -> ServerConfig:
    config = ServerConfig()
    config.host = args.host or _env("HOST") or config.host
    config.port = _pick_int(args.port, "PORT", config.port) or 0
    config.http_port = _pick_int(args.http_port, "HTTP_PORT", None)
    certfile = args.certfile or _path_env("CERTFILE")
    keyfile = args.keyfile or _path_env("KEYFILE")
    if (certfile is None) != (keyfile is None):
        raise UsageError("--certfile and --keyfile go together")
    config.certfile, config.keyfile = certfile, keyfile
    config.data_dir = args.data_dir or default_data_dir()
    config.workers = _pick_int(args.workers, "WORKERS", 1) or 1
    if config.workers < 1:
        raise UsageError("--workers must be at least 1")
    config.log_level = args.log_level or _env("LOG_LEVEL") or config.log_level
    config.access_log = (
        args.access_log if args.access_log is not None else _env_bool("ACCESS_LOG", True)
    )
    for flag, kind, _ in _LIMIT_FLAGS:
        dest = flag[2:].replace("-", "_")
        value = getattr(args, dest)
        if value is None:
            raw = _env(dest.upper())
            if raw:
                try:
                    value = kind(raw)
                except ValueError:
                    raise UsageError(
                        f"H2BOOKS_{dest.upper()} must be a number, not {raw!r}"
                    ) from None
        if value is None:
            continue
        if value <= 0:
            raise UsageError(f"{flag} must be positive")
        group, field_name = _LIMIT_TARGETS[dest]
        setattr(getattr(config, group) if group else config, field_name, value)
    for port in (config.port, config.http_port):
        if port is not None and not 0 <= port <= 65535:
            raise UsageError(f"port {port} is out of range")
    http3 = getattr(args, "http3", None)
    config.http3 = http3 if http3 is not None else _env_bool("HTTP3", False)
    quic_retry = getattr(args, "quic_retry", None)
    config.quic_retry = quic_retry if quic_retry is not None else _env_bool("QUIC_RETRY", False)
    config.root_path = _pick_str(getattr(args, "root_path", None), "ROOT_PATH", "")
    config.lifespan = _pick_str(getattr(args, "lifespan", None), "LIFESPAN", "auto")
    if config.lifespan not in ("auto", "on", "off"):
        raise UsageError(f"lifespan must be auto, on or off, not {config.lifespan!r}")
    push = getattr(args, "push", None)
    config.push = push if push is not None else _env_bool("PUSH", False)
    early_hints = getattr(args, "early_hints", None)
    config.early_hints = early_hints if early_hints is not None else _env_bool("EARLY_HINTS", True)
    proxy_headers = getattr(args, "proxy_headers", None)
    config.proxy_headers = (
        proxy_headers if proxy_headers is not None else _env_bool("PROXY_HEADERS", False)
    )
    config.forwarded_allow_ips = _pick_str(
        getattr(args, "forwarded_allow_ips", None), "FORWARDED_ALLOW_IPS", "127.0.0.1"
    )
    try:
        from h2books.interfaces.proxy import TrustedProxies

        TrustedProxies(config.forwarded_allow_ips)
    except ValueError as exc:
        raise UsageError(f"--forwarded-allow-ips: {exc}") from None
    return config


def _pick_str(value: str | None, env_name: str, default: str) -> str:
    return value if value is not None else (_env(env_name) or default)


def _pick_int(value: int | None, env_name: str, default: int | None) -> int | None:
    return value if value is not None else _env_int(env_name, default)


def _path_env(name: str) -> Path | None:
    raw = _env(name)
    return Path(raw).expanduser() if raw else None


def cmd_serve(args: argparse.Namespace) -> int:
    from h2books.server.runner import check_data_dir, configure_logging

    config = serve_config(args)
    configure_logging(config.log_level)
    check_data_dir(config.data_dir)
    if args.reload:
        if config.workers > 1:
            raise UsageError("--reload serves with one process: leave out --workers")
        from h2books.server.reload import run_with_reload

        return run_with_reload(args.argv, args.reload_dir or [])
    make_app, served = _app_to_serve(args, config)
    return serve_until_stopped(config, make_app, served)


def serve_until_stopped(
    config: ServerConfig, make_app: Callable[[], Handler | ServerInterface], served: str
) -> int:
    """Certificates (the local CA's unless given), listeners, the banner, then the workers
    until SIGINT/SIGTERM: what `h2books serve` and `h2books.run` both do."""
    from h2books.certs import ensure_certificates
    from h2books.server.runner import (
        bind_listeners,
        load_ssl_context,
        raise_open_file_limit,
        run_workers,
    )

    ca_path = None
    if config.certfile is None:
        paths = ensure_certificates(config.data_dir / "tls")
        config.certfile, config.keyfile, ca_path = paths.cert, paths.key, paths.ca_cert
    context = load_ssl_context(config)
    raise_open_file_limit()
    listeners = bind_listeners(config)
    port = listeners.tls[0].getsockname()[1]
    http_port = listeners.http[0].getsockname()[1] if listeners.http else None
    print(banner(config, served, port, http_port, ca_path), file=sys.stderr, flush=True)
    return run_workers(config, make_app, context, listeners)


def banner(
    config: ServerConfig, served: str, port: int, http_port: int | None, ca_path: Path | None
) -> str:
    """What the server says when it starts: what it serves, where, and how to try it."""
    shown_host = (
        "localhost"
        if config.host in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")
        else config.host
    )
    protocols = "h3, h2, http/1.1" if config.http3 else "h2, http/1.1"
    lines = [
        f"h2books {__version__} serving {served} on https://{shown_host}:{port}/ ({protocols})"
    ]
    if http_port is not None:
        lines.append(f"  cleartext HTTP/1.1 and h2c on http://{shown_host}:{http_port}/")
    if ca_path is not None:
        path = "/book?id=1" if served == "the bookstore" else "/"
        lines.append(f"  try:   curl --http2 --cacert {ca_path} https://{shown_host}:{port}{path}")
        lines.append(
            f"  trust: python3 -m h2books cert --trust   (puts {ca_path} into Chrome's NSS database)"
        )
    if config.push:
        lines.append("  push:  on, over h2 to clients that keep SETTINGS_ENABLE_PUSH at 1")
    if not config.early_hints:
        lines.append("  early hints: off (no 103 responses)")
    lines.append(f"  data:  {config.data_dir}   workers: {config.workers}   stop: Ctrl+C")
    return "\n".join(lines)


def _app_to_serve(
    args: argparse.Namespace, config: ServerConfig
) -> tuple[Callable[[], Handler | ServerInterface], str]:
    """(what each worker calls to get its app, how the banner names it). The app is imported
    here, before any worker is forked, so that a mistake is one line and not N tracebacks."""
    from h2books.interfaces.loader import (
        build_interface,
        describe,
        detect_interface,
        import_from_string,
        lifespan_refusal,
        load_app,
    )

    spec = getattr(args, "app_spec", None)
    factory = bool(getattr(args, "factory", False))
    if getattr(args, "app", None):
        if spec:
            raise UsageError("give the app once: APP or --app, not both")
        spec, factory = args.app, True
    kind = getattr(args, "interface", None) or _env("INTERFACE") or "auto"
    if kind not in ("auto", "asgi", "wsgi", "native"):
        raise UsageError(f"interface must be auto, asgi, wsgi or native, not {kind!r}")
    if not spec or factory:
        # An app each worker builds (the bookstore, a factory): refused here, once, rather
        # than by every worker (which would be restarted); other apps are built below.
        refusal = lifespan_refusal(kind if spec else "native", config.lifespan)
        if refusal is not None:
            raise UsageError(refusal)
    if not spec:
        from h2books.app import create_app, open_catalog

        # Create the catalogue (first run) here, once, before any worker is forked.
        open_catalog(config.data_dir).close()
        data_dir = config.data_dir
        return lambda: create_app(data_dir), "the bookstore"
    if factory:
        make = import_from_string(spec)
        if not callable(make):
            raise UsageError(f"{spec} is not callable: it cannot be a factory")
        served = f"{spec}() ({kind.upper()})" if kind != "auto" else f"{spec}() (factory)"
        return lambda: build_interface(make(), kind, config), served
    app = load_app(spec)
    if kind == "auto":
        kind = detect_interface(app)
    build_interface(app, kind, config)  # fails here, once, if it cannot be served
    return lambda: build_interface(app, kind, config), describe(spec, kind)


def cmd_cert(args: argparse.Namespace) -> int:
    from h2books.certs import CertPaths, ensure_certificates
    from h2books.trust import TrustError, manual_steps, trust_ca, untrust_ca

    data_dir = args.data_dir or default_data_dir()
    if args.untrust:
        # Never create a CA just to remove it.
        ca_cert = CertPaths.in_directory(data_dir / "tls").ca_cert
        if not ca_cert.is_file():
            print(f"not trusted: there is no local CA at {ca_cert}; nothing to do")
            return 0
        print(untrust_ca(ca_cert))
        return 0
    paths = ensure_certificates(data_dir / "tls")
    print(f"CA certificate:     {paths.ca_cert}")
    print(f"server certificate: {paths.cert}")
    print(f"server key:         {paths.key}")
    print(f"use it with:        curl --cacert {paths.ca_cert} https://localhost:8443/")
    if args.trust:
        try:
            print(trust_ca(paths.ca_cert))
        except TrustError:
            # Where certutil cannot help, the manual steps still can.
            print(manual_steps(paths.ca_cert), file=sys.stderr)
            raise
        print(manual_steps(paths.ca_cert))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from h2books.app import import_catalog, open_catalog
    from h2books.app.generator import generate_books

    data_dir = args.data_dir or default_data_dir()
    if args.catalog_command == "import":
        count = import_catalog(data_dir, args.source)
        print(f"imported {count} books into {data_dir}; a running server picks them up by itself")
        return 0
    if args.catalog_command == "reset":
        with open_catalog(data_dir) as store:
            count = store.replace_all(generate_books(), source="generated")
        print(f"restored the generated catalogue of {count} books in {data_dir}")
        return 0
    raise UsageError("catalog needs an action: import or reset")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `--reload` runs it again
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _is_user_error(exc):
            print(f"h2books: error: {exc}", file=sys.stderr)
            return 1
        raise


def _is_user_error(exc: Exception) -> bool:
    from h2books.app import CatalogError
    from h2books.certs import CertificateError
    from h2books.server.runner import StartupError

    if isinstance(exc, UsageError | StartupError | CatalogError | CertificateError):
        return True
    return bool(getattr(exc, "user_facing", False))


if __name__ == "__main__":
    sys.exit(main())
