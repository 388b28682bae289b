"""TLS contexts: one ALPN protocol offered, verification on unless asked otherwise."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from h2books.client import TLSError
from h2books.client.transport import create_ssl_context


def test_default_context_verifies() -> None:
    context = create_ssl_context(http2=True)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_insecure_context_does_not_verify() -> None:
    context = create_ssl_context(http2=False, insecure=True)
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname


def test_missing_and_broken_ca_files(tmp_path: Path) -> None:
    with pytest.raises(TLSError, match="CA certificate file not found"):
        create_ssl_context(http2=True, cacert=tmp_path / "absent.pem")
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(TLSError, match="cannot load CA certificates from"):
        create_ssl_context(http2=True, cacert=broken)
