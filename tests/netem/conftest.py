"""Fixtures for the emulator's tests: real namespaces and TUN devices, made and removed here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from h2books.netem.namespaces import NETNS_DIR, unavailable_reason
from tests.conftest import IN_CI, ServerProcess

BOOK_COUNT = 12


def require_namespaces() -> None:
    """Skip where namespaces + TUN really are unavailable; in CI (root) that is a failure."""
    reason = unavailable_reason()
    if reason is not None:
        message = f"network namespaces + TUN unavailable: {reason}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def ours() -> tuple[set[str], set[str]]:
    """Our namespaces and devices present now (h2b-*), to check that none is left behind."""
    namespaces = {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.exists() else set()
    devices = {p.name for p in Path("/sys/class/net").iterdir()}
    return (
        {name for name in namespaces if name.startswith("h2b-")},
        {name for name in devices if name.startswith("h2b")},
    )


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Our server on the host's loopback with a catalogue of a few books (short crawls)."""
    data_dir = tmp_path_factory.mktemp("netem-data")
    books = tmp_path_factory.mktemp("netem-books") / "books.json"
    from h2books.app.generator import generate_books

    books.write_text(json.dumps(generate_books(count=BOOK_COUNT)))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "h2books",
            "catalog",
            "import",
            str(books),
            "--data-dir",
            str(data_dir),
        ],
        check=True,
        capture_output=True,
    )
    process = ServerProcess(data_dir, "--no-access-log").start()
    yield process
    process.stop()
