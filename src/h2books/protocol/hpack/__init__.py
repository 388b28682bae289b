"""HPACK, header compression for HTTP/2 (RFC 7541): a sans-IO encoder and decoder."""

from h2books.protocol.hpack.decoder import Decoder
from h2books.protocol.hpack.encoder import Encoder
from h2books.protocol.hpack.errors import (
    HeaderListBombError,
    HeaderListTooLargeError,
    HPACKDecodingError,
    HPACKError,
)

__all__ = [
    "Decoder",
    "Encoder",
    "HPACKDecodingError",
    "HPACKError",
    "HeaderListBombError",
    "HeaderListTooLargeError",
]
