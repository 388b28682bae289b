"""`h2books crawl` against misbehaving servers: each failure is one clear line and exit 1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import h2.errors
import pytest

from h2books.client import crawl as crawl_module
from h2books.client.cli import main_crawl
from tests.client.fakes import (
    BOOK_IDS,
    CloseConnection,
    FakeServer,
    H2Session,
    book_id_of,
    default_answer,
    h1_answer,
    h1_bookstore,
    h1_response,
    h2_answer,
    h2_bookstore,
    serving,
)


def crawl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main_crawl(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("h2books crawl: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


# -- the fakes themselves are sane: a good crawl passes -------------------------------------


@pytest.mark.parametrize("protocol", ["--http1", "--http2"])
def test_a_well_behaved_fake_is_crawled_completely(
    capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    handler = h1_bookstore() if protocol == "--http1" else h2_bookstore()
    with serving(handler) as server:
        code, out, err = crawl(capsys, server.url, protocol, "--concurrency", "7", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == len(BOOK_IDS)
    assert result["requests"] == len(BOOK_IDS) + 1


# -- refused connection and TLS are in test_crawl.py (they need the real server) ------------


def test_refused_connection(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = crawl(capsys, f"http://127.0.0.1:{port}")
    assert_one_line_error(code, err, "refused", f"127.0.0.1:{port}")


# -- closes mid-stream --------------------------------------------------------------------


def test_h1_server_closing_mid_response(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        if book_id_of(target) == "9":
            sock.sendall(h1_response(200, b'{"id": "9", "title": "Bo')[:-5])
            raise CloseConnection
        return False

    with serving(h1_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url, "--http1")
    assert_one_line_error(code, err, "book 9:", "closed the connection", "GET /book?id=9")


def test_h2_server_closing_mid_stream(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if book_id_of(path) == "9":
            session.conn.send_headers(
                stream_id, [(b":status", b"200"), (b"content-length", b"100")]
            )
            session.conn.send_data(stream_id, b'{"id": "9"')
            session.flush()
            raise CloseConnection
        return False

    with serving(h2_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url, "--http2", "--concurrency", "1")
    assert_one_line_error(code, err, "book 9:", "closed the connection", "GET /book?id=9")


# -- garbage ------------------------------------------------------------------------------


def test_h1_server_sending_garbage(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        if book_id_of(target) == "4":
            sock.sendall(b"SPAM SPAM SPAM\r\nwonderful: spam\r\n\r\n")
            return True
        return False

    with serving(h1_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url, "--http1")
    assert_one_line_error(code, err, "book 4:", "malformed HTTP/1.1 response", "GET /book?id=4")


def test_h2_server_sending_garbage(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if book_id_of(path) == "4":
            session.flush()
            # A DATA frame on stream 0: a connection error (PROTOCOL_ERROR) for any client.
            session.sock.sendall(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00spam")
            return True
        return False

    with serving(h2_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url, "--http2", "--concurrency", "1")
    assert_one_line_error(code, err, "book 4:", "broke the HTTP/2 protocol", "PROTOCOL_ERROR")


def test_h2c_crawl_of_an_http1_only_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(sock: socket.socket, server: FakeServer) -> None:
        sock.recv(65536)
        sock.sendall(h1_response(400, b"bad request", b"connection: close"))

    with serving(handler) as server:
        code, _, err = crawl(capsys, server.url, "--http2")
    # Found while connecting or while waiting for the index, depending on timing.
    assert_one_line_error(code, err, "answered the HTTP/2 preface in HTTP/1.x", "--http1")


# -- non-200, non-JSON --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["--http1", "--http2"])
def test_a_500_names_the_book_and_the_status(
    capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    target = b"/book?id=17"
    handler = (
        h1_bookstore(h1_answer(target, 500, b"oops"))
        if protocol == "--http1"
        else h2_bookstore(h2_answer(target, 500, b"oops"))
    )
    with serving(handler) as server:
        code, _, err = crawl(capsys, server.url, protocol)
    assert_one_line_error(code, err, "book 17:", "status 500", "GET /book?id=17")


def test_an_index_that_is_not_200(capsys: pytest.CaptureFixture[str]) -> None:
    handler = h2_bookstore(h2_answer(b"/", 503, b"busy"))
    with serving(handler) as server:
        code, _, err = crawl(capsys, server.url)
    assert_one_line_error(code, err, "index /:", "status 503")


@pytest.mark.parametrize("protocol", ["--http1", "--http2"])
@pytest.mark.parametrize(
    "body",
    [b'{"id": "23", "title": "Bo', b'{"id": "23", "title": "Bo\xff"}'],
    ids=["truncated", "not-utf-8"],
)
def test_a_body_that_is_not_json(
    capsys: pytest.CaptureFixture[str], protocol: str, body: bytes
) -> None:
    target = b"/book?id=23"
    handler = (
        h1_bookstore(h1_answer(target, 200, body))
        if protocol == "--http1"
        else h2_bookstore(h2_answer(target, 200, body))
    )
    with serving(handler) as server:
        code, _, err = crawl(capsys, server.url, protocol)
    assert_one_line_error(code, err, "book 23:", "not JSON", f"{len(body)} bytes")


def test_a_body_shorter_than_its_content_length_on_h2(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if book_id_of(path) == "6":
            # END_STREAM after fewer bytes than announced: a malformed response (§8.1.1).
            session.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"50")])
            session.conn.send_data(stream_id, b"{}", end_stream=True)
            return True
        return False

    with serving(h2_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url)
    assert_one_line_error(code, err, "book 6:", "malformed response", "PROTOCOL_ERROR")


# -- GOAWAY -------------------------------------------------------------------------------


def test_a_server_that_goes_away_every_few_requests_is_crawled_across_connections(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server that ends each connection after 7 requests (nginx's keepalive_requests,
    Hypercorn's keep_alive_max_requests) with GOAWAY NO_ERROR naming the 7th: the
    requests in flight above it were not processed, and go again on a new connection."""
    served: dict[H2Session, int] = {}

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        count = served[session] = served.get(session, 0) + 1
        if count > 7:
            return True  # past the GOAWAY: not processed
        session.answer(stream_id, *default_answer(path))
        if count == 7:
            session.conn.close_connection(last_stream_id=stream_id)
        return True

    with serving(h2_bookstore(behaviour)) as server:
        code, out, err = crawl(capsys, server.url, "--concurrency", "10", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == len(BOOK_IDS)
    assert result["wire"]["connections"] >= (len(BOOK_IDS) + 1) // 7
    assert sum(served.values()) > len(BOOK_IDS) + 1  # some were cut off and sent again


def test_a_server_that_processes_no_book_cuts_off_the_crawl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    indexed: set[H2Session] = set()

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if path == b"/":
            indexed.add(session)
        else:
            # Answer nothing more: the streams in flight were never processed, on this
            # connection (which answered the index, stream 1) and on every one after it.
            last = 1 if session in indexed else 0
            session.conn.close_connection(
                error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=last
            )
            session.flush()
            return True  # reading on (not closing first: a reset could beat the GOAWAY)
        return False

    with serving(h2_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url)
    assert_one_line_error(code, err, "GOAWAY", "NO_ERROR", "before processing", "book ")


def test_goaway_with_an_error_code(capsys: pytest.CaptureFixture[str]) -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if book_id_of(path) == "3":
            session.conn.close_connection(
                error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                last_stream_id=stream_id,
                additional_data=b"calm down",
            )
            session.flush()
            return True
        return False

    with serving(h2_bookstore(behaviour)) as server:
        code, _, err = crawl(capsys, server.url, "--concurrency", "1")
    assert_one_line_error(code, err, "book 3:", "GOAWAY", "ENHANCE_YOUR_CALM", "calm down")


# -- silence ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["--http1", "--http2"])
def test_a_server_that_never_answers_times_out_per_request(
    capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    handler = (
        h1_bookstore(lambda sock, server, target: book_id_of(target) is not None)
        if protocol == "--http1"
        else h2_bookstore(lambda session, sid, path: book_id_of(path) is not None)
    )
    with serving(handler) as server:
        started = time.monotonic()
        code, _, err = crawl(capsys, server.url, protocol, "--request-timeout", "0.3")
        elapsed = time.monotonic() - started
    assert_one_line_error(code, err, "no response", "within 0.3 s", "GET /book?id=")
    assert elapsed < 5


def test_a_server_that_never_answers_hits_the_crawl_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def silent(sock: socket.socket, server: FakeServer) -> None:
        while sock.recv(65536):
            pass

    with serving(silent) as server:
        started = time.monotonic()
        code, _, err = crawl(capsys, server.url, "--timeout", "0.4", "--request-timeout", "0")
        elapsed = time.monotonic() - started
    assert_one_line_error(code, err, "did not finish within 0.4 s", "0 of ? books")
    assert elapsed < 5


def test_json_output_on_failure(capsys: pytest.CaptureFixture[str]) -> None:
    handler = h2_bookstore(h2_answer(b"/book?id=2", 404, b"{}"))
    with serving(handler) as server:
        code, out, err = crawl(capsys, server.url, "--json")
    assert_one_line_error(code, err, "book 2:", "status 404")
    result = json.loads(out)
    assert result["ok"] is False
    assert "book 2: status 404" in result["error"]


def test_book_ids_are_percent_encoded_in_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    requested: list[bytes] = []

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        requested.append(path)
        if path == b"/":
            session.answer(stream_id, 200, json.dumps(["a b/c", "7", "é"]).encode())
        else:
            session.answer(stream_id, 200, b'{"title": "Book"}')
        return True

    with serving(h2_bookstore(behaviour)) as server:
        code, out, err = crawl(capsys, server.url, "--json")
    assert code == 0, err
    assert json.loads(out)["books"] == 3
    assert sorted(requested[1:]) == [b"/book?id=%C3%A9", b"/book?id=7", b"/book?id=a%20b%2Fc"]


def test_an_index_with_an_id_that_is_neither_text_nor_a_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(h2_bookstore(h2_answer(b"/", 200, b'["1", true]'))) as server:
        code, _, err = crawl(capsys, server.url)
    assert_one_line_error(code, err, "index /:", "expected a JSON array of book ids")


# -- with push: the books come pushed with the index, each checked as it arrives ------------


def pushing_index(
    requested: list[bytes],
    answers: dict[bytes, tuple[int, bytes]] | None = None,
    extra: tuple[bytes, ...] = (),
    late: bool = False,
) -> Callable[[socket.socket, FakeServer], None]:
    """An h2c bookstore whose index, to a client that allows pushes, pushes every book
    first, then the `extra` targets (`answers` replaces some status and body), or with
    `late` promises them first and answers them a moment after the index; every path asked
    for is recorded in `requested`."""
    answers = answers or {}

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        requested.append(path)
        if path != b"/" or not session.conn.remote_settings.enable_push:
            return False
        authority = f"127.0.0.1:{session.server.port}".encode()
        pushes: list[tuple[int, bytes]] = []
        for target in [b"/book?id=" + book_id.encode() for book_id in BOOK_IDS] + [*extra]:
            promised = session.conn.get_next_available_stream_id()
            request = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", authority)]
            session.conn.push_stream(stream_id, promised, [*request, (b":path", target)])
            pushes.append((promised, target))
            if not late:
                session.answer(promised, *answers.get(target, default_answer(target)))
        session.answer(stream_id, *default_answer(path))
        if late:
            session.flush()
            time.sleep(0.2)  # the window reaches the books while their pushes are coming
            for promised, target in pushes:
                session.answer(promised, *answers.get(target, default_answer(target)))
        return True

    return h2_bookstore(behaviour)


def test_a_pushed_store_is_crawled_with_the_index_as_its_one_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The books came before the index, and each was checked as it came: when the window
    starts, every one is a verdict already (none left for it to check)."""
    checked_at_start: list[int] = []
    start = crawl_module._Window.start

    def spy(window: crawl_module._Window) -> None:
        assert window._pushed is not None
        checked_at_start.append(len(window._pushed.good))
        start(window)

    monkeypatch.setattr(crawl_module._Window, "start", spy)
    requested: list[bytes] = []
    with serving(pushing_index(requested)) as server:
        code, out, err = crawl(capsys, server.url, "--push", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == result["pushed"] == len(BOOK_IDS)
    assert requested == [b"/"]
    assert checked_at_start == [len(BOOK_IDS)]


def test_books_still_coming_pushed_when_the_window_reaches_them_are_taken_by_its_gets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    requested: list[bytes] = []
    with serving(pushing_index(requested, late=True)) as server:
        code, out, err = crawl(capsys, server.url, "--push", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == result["pushed"] == len(BOOK_IDS)
    assert requested == [b"/"]


def test_pushes_the_crawl_did_not_use_are_not_counted_as_pushed_books(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A book pushed but not listed, or pushed again once taken, is not one of the
    crawl's books: `pushed` counts the books that came pushed, never more than `books`."""
    unlisted = b"/book?id=99"
    requested: list[bytes] = []
    server_behaviour = pushing_index(
        requested, {unlisted: (200, b'{"id": "99"}')}, (unlisted, b"/book?id=1")
    )
    with serving(server_behaviour) as server:
        code, out, err = crawl(capsys, server.url, "--push", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == result["pushed"] == len(BOOK_IDS)
    assert requested == [b"/"]


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        ((500, b"oops"), ("status 500", "GET /book?id=23")),
        ((200, b'{"id": "23", "title": "Bo'), ("not JSON", "25 bytes")),
    ],
    ids=["status", "not-json"],
)
def test_a_bad_pushed_book_names_the_book_as_a_bad_answer_does(
    capsys: pytest.CaptureFixture[str], answer: tuple[int, bytes], fragments: tuple[str, ...]
) -> None:
    """A pushed book that fails the check as it arrives is held, and the crawl's check of
    it, in the index's order, says what is wrong: the same line as for a requested one."""
    requested: list[bytes] = []
    with serving(pushing_index(requested, {b"/book?id=23": answer})) as server:
        code, _, err = crawl(capsys, server.url, "--push")
    assert_one_line_error(code, err, "book 23:", *fragments)
    assert requested == [b"/"]  # taken from the push, not asked for again


def test_pushed_books_past_the_checked_bound_are_held_and_checked_by_the_window(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_PushedBooks` keeps at most MAX_HELD_PUSHES checked books; the rest stay held by
    the client and are checked when the window reaches them: the crawl is whole either way."""
    monkeypatch.setattr(crawl_module, "MAX_HELD_PUSHES", 5)
    requested: list[bytes] = []
    with serving(pushing_index(requested)) as server:
        code, out, err = crawl(capsys, server.url, "--push", "--json", "--timeout", "10")
    assert code == 0, err
    result = json.loads(out)
    assert result["books"] == result["pushed"] == len(BOOK_IDS)
    assert requested == [b"/"]


def test_pushed_books_checks_each_push_as_it_comes() -> None:
    books = crawl_module._PushedBooks()
    assert books.check(b"/book?id=1", 200, b'{"id": "1"}')
    assert not books.check(b"/book?id=2", 404, b"{}")  # not a book: held, for the window
    assert not books.check(b"/book?id=3", 200, b'{"id": ')  # not JSON: held, likewise
    assert books.good == {b"/book?id=1": True}


def test_pushed_books_keeps_at_most_max_held_pushes_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --books (no push_limit) a server may push any number of distinct targets,
    each taken by the listener: `good` must not follow it."""
    monkeypatch.setattr(crawl_module, "MAX_HELD_PUSHES", 2)
    books = crawl_module._PushedBooks()
    verdicts = [books.check(b"/book?id=%d" % i, 200, b"{}") for i in range(3)]
    assert verdicts == [True, True, False]  # the third is left for the client to hold
    assert len(books.good) == 2
