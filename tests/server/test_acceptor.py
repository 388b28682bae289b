"""Protocol selection with real curl: ALPN over TLS, prior knowledge on cleartext."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ServerProcess, require_tool


def curl(*args: str) -> tuple[str, str]:
    """Run curl; return (body, http_version reported by curl)."""
    exe = require_tool("curl")
    done = subprocess.run(
        [exe, "-sS", "--max-time", "20", "-w", "\n%{http_version}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, version = done.stdout.rpartition("\n")
    return body, version


def test_tls_alpn_h2(server: ServerProcess) -> None:
    body, version = curl("--http2", "--cacert", str(server.ca), f"{server.url}/")
    assert version == "2"
    ids = json.loads(body)
    assert len(ids) == 3000 and ids[0] == "1"


def test_tls_http11_without_h2(server: ServerProcess) -> None:
    body, version = curl("--http1.1", "--cacert", str(server.ca), f"{server.url}/book?id=1")
    assert version == "1.1"
    assert set(json.loads(body)) >= {"title", "author", "url", "score"}


def test_cleartext_prior_knowledge_is_h2c(server: ServerProcess) -> None:
    body, version = curl("--http2-prior-knowledge", f"{server.http_url}/book?id=2")
    assert version == "2"
    assert "title" in json.loads(body)


def test_cleartext_http11(server: ServerProcess) -> None:
    body, version = curl("--http1.1", f"{server.http_url}/hello")
    assert version == "1.1"
    assert body == "hello world (in HTTP2)"
