"""HPACK: our encoder's output against the `hpack` library's, and its cost per header list.

    python benchmarks/hpack_ratio.py            # bytes per set, ours / hpack's
    python benchmarks/hpack_ratio.py --timing   # and µs per header list, shared caches
                                                # emptied (cold) or not (warm); under flock

The sets are generated in code (src/h2books/bench/header_sets.py). Each connection gets a
fresh encoder on both sides. `hpack` is given the flags the `h2` library gives it: cookies under
20 octets and credentials never indexed (h2.utilities), the same as ours. Responses go through
the server's block cache rule (a cached block is sent again while the table state holds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


from h2books.bench import header_sets
from h2books.client.stats import header_list_size
from h2books.protocol.hpack import Encoder, encoder, strings

ROUNDS = 5


def our_bytes(header_set: header_sets.HeaderSet) -> tuple[int, int]:
    """(octets, block cache hits)."""
    total = hits = 0
    if header_set.responses is not None:
        for responses in header_set.responses:
            blocks, connection_hits = header_sets.encode_like_the_server(Encoder(), responses)
            total += sum(map(len, blocks))
            hits += connection_hits
        return total, hits
    for connection in header_set.connections:
        encoder = Encoder()
        total += sum(len(encoder.encode(fields)) for fields in connection)
    return total, 0


def our_microseconds(header_set: header_sets.HeaderSet, *, cold: bool, rounds: int) -> float:
    """Best of ROUNDS: µs per header list, fresh encoders (responses: with the block cache).

    ``cold`` empties the module-level caches shared by all connections before each round, as
    for values no connection sent before (a visitor's cookies, a new path); warm, a round
    finds there what the previous round left, as for values every connection sends."""
    best = float("inf")
    for _ in range(rounds):
        if cold:
            for cache in _shared_caches():
                cache.clear()
        start = time.perf_counter()
        our_bytes(header_set)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / header_set.header_lists


def _shared_caches() -> list[dict[Any, Any]]:
    caches: list[dict[Any, Any]] = [strings._encoded_strings]
    caches.append(encoder._unindexed_representations)
    return caches


def all_sets() -> list[header_sets.HeaderSet]:
    return [
        header_sets.browser_set(),
        header_sets.crawl_set(),
        header_sets.h2load_set(),
        header_sets.response_set(),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="store_true", help="also µs per header list")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timing: best of this many")
    args = parser.parse_args()
    print(
        f"{'set':<10}{'lists':>7}{'plain':>10}{'hpack':>9}{'ours':>9}{'ours/hpack':>12}"
        f"{'hits':>7}" + (f"{'µs cold':>9}{'µs warm':>9}" if args.timing else "")
    )
    for header_set in all_sets():
        plain = sum(header_list_size(f) for c in header_set.connections for f in c)
        theirs = header_sets.hpack_library_bytes(header_set)
        ours, hits = our_bytes(header_set)
        line = (
            f"{header_set.name:<10}{header_set.header_lists:>7,}{plain:>10,}{theirs:>9,}"
            f"{ours:>9,}{ours / theirs:>12.3f}{hits:>7,}"
        )
        if args.timing:
            cold = our_microseconds(header_set, cold=True, rounds=args.rounds)
            warm = our_microseconds(header_set, cold=False, rounds=args.rounds)
            line += f"{cold:>9.2f}{warm:>9.2f}"
        print(line)


if __name__ == "__main__":
    main()
