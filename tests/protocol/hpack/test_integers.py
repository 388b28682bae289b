import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack.errors import HPACKDecodingError
from h2books.protocol.hpack.integers import (
    MAX_INTEGER,
    decode_integer,
    decode_integer_continuation,
    encode_integer,
)


def test_rfc_7541_c_1_examples() -> None:
    assert encode_integer(10, 5) == b"\x0a"  # C.1.1
    assert encode_integer(1337, 5) == b"\x1f\x9a\x0a"  # C.1.2
    assert encode_integer(42, 8) == b"\x2a"  # C.1.3
    assert decode_integer(b"\x0a", 0, 5) == (10, 1)
    assert decode_integer(b"\x1f\x9a\x0a", 0, 5) == (1337, 3)
    assert decode_integer(b"\x2a", 0, 8) == (42, 1)


def test_prefix_boundary_needs_a_zero_continuation_octet() -> None:
    assert encode_integer(31, 5) == b"\x1f\x00"
    assert decode_integer(b"\x1f\x00", 0, 5) == (31, 2)
    assert encode_integer(30, 5) == b"\x1e"


def test_flags_fill_the_high_bits_and_are_ignored_when_decoding() -> None:
    encoded = encode_integer(1337, 5, 0xE0)
    assert encoded == b"\xff\x9a\x0a"
    assert decode_integer(encoded, 0, 5) == (1337, 3)


@given(
    value=st.integers(min_value=0, max_value=MAX_INTEGER),
    prefix_bits=st.integers(min_value=1, max_value=8),
    junk=st.binary(max_size=3),
    lead=st.binary(max_size=3),
)
def test_round_trip(value: int, prefix_bits: int, junk: bytes, lead: bytes) -> None:
    encoded = encode_integer(value, prefix_bits)
    assert decode_integer(lead + encoded + junk, len(lead), prefix_bits) == (
        value,
        len(lead) + len(encoded),
    )


def test_largest_allowed_value_decodes_and_one_more_is_rejected() -> None:
    assert decode_integer(encode_integer(MAX_INTEGER, 7), 0, 7)[0] == MAX_INTEGER
    with pytest.raises(HPACKDecodingError):
        decode_integer(encode_integer(MAX_INTEGER + 1, 7), 0, 7)


def test_too_many_continuation_octets_are_rejected_even_for_small_values() -> None:
    # Five continuation octets are accepted, a sixth is an overlong encoding.
    assert decode_integer(b"\x7f\x80\x80\x80\x80\x00", 0, 7) == (127, 6)
    with pytest.raises(HPACKDecodingError):
        decode_integer(b"\x7f\x80\x80\x80\x80\x80\x00", 0, 7)


def test_an_endless_continuation_run_fails_fast() -> None:
    with pytest.raises(HPACKDecodingError):
        decode_integer(b"\x7f" + b"\xff" * 100_000, 0, 7)


@pytest.mark.parametrize("data", [b"\x1f", b"\x1f\x9a", b"\x1f\xff\xff"])
def test_truncated_integers_are_rejected(data: bytes) -> None:
    with pytest.raises(HPACKDecodingError):
        decode_integer(data, 0, 5)


def test_continuation_helper_starts_after_the_prefix() -> None:
    assert decode_integer_continuation(b"\x1f\x9a\x0a", 1, 31) == (1337, 3)
