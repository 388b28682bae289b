"""How the tests and the Early Hints benchmark run Chromium (Debian's `chromium` package)."""

from __future__ import annotations

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS"]

CHROMIUM = "/usr/bin/chromium"
# A closed machine's flags: without the background-networking ones Chromium keeps trying
# (and failing) to reach Google's services. QUIC is off so that h2 is the only protocol it
# can pick; a test or benchmark of HTTP/3 forces QUIC on for its origin itself.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
