import itertools

import hpack.huffman
import hpack.huffman_constants
import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack.errors import HPACKDecodingError
from h2books.protocol.hpack.huffman import (
    CODE_LENGTHS,
    CODES,
    EOS,
    huffman_decode,
    huffman_encode,
    huffman_encode_if_shorter,
    huffman_encoded_length,
)


def _bits_to_bytes(bits: str) -> bytes:
    assert len(bits) % 8 == 0
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _code_bits(symbol: int) -> str:
    return format(CODES[symbol], f"0{CODE_LENGTHS[symbol]}b")


def _reference_decode(data: bytes) -> bytes | None:
    """Bit-by-bit decoder written straight from §5.2, to check the state machine against."""
    by_code = {(CODES[s], CODE_LENGTHS[s]): s for s in range(257)}
    out = bytearray()
    code = length = 0
    for bit in "".join(format(octet, "08b") for octet in data):
        code = (code << 1) | int(bit)
        length += 1
        symbol = by_code.get((code, length))
        if symbol == EOS:
            return None
        if symbol is not None:
            out.append(symbol)
            code = length = 0
    if length > 7 or code != (1 << length) - 1:
        return None
    return bytes(out)


def test_codes_match_rfc_7541_appendix_b_per_oracle() -> None:
    assert list(CODES) == list(hpack.huffman_constants.REQUEST_CODES)
    assert list(CODE_LENGTHS) == list(hpack.huffman_constants.REQUEST_CODES_LENGTH)


def test_codes_spot_checked_against_the_rfc_text() -> None:
    assert (CODES[ord("0")], CODE_LENGTHS[ord("0")]) == (0x0, 5)
    assert (CODES[ord(" ")], CODE_LENGTHS[ord(" ")]) == (0x14, 6)
    assert (CODES[0], CODE_LENGTHS[0]) == (0x1FF8, 13)
    assert (CODES[255], CODE_LENGTHS[255]) == (0x3FFFFEE, 26)
    assert (CODES[EOS], CODE_LENGTHS[EOS]) == (0x3FFFFFFF, 30)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        (b"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
        (b"no-cache", "a8eb10649cbf"),
        (b"custom-key", "25a849e95ba97d7f"),
        (b"custom-value", "25a849e95bb8e8b4bf"),
        (b"302", "6402"),
        (b"private", "aec3771a4b"),
        (b"Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"),
        (b"https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
        (b"", ""),
    ],
)
def test_rfc_7541_appendix_c_strings(text: bytes, encoded: str) -> None:
    assert huffman_encode(text) == bytes.fromhex(encoded)
    assert huffman_decode(bytes.fromhex(encoded)) == text
    assert huffman_encoded_length(text) == len(encoded) // 2


@given(st.binary(max_size=300))
def test_round_trip_of_arbitrary_bytes(data: bytes) -> None:
    encoded = huffman_encode(data)
    assert huffman_decode(encoded) == data
    assert len(encoded) == huffman_encoded_length(data)


@given(st.binary(max_size=100))
def test_encoding_matches_the_oracle(data: bytes) -> None:
    oracle = hpack.huffman.HuffmanEncoder(
        hpack.huffman_constants.REQUEST_CODES, hpack.huffman_constants.REQUEST_CODES_LENGTH
    )
    assert huffman_encode(data) == oracle.encode(data)


@given(st.binary(max_size=40))
def test_decoder_agrees_with_bitwise_reference_on_arbitrary_input(data: bytes) -> None:
    expected = _reference_decode(data)
    if expected is None:
        with pytest.raises(HPACKDecodingError):
            huffman_decode(data)
    else:
        assert huffman_decode(data) == expected


@given(st.binary(max_size=20), st.binary(min_size=1, max_size=3))
def test_decoder_agrees_with_reference_on_valid_strings_with_a_corrupt_tail(
    data: bytes, tail: bytes
) -> None:
    # Random bytes rarely end in valid padding; starting from a valid string reaches more states.
    corrupted = huffman_encode(data)[:-1] + tail
    expected = _reference_decode(corrupted)
    if expected is None:
        with pytest.raises(HPACKDecodingError):
            huffman_decode(corrupted)
    else:
        assert huffman_decode(corrupted) == expected


def test_every_symbol_with_every_padding_pattern() -> None:
    """All-ones padding is valid; other tails are invalid unless they complete more symbols."""
    rejected = 0
    for symbol in range(256):
        bits = _code_bits(symbol)
        padding_length = -len(bits) % 8
        for padding in itertools.product("01", repeat=padding_length):
            data = _bits_to_bytes(bits + "".join(padding))
            if set(padding) <= {"1"}:
                assert huffman_decode(data) == bytes([symbol])
                continue
            expected = _reference_decode(data)
            if expected is None:
                rejected += 1
                with pytest.raises(HPACKDecodingError):
                    huffman_decode(data)
            else:  # e.g. "00000" after a symbol is the code of "0"
                assert len(expected) > 1
                assert huffman_decode(data) == expected
    assert rejected > 1000


@pytest.mark.parametrize("extra_ones", range(8, 30))
def test_padding_longer_than_7_bits_is_rejected(extra_ones: int) -> None:
    bits = _code_bits(ord("a")) + "1" * extra_ones
    bits += "1" * (-len(bits) % 8)
    with pytest.raises(HPACKDecodingError):
        huffman_decode(_bits_to_bytes(bits))


def test_a_whole_octet_of_padding_is_rejected() -> None:
    exact = huffman_encode(b"00000000")  # eight 5-bit codes: 40 bits, no padding needed
    assert len(exact) == 5
    assert huffman_decode(exact) == b"00000000"
    with pytest.raises(HPACKDecodingError):
        huffman_decode(exact + b"\xff")
    with pytest.raises(HPACKDecodingError):
        huffman_decode(b"\xff")


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"/index.html"])
def test_eos_inside_the_string_is_rejected(prefix: bytes) -> None:
    bits = "".join(_code_bits(octet) for octet in prefix) + _code_bits(EOS)
    bits += "1" * (-len(bits) % 8)
    with pytest.raises(HPACKDecodingError):
        huffman_decode(_bits_to_bytes(bits))
    # Also when valid symbols follow the EOS.
    bits = "".join(_code_bits(octet) for octet in prefix) + _code_bits(EOS) + _code_bits(ord("a"))
    bits += "1" * (-len(bits) % 8)
    with pytest.raises(HPACKDecodingError):
        huffman_decode(_bits_to_bytes(bits))


def test_zero_padding_is_rejected() -> None:
    # "a" is 00011: with "000" padding instead of "111" the string is invalid.
    assert huffman_decode(b"\x1f") == b"a"
    with pytest.raises(HPACKDecodingError):
        huffman_decode(b"\x18")


@given(st.binary(max_size=64))
def test_encode_if_shorter_is_the_code_exactly_when_it_is_shorter(data: bytes) -> None:
    coded = huffman_encode_if_shorter(data)
    if huffman_encoded_length(data) < len(data):
        assert coded == huffman_encode(data)
    else:
        assert coded is None


def test_encode_if_shorter_on_a_path_and_on_control_octets() -> None:
    assert huffman_encode_if_shorter(b"/book?id=1234") == huffman_encode(b"/book?id=1234")
    assert huffman_encode_if_shorter(b"\x00\x01") is None  # 13 + 23 bits > 2 octets
    assert huffman_encode_if_shorter(b"") is None
