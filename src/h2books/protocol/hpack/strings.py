"""HPACK string literals (RFC 7541 §5.2) with bounded caches for the short strings that repeat.

Both caches are module-level, shared by every connection, and keyed by content, so a hit always
returns what a miss would compute. They are cleared when full: an attacker churning them only
costs us the work the cache would have saved.
"""

from typing import Final

from h2books.protocol.hpack.errors import HPACKDecodingError
from h2books.protocol.hpack.huffman import huffman_decode, huffman_encode_if_shorter
from h2books.protocol.hpack.integers import decode_integer_continuation, encode_integer

CACHE_MAX_ENTRIES: Final = 4096
CACHED_STRING_MAX_LENGTH: Final = 64
# Longer for encoding: a user agent, an accept list or a referer runs to 100-250 octets, and
# once indexed is encoded once per connection, again on each new one. (The representation
# cache of the encoder, which held such values when they were not indexed, holds fewer now.)
CACHED_ENCODED_STRING_MAX_LENGTH: Final = 256

_encoded_strings: dict[bytes, bytes] = {}
# Huffman-coded octets -> the string. The decoder looks short values up here inline (no
# call per field); `decode_and_remember` is the one place that fills it.
DECODED_STRINGS: dict[bytes, bytes] = {}


def encode_raw_string(data: bytes) -> bytes:
    """Length-prefixed string literal without Huffman coding."""
    return encode_integer(len(data), 7) + data


# The length prefixes of the short strings (most of them), raw and Huffman-coded.
_RAW_LENGTHS: Final = tuple(bytes((length,)) for length in range(0x7F))
_HUFFMAN_LENGTHS: Final = tuple(bytes((0x80 | length,)) for length in range(0x7F))


def encode_string_uncached(data: bytes) -> bytes:
    """Length-prefixed string literal: Huffman-coded when strictly shorter, raw otherwise."""
    coded = huffman_encode_if_shorter(data)
    if coded is None:
        length = len(data)
        return (_RAW_LENGTHS[length] if length < 0x7F else encode_integer(length, 7)) + data
    length = len(coded)
    return (_HUFFMAN_LENGTHS[length] if length < 0x7F else encode_integer(length, 7, 0x80)) + coded


def encode_string(data: bytes) -> bytes:
    """Like :func:`encode_string_uncached`, remembering short strings. Never pass secrets."""
    encoded = _encoded_strings.get(data)
    if encoded is None:
        encoded = encode_string_uncached(data)
        if len(data) <= CACHED_ENCODED_STRING_MAX_LENGTH:
            if len(_encoded_strings) >= CACHE_MAX_ENTRIES:
                _encoded_strings.clear()
            _encoded_strings[data] = encoded
    return encoded


def decode_string(data: bytes, pos: int, cacheable: bool = True) -> tuple[bytes, int]:
    """Decode the string literal at ``data[pos]``; return (string, position after it).

    ``cacheable=False`` keeps secrets out of the shared cache (and out of its timing).
    """
    end = len(data)
    if pos >= end:
        raise HPACKDecodingError("truncated block: string literal expected")
    octet = data[pos]
    length = octet & 0x7F
    pos += 1
    if length == 0x7F:
        length, pos = decode_integer_continuation(data, pos, 0x7F)
    stop = pos + length
    if stop > end:
        raise HPACKDecodingError("truncated string literal")
    raw = data[pos:stop]
    if octet < 0x80:
        return raw, stop
    if not cacheable or length > CACHED_STRING_MAX_LENGTH:
        return huffman_decode(raw), stop
    decoded = DECODED_STRINGS.get(raw)
    if decoded is None:
        decoded = decode_and_remember(raw)
    return decoded, stop


def decode_and_remember(raw: bytes) -> bytes:
    """Huffman-decode `raw` (at most CACHED_STRING_MAX_LENGTH octets, not looked up yet:
    a miss) into the shared cache. Never pass secrets."""
    decoded = huffman_decode(raw)
    if len(DECODED_STRINGS) >= CACHE_MAX_ENTRIES:
        DECODED_STRINGS.clear()
    DECODED_STRINGS[raw] = decoded
    return decoded
