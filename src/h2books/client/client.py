"""`Client`: the library face of h2books' HTTP/1.1, HTTP/2 and HTTP/3 clients.

    async with Client("https://localhost:8443", http2=True, cacert=ca) as client:
        response = await client.get("/book?id=1")

A client talks to one origin over ``connections`` connections (default one).
Each connection slot (a lane) connects lazily, reconnects when its connection
retires (GOAWAY, keep-alive off, closed while idle), and moves requests that
were never sent to the new connection. Requests go to the lane with the least
outstanding work.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from h2books.client.base import ClientConnection, ConnectionSettings
from h2books.client.connection_h1 import H1ClientProtocol
from h2books.client.connection_h2 import H2ClientProtocol
from h2books.client.errors import ClientError, ConnectError, RemoteClosedError
from h2books.client.exchange import MAX_ATTEMPTS, Exchange, ResponseCallback
from h2books.client.origin import Origin
from h2books.client.response import Response
from h2books.client.stats import WireStats
from h2books.client.transport import create_ssl_context, open_connection

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

__all__ = ["Client", "PushListener"]

HeaderInput = Iterable[tuple[str | bytes, str | bytes]]
# (target, status, body) of a pushed response that arrived whole before any GET took it;
# True takes it there (see `Client`).
PushListener = Callable[[bytes, int, bytes], bool]

DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024
# Pushed responses held for a later request at most, in number and in body bytes (then
# further pushes are declined): the server chooses what it pushes, not how much we keep.
MAX_HELD_PUSHES = 10000
MAX_HELD_PUSH_BYTES = 64 * 1024 * 1024
# How long `aclose` waits for connections to finish closing (TLS close_notify).
_CLOSE_WAIT = 2.0


class Client:
    """An HTTP/2 (``http2=True``) or HTTP/1.1 client for one origin.

    ``http2=True`` negotiates ``h2`` with ALPN on https:// URLs and uses h2c with
    prior knowledge on http:// URLs; many concurrent requests share one
    connection as streams. ``http2=False`` uses HTTP/1.1 keep-alive: one request
    at a time per connection, in submission order. ``timeout`` bounds each
    request from submission to its complete response (and each connect), in
    seconds; ``None`` waits forever. ``http3=True`` speaks HTTP/3 over QUIC (UDP, same
    port number) to an https:// URL. Pass a `WireStats` as ``stats`` to count the
    bytes on the wire. ``connect_to`` (host, port) opens the connections there
    instead of the URL's host and port (a delay proxy, say); the URL still gives the
    TLS server name and ``:authority``.

    ``push=True`` (HTTP/2) announces SETTINGS_ENABLE_PUSH=1: responses the server pushes
    for GETs of this origin are kept (up to `MAX_HELD_PUSHES`), and a later GET of the
    same target takes the pushed response instead of sending a request
    (`Response.pushed`). ``pushes_received`` and ``pushes_taken`` count them.
    ``push_limit`` accepts that many pushes in all, and declines the rest (RST_STREAM
    CANCEL): a crawl of the first N books takes the first N the index pushes.
    ``on_push(target, status, body)`` sees each pushed response that arrives whole before
    a GET took it, from inside the read that completed it: returning True takes the push
    there (counted in ``pushes_taken``, nothing held), False holds it as without a
    listener. A caller with work to do per pushed response (the crawl checks each book)
    does it so while the rest is still on its way, not after the last byte. A low-level
    hook: it gets no header fields, and it must be quick. What it raises goes to the
    loop's exception handler, and the push is held.
    """

    def __init__(
        self,
        url: str,
        *,
        http2: bool = True,
        http3: bool = False,
        cacert: str | Path | None = None,
        insecure: bool = False,
        connections: int = 1,
        timeout: float | None = 10.0,
        headers: HeaderInput = (),
        stats: WireStats | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        push: bool = False,
        connect_to: tuple[str, int] | None = None,
        push_limit: int | None = None,
        on_push: PushListener | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        self.origin = Origin(url)
        self.http2 = http2
        self.http3 = http3
        self.stats = stats
        self._connect_to = connect_to
        self._ssl = (
            create_ssl_context(http2=http2, cacert=cacert, insecure=insecure)
            if self.origin.tls and not http3
            else None
        )
        self._quic: QuicConfiguration | None = None
        if http3:
            if not self.origin.tls:
                raise ValueError("HTTP/3 needs an https:// URL (QUIC is always encrypted)")
            from h2books.client.connection_h3 import quic_client_configuration

            self._quic = quic_client_configuration(self.origin.host, cacert, insecure, timeout)
        import h2books  # here, not at import time: h2books/__init__ imports this module

        user_agent = (b"user-agent", f"h2books/{h2books.__version__}".encode("ascii"))
        extra = _normalise_fields(headers)
        if not any(name == b"user-agent" for name, _ in extra):
            extra = (user_agent, *extra)
        self._settings = ConnectionSettings(
            self.origin, extra, timeout, max_response_size, stats, push and http2
        )
        # target -> its promised push, until a GET takes it
        self._pushes: dict[bytes, _HeldPush] = {}
        self.pushes_received = 0
        self.pushes_taken = 0
        self._held_push_bytes = 0  # bodies of pushed responses no request has taken yet
        self._push_limit = push_limit
        self._on_push = on_push
        self._lanes = [_Lane(self) for _ in range(connections)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open every connection now, so that a refused connection or a TLS failure shows here."""
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(lane.connect() for lane in self._lanes))

    async def aclose(self) -> None:
        """Close every connection; requests still waiting are cancelled."""
        if self._closed:
            return
        self._closed = True
        waiters = [waiter for lane in self._lanes for waiter in lane.close()]
        if waiters:
            await asyncio.wait(waiters, timeout=_CLOSE_WAIT)
        self._pushes.clear()  # pushes nobody took: not kept as long as this object is

    @property
    def closed(self) -> bool:
        return self._closed

    # -- requests ---------------------------------------------------------------------------

    def submit(
        self,
        method: str | bytes,
        target: str | bytes,
        headers: HeaderInput = (),
        body: bytes = b"",
    ) -> asyncio.Future[Response]:
        """Send a request; the future resolves to its `Response` or a `ClientError`.

        No coroutine and no task: this is the cheap way to keep many requests in
        flight. ``target`` is a path with its query (``/book?id=1``).
        """
        loop, method, target = self._check_request(method, target)
        future: asyncio.Future[Response] = loop.create_future()
        if self._pushes and method == b"GET" and not headers and self._take_push(target, future):
            return future
        fields = _normalise_fields(headers) if headers else ()
        self._dispatch(Exchange(method, target, fields, body, future, loop.time()))
        return future

    def send(
        self,
        method: str | bytes,
        target: str | bytes,
        callback: ResponseCallback,
        headers: HeaderInput = (),
        body: bytes = b"",
    ) -> None:
        """Send a request; ``callback(response, None)`` or ``callback(None, error)`` is
        called once, from the read that completed the response (or failed it), and with a
        `asyncio.CancelledError` when the client closes first.

        `submit` without the future: no loop callback per response, and the callback
        may send the next request at once, in the same write as the read's other output.
        A pushed response (``push=True``) is handed over as `submit` would.
        """
        loop, method, target = self._check_request(method, target)
        if self._pushes and method == b"GET" and not headers and self._take_push(target, callback):
            return
        fields = _normalise_fields(headers) if headers else ()
        self._dispatch(Exchange(method, target, fields, body, None, loop.time(), callback))

    def _check_request(
        self, method: str | bytes, target: str | bytes
    ) -> tuple[asyncio.AbstractEventLoop, bytes, bytes]:
        if self._closed:
            raise RuntimeError("this Client is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if isinstance(target, str):
            target = target.encode("ascii")
        if isinstance(method, str):
            method = method.encode("ascii")
        if target[:1] != b"/" and target != b"*":
            raise ValueError(f"the target must be a path starting with '/', not {target!r}")
        return loop, method, target

    def _dispatch(self, exchange: Exchange) -> None:
        lanes = self._lanes
        lane = lanes[0] if len(lanes) == 1 else min(lanes, key=_lane_load)
        lane.submit(exchange)

    async def request(
        self,
        method: str | bytes,
        target: str | bytes,
        headers: HeaderInput = (),
        body: bytes = b"",
    ) -> Response:
        return await self.submit(method, target, headers, body)

    async def get(self, target: str | bytes, headers: HeaderInput = ()) -> Response:
        return await self.submit(b"GET", target, headers)

    # -- server push ------------------------------------------------------------------------

    def take_pushed(self, target: str | bytes) -> Response | None:
        """The response the server pushed for a GET of `target`, if it has arrived whole
        (and is then no longer held); None if none came yet. A push still on its way
        stays for the GET (`get`, `send`) that will take it.

        For a caller with many targets (the crawl after the index): a held response costs
        one lookup here, where `send` answers it through a loop callback."""
        held = self._take_arrived(target)
        return None if held is None else held.release()

    def take_pushed_body(self, target: str | bytes) -> tuple[int, bytes] | None:
        """`take_pushed` for a caller that needs only the status and the body (the crawl,
        which checks thousands): no `Response` is made."""
        held = self._take_arrived(target)
        return None if held is None else held.release_body()

    def _take_arrived(self, target: str | bytes) -> _HeldPush | None:
        """The held push of `target` if its response has arrived whole, no longer held."""
        if isinstance(target, str):
            target = target.encode("ascii")
        held = self._pushes.get(target)
        if held is None or held.arrived is None:
            return None
        del self._pushes[target]
        self.pushes_taken += 1
        return held

    def _take_push(self, target: bytes, taker: asyncio.Future[Response] | ResponseCallback) -> bool:
        """Hand the push promised for `target`, if any, to `taker` (`_HeldPush.take`)."""
        held = self._pushes.pop(target, None)
        if held is None:
            return False
        self.pushes_taken += 1
        held.take(taker)
        return True

    def _promised(self, target: bytes, started: float) -> Exchange | None:
        if self._closed or len(self._pushes) >= MAX_HELD_PUSHES or target in self._pushes:
            return None
        if self._held_push_bytes >= MAX_HELD_PUSH_BYTES:
            return None
        if self._push_limit is not None and self.pushes_received >= self._push_limit:
            return None
        held = self._pushes[target] = _HeldPush(self, target, started)
        self.pushes_received += 1
        return held

    # -- connections (for the lanes) ------------------------------------------------------

    async def _open(self, lane: _Lane) -> ClientConnection:
        origin, settings = self.origin, self._settings
        if self._quic is not None:
            return await self._open_h3(lane)
        kind = H2ClientProtocol if self.http2 else H1ClientProtocol
        connection = await open_connection(
            lambda: kind(lane, settings), origin, self._ssl, settings.timeout, self._connect_to
        )
        if connection.error is not None:
            raise connection.error
        if not connection.accepting:
            raise RemoteClosedError(f"{origin.address} closed the connection right after it opened")
        return connection

    async def _open_h3(self, lane: _Lane) -> ClientConnection:
        from h2books.client.connection_h3 import H3ClientProtocol, open_h3_connection

        origin, settings, configuration = self.origin, self._settings, self._quic
        assert configuration is not None
        host, port = self._connect_to or (origin.host, origin.port)
        return await open_h3_connection(
            lambda: H3ClientProtocol(lane, settings, configuration),
            host,
            port,
            settings.timeout,
            origin.address,
        )


class _HeldPush(Exchange):
    """A promised push, from its PUSH_PROMISE to the request that takes it: the exchange
    its connection fills like any other.

    Taken first (`take`, by a GET of its target), the taker becomes the exchange's future
    or callback, and the response goes to it from the read that completes it: no loop
    callback in between. Arrived first, the response is held (its body counts against
    `MAX_HELD_PUSH_BYTES`) and handed over when taken, to a callback one `call_soon` later
    (never from inside the taker's own `send`). A push that fails (reset by the server,
    timed out, its connection lost) becomes a request after all when someone took it, and
    is forgotten otherwise: its target is then requested like any other.
    """

    __slots__ = ("_client", "_http_version", "arrived")

    def __init__(self, client: Client, target: bytes, started: float) -> None:
        Exchange.__init__(self, b"GET", target, (), b"", None, started)
        self.pushed = True
        self.attempts = MAX_ATTEMPTS  # never retried as a request of ours
        self._client = client
        # The body, once the response has arrived before anyone took it; its `Response`
        # is made only for a taker that wants one (`release`).
        self.arrived: bytes | None = None
        self._http_version = ""

    def release_body(self) -> tuple[int, bytes] | None:
        """(status, body) if the response has arrived, then no longer held (nor counted
        against the held bytes); None while it is still coming."""
        content = self.arrived
        if content is None:
            return None
        self.arrived = None
        self._client._held_push_bytes -= len(content)
        return self.status, content

    def release(self) -> Response | None:
        """`release_body`, as the `Response`."""
        body = self.release_body()
        return None if body is None else self.response(body[1], self._http_version)

    def take(self, taker: asyncio.Future[Response] | ResponseCallback) -> None:
        response = self.release()
        if response is None:  # still coming
            if isinstance(taker, asyncio.Future):
                self.future = taker
            else:
                self.callback = taker
            return
        if isinstance(taker, asyncio.Future):
            taker.set_result(response)
        else:
            asyncio.get_running_loop().call_soon(taker, response, None)

    def resolve(self, content: bytes, http_version: str) -> None:
        if self.future is None and self.callback is None:  # nobody took it yet
            client = self._client
            if client._on_push is not None and self._listener_took(client._on_push, content):
                client.pushes_taken += 1
                return
            self.arrived = content
            self._http_version = http_version
            self._client._held_push_bytes += len(content)
        else:
            Exchange.resolve(self, content, http_version)

    def _listener_took(self, on_push: PushListener, content: bytes) -> bool:
        """Whether `on_push` took this push. It is out of the held pushes meanwhile, so
        that a GET of its target made from inside the listener is a request of its own
        rather than a taker of what the listener is deciding on; put back unless taken."""
        pushes = self._client._pushes
        held = pushes.get(self.target) is self
        if held:
            del pushes[self.target]
        try:
            taken = on_push(self.target, self.status, content)
        except Exception as exc:  # the rule for a failing callback (`Exchange._answer`)
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"on_push of {self.label} failed: it is held", "exception": exc}
            )
            taken = False
        if not taken and held and self.target not in pushes:
            pushes[self.target] = self
        return taken

    def fail(self, error: BaseException) -> None:
        client = self._client
        future, callback = self.future, self.callback
        if future is None and callback is None:  # nobody took it: forget it
            if client._pushes.get(self.target) is self:
                del client._pushes[self.target]
            return
        if future is not None and future.done():
            return  # the taker gave up (cancelled)
        client.pushes_taken -= 1
        if client._closed:
            if future is not None:
                future.cancel()
            else:
                Exchange.fail(self, asyncio.CancelledError())
            return
        started = asyncio.get_running_loop().time()
        client._dispatch(Exchange(b"GET", self.target, (), b"", future, started, callback))


def _lane_load(lane: _Lane) -> int:
    return lane.outstanding


def _normalise_fields(headers: HeaderInput) -> tuple[tuple[bytes, bytes], ...]:
    fields = []
    for name, value in headers:
        raw_name = name.encode("ascii") if isinstance(name, str) else name
        raw_value = value.encode("latin-1") if isinstance(value, str) else value
        fields.append((raw_name.lower(), raw_value))
    return tuple(fields)


class _Lane:
    """One connection slot of a `Client`: the connection, or the requests waiting for one."""

    __slots__ = ("_backlog", "_client", "_closed", "_connecting", "_live", "conn", "promised")

    def __init__(self, client: Client) -> None:
        self._client = client
        # ConnectionOwner.promised: the client's own, without a call in between.
        self.promised: Callable[[bytes, float], Exchange | None] = client._promised
        self.conn: ClientConnection | None = None
        self._connecting: asyncio.Task[ClientError | None] | None = None
        self._backlog: deque[Exchange] = deque()
        self._closed = False
        # Every connection not yet closed, including retired ones still finishing streams.
        self._live: set[ClientConnection] = set()

    @property
    def outstanding(self) -> int:
        conn = self.conn
        return len(self._backlog) + (conn.outstanding if conn is not None else 0)

    def submit(self, exchange: Exchange) -> None:
        conn = self.conn
        if conn is not None and conn.accepting:
            conn.submit(exchange)
            return
        self._backlog.append(exchange)
        if self._connecting is None:
            self._start_connecting()

    async def connect(self) -> None:
        conn = self.conn
        if conn is not None and conn.accepting:
            return
        task = self._connecting if self._connecting is not None else self._start_connecting()
        error = await asyncio.shield(task)
        if error is not None:
            raise copy.copy(error) from None

    def _start_connecting(self) -> asyncio.Task[ClientError | None]:
        task = asyncio.get_running_loop().create_task(self._connect_and_drain())
        self._connecting = task
        return task

    async def _connect_and_drain(self) -> ClientError | None:
        try:
            conn = await self._client._open(self)
        except ClientError as exc:
            error: ClientError = exc
        except OSError as exc:  # anything open_connection did not foresee
            error = ConnectError(f"cannot connect to {self._client.origin.address}: {exc}")
        except asyncio.CancelledError:
            self._connecting = None
            self._cancel_backlog()
            raise
        else:
            self._connecting = None
            live = self._live
            live.add(conn)
            conn.closed_future.add_done_callback(lambda _: live.discard(conn))
            if self._closed:
                conn.close()
                return None
            self.conn = conn
            backlog, self._backlog = self._backlog, deque()
            for exchange in backlog:
                # Should the new connection retire at once, the rest waits for the next one.
                (conn if conn.accepting else self).submit(exchange)
            return None
        self._connecting = None
        backlog, self._backlog = self._backlog, deque()
        for exchange in backlog:
            exchange.fail(copy.copy(error))
        return error

    # -- ConnectionOwner --------------------------------------------------------------------

    def retire(self, connection: object) -> None:
        if self.conn is connection:
            self.conn = None

    def requeue(self, exchanges: Iterable[Exchange], error: ClientError) -> None:
        again: list[Exchange] = []
        for exchange in exchanges:
            if self._closed:
                exchange.cancel()
            elif exchange.attempts >= MAX_ATTEMPTS:
                exchange.fail(copy.copy(error))
            else:
                again.append(exchange)
        conn = self.conn
        if not again or (conn is not None and conn.accepting):
            for exchange in again:
                self.submit(exchange)
            return
        # Ahead of what was submitted since, in their order: they are older. (A GOAWAY's
        # core refuses new streams before its event is handled: the requests that the
        # answers in the same read sent for are in the backlog already.)
        self._backlog.extendleft(reversed(again))
        if self._connecting is None:
            self._start_connecting()

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> list[asyncio.Future[None]]:
        """Close every connection; returns futures done when they are closed."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        self._cancel_backlog()
        self.conn = None
        waiters = []
        for conn in list(self._live):
            conn.close()
            waiters.append(conn.closed_future)
        return waiters

    def _cancel_backlog(self) -> None:
        backlog, self._backlog = self._backlog, deque()
        for exchange in backlog:
            exchange.cancel()
