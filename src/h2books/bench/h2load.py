"""Driving nghttp2's h2load: the URI list, the command line, and reading its report.

h2load exits 0 even when every request failed, so a run's verdict comes from
its report: ``finished in …, N req/s`` and ``requests: T total, … S succeeded,
F failed, E errored, O timeout``. A run counts only when S equals the number of
requests asked for (``shared/BENCHMARKING.md``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "H2loadParseError",
    "H2loadReport",
    "find_h2load",
    "h2load_command",
    "parse_h2load_output",
    "write_uri_list",
]


class H2loadParseError(ValueError):
    """The text is not an h2load report (it crashed, or printed only an error)."""


@dataclass(frozen=True, slots=True)
class H2loadReport:
    duration: float  # seconds, from "finished in"
    requests_per_second: float
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    traffic_bytes: int
    header_bytes: int
    data_bytes: int
    protocol: str  # the ALPN result, "" when none was negotiated

    @property
    def all_succeeded(self) -> bool:
        return self.total > 0 and self.succeeded == self.total and self.status_2xx == self.total

    def problem(self) -> str:
        """Why the run does not count, or "" when it does."""
        if self.all_succeeded:
            return ""
        parts = [f"{self.succeeded} of {self.total} succeeded"]
        for name, count in (
            ("failed", self.failed),
            ("errored", self.errored),
            ("timed out", self.timeout),
        ):
            if count:
                parts.append(f"{count} {name}")
        statuses = self.status_2xx + self.status_3xx + self.status_4xx + self.status_5xx
        not_ok = statuses - self.status_2xx
        if not_ok:
            parts.append(f"{not_ok} non-2xx")
        if self.done and not statuses:
            # Answers came, but h2load read no status line from any of them (h2load 1.52
            # does so for an empty reason phrase, "HTTP/1.1 200 ", which RFC 9112 allows).
            parts.append("no status code read from any response")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FINISHED = re.compile(
    r"^finished in (?P<value>[0-9.]+)(?P<unit>us|ms|s|m|h), (?P<rps>[0-9.]+) req/s", re.M
)
_REQUESTS = re.compile(
    r"^requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout",
    re.M,
)
_STATUS = re.compile(
    r"^status codes: (?P<s2>\d+) 2xx, (?P<s3>\d+) 3xx, (?P<s4>\d+) 4xx, (?P<s5>\d+) 5xx", re.M
)
_TRAFFIC = re.compile(
    r"^traffic: .*?\((?P<total>\d+)\) total, .*?\((?P<headers>\d+)\) headers.*?"
    r"\((?P<data>\d+)\) data",
    re.M,
)
_PROTOCOL = re.compile(r"^Application protocol: (\S+)", re.M)


def parse_h2load_output(text: str) -> H2loadReport:
    finished = _FINISHED.search(text)
    requests = _REQUESTS.search(text)
    if finished is None or requests is None:
        last = text.strip().splitlines()[-1:] or ["no output"]
        raise H2loadParseError(f"not an h2load report: {last[0][:200]}")
    status = _STATUS.search(text)
    traffic = _TRAFFIC.search(text)
    protocol = _PROTOCOL.search(text)

    def count(match: re.Match[str] | None, group: str) -> int:
        return int(match.group(group)) if match is not None else 0

    try:
        duration = float(finished.group("value")) * _UNIT_SECONDS[finished.group("unit")]
        rate = float(finished.group("rps"))
    except ValueError:
        raise H2loadParseError(f"unreadable line: {finished.group(0)}") from None
    return H2loadReport(
        duration=duration,
        requests_per_second=rate,
        total=count(requests, "total"),
        started=count(requests, "started"),
        done=count(requests, "done"),
        succeeded=count(requests, "succeeded"),
        failed=count(requests, "failed"),
        errored=count(requests, "errored"),
        timeout=count(requests, "timeout"),
        status_2xx=count(status, "s2"),
        status_3xx=count(status, "s3"),
        status_4xx=count(status, "s4"),
        status_5xx=count(status, "s5"),
        traffic_bytes=count(traffic, "total"),
        header_bytes=count(traffic, "headers"),
        data_bytes=count(traffic, "data"),
        protocol=protocol.group(1) if protocol is not None else "",
    )


def find_h2load() -> str | None:
    return shutil.which("h2load")


def write_uri_list(path: Path, base_url: str, ids: Iterable[str]) -> Path:
    """One ``BASE/book?id=N`` line per id: requests cycle over every book."""
    base = base_url.rstrip("/")
    path.write_text("".join(f"{base}/book?id={book_id}\n" for book_id in ids), "ascii")
    return path


def h2load_command(
    uri_list: Path,
    *,
    http1: bool,
    requests: int,
    connections: int,
    streams: int,
    executable: str = "h2load",
) -> list[str]:
    command = [executable]
    if http1:
        command.append("--h1")
    command += ["-n", str(requests), "-c", str(connections), "-m", str(streams)]
    command += ["-i", str(uri_list)]
    return command
