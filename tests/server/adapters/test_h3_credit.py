"""HTTP/3 request-stream credit: the bounds as arithmetic, and MAX_STREAMS on real QUIC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aioquic.asyncio.client import connect
from aioquic.h3.connection import ErrorCode as H3Error
from aioquic.quic.connection import Limit
from aioquic.quic.events import QuicEvent
from aioquic.quic.packet import QuicFrameType

from h2books.app import create_app
from h2books.server.adapters.h3 import H3ServerProtocol
from h2books.server.adapters.h3_credit import RequestStreamCredit
from h2books.server.config import ServerConfig
from h2books.server.server import Server
from tests.server.h3_support import H3Answer, OracleProtocol, client_configuration, h3_server

AUTHORITY = b"localhost"


def credit(concurrent: int = 4) -> RequestStreamCredit:
    return RequestStreamCredit(
        Limit(QuicFrameType.MAX_STREAMS_BIDI, "max_streams_bidi", 128),
        concurrent,
        unacknowledged=concurrent,
    )


def test_a_done_request_frees_its_slot_before_aioquic_drops_the_stream() -> None:
    limit = credit(4)
    assert limit.value == limit.sent == 4  # announced as initial_max_streams_bidi
    limit.done += 3
    assert limit.value == 7
    limit.value += 1  # aioquic drops one of those three: nothing more
    limit.value += 1
    assert limit.dropped == 2 and limit.value == 7


def test_streams_kept_never_exceed_concurrent_plus_unacknowledged() -> None:
    """A client that never acknowledges: its done requests stay in aioquic, and credit stops
    at 2 x concurrent streams kept, however many it finishes."""
    limit = credit(4)
    limit.done += 100
    assert limit.value == 8  # opened at most 8, none dropped: aioquic keeps at most 8
    limit.value += 1  # one dropped: one more
    assert limit.value == 9


def test_credit_never_falls_below_what_aioquic_gives() -> None:
    """Streams ended without the adapter counting them (a peer's reset before a head)
    still come back as aioquic drops them."""
    limit = credit(4)
    for _ in range(5):
        limit.value += 1
    assert limit.value == 9
    limit.done += 2
    assert limit.value == 9  # never counted twice


def _four_at_once(config: ServerConfig) -> None:
    config.limits.max_concurrent_streams = 4


@asynccontextmanager
async def _four_stream_server(
    tmp_path: Path, protocol: type[OracleProtocol]
) -> AsyncIterator[tuple[Server, OracleProtocol]]:
    """The bookstore over HTTP/3 with --max-concurrent-streams 4, and aioquic's client."""
    async with (
        h3_server(tmp_path, create_app(tmp_path / "books"), _four_at_once) as (server, port, ca),
        connect(
            "localhost", port, configuration=client_configuration(ca), create_protocol=protocol
        ) as client,
    ):
        assert isinstance(client, protocol)
        yield server, client


class CreditWatcher(OracleProtocol):
    """aioquic's client, noting the stream credit it has when the last answer arrives."""

    expected = 0
    credit_at_last_answer: int | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        super().quic_event_received(event)
        done = sum(future.done() for _, future in self.answers.values())
        if self.credit_at_last_answer is None and self.expected and done == self.expected:
            self.credit_at_last_answer = self._quic._remote_max_streams_bidi


def test_max_streams_arrives_with_the_answers(tmp_path: Path) -> None:
    """With 4 requests at once, the credit for more comes in the same datagrams as the 4
    answers (the server is done with them), not a round trip after the client's ACK."""

    async def main() -> None:
        async with _four_stream_server(tmp_path, CreditWatcher) as (_server, client):
            assert isinstance(client, CreditWatcher)
            # --max-concurrent-streams is announced as initial_max_streams_bidi
            assert client._quic._remote_max_streams_bidi == 4
            client.expected = 4
            futures = [client.open(b"GET", b"/book?id=%d" % n, AUTHORITY)[1] for n in range(1, 5)]
            answers = await asyncio.wait_for(asyncio.gather(*futures), 10)
            assert all(a.status == 200 and "title" in json.loads(a.body) for a in answers)
            # Old: 4, until the client's ACK let aioquic drop the streams. Now the credit
            # comes with the answers (aioquic batches MAX_STREAMS, so 7 or 8).
            assert client.credit_at_last_answer is not None
            assert client.credit_at_last_answer >= 7
            # And the next ones go: twelve more, four at a time.
            client.expected = 0
            more = [client.open(b"GET", b"/book?id=%d" % n, AUTHORITY)[1] for n in range(5, 17)]
            answers = await asyncio.wait_for(asyncio.gather(*more), 10)
            assert [a.status for a in answers] == [200] * 12

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_request_stream_gives_its_slot_back_once() -> None:
    limit = credit(4)
    limit.release(0)
    limit.release(0)  # refused, then reset: one stream, one slot
    assert limit.done == 1
    assert limit.released(0) and not limit.released(4)


def test_a_refused_head_with_trailers_counts_once(tmp_path: Path) -> None:
    """A CONNECT head (refused over HTTP/3) followed by trailers on the same stream: both
    reach the adapter in one read. The stream is one request: counted once, or each such
    stream would grant one more slot than it took, and a client could have more than
    --max-concurrent-streams requests in progress."""

    async def main() -> None:
        async with _four_stream_server(tmp_path, OracleProtocol) as (server, client):
            loop = asyncio.get_running_loop()
            refused = []
            for _ in range(4):
                stream_id = client._quic.get_next_available_stream_id()
                client.h3.send_headers(
                    stream_id, [(b":method", b"CONNECT"), (b":authority", AUTHORITY)]
                )
                client.h3.send_headers(stream_id, [(b"x-trailer", b"1")], end_stream=True)
                future: asyncio.Future[H3Answer] = loop.create_future()
                client.answers[stream_id] = (H3Answer(), future)
                refused.append(future)
            client.transmit()
            answers = await asyncio.wait_for(asyncio.gather(*refused), 10)
            assert all(answer.reset_code == H3Error.H3_REQUEST_REJECTED for answer in answers)
            assert server.state is not None
            connections = server.state.connections
            (connection,) = [c for c in connections if isinstance(c, H3ServerProtocol)]
            assert connection._credit.done == 4  # not 8

    asyncio.run(asyncio.wait_for(main(), 60))
