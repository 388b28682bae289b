"""The ASGI call's time to answer (`HttpCall._timed_out`), driven by hand over a real
in-process HTTP/2 exchange: no sleeps, the deadlines read from the loop's timers."""

from __future__ import annotations

import asyncio

import h2.connection
import h2.events

from h2books.interfaces.asgi_http import AWAITING_START, BODY_UNREAD, DONE, HttpCall
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.exchange import Exchange
from tests.server.inprocess import GET, POST, RecordingTransport, collecting_h2

TIMEOUT = 10.0


def new_call(exchange: Exchange) -> HttpCall:
    """The call of `exchange` as `AsgiInterface.handle` makes it."""
    call = HttpCall()
    call.exchange = exchange
    call.heads = {}
    call.phase = AWAITING_START
    call.body_state = BODY_UNREAD
    call.timer = call.waiter = None
    return call


def upload_begun() -> tuple[
    H2ServerProtocol, RecordingTransport, list[Exchange], h2.connection.H2Connection, HttpCall
]:
    """A POST whose first 100 octets came, its ASGI call not started yet (in a loop)."""
    protocol, transport, exchanges, client = collecting_h2()
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"a" * 100)
    protocol.data_received(client.data_to_send())
    return protocol, transport, exchanges, client, new_call(exchanges[0])


def test_the_time_to_answer_counts_from_the_last_byte_the_app_read() -> None:
    """A body read in parts: the deadline passing while the app still reads what came
    (the body complete) is no timeout; once it has read all, it gets the full time."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol, transport, exchanges, client, call = upload_begun()
        first = await call.receive()
        assert first["more_body"]

        client.send_data(1, b"b" * 100, end_stream=True)
        protocol.data_received(client.data_to_send())
        assert exchanges[0].body_complete
        call._timed_out(TIMEOUT)  # the deadline passes; the app has not read the rest yet
        assert not call.timed_out
        assert call.timer is not None
        call.timer.cancel()

        rest = await call.receive()
        assert rest["body"] == b"b" * 100 and not rest["more_body"]
        call._timed_out(TIMEOUT)  # the old deadline again: the app read its last byte just now
        assert not call.timed_out
        assert call.timer is not None
        assert TIMEOUT - 1 < call.timer.when() - loop.time() <= TIMEOUT
        call.timer.cancel()

        assert call.body_read_at is not None
        call.body_read_at -= TIMEOUT + 1  # ...and now it had its full time
        call._timed_out(TIMEOUT)
        assert call.timed_out
        await asyncio.sleep(0)  # the answer goes out at the end of this loop iteration
        events = client.receive_data(transport.data)
        heads = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert [dict(e.headers)[b":status"] for e in heads] == [b"503"]

    asyncio.run(main())


def test_an_app_that_stops_reading_is_late_a_period_after_its_last_read() -> None:
    """It read one part and then hangs (on a database, say): the body being complete, a
    whole period without a read is a timeout, as for an app that never answers."""

    async def main() -> None:
        protocol, _transport, _exchanges, client, call = upload_begun()
        await call.receive()
        client.send_data(1, b"b" * 100, end_stream=True)
        protocol.data_received(client.data_to_send())

        call._timed_out(TIMEOUT)  # a period since the call began, but the read was just now
        assert not call.timed_out and call.timer is not None
        call.timer.cancel()
        assert call.body_read_at is not None
        call.body_read_at -= TIMEOUT + 1  # no read for a whole period
        call._timed_out(TIMEOUT)
        assert call.timed_out

    asyncio.run(main())


def test_a_body_read_whole_but_late_gets_its_time_from_the_read() -> None:
    """The app waited on something else while the body came, then read it in one message
    with its time running: the deadline counts from that read."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol, _transport, exchanges, client = collecting_h2()
        client.send_headers(1, POST, end_stream=False)
        client.send_data(1, b"a" * 100, end_stream=True)
        protocol.data_received(client.data_to_send())
        call = new_call(exchanges[0])
        call.timer = loop.call_later(TIMEOUT, lambda: None)  # its time is running (waiting())
        message = await call.receive()
        assert message["body"] == b"a" * 100 and not message["more_body"]
        call.timer.cancel()
        call._timed_out(TIMEOUT)
        assert not call.timed_out and call.timer is not None
        assert TIMEOUT - 1 < call.timer.when() - loop.time() <= TIMEOUT
        call.timer.cancel()

    asyncio.run(main())


def test_an_upload_that_stops_arriving_lets_the_time_run() -> None:
    """The app never reads and its window is shut (or the client stalls): a period with no
    byte of the body, and the time to answer runs; before, it moved on forever."""

    async def main() -> None:
        _protocol, _transport, _exchanges, _client, call = upload_begun()
        call._timed_out(TIMEOUT)  # the body moved since the call began: a period more
        assert not call.timed_out and call.timer is not None
        call.timer.cancel()
        call._timed_out(TIMEOUT)  # no byte in that period
        assert call.timed_out

    asyncio.run(main())


def test_handle_sets_every_field_of_the_call_but_those_start_sets() -> None:
    """`AsgiInterface.handle` makes the HttpCall field by field (no __init__): a field
    added to the class and forgotten there would be unset when the app runs."""
    from h2books.interfaces.asgi import AsgiInterface

    seen: list[HttpCall] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(send.__self__)  # type: ignore[attr-defined]
        await send({"type": "http.response.start", "status": 204})  # type: ignore[operator]
        await send({"type": "http.response.body"})  # type: ignore[operator]

    async def main() -> None:
        interface = AsgiInterface(app, lifespan="off")
        protocol, _transport, _exchanges, client = collecting_h2()
        protocol.state.interface = interface.handle
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())

    asyncio.run(main())
    [call] = seen
    set_by_start = {"head", "trailers"}
    unset = [
        name
        for name in HttpCall.__slots__
        if name != "__dict__" and name not in set_by_start and not hasattr(call, name)
    ]
    assert unset == []
    assert call.phase == DONE


def test_a_whole_answer_wakes_a_receive_waiting_past_the_body() -> None:
    """An app waiting in receive() for the disconnect (a long poll's watcher) gets it once
    the whole answer is out: the end of a response is an end of the call."""

    async def main() -> None:
        protocol, _transport, exchanges, client = collecting_h2()
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        call = new_call(exchanges[0])
        assert (await call.receive())["type"] == "http.request"
        waiting = asyncio.create_task(call.receive())
        await asyncio.sleep(0)
        assert call.waiter is not None
        await call.send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await call.send({"type": "http.response.body", "body": b"ok"})
        assert (await asyncio.wait_for(waiting, 1))["type"] == "http.disconnect"

    asyncio.run(main())
