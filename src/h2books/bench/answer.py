"""The post's question answered on a network: h1, h2, h2 + push and h3, side by side.

`h2books bench --rtt 50ms` (network conditions, and no --clients, --servers or --load)
runs the post's crawl (`experiment.py`, on the one runner) with five variants, all of
them our client against our server, so that the comparison is between protocols and
not between client libraries:

* ``ours-h1``       HTTP/1.1 over one connection: one request at a time, one RTT per book;
* ``ours-h1x6``     HTTP/1.1 over six connections, as a browser opens to one origin;
* ``ours-h2``       HTTP/2 over one connection, 100 requests in flight;
* ``ours-h2-push``  HTTP/2 with server push: the index brings the books with it;
* ``ours-h3``       HTTP/3 over QUIC (UDP), 100 requests in flight.

The server is ours started with ``--push`` (push goes only to the client that keeps
SETTINGS_ENABLE_PUSH at 1: the other variants see the plain server) and HTTP/3 on.

Books per condition. Over one HTTP/1.1 connection each book costs a round trip, so
3000 books at 150 ms take 450 s. Each condition therefore crawls the first N books
of the index, N = min(all, BUDGET / RTT): the slowest variant stays near BUDGET
seconds, and every variant of a condition fetches the same N. The table says N.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from h2books.bench.experiment import Cell, ExperimentResult
from h2books.bench.names import ANSWER_CLIENT_KEYS
from h2books.bench.report import DASH, TIMES, Table, bar_chart, experiment_table, markdown
from h2books.bench.stats import ratio
from h2books.netem.conditions import Conditions

__all__ = [
    "ANSWER_CLIENT_KEYS",
    "BUDGET",
    "VARIANT_TITLES",
    "answer_clients",
    "answer_markdown",
    "answer_table",
    "books_for",
    "condition_text",
    "write_answer_png",
]

BUDGET = 20.0  # seconds: about what HTTP/1.1 over one connection takes under each condition
BASELINE = "ours-h1"  # the speed-ups are against one HTTP/1.1 connection, the post's setup

VARIANT_TITLES = {
    "ours-h1": "h1, 1 connection",
    "ours-h1x6": "h1, 6 connections",
    "ours-h2": "h2, 1 connection",
    "ours-h2-push": "h2 + push",
    "ours-h3": "h3 (QUIC)",
}


def books_for(conditions: Conditions, total: int, budget: float = BUDGET) -> int:
    """How many books each crawl fetches under `conditions`: min(all, budget / RTT)."""
    if conditions.rtt <= 0:
        return total
    return max(1, min(total, int(budget / conditions.rtt)))


def condition_text(title: str) -> str:
    """A condition's title without how it is made: ``RTT 50 ms, 1% loss each way``."""
    return title.partition(" (")[0]


def _variant(cell: Cell) -> str:
    return VARIANT_TITLES.get(cell.client.key, cell.client.label)


def _wall_text(result: ExperimentResult, cell: Cell | None, notes: list[str]) -> str:
    if cell is None:
        return DASH
    wall = cell.wall()
    if wall is None:
        reason = cell.errors[0] if cell.errors else "no run"
        notes.append(f"✗ {_variant(cell)} @ {cell.condition.key}: {reason}")
        return "✗"
    text = f"{wall.median:.3f}" if wall.median < 10 else f"{wall.median:.1f}"
    if cell.client.key != BASELINE:
        baseline = result.cell(cell.server, BASELINE, cell.condition.key)
        base_wall = baseline.wall() if baseline is not None else None
        speed = ratio(base_wall.median if base_wall else None, wall.median)
        if speed is not None:
            text += f" ({speed:.1f}{TIMES})" if speed < 100 else f" ({speed:.0f}{TIMES})"
    if len(cell.ok_runs) < len(cell.runs) or cell.note:
        problem = next((run.problem for run in cell.runs if not run.ok), cell.note)
        notes.append(
            f"⚠ {_variant(cell)} @ {cell.condition.key}: {len(cell.ok_runs)}/{len(cell.runs)} "
            f"runs ok; {problem}"
        )
        text += " ⚠"
    return text


def answer_table(result: ExperimentResult) -> Table:
    """One row per network condition, one column per variant: median wall seconds."""
    variants = list(dict.fromkeys(cell.client.key for cell in result.cells))
    conditions = list(dict.fromkeys(cell.condition for cell in result.cells))
    columns = ["network", "books", *(VARIANT_TITLES.get(key, key) for key in variants)]
    rows: list[list[str]] = []
    notes: list[str] = []
    server = result.cells[0].server if result.cells else "ours"
    for condition in conditions:
        row = [condition_text(condition.title), str(result.books_under(condition))]
        row += [
            _wall_text(result, result.cell(server, key, condition.key), notes) for key in variants
        ]
        rows.append(row)
    notes[:0] = [
        f"wall seconds of one crawl (the index, then the first N books the index lists: "
        f"N = 'books', min(all {result.book_count}, {BUDGET:g} s / RTT), the same for every "
        f"variant), median of {result.repeat}; in brackets, how many times faster than "
        "h1 over 1 connection.",
        "every variant is our client (h2books.Client) against our server (h2books serve --push, "
        "HTTP/3 on): the protocols differ, nothing else; push goes only to the h2 + push client.",
        *(f"network {condition_text(c.title)}: {c.title}." for c in conditions),
    ]
    return Table(
        "HTTP/1.1, HTTP/2, HTTP/2 + push and HTTP/3 on the network: the post's crawl",
        columns,
        rows,
        notes,
        numeric=set(range(1, len(columns))),
        sections=[],
    )


def answer_markdown(result: ExperimentResult, command: str) -> str:
    """The answer table, then every cell in detail (CPU, min-max), for a results file."""
    table = answer_table(result)
    return "\n".join(
        [
            f"## {table.title}",
            "",
            f"Command: `{command}` ({result.duration:.0f} s).",
            "",
            markdown(table),
            "### Every cell",
            "",
            markdown(experiment_table(result)),
        ]
    )


def write_answer_png(path: Path, result: ExperimentResult) -> None:
    """Wall time per variant (bars) per network condition (groups), log scale."""
    conditions = list(dict.fromkeys(cell.condition for cell in result.cells))
    groups = {
        c.key: f"{condition_text(c.title)}\n{result.books_under(c)} books" for c in conditions
    }
    series = list(dict.fromkeys(_variant(cell) for cell in result.cells))
    values = {(groups[c.condition.key], _variant(c)): c.wall() for c in result.cells}
    failed = {(groups[c.condition.key], _variant(c)): c.failed for c in result.cells}
    bar_chart(
        path,
        f"The post's crawl on the network: our client and server, median of {result.repeat} "
        f"runs, whiskers min{DASH}max",
        list(groups.values()),
        series,
        values,
        failed,
        "wall time of the crawl, seconds (log scale; shorter is faster)",
        log=True,
    )


def answer_clients(available: Sequence[str]) -> tuple[list[str], list[str]]:
    """The answer's variants this build has, and a note for each it has not."""
    keys = [key for key in ANSWER_CLIENT_KEYS if key in available]
    notes = [
        f"{VARIANT_TITLES[key]} ({key}) is not in this build: left out"
        for key in ANSWER_CLIENT_KEYS
        if key not in available
    ]
    return keys, notes
