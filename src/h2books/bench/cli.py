"""`h2books bench`: the post's experiment (default) or the h2load benchmark (``--load h2load``).

`register` adds the sub-command to the main parser; ``python -m h2books.bench``
runs it on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from h2books.argtypes import positive_int, seconds
from h2books.bench.names import (
    APP_NAMES,
    CLIENT_KEYS,
    DEFAULT_CLIENT_KEYS,
    SERVER_NAMES,
    WORKLOAD_KEYS,
)
from h2books.netem.arguments import add_network_arguments

__all__ = ["build_parser", "cmd_bench", "main_bench", "register"]

DESCRIPTION = (
    "With --rtt/--loss/--bandwidth (and no --clients or --servers): the answer, HTTP/1.1 over "
    "1 and 6 connections, HTTP/2, HTTP/2 + push and HTTP/3 side by side, our client against "
    "our server under each network condition, with a chart (--png, default h2books-answer.png). "
    "Otherwise run the post's experiment: each client (ours over HTTP/1.1 and HTTP/2, requests, httpx, "
    "h2load) crawls each server (ours, and Twisted, Hypercorn, Granian and Uvicorn+zttp where "
    "installed: pip install 'h2books[peers]'), repeated, with the server and the client pinned "
    "to separate cores. With --load h2load, run the h2load workloads of benchmarks/README.md instead; "
    "with --app asgi (or wsgi), the same ASGI (WSGI) bookstore on h2books and on every peer."
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the main parser's sub-commands."""
    parser = commands.add_parser(
        "bench", help="the post's HTTP/1.1-vs-HTTP/2 experiment, ours against the peers",
        description=DESCRIPTION,
    )  # fmt: skip
    _add_arguments(parser)
    parser.set_defaults(handler=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="h2books bench", description=DESCRIPTION)
    _add_arguments(parser)
    return parser


def _seconds(text: str) -> float:
    value = seconds(text)
    if not value:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _apps(text: str) -> list[str]:
    apps = list(dict.fromkeys(_list(text)))
    unknown = [app for app in apps if app not in APP_NAMES]
    if unknown or not apps:
        raise argparse.ArgumentTypeError(
            f"unknown app {', '.join(unknown) or repr(text)}; choose from {', '.join(APP_NAMES)}"
        )
    return apps


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--load", choices=["h2load"],
        help="run the h2load workloads (benchmarks/README.md) instead of the crawl experiment",
    )  # fmt: skip
    parser.add_argument(
        "--app", type=_apps, metavar="LIST", default=["native"],
        help=f"h2load mode: which bookstore, from {','.join(APP_NAMES)}, comma-separated: native "
        "(ours serves its own handler; the peers the ASGI app), asgi (the same ASGI app on every "
        "server, ours through AsgiInterface), wsgi (the WSGI app: ours and Granian's WSGI) "
        "(default native)",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true",
        help="our server alone, fewer repeats (about 20 s): a smoke test",
    )  # fmt: skip
    parser.add_argument(
        "--servers", type=_list, metavar="LIST",
        help=f"comma-separated, from {','.join(SERVER_NAMES)} (those of the --app; default: ours "
        "and every installed peer)",
    )  # fmt: skip
    parser.add_argument(
        "--add-server", action="append", default=[], metavar="NAME=COMMAND",
        help="also bench your own server: COMMAND may use {port} {cert} {key} {data_dir} {python}",
    )  # fmt: skip
    parser.add_argument(
        "--clients",
        type=_list,
        metavar="LIST",
        help=f"crawl mode: from {','.join(CLIENT_KEYS)} (default {','.join(DEFAULT_CLIENT_KEYS)}; "
        "h2load ones when it is on the PATH)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, metavar="N",
        help="crawl mode: crawls per cell (default 3; 2 with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--books", type=positive_int, metavar="N",
        help="crawl mode: each crawl fetches the index and then the first N books (default: "
        "every book; under --rtt, min(every book, 20 s / RTT), the same for every client)",
    )  # fmt: skip
    parser.add_argument(
        "--workloads", type=_list, metavar="LIST",
        help=f"h2load mode: from {','.join(WORKLOAD_KEYS)} (default all)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=positive_int, metavar="N",
        help="h2load mode: recorded runs per server and workload (default 5; 1 with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--requests", type=positive_int, metavar="N",
        help="h2load mode: requests per run instead of each workload's (30000 or 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=_seconds, metavar="S",
        help="give up on one crawl or h2load run after S seconds (default 60 / 180)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--png", type=Path, metavar="PATH", help="write a chart (needs matplotlib)")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="write the results as a markdown section"
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="serve this data directory (default: a fresh one with the generated catalogue)",
    )  # fmt: skip
    parser.add_argument(
        "--catalog", metavar="PATH_OR_URL",
        help="import this books.json (the post's format) into the data directory first",
    )  # fmt: skip
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and the client to cores"
    )
    add_network_arguments(parser, sweep=True)


def cmd_bench(args: argparse.Namespace) -> int:
    # The benchmark itself is loaded only when it runs.
    from h2books.bench.command import run_bench

    return run_bench(args)


def main_bench(argv: Sequence[str] | None = None) -> int:
    from h2books.bench.command import BenchUsageError

    args = build_parser().parse_args(argv)
    try:
        return cmd_bench(args)
    except BenchUsageError as exc:
        print(f"h2books bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
