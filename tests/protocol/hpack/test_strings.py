import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack import strings
from h2books.protocol.hpack.errors import HPACKDecodingError
from h2books.protocol.hpack.huffman import huffman_encode
from h2books.protocol.hpack.strings import (
    CACHE_MAX_ENTRIES,
    CACHED_ENCODED_STRING_MAX_LENGTH,
    CACHED_STRING_MAX_LENGTH,
    decode_string,
    encode_raw_string,
    encode_string,
    encode_string_uncached,
)


def test_huffman_is_used_when_strictly_shorter() -> None:
    assert encode_string(b"www.example.com") == bytes.fromhex("8cf1e3c2e5f23a6ba0ab90f4ff")


def test_raw_is_used_when_huffman_is_not_shorter() -> None:
    # Each of these octets has a code of 8+ bits, so Huffman cannot win.
    data = b"\x00\xff{}"
    assert encode_string_uncached(data) == b"\x04" + data
    # Equal length is not "strictly shorter": "&" has an 8-bit code.
    assert len(huffman_encode(b"&")) == 1
    assert encode_string_uncached(b"&") == b"\x01&"


def test_raw_string_encoding() -> None:
    assert encode_raw_string(b"custom-key") == b"\x0acustom-key"
    assert encode_raw_string(b"a" * 200) == b"\x7f\x49" + b"a" * 200


@given(st.binary(max_size=300), st.binary(max_size=4), st.binary(max_size=4))
def test_round_trip(data: bytes, lead: bytes, trail: bytes) -> None:
    for encoded in (encode_string(data), encode_raw_string(data)):
        block = lead + encoded + trail
        assert decode_string(block, len(lead)) == (data, len(lead) + len(encoded))
        assert decode_string(block, len(lead), cacheable=False) == (
            data,
            len(lead) + len(encoded),
        )


@pytest.mark.parametrize(
    "block",
    [
        b"",  # nothing where a string was expected
        b"\x05abcd",  # raw, one octet short
        b"\x85\xf1\xe3\xc2\xe5",  # Huffman, one octet short
        b"\x7f",  # length prefix cut in the middle
        b"\x7f\xff\xff\xff\xff\x0f",  # length over the integer limit
        b"\x7f\x80\x80\x80\x80\x80\x00",  # overlong length
    ],
)
def test_malformed_strings_are_rejected(block: bytes) -> None:
    with pytest.raises(HPACKDecodingError):
        decode_string(block, 0)


def test_invalid_huffman_is_rejected_cached_or_not() -> None:
    for cacheable in (True, False):
        with pytest.raises(HPACKDecodingError):
            decode_string(b"\x81\x00", 0, cacheable)


def test_uncacheable_strings_stay_out_of_the_decode_cache() -> None:
    encoded = encode_string(b"Bearer s3cr3t-t0ken")
    raw = encoded[1:]
    strings.DECODED_STRINGS.pop(raw, None)
    assert decode_string(encoded, 0, cacheable=False)[0] == b"Bearer s3cr3t-t0ken"
    assert raw not in strings.DECODED_STRINGS
    assert decode_string(encoded, 0)[0] == b"Bearer s3cr3t-t0ken"
    assert raw in strings.DECODED_STRINGS


def test_caches_stay_bounded() -> None:
    for number in range(CACHE_MAX_ENTRIES * 2 + 10):
        text = b"/book?id=%d" % number
        encoded = encode_string(text)
        assert decode_string(encoded, 0)[0] == text
        assert len(strings._encoded_strings) <= CACHE_MAX_ENTRIES
        assert len(strings.DECODED_STRINGS) <= CACHE_MAX_ENTRIES


def test_long_strings_are_not_cached() -> None:
    text = b"x" * (CACHED_STRING_MAX_LENGTH * 3 // 2)
    encoded = encode_string(text)
    assert encoded[0] & 0x80  # Huffman-coded, and still longer than the cache limit
    assert len(encoded) - 1 > CACHED_STRING_MAX_LENGTH
    assert decode_string(encoded, 0)[0] == text
    assert encoded[1:] not in strings.DECODED_STRINGS
    assert text in strings._encoded_strings  # a user agent's length: encoding caches it
    longer = b"x" * (CACHED_ENCODED_STRING_MAX_LENGTH + 1)
    encode_string(longer)
    assert longer not in strings._encoded_strings
