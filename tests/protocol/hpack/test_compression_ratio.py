"""Our encoder against the `hpack` library's on realistic header sets (bench/header_sets.py).

The target: our output is at most 1.02x hpack's on every set. hpack gets the flags the `h2`
library gives it (credentials and cookies under 20 octets never indexed), the same secrets our
policy keeps out of the table. Every block also decodes with hpack's Decoder, the oracle.
"""

from __future__ import annotations

import hpack
import pytest

from h2books.bench import header_sets
from h2books.protocol.h2.scheduler import STATUS_FIELDS
from h2books.protocol.hpack import Encoder

TARGET_RATIO = 1.02

Fields = header_sets.Fields


def _flagged(fields: Fields) -> list[hpack.HeaderTuple]:
    out = []
    for name, value in fields:
        secret = name in (b"authorization", b"proxy-authorization") or (
            name == b"cookie" and len(value) < 20
        )
        kind = hpack.NeverIndexedHeaderTuple if secret else hpack.HeaderTuple
        out.append(kind(name, value))
    return out


def _hpack_total(header_set: header_sets.HeaderSet) -> int:
    total = 0
    for connection in header_set.connections:
        encoder = hpack.Encoder()
        total += sum(len(encoder.encode(_flagged(fields))) for fields in connection)
    return total


def _decoded(decoder: hpack.Decoder, block: bytes) -> list[tuple[bytes, bytes]]:
    return [(bytes(name), bytes(value)) for name, value in decoder.decode(block, raw=True)]


def _our_total_checked_by_the_oracle(header_set: header_sets.HeaderSet) -> int:
    total = 0
    for connection in header_set.connections:
        encoder = Encoder()
        oracle = hpack.Decoder(max_header_list_size=2**20)
        for fields in connection:
            block = encoder.encode(fields)
            assert _decoded(oracle, block) == list(fields)
            total += len(block)
    return total


_SETS = {
    "browser": header_sets.browser_set,
    "crawl": header_sets.crawl_set,
    "h2load": header_sets.h2load_set,
}


@pytest.mark.parametrize("name", list(_SETS))
def test_request_sets_compress_at_least_as_well_as_hpack(name: str) -> None:
    header_set = _SETS[name]()
    ours = _our_total_checked_by_the_oracle(header_set)
    theirs = _hpack_total(header_set)
    print(f"{name}: ours {ours:,} hpack {theirs:,} ratio {ours / theirs:.3f}")
    assert ours <= TARGET_RATIO * theirs


@pytest.fixture(scope="module")
def responses() -> header_sets.HeaderSet:
    return header_sets.response_set()


def test_response_set_compresses_at_least_as_well_as_hpack(
    responses: header_sets.HeaderSet,
) -> None:
    ours = _our_total_checked_by_the_oracle(responses)
    theirs = _hpack_total(responses)
    print(f"responses: ours {ours:,} hpack {theirs:,} ratio {ours / theirs:.3f}")
    assert ours <= TARGET_RATIO * theirs


def test_the_server_block_cache_still_serves_repeated_responses(
    responses: header_sets.HeaderSet,
) -> None:
    """With the server's cache rule, the bytes stay within the target and one URL served
    again and again is answered from the cache after the first responses of each second."""
    assert responses.responses is not None
    crawl, one_url, storefront = responses.responses
    encoder = Encoder()
    oracle = hpack.Decoder(max_header_list_size=2**20)
    blocks, hits = header_sets.encode_like_the_server(encoder, one_url)
    for block, (status, fields) in zip(blocks, one_url, strict=True):
        assert _decoded(oracle, block) == [STATUS_FIELDS[status], *fields]
    # 5,000 responses at 20,000 a second: one date; the first three responses set the table.
    assert hits >= len(one_url) - 3
    total = sum(map(len, blocks))
    for connection in (crawl, storefront):
        total += sum(map(len, header_sets.encode_like_the_server(Encoder(), connection)[0]))
    assert total <= TARGET_RATIO * _hpack_total(responses)
