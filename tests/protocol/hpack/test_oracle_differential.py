"""Differential tests against the `hpack` package (a test oracle only, never used by src/)."""

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.protocol.hpack import Decoder, Encoder, HeaderListTooLargeError, HPACKError

Fields = list[tuple[bytes, bytes]]

_common_names = st.sampled_from(
    [
        b":method",
        b":path",
        b":authority",
        b":status",
        b"server",
        b"content-type",
        b"content-length",
        b"date",
        b"cookie",
        b"set-cookie",
        b"authorization",
        b"user-agent",
        b"accept",
        b"x-request-id",
        b"x-custom",
        b"etag",
        b"referer",
        b"last-modified",
    ]
)
_names = st.one_of(_common_names, st.binary(max_size=12))
_values = st.one_of(
    st.sampled_from([b"", b"GET", b"/", b"200", b"h2books", b"text/html", b"*/*"]),
    st.binary(max_size=40),
    st.binary(min_size=60, max_size=200),
)
# Around half of a 4,096-octet table: indexed on one side of the line, not on the other.
# Only for our encoder: hpack's, in pure Python, takes seconds over such values.
_values_up_to_half_a_table = st.one_of(_values, st.binary(min_size=1900, max_size=2200))


@st.composite
def block_sequences(
    draw: st.DrawFn, values: st.SearchStrategy[bytes] = _values
) -> list[tuple[int | None, Fields]]:
    """Header lists drawn from a small pool (so fields repeat), each maybe after a resize."""
    pool = draw(st.lists(st.tuples(_names, values), min_size=1, max_size=12))
    sequence = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        resize = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=5000)))
        fields = draw(st.lists(st.sampled_from(pool), max_size=10))
        sequence.append((resize, fields))
    return sequence


def _oracle_decoder() -> hpack.Decoder:
    decoder = hpack.Decoder(max_header_list_size=2**31)
    decoder.max_allowed_table_size = 2**31
    return decoder


def _oracle_decode(decoder: hpack.Decoder, block: bytes) -> Fields:
    return [(bytes(name), bytes(value)) for name, value in decoder.decode(block, raw=True)]


@given(block_sequences(_values_up_to_half_a_table), st.booleans(), st.sampled_from([4096, 65536]))
@settings(max_examples=300)
def test_our_encoder_is_understood_by_the_oracle_decoder(
    sequence: list[tuple[int | None, Fields]], huffman: bool, size_limit: int
) -> None:
    encoder = Encoder(huffman=huffman, table_size_limit=size_limit)
    oracle = _oracle_decoder()
    ours = Decoder(max_header_list_size=2**31)
    ours.max_allowed_table_size = 2**31
    for resize, fields in sequence:
        if resize is not None:
            encoder.set_max_table_size(resize)
        block = encoder.encode(fields)
        assert _oracle_decode(oracle, block) == fields
        assert ours.decode(block) == fields
        assert oracle.header_table_size == encoder.header_table_size
        assert [(bytes(n), bytes(v)) for n, v in oracle.header_table.dynamic_entries] == (
            encoder.table_entries
        )


@given(block_sequences(), st.booleans(), st.booleans())
@settings(max_examples=300)
def test_oracle_encoder_is_understood_by_our_decoder(
    sequence: list[tuple[int | None, Fields]], huffman: bool, mark_sensitive: bool
) -> None:
    oracle = hpack.Encoder()
    oracle_decoder = _oracle_decoder()
    ours = Decoder(max_header_list_size=2**31)
    ours.max_allowed_table_size = 5000
    for resize, fields in sequence:
        if resize is not None:
            oracle.header_table_size = resize
        # The oracle sends 3-tuples flagged sensitive as "never indexed".
        to_encode = [(n, v, mark_sensitive and len(v) % 2 == 0) for n, v in fields]
        block = oracle.encode(to_encode, huffman=huffman)
        assert ours.decode(block) == fields
        assert _oracle_decode(oracle_decoder, block) == fields
        assert ours.table_entries == [
            (bytes(n), bytes(v)) for n, v in oracle.header_table.dynamic_entries
        ]


def _outcome(decode: object, block: bytes) -> Fields | str:
    try:
        return decode(block)  # type: ignore[operator, no-any-return]
    except (HeaderListTooLargeError, hpack.OversizedHeaderListError):
        return "too large"
    except (HPACKError, hpack.HPACKError):
        return "error"


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
@settings(max_examples=500)
def test_decoders_agree_on_arbitrary_bytes(blocks: list[bytes]) -> None:
    ours = Decoder(max_header_list_size=2**31)
    oracle = _oracle_decoder()
    oracle.max_allowed_table_size = ours.max_allowed_table_size
    for block in blocks:
        expected = _outcome(lambda b: _oracle_decode(oracle, b), block)
        actual = _outcome(ours.decode, block)
        assert actual == expected
        if expected == "error":
            return  # both contexts are now unusable


@given(st.lists(st.tuples(_names, _values), max_size=10), st.binary(min_size=1, max_size=6))
@settings(max_examples=300)
def test_decoders_agree_on_mutated_valid_blocks(fields: Fields, noise: bytes) -> None:
    block = bytearray(hpack.Encoder().encode(fields, huffman=True))
    if block:
        for offset, octet in enumerate(noise):
            block[(offset * 7919 + octet) % len(block)] ^= octet
    ours = Decoder(max_header_list_size=2**31)
    oracle = _oracle_decoder()
    oracle.max_allowed_table_size = ours.max_allowed_table_size
    assert _outcome(ours.decode, bytes(block)) == _outcome(
        lambda b: _oracle_decode(oracle, b), bytes(block)
    )


@pytest.mark.parametrize("limit", [100, 1000])
def test_header_list_limit_matches_the_oracle(limit: int) -> None:
    fields = [(b"x-%d" % number, b"v" * number) for number in range(40)]
    block = hpack.Encoder().encode(fields)
    ours = Decoder(max_header_list_size=limit)
    oracle = hpack.Decoder(max_header_list_size=limit)
    with pytest.raises(hpack.OversizedHeaderListError):
        oracle.decode(block, raw=True)
    assert _outcome(ours.decode, block) == "too large"
