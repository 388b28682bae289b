"""WSGI (PEP 3333) over the protocol-neutral exchange: Flask, Django and any WSGI app,
over HTTP/1.1 and HTTP/2 alike.

The app runs in a bounded pool of threads (`ServerConfig.wsgi_threads`); the exchange is
only touched on the event loop. A simple request costs one hop to a thread and one back:

- on the loop, `handle` takes the body if it is complete (else it is read as it arrives,
  `wsgi_io.StreamedInput`) and queues the request for the pool;
- in the thread, the environ is built, the app is called, and its answer goes back
  through the interface's `wsgi_io.LoopInbox` (one wake-up of the loop for all the
  answers that came meanwhile): a body known to be whole (a list, or a first part as
  long as its Content-Length) as one `Exchange.respond`, the cached fast path (a head
  seen before is one lookup, and its encodings are reused: `WsgiHead`); anything else
  streamed through a bounded `wsgi_io.ResponsePipe`, the thread blocking while the peer
  is not reading.

The iterable's `close()` is always called, in the thread, whatever happened. An app that
fails before its head went out gets a 500; after, the exchange is reset (HTTP/2:
RST_STREAM, HTTP/1.1: the connection is cut). Either way one log line says why.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

from h2books.http import Response
from h2books.interfaces import ServerInterface
from h2books.interfaces.templates import respond_whole
from h2books.interfaces.wsgi_heads import WsgiHead, WsgiHeads, head_of
from h2books.interfaces.wsgi_io import (
    AnswerDeadlines,
    ClientDisconnected,
    FileWrapper,
    LoopInbox,
    ResponsePipe,
    StreamedInput,
    WorkerPool,
    streamed_head,
)
from h2books.server.config import ServerConfig
from h2books.server.connection import ServerConnection
from h2books.server.exchange import PENDING, Exchange
from h2books.server.responses import APP_TOO_SLOW, INTERNAL_ERROR

log = logging.getLogger("h2books.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
Answer = Callable[[Exchange, Response], None]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_PROTOCOLS = {"2": "HTTP/2", "1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_METHODS = {
    name.encode("ascii"): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}
# Caches of what repeats from request to request, bounded against a peer that varies it.
_CACHE_LIMIT = 1024
_environ_keys: dict[bytes, str | None] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}
_servers: dict[bytes, tuple[str, str]] = {}


def _environ_key(name: bytes) -> str | None:
    """`user-agent` -> `HTTP_USER_AGENT`; None for a name with `_`, which would be taken
    for its `-` twin once converted (a header-spoofing trick behind proxies)."""
    key = _environ_keys.get(name, "")
    if key == "":
        key = None if b"_" in name else "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_environ_keys) < _CACHE_LIMIT:
            _environ_keys[name] = key
    return key


def _server_of(authority: bytes, scheme: str) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from `host[:port]` (brackets kept for IPv6)."""
    found = _servers.get(authority)
    if found is None:
        text = authority.decode("latin-1")
        host, colon, port = text.rpartition(":")
        if not colon or host.endswith(":") or (text.startswith("[") and not host.endswith("]")):
            host, port = text, ""  # no port (a bare IPv6 literal also has colons)
        found = (host, port)
        if len(_servers) < _CACHE_LIMIT:
            _servers[authority] = found
    if not found[1]:
        return found[0], "443" if scheme == "https" else "80"
    return found


class WsgiInterface(ServerInterface):
    """Serves a WSGI app: `Server(config, WsgiInterface(app, config), ssl_context)`."""

    def __init__(self, app: WsgiApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self.threads = config.wsgi_threads
        self.pool: WorkerPool | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inbox: LoopInbox | None = None
        self._deadlines: AnswerDeadlines | None = None
        # How a whole answer is handed to its exchange on the loop: through the watch on
        # the time to answer when there is one (the call leaves it at once, not at the
        # next sweep), else straight.
        self._answer: Answer = Exchange.respond
        self._heads: WsgiHeads = {}  # the app's checked response heads (templates.py)
        root = config.root_path.rstrip("/")
        # The parts of every environ that never change; each request starts from a copy.
        self._base: dict[str, Any] = {
            "SCRIPT_NAME": root,
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": config.workers > 1,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        self._root = root
        self._last_connection: tuple[ServerConnection | None, dict[str, Any]] = (None, {})

    async def startup(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.pool is None:
            self._start(self.loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """The thread pool, and the watch on the calls' time to answer (if it is bounded)."""
        self.pool = WorkerPool(self.threads, "h2books-wsgi")
        self._inbox = LoopInbox(loop)
        timeout = self.config.timeouts.response
        self._deadlines = AnswerDeadlines(loop, timeout, APP_TOO_SLOW) if timeout else None
        self._answer = Exchange.respond if self._deadlines is None else self._deadlines.respond

    async def shutdown(self) -> None:
        """Let the requests queued and running finish (within the graceful-shutdown
        timeout), then the threads end."""
        pool = self.pool
        if pool is None:
            return
        self.pool = None
        pool.stop()
        deadlines, self._deadlines = self._deadlines, None
        self._answer = Exchange.respond
        if deadlines is not None:
            deadlines.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeouts.graceful_shutdown
        # The loop keeps running meanwhile: the threads' last answers cross through it.
        while pool.running and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if pool.running:
            log.warning("%d WSGI threads still busy at shutdown", pool.running)

    # -- the loop -----------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        if exchange.body_complete:
            body = exchange.take_body() if exchange.body_size else b""
            self._submit(exchange, body)
        else:
            # The rest of the body may be in this very read: look again once it is fed,
            # and read it whole if it is complete by then.
            exchange.adapter.state.loop.call_soon(self._dispatch_later, exchange)

    def _dispatch_later(self, exchange: Exchange) -> None:
        if exchange.gone:
            return
        if exchange.body_complete:
            self._submit(exchange, exchange.take_body() if exchange.body_size else b"")
        else:
            self._submit(exchange, None)

    def _submit(self, exchange: Exchange, body: bytes | None) -> None:
        pool = self.pool
        if pool is None:  # served without startup() (a bare Server in a test)
            self.loop = exchange.adapter.state.loop
            self._start(self.loop)
            pool = self.pool
            assert pool is not None
        deadlines = self._deadlines
        if deadlines is not None:
            deadlines.watch(exchange)
        pool.submit(self._run, (exchange, body))

    # -- the app's thread -------------------------------------------------------------

    def _run(self, job: tuple[Exchange, bytes | None]) -> None:
        exchange, body = job
        # The client left, or the 503 of --response-timeout went out, while the request
        # waited for a thread: the app is not run.
        if exchange.gone or exchange.response_state != PENDING:
            return
        loop, inbox = self.loop, self._inbox
        assert loop is not None and inbox is not None
        call = WsgiCall(loop, exchange, inbox, self._heads, self._answer)
        result: Iterable[bytes] | None = None
        try:
            environ = self.environ(exchange, body, loop)
            result = self.app(environ, call.start_response)
            call.send(result)
        except ClientDisconnected:
            if exchange.expired:
                log.debug("the 503 went out before the app's answer to %r", exchange)
            else:
                log.debug("client went away during %r", exchange)
            call.abandon()
        except Exception:
            if exchange.gone:
                log.debug("app failed for %r after the client went away", exchange, exc_info=True)
            else:
                log.exception("WSGI app failed for %r", exchange)
            call.fail()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("close() of the WSGI response failed for %r", exchange)

    def environ(
        self, exchange: Exchange, body: bytes | None, loop: asyncio.AbstractEventLoop
    ) -> dict[str, Any]:
        adapter = exchange.adapter
        last_adapter, base = self._last_connection
        if last_adapter is not adapter:
            base = self._connection_base(adapter)
        environ = base.copy()
        method = exchange.method
        environ["REQUEST_METHOD"] = _METHODS.get(method) or method.decode("latin-1")
        target = exchange.target
        if target[:1] != b"/" and b"://" in target:  # absolute-form (RFC 9112 §3.2.2)
            slash = target.find(b"/", target.find(b"://") + 3)
            target = target[slash:] if slash >= 0 else b"/"
        split = target.find(b"?")
        if split >= 0:
            raw_path = target[:split]
            environ["QUERY_STRING"] = target[split + 1 :].decode("latin-1")
        else:
            raw_path = target
            environ["QUERY_STRING"] = ""
        # 0x25 is "%", as an int: a one-octet bytes needle costs a TypeError raised and cleared
        path = (unquote_to_bytes(raw_path) if 0x25 in raw_path else raw_path).decode("latin-1")
        root = self._root
        if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
            path = path[len(root) :]  # the proxy kept the prefix: SCRIPT_NAME + PATH_INFO
        environ["PATH_INFO"] = path
        environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(exchange.http_version, "HTTP/1.1")
        for name, value in exchange.headers:
            key = _environ_keys.get(name) or _environ_key(name)
            if key is None:
                continue
            if key in environ:  # a repeated field: one value, as a proxy would fold it
                separator = "; " if key == "HTTP_COOKIE" else ", "
                environ[key] = environ[key] + separator + value.decode("latin-1")
            else:
                environ[key] = value.decode("latin-1")
        authority = exchange.authority
        if authority:
            environ["HTTP_HOST"] = authority.decode("latin-1")  # :authority, or Host
            environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_of(authority, adapter.scheme)
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = self._listening(exchange)
        if body is None:
            environ["wsgi.input"] = StreamedInput(loop, exchange, self._deadlines)
        else:
            environ["wsgi.input"] = io.BytesIO(body)
            if body and "CONTENT_LENGTH" not in environ:
                # A chunked (or h2 length-less) body that is whole: its length is known,
                # and frameworks that trust only CONTENT_LENGTH (Django) can read it.
                environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def _connection_base(self, adapter: ServerConnection) -> dict[str, Any]:
        """The environ parts one connection shares; the last one is kept, which serves
        every stream of an HTTP/2 connection in a row."""
        base = self._base.copy()
        base["wsgi.url_scheme"] = adapter.scheme
        client = adapter.client
        if client is not None:
            base["REMOTE_ADDR"] = client[0]
            base["REMOTE_PORT"] = str(client[1])
        self._last_connection = (adapter, base)  # one tuple: the swap is atomic for threads
        return base

    @staticmethod
    def _listening(exchange: Exchange) -> tuple[str, str]:
        transport = exchange.adapter.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            return str(sockname[0]), str(sockname[1])
        return "", ""


class WsgiCall:
    """One call of the app, from its thread: `start_response`, `write`, and sending what it
    returns. The head is handed to the loop with the first non-empty body part, or at the
    end (PEP 3333), so until then an error can still become a 500."""

    __slots__ = ("_answer", "_exchange", "_heads", "_inbox", "_loop", "head", "pipe", "remaining")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        exchange: Exchange,
        inbox: LoopInbox,
        heads: WsgiHeads,
        answer: Answer,
    ) -> None:
        self._loop = loop
        self._exchange = exchange
        self._inbox = inbox
        self._heads = heads
        self._answer = answer
        self.head: WsgiHead | None = None  # set by start_response
        self.pipe: ResponsePipe | None = None  # set once the head is out
        self.remaining = -1  # body bytes the app's content-length still allows

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.pipe is not None:  # too late to change the head: PEP 3333 re-raises
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.head is not None:
            raise AssertionError("start_response() called twice without exc_info")
        head = self.head = head_of(status, headers, self._heads)
        self.remaining = head.declared
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's write(): the part goes out before write returns (or as the peer
        reads, the thread blocking meanwhile)."""
        if self.head is None:
            raise AssertionError("write() before start_response()")
        self._put(data)

    def _put(self, data: bytes) -> bool:
        """Queue one body part; False once the app's content-length is reached."""
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"a WSGI body part must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if not data:
            return True
        remaining = self.remaining
        if remaining >= 0:
            if len(data) >= remaining:
                if len(data) > remaining:
                    log.warning(
                        "WSGI app sent more than its content-length for %r: cut",
                        self._exchange,
                    )
                    data = data[:remaining]
                self.remaining = 0
                if not data:
                    return False
            else:
                self.remaining = remaining - len(data)
        pipe = self.pipe
        if pipe is None:
            head = self.head
            if head is None:
                raise AssertionError("the app yielded a body before calling start_response()")
            pipe = self.pipe = ResponsePipe(
                self._loop, self._exchange, streamed_head(head.status, head.fields)
            )
        pipe.put(data)
        return self.remaining != 0

    def send(self, result: Iterable[bytes]) -> None:
        """Send what the app returned: whole when it is known to be whole, else streamed."""
        if self.pipe is None and type(result) is list and self.head is not None:
            # The commonest shape of all, and known to be complete: one respond().
            if len(result) == 1:
                body = result[0]
            else:
                try:
                    body = b"".join(result)
                except TypeError:  # not all bytes: the part-by-part path says which
                    body = None
            if type(body) is bytes:
                self._respond(body)
                return
        iterator = iter(result)
        if self.pipe is None:
            # The first part alone, if it is all the content-length allows, goes whole.
            for first in iterator:
                if first:
                    if (
                        self.head is not None
                        and len(first) == self.remaining
                        and type(first) is bytes
                    ):
                        self._respond(first)
                        return
                    if not self._put(first):
                        self._end()
                        return
                    break
            else:
                self._respond(b"")
                return
        for part in iterator:
            if not self._put(part):
                break
        self._end()

    def _respond(self, body: bytes) -> None:
        head = self.head
        if head is None:
            raise AssertionError("the app returned without calling start_response()")
        exchange = self._exchange
        declared = head.declared
        if declared >= 0:
            if len(body) != declared and exchange.method != b"HEAD":
                if len(body) < declared:
                    raise ValueError(
                        f"the body ({len(body)} bytes) is shorter than its content-length "
                        f"({declared})"
                    )
                log.warning("WSGI app sent more than its content-length for %r: cut", exchange)
                body = body[:declared]
            # The head's template Response, its encodings cached (interfaces/templates.py).
            self._inbox.call(respond_whole, exchange, head, body, self._answer)
            return
        # No declared length: the adapter adds one from this body, so its encodings are
        # this answer's alone.
        self._inbox.call(self._answer, exchange, Response(head.status, head.fields, body))

    def _end(self) -> None:
        pipe = self.pipe
        assert pipe is not None
        if self.remaining > 0 and self._exchange.method != b"HEAD":
            log.error(
                "WSGI app ended %r %d bytes short of its content-length",
                self._exchange,
                self.remaining,
            )
            pipe.abort()
        else:
            pipe.finish()

    def fail(self) -> None:
        """The app failed: a 500 if nothing went out yet, else the exchange is reset."""
        if self.pipe is None:
            self._inbox.call(self._exchange.respond, INTERNAL_ERROR)
        else:
            self.pipe.abort()

    def abandon(self) -> None:
        """The client left: nothing to send; a streamed response's pipe is already broken."""
        if self.pipe is None:
            self._inbox.call(self._exchange.reset)
