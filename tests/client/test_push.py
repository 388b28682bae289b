"""Our client and server push, against an `h2` library server over a real (h2c) socket:
pushes are taken instead of requests, a push the server then resets becomes a request,
and promises for another authority are declined."""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import pytest

from h2books.client import Client, Response
from h2books.client import client as client_module
from h2books.client import exchange as exchange_module
from tests.client.fakes import H2LoopServer


def _promise(
    conn: h2.connection.H2Connection,
    stream_id: int,
    target: bytes,
    authority: bytes,
    pushed: int | None = None,
) -> int:
    """A PUSH_PROMISE of a GET of `target` on `stream_id`: the promised stream's id."""
    if pushed is None:
        pushed = conn.get_next_available_stream_id()
    fields = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", target),
    ]
    conn.push_stream(stream_id, pushed, fields)
    return pushed


class PushingServer(H2LoopServer):
    """On `/` (when the client allows pushes): promises `/kept` (answered), `/dropped` (then reset) and `/foreign` (for
    another authority, answered); answers any other request with its path."""

    def __init__(self) -> None:
        super().__init__()
        self.requested: list[bytes] = []
        self.late = 0  # the stream of /late, promised by /late-index

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                self.answer(event.stream_id, headers[b":path"], headers[b":authority"])
        assert self.transport is not None
        self.transport.write(self.conn.data_to_send())

    def answer(self, stream_id: int, path: bytes, authority: bytes) -> None:
        conn = self.conn
        self.requested.append(path)

        def promise(target: bytes, pushed: int | None = None, where: bytes = authority) -> int:
            return _promise(conn, stream_id, target, where, pushed)

        if path == b"/" and conn.remote_settings.enable_push:
            promise(b"/kept", 2)
            promise(b"/dropped", 4)
            promise(b"/foreign", 6, b"elsewhere.example")
            for pushed in (2, 6):
                conn.send_headers(pushed, [(b":status", b"200")])
                conn.send_data(pushed, b"pushed", end_stream=True)
            conn.reset_stream(4, h2.errors.ErrorCodes.CANCEL)
        if path == b"/second" and conn.remote_settings.enable_push:
            try:
                pushed = promise(b"/other")
                conn.send_headers(pushed, [(b":status", b"200")])
                conn.send_data(pushed, b"pushed", end_stream=True)
            except h2.exceptions.StreamClosedError:
                pass  # declined already
        if path == b"/late-index" and conn.remote_settings.enable_push:
            # /late is promised here; its response comes with /finish, or a reset with /reset.
            self.late = promise(b"/late")
        if path == b"/index-then-goaway" and conn.remote_settings.enable_push:
            # A push promised, then GOAWAY naming the index's stream as the last one
            # processed: the push (an even id above it) still comes (RFC 9113 §6.8).
            pushed = promise(b"/after-goaway")
            # Written by hand: h2 sends nothing more after its own GOAWAY, a server may.
            assert self.transport is not None
            self.transport.write(conn.data_to_send())
            self.transport.write(
                b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + struct.pack(">II", stream_id, 0)
            )
            conn.send_headers(pushed, [(b":status", b"200")])
            conn.send_data(pushed, b"pushed after goaway", end_stream=True)
        if path == b"/missing-index" and conn.remote_settings.enable_push:
            missing = promise(b"/missing")
            conn.send_headers(missing, [(b":status", b"404")])
            conn.send_data(missing, b"gone", end_stream=True)
        if path == b"/finish":
            conn.send_headers(self.late, [(b":status", b"200")])
            conn.send_data(self.late, b"late push", end_stream=True)
        if path == b"/reset":
            conn.reset_stream(self.late, h2.errors.ErrorCodes.CANCEL)
        if path == b"/hints":
            for _ in range(40):  # a server may send any number of 1xx
                conn.send_headers(stream_id, [(b":status", b"103"), (b"link", b"</a>")])
        conn.send_headers(stream_id, [(b":status", b"200")])
        conn.send_data(stream_id, b"requested " + path, end_stream=True)


async def run(
    check: Callable[[Client, PushingServer], object],
    push: bool = True,
    server: PushingServer | None = None,
    on_push: Callable[[bytes, int, bytes], bool] | None = None,
) -> None:
    pushing = server if server is not None else PushingServer()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: pushing, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with Client(f"http://127.0.0.1:{port}", push=push, on_push=on_push) as client:
            result = check(client, pushing)
            if asyncio.iscoroutine(result):
                await result
    finally:
        listener.close()


def test_pushes_are_taken_a_reset_one_is_requested_a_foreign_one_declined() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        index = await client.get("/")
        assert index.text == "requested /"
        kept, dropped, foreign = await asyncio.gather(
            client.get("/kept"), client.get("/dropped"), client.get("/foreign")
        )
        assert kept.pushed and kept.content == b"pushed"
        assert not dropped.pushed and dropped.text == "requested /dropped"
        assert not foreign.pushed and foreign.text == "requested /foreign"
        assert sorted(server.requested) == [b"/", b"/dropped", b"/foreign"]
        assert (client.pushes_received, client.pushes_taken) == (2, 1)

    asyncio.run(run(check))


def test_send_hands_a_pushed_response_to_the_callback() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")
        answer: asyncio.Future[tuple[object, object]] = asyncio.get_running_loop().create_future()
        client.send("GET", "/kept", lambda response, error: answer.set_result((response, error)))
        response, error = await answer
        assert error is None and response is not None
        assert response.pushed and response.content == b"pushed"  # type: ignore[attr-defined]
        assert server.requested == [b"/"]
        assert client.pushes_taken == 1

    asyncio.run(run(check))


def _collect(answers: list[tuple[object, object, bool]]) -> Callable[[object, object], None]:
    """A `send` callback that records its answer and whether a read of the connection
    (`data_received`) is calling it."""

    def callback(response: object, error: object) -> None:
        in_read = any(frame.function == "data_received" for frame in inspect.stack())
        answers.append((response, error, in_read))

    return callback


def test_a_push_taken_before_it_arrives_is_answered_from_the_read_that_completes_it() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        answers: list[tuple[object, object, bool]] = []
        client.send("GET", "/late", _collect(answers))
        await asyncio.sleep(0)
        assert answers == []  # taken, its response not there yet
        await client.get("/finish")
        [(response, error, in_read)] = answers
        assert error is None and isinstance(response, Response)
        assert response.pushed and response.content == b"late push"
        assert in_read  # no loop callback in between
        assert server.requested == [b"/late-index", b"/finish"]
        assert (client.pushes_taken, client._held_push_bytes) == (1, 0)

    asyncio.run(run(check))


def test_a_push_arrived_before_it_is_taken_is_answered_after_send_returns() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")
        assert client._held_push_bytes == len(b"pushed")  # /kept is held
        answers: list[tuple[object, object, bool]] = []
        client.send("GET", "/kept", _collect(answers))
        assert answers == []  # never from inside send (a callback may send again)
        await asyncio.sleep(0)
        [(response, error, _)] = answers
        assert isinstance(response, Response) and response.pushed and error is None
        assert client._held_push_bytes == 0

    asyncio.run(run(check))


def test_a_push_promised_before_a_goaway_still_arrives() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/index-then-goaway")
        pushed = await client.get("/after-goaway")
        assert pushed.pushed and pushed.content == b"pushed after goaway"
        assert server.requested == [b"/index-then-goaway"]

    asyncio.run(run(check))


def test_a_taken_push_that_the_server_resets_becomes_a_request() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        answers: list[tuple[object, object, bool]] = []
        client.send("GET", "/late", _collect(answers))
        future = client.submit("GET", "/late")  # not pushed twice: a request at once
        await client.get("/reset")
        assert (await future).text == "requested /late"
        for _ in range(100):
            if answers:
                break
            await asyncio.sleep(0.01)
        [(response, error, _)] = answers
        assert error is None and isinstance(response, Response)
        assert not response.pushed and response.text == "requested /late"
        assert server.requested.count(b"/late") == 2
        assert (client.pushes_received, client.pushes_taken) == (1, 0)

    asyncio.run(run(check))


def test_a_push_reset_before_anyone_takes_it_is_forgotten() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        await client.get("/reset")
        assert not client._pushes  # a later GET of /late is a request like any other
        assert (await client.get("/late")).text == "requested /late"
        assert client.pushes_taken == 0

    asyncio.run(run(check))


def test_a_taken_push_still_coming_when_the_client_closes_is_cancelled() -> None:
    answers: list[tuple[object, object, bool]] = []
    futures: list[asyncio.Future[Response]] = []

    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        client.send("GET", "/late", _collect(answers))
        await client.aclose()

    asyncio.run(run(check))
    [(response, error, _)] = answers
    assert response is None and isinstance(error, asyncio.CancelledError)

    async def check_future(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        futures.append(client.submit("GET", "/late"))
        await client.aclose()

    asyncio.run(run(check_future))
    assert futures[0].cancelled()


def test_without_push_the_client_announces_it_and_requests_everything() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        assert (await client.get("/")).text == "requested /"
        assert not server.conn.remote_settings.enable_push  # we announced ENABLE_PUSH=0
        assert not (await client.get("/kept")).pushed
        assert client.pushes_received == 0

    asyncio.run(run(check, push=False))


def test_held_pushes_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server decides what it pushes; the client decides how much it keeps.
    monkeypatch.setattr(client_module, "MAX_HELD_PUSH_BYTES", 1)

    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")  # /kept (6 bytes) is now held: the budget is spent
        await client.get("/second")  # its promise of /other is declined
        other = await client.get("/other")
        assert not other.pushed and other.text == "requested /other"
        kept = await client.get("/kept")  # taking a held push gives its bytes back
        assert kept.pushed and client._held_push_bytes == 0

    asyncio.run(run(check))


def test_interim_responses_kept_are_bounded() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        answer = await client.get("/hints")
        assert answer.text == "requested /hints"
        assert len(answer.informational) == exchange_module.MAX_INFORMATIONAL
        assert answer.informational[0] == (103, [(b"link", b"</a>")])

    asyncio.run(run(check, push=False))


class HoldingPushServer(PushingServer):
    """Allows 2 requests at once (SETTINGS_MAX_CONCURRENT_STREAMS) and, on `/`, promises 2
    pushes whose responses it starts and never ends; answers any other request at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
        assert self.transport is not None
        self.transport.write(self.conn.data_to_send())

    def answer(self, stream_id: int, path: bytes, authority: bytes) -> None:
        conn = self.conn
        self.requested.append(path)
        if path == b"/":
            for pushed, target in ((2, b"/held-1"), (4, b"/held-2")):
                _promise(conn, stream_id, target, authority, pushed)
                conn.send_headers(pushed, [(b":status", b"200")])
                conn.send_data(pushed, b"never ends")
        conn.send_headers(stream_id, [(b":status", b"200")])
        conn.send_data(stream_id, b"requested " + path, end_stream=True)


def test_live_pushes_take_none_of_the_servers_request_slots() -> None:
    """RFC 9113 §5.1.2: the server's SETTINGS_MAX_CONCURRENT_STREAMS (2) limits our requests
    only; with its 2 pushes still live, 2 requests at once go out and are answered."""

    async def check(client: Client, server: PushingServer) -> None:
        assert (await client.get("/")).text == "requested /"
        both = asyncio.gather(client.get("/a"), client.get("/b"))
        a, b = await asyncio.wait_for(both, 5)
        assert (a.text, b.text) == ("requested /a", "requested /b")
        assert server.conn.open_outbound_streams == 2  # the pushes are live still
        assert client.pushes_received == 2

    asyncio.run(run(check, server=HoldingPushServer()))


def test_take_pushed_hands_over_an_arrived_push_once_and_leaves_one_still_coming() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")
        kept = client.take_pushed("/kept")
        assert kept is not None and kept.pushed and kept.content == b"pushed"
        assert client.take_pushed("/kept") is None  # taken once
        assert client.take_pushed("/never-promised") is None
        assert (client.pushes_taken, client._held_push_bytes) == (1, 0)
        await client.get("/late-index")
        assert client.take_pushed("/late") is None  # promised, still coming: kept for a GET
        late = client.get("/late")
        await client.get("/finish")
        response = await late
        assert response.pushed and response.content == b"late push"
        assert server.requested == [b"/", b"/late-index", b"/finish"]

    asyncio.run(run(check))


def test_take_pushed_body_hands_over_status_and_body_once_without_a_response() -> None:
    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")
        assert client._held_push_bytes == len(b"pushed")
        assert client.take_pushed_body("/kept") == (200, b"pushed")
        assert client.take_pushed_body("/kept") is None  # taken once
        assert client.take_pushed("/kept") is None  # by either way
        assert (client.pushes_taken, client._held_push_bytes) == (1, 0)
        await client.get("/late-index")
        assert client.take_pushed_body("/late") is None  # still coming: kept for a GET
        late = client.get("/late")
        await client.get("/finish")
        assert (await late).content == b"late push"

    asyncio.run(run(check))


def test_a_held_push_starts_as_an_exchange_of_a_get_would() -> None:
    """A held push's fields are those of an exchange of a GET, but for the two that make
    it a push."""
    client = Client("https://localhost:1")
    held = client_module._HeldPush(client, b"/book?id=1", 1.5)
    plain = exchange_module.Exchange(b"GET", b"/book?id=1", (), b"", None, 1.5)
    differ = {"attempts": exchange_module.MAX_ATTEMPTS, "pushed": True}
    for slot in exchange_module.Exchange.__slots__:
        assert getattr(held, slot) == differ.get(slot, getattr(plain, slot)), slot
    assert held.arrived is None


# -- on_push: a listener sees each push that arrives before a GET took it -------------------


def _listener(
    seen: list[tuple[bytes, int, bytes]], verdict: bool | Exception
) -> Callable[[bytes, int, bytes], bool]:
    def on_push(target: bytes, status: int, body: bytes) -> bool:
        seen.append((target, status, body))
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    return on_push


def test_a_listener_that_takes_an_arrived_push_leaves_nothing_held() -> None:
    seen: list[tuple[bytes, int, bytes]] = []

    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/")
        assert seen == [(b"/kept", 200, b"pushed")]  # /dropped was reset, /foreign declined
        assert (client.pushes_received, client.pushes_taken) == (2, 1)
        assert (client._held_push_bytes, client._pushes) == (0, {})
        assert client.take_pushed("/kept") is None  # taken by the listener
        again = await client.get("/kept")  # so a GET of it is a request
        assert not again.pushed and again.text == "requested /kept"

    asyncio.run(run(check, on_push=_listener(seen, True)))


@pytest.mark.parametrize("verdict", [False, ValueError("a listener's bug")], ids=["no", "raises"])
def test_a_push_the_listener_does_not_take_is_held_for_a_get(verdict: bool | Exception) -> None:
    seen: list[tuple[bytes, int, bytes]] = []
    failures: list[dict[str, object]] = []

    async def check(client: Client, server: PushingServer) -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: failures.append(context)
        )
        await client.get("/")
        assert seen == [(b"/kept", 200, b"pushed")]
        assert client._held_push_bytes == len(b"pushed")
        kept = await client.get("/kept")
        assert kept.pushed and kept.content == b"pushed"
        assert server.requested == [b"/"]

    asyncio.run(run(check, on_push=_listener(seen, verdict)))
    # A failing listener goes where a failing response callback goes: the loop's handler.
    assert [(c["message"], c["exception"]) for c in failures] == (
        [] if verdict is False else [("on_push of GET /kept failed: it is held", verdict)]
    )


def test_the_listener_sees_a_pushed_error_status_as_it_came() -> None:
    seen: list[tuple[bytes, int, bytes]] = []

    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/missing-index")
        assert seen == [(b"/missing", 404, b"gone")]
        assert client.take_pushed_body("/missing") == (404, b"gone")  # held: not taken

    asyncio.run(run(check, on_push=_listener(seen, False)))


@pytest.mark.parametrize("takes", [True, False], ids=["takes", "declines"])
def test_a_get_of_its_own_target_from_inside_the_listener_is_a_request(takes: bool) -> None:
    """The push being decided on is out of the held pushes while the listener runs: a GET
    of the same target from there goes out as a request and is answered, and the push is
    taken or held as the listener says (it once took its own push and hung)."""

    async def check(client: Client, server: PushingServer) -> None:
        answer: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()

        def on_push(target: bytes, status: int, body: bytes) -> bool:
            client.send("GET", target, lambda response, _: answer.set_result(response))
            return takes

        client._on_push = on_push
        await client.get("/")
        response = await asyncio.wait_for(answer, 5)
        assert response is not None
        assert not response.pushed and response.text == "requested /kept"
        assert client.pushes_taken == (1 if takes else 0)
        held = client.take_pushed_body("/kept")
        assert held == (None if takes else (200, b"pushed"))

    asyncio.run(run(check, on_push=_listener([], False)))


def test_a_push_taken_before_it_arrives_never_reaches_the_listener() -> None:
    seen: list[tuple[bytes, int, bytes]] = []

    async def check(client: Client, server: PushingServer) -> None:
        await client.get("/late-index")
        answers: list[tuple[object, object, bool]] = []
        client.send("GET", "/late", _collect(answers))  # taken while still coming
        await asyncio.sleep(0)
        await client.get("/finish")
        [(response, error, _)] = answers
        assert error is None and isinstance(response, Response)
        assert response.pushed and response.content == b"late push"
        assert seen == []
        assert server.requested == [b"/late-index", b"/finish"]

    asyncio.run(run(check, on_push=_listener(seen, True)))
