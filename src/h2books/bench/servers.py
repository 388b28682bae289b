"""The servers under test: how to start each one, wait until it serves, and stop it.

Every server gets the same data directory, certificate and key, binds 127.0.0.1
on a free port, and runs pinned to the server core in a session of its own (its
CPU time is the session's, workers included). "Serving" means it answered an
HTTPS ``GET /`` with a 200, so a peer whose app failed to import is caught here.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.util
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import h2books
from h2books.bench.peers.catalog import DATA_DIR_VARIABLE
from h2books.bench.processes import Pinning, session_cpu_seconds

__all__ = [
    "OURS_PUSHING",
    "PEERS",
    "SERVERS",
    "BenchPaths",
    "RunningServer",
    "ServerSpec",
    "ServerStartError",
    "child_environment",
    "custom_server",
    "free_port",
    "server_key",
    "servers_for",
    "start_server",
]

ASGI_APP = "h2books.bench.peers.asgi_entry:app"
WSGI_APP = "h2books.bench.peers.wsgi_entry:app"
# Which bookstore "ours" serves: the native handler, or the same app through an interface.
APPS = ("native", "asgi", "wsgi")


@dataclass(frozen=True, slots=True)
class BenchPaths:
    """The bookstore every server serves, and the TLS files they all use."""

    data_dir: Path
    cert: Path
    key: Path
    ca: Path


CommandBuilder = Callable[[int, BenchPaths], list[str]]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    description: str
    command: CommandBuilder
    modules: tuple[str, ...] = ()  # what must be importable for the server to run
    distributions: tuple[str, ...] = ()  # whose versions the report names
    app: str = "native"  # the app set it belongs to (APPS); ours is compared within it
    protocols: tuple[str, ...] = ("h1", "h2")  # what it offers over TLS (ALPN)

    @property
    def key(self) -> str:
        """Unique across app sets: ``granian`` runs the ASGI app in two of them."""
        return server_key(self.name, self.app)

    def speaks(self, protocol: str) -> bool:
        return protocol in self.protocols

    def missing(self) -> list[str]:
        return [name for name in self.modules if importlib.util.find_spec(name) is None]

    @property
    def installed(self) -> bool:
        return not self.missing()

    def versions(self) -> dict[str, str]:
        found = {}
        for name in self.distributions:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[name] = importlib.metadata.version(name)
        return found


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _ours(port: int, paths: BenchPaths) -> list[str]:
    return _python(
        "-m", "h2books", "serve",
        "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(paths.data_dir),
        "--certfile", str(paths.cert), "--keyfile", str(paths.key),
        "--no-access-log", "--log-level", "warning", "--http3",
    )  # fmt: skip


def _ours_serving(app: str, interface: str) -> CommandBuilder:
    def command(port: int, paths: BenchPaths) -> list[str]:
        return _python(
            "-m", "h2books", "serve", app, "--interface", interface,
            "--host", "127.0.0.1", "--port", str(port),
            "--certfile", str(paths.cert), "--keyfile", str(paths.key),
            "--no-access-log", "--log-level", "warning",
        )  # fmt: skip

    return command


def _twisted(port: int, paths: BenchPaths) -> list[str]:
    return _python(
        "-m", "h2books.bench.peers.twisted_server",
        "--port", str(port), "--data-dir", str(paths.data_dir),
        "--cert", str(paths.cert), "--key", str(paths.key),
    )  # fmt: skip


def _hypercorn(port: int, paths: BenchPaths) -> list[str]:
    # HTTP/3 on the same port number over UDP (aioquic), as ours with --http3.
    return _python(
        "-m", "hypercorn", "-k", "uvloop",
        "--bind", f"127.0.0.1:{port}", "--quic-bind", f"127.0.0.1:{port}",
        "--certfile", str(paths.cert), "--keyfile", str(paths.key),
        "--log-level", "warning",
        ASGI_APP,
    )  # fmt: skip


def _hypercorn_unlimited(port: int, paths: BenchPaths) -> list[str]:
    # keep_alive_max_requests lifted: by default every connection ends after 1000 requests.
    return _python(
        "-m", "hypercorn", "-k", "uvloop",
        "--config", "python:h2books.bench.peers.hypercorn_config",
        "--bind", f"127.0.0.1:{port}",
        "--certfile", str(paths.cert), "--keyfile", str(paths.key),
        "--log-level", "warning",
        ASGI_APP,
    )  # fmt: skip


def _granian_serving(interface: str, app: str) -> CommandBuilder:
    def command(port: int, paths: BenchPaths) -> list[str]:
        return _python(
            "-m", "granian", "--interface", interface, "--http", "auto", "--loop", "uvloop",
            "--host", "127.0.0.1", "--port", str(port),
            "--ssl-certificate", str(paths.cert), "--ssl-keyfile", str(paths.key),
            "--log-level", "warning", "--no-access-log",
            app,
        )  # fmt: skip

    return command


_granian = _granian_serving("asgi", ASGI_APP)


def _uvicorn(port: int, paths: BenchPaths) -> list[str]:
    return _python(
        "-m", "uvicorn", "--http", "zttp", "--http2", "--loop", "uvloop",
        "--host", "127.0.0.1", "--port", str(port),
        "--ssl-certfile", str(paths.cert), "--ssl-keyfile", str(paths.key),
        "--log-level", "warning", "--no-access-log",
        ASGI_APP,
    )  # fmt: skip


def _uvicorn_httptools(port: int, paths: BenchPaths) -> list[str]:
    return _python(
        "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop",
        "--host", "127.0.0.1", "--port", str(port),
        "--ssl-certfile", str(paths.cert), "--ssl-keyfile", str(paths.key),
        "--log-level", "warning", "--no-access-log",
        ASGI_APP,
    )  # fmt: skip


def _gunicorn(port: int, paths: BenchPaths) -> list[str]:
    return _python(
        "-m", "gunicorn", "-k", "asgi", "-w", "1", "--http-protocols", "h2,h1",
        "--bind", f"127.0.0.1:{port}",
        "--certfile", str(paths.cert), "--keyfile", str(paths.key),
        "--log-level", "warning",
        ASGI_APP,
    )  # fmt: skip


OURS = ServerSpec(
    "ours",
    f"h2books {h2books.__version__} --http3",
    _ours,
    (),
    ("uvloop", "aioquic"),
    protocols=("h1", "h2", "h3"),
)
PEERS = (
    ServerSpec(
        "twisted",
        "Twisted, the post's server (twisted[tls,http2])",
        _twisted,
        ("twisted", "h2", "OpenSSL", "service_identity"),
        ("twisted", "h2", "pyOpenSSL"),
    ),
    ServerSpec(
        "hypercorn",
        "Hypercorn -k uvloop --quic-bind (HTTP/3 on aioquic)",
        _hypercorn,
        ("hypercorn", "uvloop", "aioquic"),
        ("hypercorn", "h2", "uvloop", "aioquic"),
        protocols=("h1", "h2", "h3"),
    ),
    ServerSpec(
        "granian",
        "Granian --interface asgi --http auto (Rust)",
        _granian,
        ("granian", "uvloop"),
        ("granian", "uvloop"),
    ),
    ServerSpec(
        "uvicorn",
        "Uvicorn --http zttp --http2 --loop uvloop (Zig core)",
        _uvicorn,
        ("uvicorn", "zttp", "uvloop"),
        ("uvicorn", "zttp", "uvloop"),
    ),
)
SERVERS: dict[str, ServerSpec] = {spec.name: spec for spec in (OURS, *PEERS)}


def _ours_pushing(port: int, paths: BenchPaths) -> list[str]:
    return [*OURS.command(port, paths), "--push"]


# Ours with server push on, for the clients that take pushes (push goes only to a client
# that keeps SETTINGS_ENABLE_PUSH at 1; every other client sees the plain server).
OURS_PUSHING = replace(OURS, description=f"{OURS.description} --push", command=_ours_pushing)

# The same ASGI bookstore (peers/asgi_app.py) on every server, ours included.
ASGI_SERVERS = (
    ServerSpec(
        "ours",
        f"h2books {h2books.__version__} serve {ASGI_APP} (AsgiInterface)",
        _ours_serving(ASGI_APP, "asgi"),
        (),
        ("uvloop",),
        app="asgi",
    ),
    ServerSpec(
        "granian",
        "Granian --interface asgi --http auto (Rust)",
        _granian,
        ("granian", "uvloop"),
        ("granian", "uvloop"),
        app="asgi",
    ),
    ServerSpec(
        "uvicorn-httptools",
        "Uvicorn --http httptools --loop uvloop (HTTP/1.1 only)",
        _uvicorn_httptools,
        ("uvicorn", "httptools", "uvloop"),
        ("uvicorn", "httptools", "uvloop"),
        app="asgi",
        protocols=("h1",),
    ),
    ServerSpec(
        "uvicorn-zttp",
        "Uvicorn --http zttp --http2 --loop uvloop (Zig core)",
        _uvicorn,
        ("uvicorn", "zttp", "uvloop"),
        ("uvicorn", "zttp", "uvloop"),
        app="asgi",
    ),
    ServerSpec(
        "hypercorn",
        "Hypercorn -k uvloop, keep_alive_max_requests lifted",
        _hypercorn_unlimited,
        ("hypercorn", "uvloop"),
        ("hypercorn", "h2", "uvloop"),
        app="asgi",
    ),
    ServerSpec(
        "gunicorn",
        "Gunicorn -k asgi -w 1 --http-protocols h2,h1",
        _gunicorn,
        ("gunicorn", "h2"),
        ("gunicorn", "h2"),
        app="asgi",
    ),
)
# The same WSGI bookstore (peers/wsgi_app.py): ours (WsgiInterface) and Granian's WSGI.
WSGI_SERVERS = (
    ServerSpec(
        "ours",
        f"h2books {h2books.__version__} serve {WSGI_APP} (WsgiInterface)",
        _ours_serving(WSGI_APP, "wsgi"),
        (),
        ("uvloop",),
        app="wsgi",
    ),
    ServerSpec(
        "granian",
        "Granian --interface wsgi --http auto (Rust)",
        _granian_serving("wsgi", WSGI_APP),
        ("granian", "uvloop"),
        ("granian",),
        app="wsgi",
    ),
)
_BY_APP: dict[str, tuple[ServerSpec, ...]] = {
    "native": (OURS, *PEERS),
    "asgi": ASGI_SERVERS,
    "wsgi": WSGI_SERVERS,
}


def servers_for(app: str) -> dict[str, ServerSpec]:
    """The servers of one app set by name, ours first."""
    return {spec.name: spec for spec in _BY_APP[app]}


def server_key(name: str, app: str) -> str:
    return name if app == "native" else f"{app}:{name}"


def custom_server(name: str, template: str, app: str = "native") -> ServerSpec:
    """A server given on the command line: ``{port} {cert} {key} {data_dir} {python}`` are filled in."""

    def command(port: int, paths: BenchPaths) -> list[str]:
        return [
            part.format(
                port=port,
                cert=paths.cert,
                key=paths.key,
                data_dir=paths.data_dir,
                python=sys.executable,
            )
            for part in shlex.split(template)
        ]

    return ServerSpec(name, f"custom: {template}", command, app=app)


class ServerStartError(Exception):
    """The server did not come up; the message is one line for the report."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_environment() -> dict[str, str]:
    # Peers import h2books (the ASGI app, the Twisted resources) by name, so they
    # must find this very copy of it, installed or not.
    source_root = str(Path(h2books.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": source_root + (os.pathsep + path if path else ""),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass(slots=True)
class RunningServer:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self, *, precise: bool = False) -> float:
        return session_cpu_seconds(self.process.pid, precise=precise)

    def exit_reason(self) -> str:
        code = self.process.poll()
        state = "is running" if code is None else f"exited with code {code}"
        tail = self.log_tail()
        return f"{self.spec.name} {state}" + (f": {tail}" if tail else "")

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip()[:200] if lines else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        # Whatever is left of the session it leads (workers that ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self._log.close()


def start_server(
    spec: ServerSpec,
    paths: BenchPaths,
    pinning: Pinning,
    log_dir: Path,
    *,
    timeout: float = 30.0,
) -> RunningServer:
    """Start `spec` pinned to the server core and return once it answers ``GET /``."""
    port = free_port()
    log_path = log_dir / f"{spec.key.replace(':', '-')}-{port}.log"
    log = log_path.open("wb")
    env = child_environment()
    env[DATA_DIR_VARIABLE] = str(paths.data_dir)
    argv = pinning.server_prefix + spec.command(port, paths)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        log.close()
        raise ServerStartError(f"{spec.name} could not be started: {exc}") from None
    server = RunningServer(spec, port, process, log_path, log)
    try:
        _wait_until_serving(server, paths.ca, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_serving(server: RunningServer, ca: Path, timeout: float) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerStartError(f"failed to start: {server.exit_reason()}")
        status = _probe(server.port, context)
        if status == 200:
            return
        last_error = f"GET / answered {status}" if isinstance(status, int) else status
        time.sleep(0.1)
    raise ServerStartError(f"{server.spec.name} did not serve within {timeout:g} s ({last_error})")


def _probe(port: int, context: ssl.SSLContext) -> int | str:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def command_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)
