"""TLS for the HTTPS listener: stdlib ssl, ALPN h2 + http/1.1, TLS 1.2 or newer."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

ALPN_PROTOCOLS = ["h2", "http/1.1"]

# RFC 9113 §9.2.2 forbids the cipher suites on its block list for HTTP/2 over TLS 1.2;
# asking OpenSSL for ECDHE + AEAD only keeps every one of them out.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class TLSConfigError(Exception):
    """A certificate or key that cannot be used; the message is one line for the user."""


class DirectSSLObject(ssl.SSLObject):
    """An `ssl.SSLObject` whose per-record methods are the C object's own.

    The event loop's TLS layer (uvloop's, and asyncio's) calls `read`, `write` and
    `pending` for every read and every write of a connection: once each per HTTP/1.1
    request. The stdlib's `SSLObject` methods are Python functions that only forward to
    the C object, ~500 instructions a call; bound here as instance attributes, they are
    found before the class's and called directly. The C methods differ from the wrappers
    only in what no caller does: `read` needs a size (the wrapper defaulted it to 1024)
    and no `None` buffer, and none takes keyword arguments. uvloop 0.23 and asyncio
    3.11-3.13 pass the size, and the buffer if any, by position. Should a Python version
    drop the private `_sslobj`, the stdlib's methods simply stay."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> DirectSSLObject:
        self: DirectSSLObject = super()._create(*args, **kwargs)  # type: ignore[misc]
        c_object = getattr(self, "_sslobj", None)
        if c_object is not None:
            self.read = c_object.read  # type: ignore[method-assign]
            self.write = c_object.write  # type: ignore[method-assign]
            self.pending = c_object.pending  # type: ignore[method-assign]
        return self


def create_server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.sslobject_class = DirectSSLObject
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    # Compression is off by default in modern OpenSSL; say so anyway (CRIME, RFC 9113 §9.2.1).
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    for path, what in ((certfile, "certificate"), (keyfile, "key")):
        if not path.is_file():
            raise TLSConfigError(f"{what} file not found: {path}")
    try:
        context.load_cert_chain(str(certfile), str(keyfile))
    except PermissionError as exc:
        raise TLSConfigError(f"cannot read {exc.filename or certfile}: permission denied") from None
    except ssl.SSLError as exc:
        raise TLSConfigError(
            f"cannot use certificate {certfile} with key {keyfile}: {exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise TLSConfigError(f"cannot read certificate or key: {exc}") from None
    return context
