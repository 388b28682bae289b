"""Showing a benchmark: a terminal table (rich when installed), markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from h2books.bench.experiment import POST_BASELINE, POST_SERVER, Cell, ExperimentResult
from h2books.bench.loadtest import LoadCell, LoadResult
from h2books.bench.runner import LOOPBACK, Condition
from h2books.bench.stats import Spread
from h2books.client.stats import HeaderBytes

__all__ = [
    "DASH",
    "TIMES",
    "Table",
    "bar_chart",
    "experiment_markdown",
    "experiment_table",
    "load_markdown",
    "load_table",
    "markdown",
    "print_table",
    "write_experiment_png",
    "write_json",
    "write_load_png",
]


# Typographic marks, spelled as escapes so that no look-alike character hides in the source.
DASH = "\u2013"  # en dash: ranges, and "no figure"
TIMES = "\u00d7"  # multiplication sign: ratios


@dataclass(slots=True)
class Table:
    """Rows of text, printable by rich or as markdown; `notes` go underneath."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str]
    numeric: set[int]  # right-aligned columns
    sections: list[int]  # row indexes that start a new group


def _seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def _spread_text(value: Spread | None, digits: int = 3, thousands: bool = False) -> str:
    if value is None:
        return DASH
    if thousands:
        return f"{value.median:,.0f} ({value.low:,.0f}{DASH}{value.high:,.0f})"
    return f"{value.median:.{digits}f} ({value.low:.{digits}f}{DASH}{value.high:.{digits}f})"


def _times(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}{TIMES}" if value < 10 else f"{value:.1f}{TIMES}"


def _us(value: Spread | None) -> str:
    return DASH if value is None else f"{value.median:,.0f}"


def experiment_table(result: ExperimentResult) -> Table:
    columns = [
        "server",
        "client",
        f"wall s (min{DASH}max)",
        "user s",
        "sys s",
        "CPU%",
        "req/s",
        "client µs/req",
        "server µs/req",
        f"{TIMES} post",
        f"{TIMES} ours",
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    sections: list[int] = []
    previous = None
    for cell in result.cells:
        if cell.server != previous:
            sections.append(len(rows))
            previous = cell.server
        rows.append(_experiment_row(result, cell, notes))
    notes.append(
        f"wall, user, sys: medians of {result.repeat} crawls of {result.book_count + 1} requests "
        "(the index, then every book); user/sys/CPU% are the client's, as in the post."
    )
    notes.append(
        f"{TIMES} post: speed relative to the post's setup over the same protocol ({POST_SERVER} with "
        f"{POST_BASELINE['h1']} over HTTP/1.1, with {POST_BASELINE['h2']} standing in for hyper "
        f"over HTTP/2); {TIMES} ours: relative to our server with the same client. >1 is faster."
    )
    notes.append(f"pinning: {result.pinning.describe()}.")
    notes.extend(_network_notes(cell.condition for cell in result.cells))
    return Table(
        "The post's experiment: each client crawls each server",
        columns,
        rows,
        notes,
        numeric=set(range(2, len(columns))),
        sections=sections,
    )


_PROTOCOL_HEADINGS = {"h1": "HTTP/1.1 (text)", "h2": "HTTP/2 (HPACK)", "h3": "HTTP/3 (QPACK)"}


def header_bytes_table(result: ExperimentResult) -> Table | None:
    """Header bytes per request of our client's crawl of our server, the protocols side by
    side (a column per `HeaderBytes` record: h1, h2, and h3 when the bench runs it)."""
    records = result.header_bytes()
    if not records:
        return None

    def per_request(value: int, record: HeaderBytes) -> str:
        return f"{value / record.requests:,.1f}" if record.requests else DASH

    def saved(wire: int, plain: int) -> str:
        share = HeaderBytes.saved(wire, plain)
        return DASH if share is None else f"{share:.1%}"

    rows = [
        ["request headers, on the wire"] + [per_request(r.sent, r) for r in records],
        ["request headers, uncompressed"] + [per_request(r.sent_plain, r) for r in records],
        ["request headers, saved"] + [saved(r.sent, r.sent_plain) for r in records],
        ["response headers, on the wire"] + [per_request(r.received, r) for r in records],
        ["response headers, uncompressed"] + [per_request(r.received_plain, r) for r in records],
        ["response headers, saved"] + [saved(r.received, r.received_plain) for r in records],
    ]
    return Table(
        "Header bytes per request: our client crawling our server",
        ["octets per request"] + [_PROTOCOL_HEADINGS.get(r.protocol, r.protocol) for r in records],
        rows,
        [
            "on the wire: HEADERS and CONTINUATION payloads (h2), heads and trailers (h1); "
            "uncompressed: the same fields as 'name: value' lines, CRLF included.",
        ],
        numeric=set(range(1, len(records) + 1)),
        sections=[0, 3],
    )


def _experiment_row(result: ExperimentResult, cell: Cell, notes: list[str]) -> list[str]:
    name = [cell.server, cell.client.label + _condition_suffix(cell.condition)]
    wall = cell.wall()
    if wall is None:
        reason = cell.errors[0] if cell.errors else "no run"
        notes.append(f"✗ {cell.server} ⇄ {cell.client.label}: {reason}")
        return [*name, "✗ " + _short(reason), *[DASH] * 8]
    failures = [run.problem for run in cell.runs if not run.ok]
    if failures or cell.note:
        marker = f"{len(cell.ok_runs)}/{len(cell.runs)} ok"
        notes.append(
            f"⚠ {cell.server} ⇄ {cell.client.label}: {marker}; {(failures or [cell.note])[0]}"
        )
        name[1] += f" ⚠ {marker}"
    user, system = cell.median_of("user"), cell.median_of("sys")
    cpu_percent = (
        f"{100 * (user + system) / wall.median:.0f}"
        if user is not None and system is not None and wall.median
        else DASH
    )
    requests = cell.ok_runs[0].requests
    return [
        *name,
        _spread_text(wall),
        _seconds(user),
        _seconds(system),
        cpu_percent,
        f"{requests / wall.median:,.0f}" if wall.median else DASH,
        _us(cell.client_cpu_us()),
        _us(cell.server_cpu_us()),
        _times(result.speed_vs_post(cell)),
        _times(result.speed_vs_ours(cell)),
    ]


def _condition_suffix(condition: Condition) -> str:
    return "" if condition is LOOPBACK else f" @ {condition.key}"


def _network_notes(conditions: Iterable[Condition]) -> list[str]:
    """One line per network condition of the run: what the client and the servers went through."""
    unique = list(dict.fromkeys(conditions))
    if unique == [LOOPBACK]:
        return []
    return [f"network @ {condition.key}: {condition.title}." for condition in unique]


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_table(result: LoadResult) -> Table:
    columns = [
        "workload",
        "server",
        f"req/s median (min{DASH}max)",
        "runs ok",
        "server µs/req",
        "ours ÷ this",
        "per round",
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    sections: list[int] = []
    workloads: list[str] = []
    for cell in result.cells:
        if cell.workload.key not in workloads:
            workloads.append(cell.workload.key)
    for key in workloads:
        sections.append(len(rows))
        for index, cell in enumerate(c for c in result.cells if c.workload.key == key):
            row = _load_row(result, cell, notes)
            if index:
                row[0] = ""  # the workload is named once per group
            rows.append(row)
    notes.append(
        f"req/s: median of {result.runs} h2load runs after one unrecorded warm-up; a run counts "
        "only when every request succeeded; ✗ (…): no run counted, in brackets the rate of the "
        "failed runs, for information only. server µs/req: the server's CPU (utime+stime of its "
        "processes) over the run, per request. per round: the median of our req/s over this "
        "server's in the same round (the runner alternates servers), and its min-max."
    )
    notes.append(f"pinning: {result.pinning.describe()}.")
    notes.extend(_network_notes(cell.condition for cell in result.cells))
    return Table(
        "h2load, over TLS: requests cycle over every book",
        columns,
        rows,
        notes,
        numeric={2, 3, 4, 5, 6},
        sections=sections,
    )


def _load_row(result: LoadResult, cell: LoadCell, notes: list[str]) -> list[str]:
    title = f"{cell.workload.key}  ({cell.workload.title})"
    name = cell.display_server + _condition_suffix(cell.condition)
    if cell.not_applicable:
        return [title, name, f"n/a ({cell.not_applicable})", DASH, DASH, DASH, DASH]
    rate = cell.rate()
    problems = cell.problems()
    if problems:
        notes.append(
            f"{'✗' if rate is None else '⚠'} {name} {cell.workload.key}: " + "; ".join(problems)
        )
    if rate is None:
        failed = cell.failed_rate()
        if failed is None:
            reason = problems[0] if problems else "no run"
            return [title, name, "✗ " + _short(reason), f"0/{len(cell.runs)}", DASH, DASH, DASH]
        # No run counts, but the failed ones still show how fast it went until it failed.
        ratio = result.ratio_to_failed(cell)
        return [
            title,
            name,
            f"✗ ({_spread_text(failed, thousands=True)})",
            f"0/{len(cell.runs)}",
            DASH,
            f"({_times(ratio)})" if ratio is not None else DASH,
            DASH,
        ]
    ratio = result.ours_over(cell)
    return [
        title,
        name,
        _spread_text(rate, thousands=True),
        f"{len(cell.ok_runs)}/{len(cell.runs)}",
        _us(cell.server_cpu_us()),
        DASH if cell.server == "ours" else _times(ratio),
        _ratio_spread(result.ours_over_per_round(cell)),
    ]


def _ratio_spread(value: Spread | None) -> str:
    if value is None:
        return DASH
    return f"{_times(value.median)} ({value.low:.2f}{DASH}{value.high:.2f})"


def print_table(table: Table) -> None:
    try:
        from rich.console import Console
        from rich.table import Table as RichTable
    except ImportError:
        print(_plain(table))
        return
    console = Console()
    if not console.is_terminal:
        # Into a file or a pipe: no terminal to fit, so keep every figure whole.
        console = Console(width=200)
    rich_table = RichTable(title=table.title, title_justify="left", header_style="bold")
    for index, column in enumerate(table.columns):
        rich_table.add_column(column, justify="right" if index in table.numeric else "left")
    for index, row in enumerate(table.rows):
        rich_table.add_row(*row, end_section=index + 1 in table.sections)
    console.print(rich_table)
    for note in table.notes:
        console.print(note, highlight=False, markup=False)


def _plain(table: Table) -> str:
    widths = [
        max(len(table.columns[i]), *(len(row[i]) for row in table.rows)) if table.rows else len(c)
        for i, c in enumerate(table.columns)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in table.numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [table.title, line(table.columns), line(["-" * w for w in widths])]
    out += [line(row) for row in table.rows]
    return "\n".join(out + table.notes)


def markdown(table: Table) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    align = ["---:" if i in table.numeric else "---" for i in range(len(table.columns))]
    out = [
        "| " + " | ".join(escape(c) for c in table.columns) + " |",
        "|" + "|".join(align) + "|",
    ]
    out += ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    out.append("")
    out += [f"- {escape(note)}" for note in table.notes]
    return "\n".join(out) + "\n"


def _machine_lines(machine: dict[str, Any], extra: Sequence[str] = ()) -> list[str]:
    lines = [
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('kernel', '?')}, "
        f"{machine.get('python', '?')}; load average before the run "
        f"{machine.get('load_average', '?')}.",
    ]
    return lines + [f"- {line}" for line in extra]


def _versions_line(servers: dict[str, dict[str, str]]) -> str:
    parts = []
    for name, versions in servers.items():
        if versions:
            parts.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "Versions: " + "; ".join(parts) + "." if parts else f"Versions: {DASH}"


def experiment_markdown(result: ExperimentResult, command: str) -> str:
    versions = {o.spec.name: o.spec.versions() for o in result.servers}
    statuses = [f"{o.spec.name}: {o.status}" for o in result.servers if o.status != "ok"]
    lines = [
        f"## {experiment_table(result).title}",
        "",
        f"Command: `{command}` ({result.duration:.0f} s, {time_text(result.started)}).",
        "",
        *_machine_lines(result.machine, [_versions_line(versions), *statuses]),
        "",
        markdown(experiment_table(result)),
    ]
    headers = header_bytes_table(result)
    if headers is not None:
        lines += ["", f"### {headers.title}", "", markdown(headers)]
    return "\n".join(lines)


def load_markdown(result: LoadResult) -> str:
    workloads = list(dict.fromkeys(cell.workload.key for cell in result.cells))
    servers = list(dict.fromkeys((cell.server, cell.app) for cell in result.cells))
    header = [name if app == "native" else f"{name} ({app})" for name, app in servers]
    summary = ["| workload | " + " | ".join(header) + " |", "|---|" + "---:|" * len(servers)]
    cpu = ["| workload | " + " | ".join(header) + " |", "|---|" + "---:|" * len(servers)]
    for key in workloads:
        row, cpu_row = [key], [key]
        for server, app in servers:
            found = result.cell(server, key, app)
            row.append(_summary_text(result, found))
            figure = found.server_cpu_us() if found is not None else None
            cpu_row.append(_us(figure))
        summary.append("| " + " | ".join(row) + " |")
        cpu.append("| " + " | ".join(cpu_row) + " |")
    statuses = [
        f"{name}: {status}" for name, status in result.server_status.items() if status != "ok"
    ]
    lines = [
        "## h2load: our server against the peers",
        "",
        f"Command: `{result.command}` ({result.duration:.0f} s, {time_text(result.started)}).",
        "",
        *_machine_lines(
            result.machine,
            [
                f"Load generator: {result.h2load_version or 'h2load'}.",
                _versions_line(result.server_versions),
                *statuses,
            ],
        ),
        "",
        "Median req/s (and our median ÷ theirs). ✗ (N): no run counted, because requests "
        "failed in every run; N is h2load's req/s over those runs, which counts every completed "
        "request, whatever its status.",
        "",
        *summary,
        "",
        "Server CPU per request, µs (median over the counted runs):",
        "",
        *cpu,
        "",
        markdown(load_table(result)),
    ]
    return "\n".join(lines)


def _summary_text(result: LoadResult, cell: LoadCell | None) -> str:
    if cell is None:
        return DASH
    if cell.not_applicable:
        return f"n/a ({cell.not_applicable})"
    rate = cell.rate()
    if rate is None:
        failed = cell.failed_rate()
        if failed is None:
            return "✗"
        ratio = result.ratio_to_failed(cell)
        extra = f", ours {_times(ratio)}" if ratio is not None else ""
        return f"✗ ({failed.median:,.0f}{extra})"
    text = f"{rate.median:,.0f}"
    ratio = result.ours_over(cell)
    if cell.server != "ours" and ratio is not None:
        text += f" (ours {_times(ratio)})"
    return text


def time_text(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(timestamp))


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]


def bar_chart(
    path: Path,
    title: str,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], Spread | None],
    failed: dict[tuple[str, str], bool],
    xlabel: str,
    log: bool,
) -> None:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--png needs matplotlib: pip install 'h2books[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 0.8 / max(len(series), 1)
    figure, axes = plt.subplots(figsize=(10, 1.0 + 0.28 * len(groups) * len(series) + 0.5))
    for s_index, name in enumerate(series):
        ys: list[float] = []
        widths: list[float] = []
        lows: list[float] = []
        highs: list[float] = []
        for g_index, group in enumerate(groups):
            y = g_index + (s_index - (len(series) - 1) / 2) * height
            value = values.get((group, name))
            if value is None:
                if failed.get((group, name)):
                    axes.text(0.0, y, f"  ✗ {name}: failed", va="center", fontsize=7,
                              color="#c44e52", transform=axes.get_yaxis_transform())  # fmt: skip
                continue
            ys.append(y)
            widths.append(value.median)
            lows.append(value.median - value.low)
            highs.append(value.high - value.median)
        colour = _COLOURS[s_index % len(_COLOURS)]
        axes.barh(ys, widths, height=height * 0.9, color=colour, label=name,
                  xerr=[lows, highs], error_kw={"elinewidth": 0.8, "capsize": 2})  # fmt: skip
        for y, width, high in zip(ys, widths, highs, strict=True):
            label = f"{width:.3f}" if width < 10 else f"{width:,.0f}"
            axes.text(width + high, y, f" {label}", va="center", fontsize=7)
    axes.set_yticks(range(len(groups)), groups)
    axes.invert_yaxis()
    if log:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_experiment_png(path: Path, result: ExperimentResult) -> None:
    groups = list(dict.fromkeys(cell.server for cell in result.cells))
    series = list(dict.fromkeys(cell.client.label for cell in result.cells))
    values = {(c.server, c.client.label): c.wall() for c in result.cells}
    failed = {(c.server, c.client.label): c.failed for c in result.cells}
    bar_chart(
        path,
        f"HTTP/1.1 vs HTTP/2: the post's crawl ({result.book_count + 1} requests over one "
        f"connection), median of {result.repeat}, whiskers min{DASH}max",
        groups,
        series,
        values,
        failed,
        "wall time, seconds (log scale; shorter is faster)",
        log=True,
    )


def write_load_png(path: Path, result: LoadResult) -> None:
    groups = list(dict.fromkeys(cell.workload.key for cell in result.cells))
    series = list(dict.fromkeys(cell.display_server for cell in result.cells))
    values = {(c.workload.key, c.display_server): c.rate() for c in result.cells}
    failed = {(c.workload.key, c.display_server): c.rate() is None for c in result.cells}
    bar_chart(
        path,
        f"h2load over TLS, median of {result.runs} runs, whiskers min{DASH}max",
        groups,
        series,
        values,
        failed,
        "requests per second (longer is faster)",
        log=False,
    )
