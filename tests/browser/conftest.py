"""A real Chromium (Debian's, driven by Playwright) against the real server, over TLS.

Chromium trusts our CA only if the NSS database under its $HOME does, so every
browser here gets a HOME of its own: one made trusting by `h2books cert --trust`,
one left empty. No certificate flag (--ignore-certificate-errors) is ever passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import IN_CI, REPO_ROOT, ServerProcess

ARTIFACTS = REPO_ROOT / "test-artifacts"


def _missing(message: str) -> None:
    """Missing browser tooling: a skip on a developer's machine, a failure in CI."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# Module scope, not session: the sync API keeps an event loop running in this thread
# while it is open, and later tests call asyncio.run().
def require_browser_tooling() -> None:
    """Chromium, certutil (for `cert --trust`) and Playwright, or a skip (a failure in CI)."""
    if not Path(CHROMIUM).is_file():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    if shutil.which("certutil") is None:
        _missing("certutil is not installed (apt-get install libnss3-tools)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def playwright_api() -> Iterator[Any]:
    require_browser_tooling()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="module")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of the browser tests' own, with its access log, to see what reached it."""
    process = ServerProcess(tmp_path_factory.mktemp("browser-data")).start()
    yield process
    process.stop()


def run_h2books(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI, with HOME pointing at a home of the test's own."""
    done = subprocess.run(
        [sys.executable, "-m", "h2books", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def trusting_home(store_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home-trusting")
    done = run_h2books("cert", "--trust", "--data-dir", str(store_server.data_dir), home=home)
    assert "trusted: h2books local CA" in done.stdout
    return home


BrowserFactory = Callable[[Path], Any]


@pytest.fixture
def launch_browser(playwright_api: Any, tmp_path: Path) -> Iterator[BrowserFactory]:
    """Start Chromium with HOME=home and a fresh profile; returns its browser context."""
    contexts: list[Any] = []

    def launch(home: Path) -> Any:
        profile = tmp_path / f"profile-{len(contexts)}"
        context = playwright_api.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=list(CHROMIUM_FLAGS),
            env={**os.environ, "HOME": str(home)},
            viewport={"width": 1280, "height": 800},
            ignore_https_errors=False,
        )
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()
