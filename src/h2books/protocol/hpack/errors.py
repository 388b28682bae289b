"""HPACK error hierarchy.

The HTTP/2 core maps :class:`HPACKDecodingError` to a connection-level COMPRESSION_ERROR (the
dynamic table can no longer be trusted), while :class:`HeaderListTooLargeError` is raised only
after the whole block was processed, so the table is still in sync and the stream alone can be
refused. :class:`HeaderListBombError` is the exception to that: a block whose decoded list runs
far past the limit is abandoned where it crosses the line (an HPACK bomb, CVE-2016-6581), and
the core ends the connection with ENHANCE_YOUR_CALM.
"""


class HPACKError(Exception):
    """Base class of every error raised by the HPACK codec."""


class HPACKDecodingError(HPACKError):
    """A header block is malformed; the decoding context is now unusable."""


class HeaderListTooLargeError(HPACKError):
    """The decoded header list exceeds the advertised limit; the decoder is still in sync."""


class HeaderListBombError(HPACKDecodingError):
    """The decoded list passed the abort size: decoding stopped there, so the rest of the
    block (and any table insertion in it) was never processed; the context is unusable."""
