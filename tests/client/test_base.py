"""`ClientConnection`, the part of the h1 and h2 client connections that does not
depend on the protocol: request timeouts (with a fake clock: the watchdog's check
is called with the time) and how a connection failure reaches each request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from h2books.client import ClientError, ProtocolError, RequestTimeout, Response
from h2books.client.base import ConnectionSettings
from h2books.client.connection_h1 import H1ClientProtocol
from h2books.client.connection_h2 import H2ClientProtocol
from h2books.client.exchange import Exchange
from h2books.client.origin import Origin
from tests.protocol.h2.support import DATA, frame, settings_frame
from tests.server.inprocess import RecordingTransport

TIMEOUT = 10.0
_MAX_CONCURRENT_STREAMS = 0x3


class _Owner:
    def requeue(self, exchanges: Iterable[Exchange], error: ClientError) -> None:
        pass

    def retire(self, connection: object) -> None:
        pass


def _settings() -> ConnectionSettings:
    return ConnectionSettings(Origin("http://localhost:1"), (), TIMEOUT, 1 << 20)


def _exchange(target: bytes, started: float) -> Exchange:
    future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    return Exchange(b"GET", target, (), b"", future, started)


def _h2_connection(max_streams: int) -> tuple[H2ClientProtocol, RecordingTransport]:
    """An h2c connection (no TLS, so no ALPN) whose server allows `max_streams` streams."""
    connection = H2ClientProtocol(_Owner(), _settings())
    transport = RecordingTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(settings_frame((_MAX_CONCURRENT_STREAMS, max_streams)))
    return connection, transport


def test_queued_requests_expire_exactly_at_the_timeout() -> None:
    async def main() -> None:
        connection = H1ClientProtocol(_Owner(), _settings())
        # No transport yet: both requests wait in the queue.
        first, second = _exchange(b"/first", 100.0), _exchange(b"/second", 100.5)
        connection.submit(first)
        connection.submit(second)

        assert connection._check_timeouts(100.0 + TIMEOUT - 0.001) is True
        assert not first.future.done() and connection.outstanding == 2

        assert connection._check_timeouts(100.0 + TIMEOUT) is True
        with pytest.raises(RequestTimeout, match=r"GET /first within 10 s"):
            first.future.result()
        assert not second.future.done() and connection.outstanding == 1

        assert connection._check_timeouts(100.5 + TIMEOUT) is False
        assert isinstance(second.future.exception(), RequestTimeout)
        assert connection.outstanding == 0
        connection.close()

    asyncio.run(main())


def test_h2_requests_queued_past_the_timeout_never_take_the_freed_stream() -> None:
    async def main() -> None:
        connection, _ = _h2_connection(max_streams=1)
        open_one = _exchange(b"/open", 0.0)
        expired = _exchange(b"/expired", 0.5)
        fresh = _exchange(b"/fresh", 5.0)
        for exchange in (open_one, expired, fresh):
            connection.submit(exchange)
        assert connection.outstanding == 3

        # The open stream and the first queued request are both past their time: the
        # freed stream goes to the request that still has time, not to the expired one.
        assert connection._check_timeouts(0.5 + TIMEOUT) is True
        assert isinstance(open_one.future.exception(), RequestTimeout)
        assert isinstance(expired.future.exception(), RequestTimeout)
        assert not fresh.future.done()
        assert connection.outstanding == 1
        assert connection._conn.open_stream_count == 1
        connection.close()

    asyncio.run(main())


def test_an_h2_connection_error_names_each_request_it_cuts_off() -> None:
    async def main() -> None:
        connection, transport = _h2_connection(max_streams=100)
        one, two = _exchange(b"/one", 0.0), _exchange(b"/two", 0.0)
        connection.submit(one)
        connection.submit(two)
        # DATA on stream 0 is a connection error (RFC 9113 §6.1).
        connection.data_received(frame(DATA, 0, 0, b"x"))

        for exchange, target in ((one, "/one"), (two, "/two")):
            error = exchange.future.exception()
            assert isinstance(error, ProtocolError)
            assert "broke the HTTP/2 protocol" in str(error)
            assert str(error).endswith(f"(while waiting for GET {target})")
        assert connection.error is not None and "while waiting" not in str(connection.error)
        assert transport.closed

    asyncio.run(main())


def test_an_h1_connection_error_reaches_its_one_request_as_it_is() -> None:
    async def main() -> None:
        connection = H1ClientProtocol(_Owner(), _settings())
        transport = RecordingTransport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        current = _exchange(b"/book", 0.0)
        connection.submit(current)
        connection.data_received(b"HTTP/1.1 abc Broken\r\n\r\n")

        error = current.future.exception()
        assert isinstance(error, ProtocolError)
        assert str(error).startswith("malformed HTTP/1.1 response from localhost:1 to GET /book")
        assert "while waiting" not in str(error)
        assert transport.closed

    asyncio.run(main())
