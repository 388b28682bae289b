"""Instructions the crawl client executes per response, counted by valgrind (no drift).

    h2books serve --push --port 18543 --data-dir /tmp/data --no-access-log &
    python benchmarks/crawl_instructions.py https://localhost:18543 --push \
        --cacert /tmp/data/tls/ca.pem

The whole `python -m h2books crawl URL --books N` process runs under cachegrind
(`apt-get install valgrind`, PYTHONHASHSEED=0) twice, with a small and a large N; the
difference of the two totals divided by the difference of N is the client's cost of one
more response (with --push: one more pushed book), start-up and TLS handshake cancelled
out. User space only: system calls and the kernel do not count. Runs use the `src` of the
tree this file is in, whatever is installed: pass `--src` to measure another tree.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(src: Path, url: str, books: int, extra: list[str]) -> int:
    argv = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "h2books", "crawl", url, "--books", str(books),
        "--request-timeout", "60", "--timeout", "600", "--json", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    found = _TOTAL.search(done.stderr)
    if found is None:
        raise SystemExit(f"no count from cachegrind:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=3000)
    args, extra = parser.parse_known_args(argv)  # the rest goes to `h2books crawl`
    small = instructions(args.src, args.url, args.small, extra)
    large = instructions(args.src, args.url, args.large, extra)
    per_response = (large - small) / (args.large - args.small)
    print(f"{args.src}: {per_response:,.0f} instructions per response")
    return 0


if __name__ == "__main__":
    sys.exit(main())
