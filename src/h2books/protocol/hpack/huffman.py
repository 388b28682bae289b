"""The HPACK Huffman code (RFC 7541 §5.2, Appendix B).

The code of Appendix B is canonical: codes are handed out in order of (bit length, symbol), so the
257 bit lengths below determine every code. The tests check the derived codes against the RFC.

Encoding joins per-symbol bit strings and lets ``int(..., 2)`` pack them, which keeps the per-byte
work in C. Decoding runs a byte-at-a-time state machine built at import time: the states are the
256 internal nodes of the code tree (plus one absorbing failure state), and each
(state, input byte) pair maps to the next state and the symbols completed on the way. Decoding is
then one table lookup per input byte, and only the final state needs checking.
"""

from typing import Any, Final

from h2books.protocol.hpack.errors import HPACKDecodingError

EOS: Final = 256

# Bit length of the code of each symbol 0..256 (256 is EOS), from RFC 7541 Appendix B.
CODE_LENGTHS: Final[tuple[int, ...]] = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,  # 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,  # 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,  # 32-47
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,  # 48-63
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  # 64-79
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,  # 80-95
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,  # 96-111
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,  # 112-127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,  # 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,  # 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,  # 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,  # 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,  # 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,  # 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,  # 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,  # 240-255
    30,  # 256 (EOS)
)  # fmt: skip


def _canonical_codes(lengths: tuple[int, ...]) -> tuple[int, ...]:
    codes = [0] * len(lengths)
    code = 0
    previous_length = 0
    for symbol in sorted(range(len(lengths)), key=lambda s: (lengths[s], s)):
        code <<= lengths[symbol] - previous_length
        codes[symbol] = code
        previous_length = lengths[symbol]
        code += 1
    return tuple(codes)


CODES: Final[tuple[int, ...]] = _canonical_codes(CODE_LENGTHS)

# --- encoding ---------------------------------------------------------------------------------

_BIT_STRINGS: Final[tuple[str, ...]] = tuple(
    format(CODES[symbol], f"0{CODE_LENGTHS[symbol]}b") for symbol in range(256)
)
# bytes.translate turns a string into its per-octet code lengths in C; sum() adds them in C.
_LENGTH_TRANSLATION: Final = bytes(CODE_LENGTHS[:256])


def huffman_encoded_length(data: bytes) -> int:
    """Number of octets ``huffman_encode(data)`` produces, without producing it."""
    return (sum(data.translate(_LENGTH_TRANSLATION)) + 7) >> 3


# The all-ones padding (the high bits of EOS) for each bit count of the code.
_PADDING: Final[tuple[str, ...]] = tuple("1" * (-bits & 7) for bits in range(8))


def huffman_encode(data: bytes) -> bytes:
    """Huffman-encode ``data``, padding the last octet with the high bits of EOS (all ones)."""
    if not data:
        return b""
    bit_strings = _BIT_STRINGS
    bits = "".join([bit_strings[octet] for octet in data])
    size = len(bits)
    return int(bits + _PADDING[size & 7], 2).to_bytes((size + 7) >> 3, "big")


def huffman_encode_if_shorter(data: bytes) -> bytes | None:
    """``huffman_encode(data)`` when it is strictly shorter than ``data``, else None;
    one pass where `huffman_encoded_length` then `huffman_encode` would make two."""
    bit_strings = _BIT_STRINGS
    bits = "".join([bit_strings[octet] for octet in data])
    size = len(bits)
    length = (size + 7) >> 3
    if length >= len(data):
        return None
    return int(bits + _PADDING[size & 7], 2).to_bytes(length, "big")


# --- decoding ---------------------------------------------------------------------------------


def _build_tree() -> tuple[list[list[int]], list[int]]:
    """Children of each internal node (>= 0: node id, < 0: leaf ``-(symbol + 1)``)."""
    children: list[list[int]] = [[0, 0]]
    filled: list[list[bool]] = [[False, False]]
    for symbol, (code, length) in enumerate(zip(CODES, CODE_LENGTHS, strict=True)):
        node = 0
        for shift in range(length - 1, 0, -1):
            bit = (code >> shift) & 1
            if not filled[node][bit]:
                children.append([0, 0])
                filled.append([False, False])
                children[node][bit] = len(children) - 1
                filled[node][bit] = True
            node = children[node][bit]
        children[node][code & 1] = -(symbol + 1)
        filled[node][code & 1] = True
    # Padding is valid only while it stays on the all-ones path, at most 7 bits deep.
    all_ones = [0]
    for _ in range(7):
        all_ones.append(children[all_ones[-1]][1])
    return children, all_ones


def _build_state_machine() -> tuple[list[int], list[bytes], frozenset[int]]:
    children, all_ones = _build_tree()
    node_count = len(children)  # 256 for a complete tree over 257 leaves
    fail = node_count

    # Step 1: nibble transitions, walking the tree bit by bit (only 16 * 4 steps per node).
    nibble_next: list[int] = []
    nibble_emit: list[bytes] = []
    for node in range(node_count):
        for nibble in range(16):
            current = node
            emitted = bytearray()
            for shift in (3, 2, 1, 0):
                child = children[current][(nibble >> shift) & 1]
                if child >= 0:
                    current = child
                elif child == -(EOS + 1):  # EOS inside a string is a decoding error (§5.2)
                    current = fail
                    break
                else:
                    emitted.append(-child - 1)
                    current = 0
            nibble_next.append(current)
            nibble_emit.append(bytes(emitted))

    # Step 2: byte transitions as two chained nibble transitions: the table of node n's
    # transitions is entries n * 256 to n * 256 + 255.
    byte_next: list[int] = [fail] * ((node_count + 1) << 8)
    byte_emit: list[bytes] = [b""] * ((node_count + 1) << 8)
    for node in range(node_count):
        for high in range(16):
            middle = nibble_next[(node << 4) | high]
            if middle == fail:
                continue
            high_emit = nibble_emit[(node << 4) | high]
            base = (node << 8) | (high << 4)
            for low in range(16):
                offset = (middle << 4) | low
                byte_next[base | low] = nibble_next[offset]
                byte_emit[base | low] = high_emit + nibble_emit[offset]
    return byte_next, byte_emit, frozenset(all_ones)


# A state as the decoder holds it: (what each input byte emits from it, the state each byte
# leads to), the second a list of 257: the 256 next states, then whether the state may end a
# string (its padding so far all ones, at most 7 bits). Holding the state itself, not its
# number, the loop needs no index arithmetic (each `state + octet` made a new int object):
# ~15% less per octet.
_State = tuple[tuple[bytes, ...], list[Any]]


def _link_states() -> _State:
    """The byte-at-a-time machine as linked states; returns the start state."""
    byte_next, byte_emit, accepting = _build_state_machine()
    count = len(byte_next) >> 8  # the tree's nodes and the failure state
    nexts: list[list[Any]] = [[None] * 257 for _ in range(count)]
    states = [(tuple(byte_emit[node << 8 : (node + 1) << 8]), nexts[node]) for node in range(count)]
    state_of = states.__getitem__
    for node in range(count):
        following = nexts[node]
        following[:256] = map(state_of, byte_next[node << 8 : (node + 1) << 8])
        following[256] = node in accepting
    return states[0]


_START: Final = _link_states()


def huffman_decode(data: bytes) -> bytes:
    """Decode a Huffman-coded string; raise :class:`HPACKDecodingError` if it is invalid.

    Invalid means: the EOS symbol appears, the padding is longer than 7 bits, or the padding is
    not the most significant bits of EOS (all ones) (RFC 7541 §5.2).
    """
    emitted, following = _START
    parts = []
    for octet in data:
        parts.append(emitted[octet])  # a specialised list.append beats a bound-method alias
        emitted, following = following[octet]
    if not following[256]:
        raise HPACKDecodingError("invalid Huffman-coded string (EOS symbol or bad padding)")
    return b"".join(parts)
