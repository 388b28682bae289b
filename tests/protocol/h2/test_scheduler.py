"""The outbound scheduler's zero-copy output: big DATA payloads are handed out as
views of the caller's bytes, small frames are coalesced, and the joined pieces are
exactly what `data_to_send` would give."""

from __future__ import annotations

import hpack

from h2books.protocol.h2.scheduler import ZERO_COPY_MIN
from tests.protocol.h2.support import (
    DATA,
    END_STREAM,
    HEADERS,
    PING,
    RawClient,
    frame,
    parse,
    settings_frame,
    window_update,
)

INITIAL_WINDOW_SIZE = 0x4
BIG = (1 << 31) - 1


def big_window_client() -> RawClient:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, BIG)))
    c.send(window_update(0, BIG - 65535))
    c.take()
    return c


def test_big_body_goes_out_as_views_of_the_callers_bytes() -> None:
    c = big_window_client()
    c.send(c.headers(1))
    body = bytes(range(256)) * 256  # 64 KiB: four full frames
    c.conn.send_response(1, 200, [], body)
    pieces = c.conn.buffers_to_send()
    views = [p for p in pieces if isinstance(p, memoryview)]
    assert len(views) == 4
    assert all(v.obj is body and len(v) == 16384 for v in views)
    frames = parse(b"".join(pieces))
    assert [f.type for f in frames] == [HEADERS, DATA, DATA, DATA, DATA]
    assert b"".join(f.payload for f in frames[1:]) == body
    assert frames[-1].flags & END_STREAM
    assert c.conn.buffers_to_send() == [] and c.conn.data_to_send() == b""


def test_queued_output_size_counts_the_buffer_and_the_views_until_taken() -> None:
    c = big_window_client()
    c.send(c.headers(1))
    assert c.conn.queued_output_size == 0
    body = bytes(range(256)) * 256  # 64 KiB: views, after a copied HEADERS frame
    c.conn.send_response(1, 200, [], body)
    c.conn.ping(b"12345678")  # copied into the buffer after the views
    queued = c.conn.queued_output_size
    pieces = c.conn.buffers_to_send()
    assert queued == sum(len(piece) for piece in pieces) > len(body)
    assert c.conn.queued_output_size == 0
    c.conn.ping(b"87654321")
    assert c.conn.queued_output_size == len(c.conn.data_to_send()) == 17


def test_full_frames_of_a_big_body_share_one_header_and_a_short_tail_is_copied() -> None:
    c = big_window_client()
    c.send(c.headers(1, end_stream=False))
    c.conn.send_headers(1, [(b":status", b"200")])
    body = bytes(range(256)) * 192 + b"t" * 100  # three full frames, then 100 octets
    c.conn.send_data(1, body, end_stream=True)
    pieces = c.conn.buffers_to_send()
    views = [p for p in pieces if isinstance(p, memoryview)]
    assert len(views) == 3 and all(v.obj is body and len(v) == 16384 for v in views)
    headers = [pieces[i - 1] for i, p in enumerate(pieces) if isinstance(p, memoryview)]
    assert headers[0] is headers[1] is headers[2]
    frames = parse(b"".join(pieces))
    data = [f for f in frames if f.type == DATA]
    assert [len(f.payload) for f in data] == [16384, 16384, 16384, 100]
    assert b"".join(f.payload for f in data) == body
    assert [f.flags & END_STREAM for f in data] == [0, 0, 0, END_STREAM]


def test_small_frames_are_coalesced_into_one_piece() -> None:
    c = big_window_client()
    for sid in (1, 3, 5):
        c.send(c.headers(sid))
        c.conn.send_response(sid, 200, [], b"x" * (ZERO_COPY_MIN - 1))
    c.send(frame(PING, 0, 0, b"\0" * 8))
    pieces = c.conn.buffers_to_send()
    assert len(pieces) == 1 and isinstance(pieces[0], bytes)
    assert len([f for f in parse(pieces[0]) if f.type == DATA]) == 3


def test_payload_at_the_threshold_is_not_copied() -> None:
    c = big_window_client()
    c.send(c.headers(1))
    body = b"y" * ZERO_COPY_MIN
    c.conn.send_response(1, 200, [], body)
    pieces = c.conn.buffers_to_send()
    assert [type(p) for p in pieces] == [bytes, bytes]  # HEADERS + DATA header, then the body
    assert pieces[1] is body


def test_a_mutable_buffer_is_copied_so_later_changes_do_not_leak_out() -> None:
    c = big_window_client()
    c.send(c.headers(1, end_stream=False))
    c.conn.send_headers(1, [(b":status", b"200")])
    buffer = bytearray(b"a" * 20000)
    c.conn.send_data(1, buffer)  # type: ignore[arg-type]
    buffer[:] = b"b" * 20000
    frames = parse(c.conn.data_to_send())
    assert b"".join(f.payload for f in frames if f.type == DATA) == b"a" * 20000


def test_queued_views_go_out_in_order_after_the_window_opens() -> None:
    c = RawClient(settings=settings_frame((INITIAL_WINDOW_SIZE, 0)))
    c.send(c.headers(1))
    body = b"q" * 40000
    c.conn.send_response(1, 200, [], body)
    c.take()
    c.send(window_update(1, 40000))
    pieces = c.conn.buffers_to_send()
    assert any(isinstance(p, memoryview) and p.obj is body for p in pieces)
    frames = parse(b"".join(pieces))
    data = [f for f in frames if f.type == DATA]
    assert b"".join(f.payload for f in data) == body
    assert data[-1].flags & END_STREAM


def test_control_frames_after_a_view_keep_their_order() -> None:
    c = big_window_client()
    c.send(c.headers(1))
    c.conn.send_response(1, 200, [], b"z" * 16384)
    c.send(frame(PING, 0, 0, b"12345678"))
    frames = parse(c.conn.data_to_send())
    assert [f.type for f in frames] == [HEADERS, DATA, PING]


# -- header blocks sent again from a cache --------------------------------------------------


class Cached:
    """A BlockCache, as a precomputed native Response is one."""

    hpack_block = None


def _answer(
    c: RawClient,
    sid: int,
    status: int,
    fields: list[tuple[bytes, bytes]],
    cache: Cached,
    decoder: hpack.Decoder,
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    c.send(c.headers(sid))
    c.conn.send_response(sid, status, fields, b"x", cache)
    head = next(f for f in c.take() if f.type == HEADERS)
    return head.payload, [(bytes(n), bytes(v)) for n, v in decoder.decode(head.payload, raw=True)]


def test_a_cached_block_is_sent_again_while_the_table_holds_what_it_was_encoded_against() -> None:
    c, decoder, cache = RawClient(), hpack.Decoder(), Cached()
    fields = [(b"content-type", b"application/json"), (b"server", b"h2books")]
    expected = [(b":status", b"200"), *fields]
    _, decoded = _answer(c, 1, 200, fields, cache, decoder)
    assert decoded == expected and cache.hpack_block is None  # it inserted: not kept
    second, decoded = _answer(c, 3, 200, fields, cache, decoder)
    kept = cache.hpack_block
    assert decoded == expected and kept is not None and kept[3] == second
    third, decoded = _answer(c, 5, 200, fields, cache, decoder)
    assert decoded == expected and third == second
    assert cache.hpack_block is kept  # sent from the cache, not encoded again


def test_another_connection_uses_the_cached_block_only_if_its_table_holds_the_same() -> None:
    fields = [(b"content-type", b"application/json"), (b"server", b"h2books")]
    expected = [(b":status", b"200"), *fields]
    cache = Cached()
    a, a_decoder = RawClient(), hpack.Decoder()
    _answer(a, 1, 200, fields, cache, a_decoder)
    _answer(a, 3, 200, fields, cache, a_decoder)
    kept = cache.hpack_block
    assert kept is not None
    # Same history, so the same table: the block is shared.
    b, b_decoder = RawClient(), hpack.Decoder()
    _answer(b, 1, 200, fields, Cached(), b_decoder)
    block, decoded = _answer(b, 3, 200, fields, cache, b_decoder)
    assert cache.hpack_block is kept and block == kept[3] and decoded == expected
    # A table with one more entry shifts every index by one: the block must be new.
    other, other_decoder = RawClient(), hpack.Decoder()
    _answer(other, 1, 200, fields, Cached(), other_decoder)
    _answer(other, 3, 200, [(b"x-newer", b"1")], Cached(), other_decoder)
    block, decoded = _answer(other, 5, 200, fields, cache, other_decoder)
    assert block != kept[3] and decoded == expected and cache.hpack_block is not kept


def test_a_cached_block_answers_only_its_own_status_and_field_list() -> None:
    c, decoder, cache = RawClient(), hpack.Decoder(), Cached()
    fields = [(b"server", b"h2books")]
    _answer(c, 1, 200, fields, cache, decoder)
    _answer(c, 3, 200, fields, cache, decoder)
    assert cache.hpack_block is not None
    _, decoded = _answer(c, 5, 404, fields, cache, decoder)
    assert decoded == [(b":status", b"404"), *fields]
    equal_but_new = [(b"server", b"h2books")]
    _, decoded = _answer(c, 7, 200, equal_but_new, cache, decoder)
    assert decoded == [(b":status", b"200"), *fields]


def test_a_pending_table_size_update_is_never_skipped_by_the_cache() -> None:
    c, decoder, cache = RawClient(), hpack.Decoder(), Cached()
    fields = [(b"server", b"h2books")]
    _answer(c, 1, 200, fields, cache, decoder)
    kept, _ = _answer(c, 3, 200, fields, cache, decoder)
    assert cache.hpack_block is not None
    c.send(settings_frame((0x1, 256)))  # SETTINGS_HEADER_TABLE_SIZE: the encoder must say so
    c.take()
    block, decoded = _answer(c, 5, 200, fields, cache, decoder)
    assert block != kept and block[0] & 0xE0 == 0x20  # starts with a size update
    assert decoded == [(b":status", b"200"), *fields]


def test_send_response_returns_the_queued_output_size() -> None:
    # The server's write-during-read rule reads it from here, not from the property.
    c = big_window_client()
    for sid in (1, 3, 5, 7, 9):
        c.send(c.headers(sid))
    assert c.conn.send_response(1, 200, [], b"small") == c.conn.queued_output_size > 0
    assert c.conn.send_response(3, 204, [], b"") == c.conn.queued_output_size  # no body
    big = bytes(range(256)) * 256  # views of the body
    assert c.conn.send_response(5, 200, [], big) == c.conn.queued_output_size > len(big)
    c.conn.buffers_to_send()
    huge_block = [(b"x-long", b"v" * 20000)]  # a header block in CONTINUATIONs
    assert c.conn.send_response(7, 200, huge_block, b"x") == c.conn.queued_output_size > 16384
    c.conn.reset_stream(9)
    assert c.conn.send_response(9, 200, [], b"gone") == c.conn.queued_output_size
