"""`h2books crawl`: the post's client scripts as one command.

`register` adds the sub-command to the main `h2books` parser; `main_crawl`
runs it on its own (``python -m h2books.client.cli URL ...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from h2books.argtypes import positive_int, seconds
from h2books.client.crawl import CrawlError, CrawlOptions, CrawlResult, crawl, run
from h2books.netem.arguments import add_network_arguments, conditions_from_args
from h2books.netem.conditions import Conditions

__all__ = ["build_parser", "cmd_crawl", "main_crawl", "register"]

DESCRIPTION = (
    "Fetch the bookstore's index (/) and then every book (/book?id=N), check that each "
    "answer is a 200 with a JSON body and that all arrived, and print the post's figures: "
    "wall, user, sys, CPU%, requests/s, CPU per request, and the bytes on the wire "
    "(before TLS) split into headers, bodies and framing."
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``crawl`` to the main parser's sub-commands."""
    parser = commands.add_parser(
        "crawl",
        help="fetch every book over HTTP/1.1, HTTP/2 or HTTP/3 and time it",
        description=DESCRIPTION,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=cmd_crawl)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="h2books crawl", description=DESCRIPTION)
    _add_arguments(parser)
    return parser


def _seconds(text: str) -> float | None:
    return seconds(text) or None  # 0 means no limit


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the server, e.g. https://localhost:8443")
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument(
        "--http2",
        dest="http2",
        action="store_true",
        default=True,
        help="HTTP/2: ALPN h2 on https://, h2c prior knowledge on http:// (default)",
    )
    protocol.add_argument(
        "--http1", dest="http2", action="store_false", help="HTTP/1.1 with keep-alive"
    )
    protocol.add_argument(
        "--http3",
        action="store_true",
        help="HTTP/3 over QUIC, on UDP at the URL's port (https:// only; `serve --http3`)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=100,
        metavar="N",
        help="requests in flight, as a sliding window (default 100)",
    )
    parser.add_argument(
        "--chunked",
        action="store_true",
        help="the post's way: send --concurrency requests, wait for all, send the next batch",
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=1,
        metavar="N",
        help="spread the requests over N connections (default 1)",
    )
    parser.add_argument(
        "--books",
        type=positive_int,
        metavar="N",
        help="fetch only the first N books the index lists (the index is still fetched); "
        "keeps a crawl at a high --rtt short",
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="HTTP/2: allow server push (SETTINGS_ENABLE_PUSH=1) and take the books pushed "
        "with the index instead of requesting them (h2books serve --push)",
    )
    parser.add_argument("--cacert", type=Path, metavar="PATH", help="trust this CA (PEM)")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="give up when the whole crawl takes longer (default 30; 0 = no limit)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="give up when one request takes longer (default 10; 0 = no limit)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_network_arguments(parser, sweep=False)


def cmd_crawl(args: argparse.Namespace) -> int:
    options = CrawlOptions(
        url=args.url,
        http2=args.http2,
        http3=args.http3,
        concurrency=args.concurrency,
        chunked=args.chunked,
        connections=args.connections,
        cacert=args.cacert,
        insecure=args.insecure,
        timeout=args.timeout,
        request_timeout=args.request_timeout,
        push=args.push,
        books=args.books,
    )
    (conditions,) = conditions_from_args(args)
    network: dict[str, object] = {}
    try:
        if conditions.emulated:
            result, network = _crawl_emulated(options, conditions)
        else:
            result = run(lambda: crawl(options))
    except CrawlError as exc:
        if args.json:
            print(json.dumps({"ok": False, "url": args.url, "error": str(exc)}))
        print(f"h2books crawl: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps({**result.as_dict(), **({"network": network} if network else {})}))
    else:
        print(result.report())
        if network:
            print(f"  network: {network['description']}")
    return 0


def _crawl_emulated(
    options: CrawlOptions, conditions: Conditions
) -> tuple[CrawlResult, dict[str, object]]:
    """The crawl through the emulated link (or the delay proxy where namespaces are unavailable)."""
    from h2books.client.origin import Origin
    from h2books.netem.network import NamespaceError, emulated_network
    from h2books.netem.proxy import ProxyError

    try:
        origin = Origin(options.url)
    except ValueError as exc:
        raise CrawlError(str(exc)) from None
    try:
        with emulated_network(conditions, (origin.host, origin.port)) as network:
            options.connect_to = network.connect_to
            with network.client_side():
                result = run(lambda: crawl(options))
    except (NamespaceError, ProxyError) as exc:
        raise CrawlError(str(exc)) from None
    return result, network.as_dict()


def main_crawl(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cmd_crawl(args)


if __name__ == "__main__":
    sys.exit(main_crawl())
