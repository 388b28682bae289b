"""Opening a connection: TCP, TLS with ALPN, and readable errors for every way it fails."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from h2books.client.errors import ConnectError, TLSError
from h2books.client.origin import Origin

__all__ = ["create_ssl_context", "open_connection"]

P = TypeVar("P", bound=asyncio.Protocol)


def create_ssl_context(
    *, http2: bool, cacert: str | Path | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """A client context offering exactly one protocol in ALPN: ``h2`` or ``http/1.1``.

    Offering one protocol keeps a crawl honest: an ``--http2`` run never quietly
    measures HTTP/1.1 because the server preferred it.
    """
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            context = ssl.create_default_context(cafile=str(cacert) if cacert else None)
        except FileNotFoundError:
            raise TLSError(f"CA certificate file not found: {cacert}") from None
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"cannot load CA certificates from {cacert}: {_reason(exc)}") from None
    # RFC 9113 §9.2: TLS 1.2 or newer for h2; the default cipher list is AEAD-first.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"] if http2 else ["http/1.1"])
    return context


async def open_connection(
    protocol_factory: Callable[[], P],
    origin: Origin,
    ssl_context: ssl.SSLContext | None,
    timeout: float | None,
    address: tuple[str, int] | None = None,
) -> P:
    """Connect and return the protocol object; every failure becomes a `ConnectError`/`TLSError`.

    `address` (host, port), when given, is where the TCP connection goes instead of the
    origin's; TLS still names the origin's host.
    """
    loop = asyncio.get_running_loop()
    host, port = address if address is not None else (origin.host, origin.port)
    where = origin.address if address is None else f"{origin.address} (via {host}:{port})"
    try:
        async with asyncio.timeout(timeout):
            _transport, protocol = await loop.create_connection(
                protocol_factory,
                host,
                port,
                ssl=ssl_context,
                server_hostname=origin.host if ssl_context is not None else None,
            )
    except ssl.SSLCertVerificationError as exc:
        message = exc.verify_message or _reason(exc)
        hint = ""
        if exc.verify_code in (19, 20, 21):  # self-signed in chain, unknown issuer, ...
            hint = " (pass the server's CA with --cacert, or --insecure)"
        raise TLSError(
            f"TLS handshake with {where} failed: certificate verify failed: {message}{hint}"
        ) from None
    except ssl.SSLError as exc:
        hint = ""
        if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc):
            hint = " (is it a cleartext port? use an http:// URL)"
        raise TLSError(f"TLS handshake with {where} failed: {_reason(exc)}{hint}") from None
    except ConnectionRefusedError:
        raise ConnectError(f"connection to {where} refused (is the server running?)") from None
    except socket.gaierror as exc:
        raise ConnectError(f"cannot resolve {origin.host}: {exc.strerror or exc}") from None
    except TimeoutError:
        raise ConnectError(f"connecting to {where} timed out after {timeout:g} s") from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        stage = "TLS handshake with" if ssl_context is not None else "connecting to"
        raise ConnectError(f"{stage} {where} failed: connection reset ({exc})") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    return protocol


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else str(exc)
