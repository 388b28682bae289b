"""The protocol-neutral exchange, driven through both adapters in process.

An interface written against `Exchange` alone (as ASGI and WSGI will be) must get the
same behaviour over HTTP/1.1 and HTTP/2: 1xx responses before the final one, bodies in
parts with backpressure, trailers where the protocol carries them, request bodies read
chunk by chunk with flow-control credit given back as they are read, and `gone` once the
peer resets the stream or the connection ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import h11

from h2books.http import Response
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.exchange import Exchange
from tests.server.inprocess import (
    GET,
    POST,
    RecordingTransport,
    answer_one_h2_request,
    connect_interface,
    h1_request,
    h2_client,
    parts,
    pump,
    task_interface,
)


def test_h2_early_hint_body_in_parts_and_trailers() -> None:
    async def handler(exchange: Exchange) -> None:
        exchange.inform(103, [(b"link", b"</style.css>; rel=preload")])
        exchange.start(Response(200, [(b"content-type", b"text/plain")], stream=parts()))
        for part in (b"one ", b"two"):
            assert await exchange.wait_writable()
            exchange.write(part)
        exchange.end([(b"grpc-status", b"0")])

    events = answer_one_h2_request(handler)
    kinds = [type(event).__name__ for event in events]
    informational = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
    assert informational and dict(informational[0].headers)[b":status"] == b"103"
    assert kinds.index("InformationalResponseReceived") < kinds.index("ResponseReceived")
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert body == b"one two"
    trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert trailers and dict(trailers[0].headers) == {b"grpc-status": b"0"}
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_h2_request_body_is_read_in_chunks_with_credit_given_as_it_is_read() -> None:
    received: list[bytes] = []
    gates: list[asyncio.Event] = []

    async def handler(exchange: Exchange) -> None:
        await gates[0].wait()  # the app reads nothing until told to
        while chunk := await exchange.receive():
            received.append(chunk)
        assert exchange.body_complete and exchange.trailers is None
        exchange.respond(Response(200, [], b"%d" % sum(map(len, received))))

    async def main() -> tuple[int, list[h2.events.Event]]:
        gate = asyncio.Event()
        gates.append(gate)
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        await pump(protocol, transport, client)
        client.send_headers(1, POST)
        for _ in range(4):
            client.send_data(1, b"x" * 15000)
        protocol.data_received(client.data_to_send())
        await pump(protocol, transport, client)
        window_before_reading = client.local_flow_control_window(1)
        gate.set()
        await pump(protocol, transport, client)
        client.send_data(1, b"y" * 1000, end_stream=True)
        protocol.data_received(client.data_to_send())
        events = await pump(protocol, transport, client)
        return window_before_reading, events

    window_before_reading, events = asyncio.run(main())
    assert b"".join(received) == b"x" * 60000 + b"y" * 1000
    # The server's stream window is not reopened until the app reads.
    assert window_before_reading == (1 << 20) - 60000
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert body == b"61000"


def test_h2_reset_by_the_peer_makes_the_exchange_gone() -> None:
    seen: dict[str, bool] = {}

    async def handler(exchange: Exchange) -> None:
        exchange.start(Response(200, [], stream=parts()))
        try:
            while await exchange.wait_writable():
                exchange.write(b"x" * 300_000)  # more than the peer's window allows
        finally:
            seen["gone"] = exchange.gone

    async def main() -> None:
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        await pump(protocol, transport, client)
        client.reset_stream(1)
        protocol.data_received(client.data_to_send())
        await pump(protocol, transport, client)
        assert protocol.is_idle()

    asyncio.run(main())
    assert seen == {"gone": True}


def test_h2_reset_by_the_app_sends_rst_stream() -> None:
    async def handler(exchange: Exchange) -> None:
        exchange.start(Response(200, [], stream=parts()))
        exchange.reset()

    events = answer_one_h2_request(handler)
    assert any(isinstance(e, h2.events.StreamReset) for e in events)


def h1_events(data: bytes) -> list[Any]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    events: list[Any] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return events
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            return events


def test_h1_early_hint_then_a_chunked_body() -> None:
    async def handler(exchange: Exchange) -> None:
        exchange.inform(103, [(b"link", b"</style.css>; rel=preload")])
        exchange.start(Response(200, [], stream=parts()))
        for part in (b"one ", b"two"):
            assert await exchange.wait_writable()
            exchange.write(part)
        exchange.end([(b"grpc-status", b"0")])  # HTTP/1.1 ends the body without them

    async def main() -> bytes:
        transport = RecordingTransport()
        connect_interface(H1ServerProtocol, task_interface(handler), transport).data_received(
            h1_request("/")
        )
        for _ in range(20):
            await asyncio.sleep(0)
        return transport.data

    events = h1_events(asyncio.run(main()))
    assert [type(e).__name__ for e in events] == [
        "InformationalResponse",
        "Response",
        "Data",
        "Data",
        "EndOfMessage",
    ]
    assert events[0].status_code == 103
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"one two"


def test_h1_a_later_exchange_waits_for_its_turn() -> None:
    async def main() -> bytes:
        second_waiting = asyncio.Event()
        done = asyncio.Event()

        async def handler(exchange: Exchange) -> None:
            exchange.start(Response(200, [], stream=parts()))
            if exchange.target == b"/first":
                await second_waiting.wait()  # the second is parked in wait_writable by now
            else:
                second_waiting.set()
            assert await exchange.wait_writable()
            exchange.write(exchange.target)
            exchange.end()
            if exchange.target == b"/second":
                done.set()

        transport = RecordingTransport()
        connect_interface(H1ServerProtocol, task_interface(handler), transport).data_received(
            h1_request("/first") + h1_request("/second")
        )
        await asyncio.wait_for(done.wait(), 5)
        return transport.data

    data = asyncio.run(main())
    assert data.index(b"/first") < data.index(b"/second")
    assert data.count(b"HTTP/1.1 200") == 2


def test_h1_parts_written_before_their_turn_wait_for_it() -> None:
    """An exchange may write and end without waiting (ASGI's last message needs no
    wait): over HTTP/1.1 its parts are kept until the answers before it are done."""

    async def main() -> bytes:
        second_done = asyncio.Event()
        first_done = asyncio.Event()

        async def handler(exchange: Exchange) -> None:
            exchange.start(Response(200, [], stream=parts()))
            if exchange.target == b"/first":
                await second_done.wait()
                assert await exchange.wait_writable()
                exchange.write(b"first-body")
                exchange.end()
                first_done.set()
            else:
                exchange.write(b"second-body")  # not its turn: kept
                exchange.end()
                second_done.set()

        transport = RecordingTransport()
        connect_interface(H1ServerProtocol, task_interface(handler), transport).data_received(
            h1_request("/first") + h1_request("/second")
        )
        await asyncio.wait_for(first_done.wait(), 5)
        for _ in range(3):
            await asyncio.sleep(0)  # the scheduled flush
        return transport.data

    data = asyncio.run(main())
    first, second = data.split(b"HTTP/1.1 200")[1:]
    assert b"first-body" in first and b"second-body" not in first
    assert b"second-body" in second
    assert data.endswith(b"0\r\n\r\n")  # the second chunked body ended too


def test_h1_connection_lost_makes_every_exchange_gone() -> None:
    exchanges: list[Exchange] = []

    async def handler(exchange: Exchange) -> None:
        exchanges.append(exchange)
        await asyncio.sleep(10)

    async def main() -> None:
        transport = RecordingTransport()
        protocol = connect_interface(H1ServerProtocol, task_interface(handler), transport)
        protocol.data_received(h1_request("/a") + h1_request("/b"))
        await asyncio.sleep(0)
        protocol.connection_lost(None)
        await asyncio.sleep(0)
        assert all(e.gone for e in exchanges)
        assert all(e.task is not None and e.task.cancelled() for e in exchanges)
        assert not await exchanges[0].wait_writable()

    asyncio.run(main())
    assert len(exchanges) == 2
