"""HPACK prefix-coded integers (RFC 7541 §5.1)."""

from typing import Final

from h2books.protocol.hpack.errors import HPACKDecodingError

# §5.1 lets a decoder reject integers beyond its limits "in value or octet length". Nothing in
# HTTP/2 needs more than 32 bits, and five continuation octets carry 35, so both caps are generous
# while an all-0x80 run still cannot keep the decoder busy.
MAX_INTEGER: Final = 2**32 - 1
MAX_CONTINUATION_OCTETS: Final = 5
_LAST_SHIFT: Final = 7 * (MAX_CONTINUATION_OCTETS - 1)


def encode_integer(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """Encode ``value`` with an N-bit prefix; ``flags`` fills the first octet's high bits."""
    prefix_max = (1 << prefix_bits) - 1
    if value < prefix_max:
        return bytes((flags | value,))
    encoded = bytearray((flags | prefix_max,))
    value -= prefix_max
    while value >= 0x80:
        encoded.append(0x80 | (value & 0x7F))
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


def decode_integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """Decode the integer whose prefix is in ``data[pos]``; return (value, position after it).

    The caller guarantees ``pos < len(data)``.
    """
    prefix_max = (1 << prefix_bits) - 1
    value = data[pos] & prefix_max
    if value < prefix_max:
        return value, pos + 1
    return decode_integer_continuation(data, pos + 1, prefix_max)


def decode_integer_continuation(data: bytes, pos: int, value: int) -> tuple[int, int]:
    """Finish an integer whose prefix was all ones (``value``); continuation starts at ``pos``."""
    end = len(data)
    shift = 0
    while True:
        if pos >= end:
            raise HPACKDecodingError("truncated integer")
        octet = data[pos]
        pos += 1
        value += (octet & 0x7F) << shift
        if octet < 0x80:
            break
        if shift == _LAST_SHIFT:
            raise HPACKDecodingError("integer has too many continuation octets")
        shift += 7
    if value > MAX_INTEGER:
        raise HPACKDecodingError("integer too large")
    return value, pos
