"""``--rtt --bandwidth --loss``: the same options, and the same meaning, in crawl and bench."""

from __future__ import annotations

import argparse
import itertools

from h2books.argtypes import bandwidth, duration, durations, percentage
from h2books.netem.conditions import Conditions

__all__ = ["add_network_arguments", "conditions_from_args"]

_HELP_CRAWL = (
    "Through a packet-level link emulator (network namespaces + TUN; root) or, without "
    "root, a userspace delay proxy that cannot lose TCP segments. The emulator's forwarder "
    "runs on every CPU, whatever taskset the crawl was started under."
)
_HELP_BENCH = (
    "Through a packet-level link emulator (network namespaces + TUN; needs root), brought up "
    "around each run; a sweep runs every cell under each combination of --rtt and --loss. "
    "Its forwarder runs on every CPU, not on the pinned client's core."
)


def add_network_arguments(parser: argparse.ArgumentParser, *, sweep: bool) -> None:
    group = parser.add_argument_group("network conditions", _HELP_BENCH if sweep else _HELP_CRAWL)
    if sweep:
        group.add_argument(
            "--rtt", type=durations, metavar="LIST",
            help="round-trip time(s) to add, a sweep: 50ms, or 0,10,50,150 (milliseconds)",
        )  # fmt: skip
        group.add_argument(
            "--loss", type=_percentages, metavar="LIST",
            help="packet loss each way, a sweep: 1%%, or 0,1 (percent)",
        )  # fmt: skip
    else:
        group.add_argument(
            "--rtt", type=duration, metavar="TIME",
            help="round-trip time to add: 50ms (half each way; a bare number is ms)",
        )  # fmt: skip
        group.add_argument(
            "--loss", type=percentage, metavar="PERCENT", help="packet loss each way: 1%%"
        )
    group.add_argument(
        "--bandwidth", type=bandwidth, metavar="RATE",
        help="link rate each way: 20mbit (bit, kbit, mbit, gbit); default no limit",
    )  # fmt: skip


def _percentages(text: str) -> list[float]:
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"no percentage in {text!r}")
    return list(dict.fromkeys(percentage(item) for item in items))


def conditions_from_args(args: argparse.Namespace) -> list[Conditions]:
    """Every combination of the given RTTs and losses (one, without a sweep)."""
    rtts = args.rtt if isinstance(args.rtt, list) else [args.rtt or 0.0]
    losses = args.loss if isinstance(args.loss, list) else [args.loss or 0.0]
    return [
        Conditions(rtt=rtt, bandwidth=args.bandwidth, loss=loss)
        for rtt, loss in itertools.product(rtts, losses)
    ]
