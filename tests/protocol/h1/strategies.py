"""Hypothesis strategies for well-formed HTTP/1.1 messages (shared by h1 tests)."""

from __future__ import annotations

from hypothesis import strategies as st

TOKEN_ALPHABET = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PATH_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"
# Visible ASCII; obs-text is legal too but the oracles disagree on it.
VALUE_ALPHABET = [chr(c) for c in range(0x21, 0x7F)]
# Fields the cores interpret: generated separately so framing stays well-formed.
FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"}

tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12).map(str.encode)
methods = st.one_of(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH"]), tokens)
targets = st.builds(
    lambda path, query: b"/" + path + (b"?" + query if query is not None else b""),
    st.text(PATH_ALPHABET, max_size=30).map(str.encode),
    st.one_of(st.none(), st.text(PATH_ALPHABET + "?", max_size=20).map(str.encode)),
)
field_names = tokens.filter(lambda n: n.lower().decode() not in FRAMING)
# Values: visible chars with single inner spaces/tabs, no surrounding whitespace.
field_values = st.lists(st.text(VALUE_ALPHABET, min_size=1, max_size=10), max_size=3).map(
    lambda words: " ".join(words).encode()
)
fields = st.lists(st.tuples(field_names, field_values), max_size=8)
bodies = st.binary(max_size=200)
