"""What `h2books bench` does once its options are parsed: pick, run, report."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from h2books.bench.answer import answer_clients
from h2books.bench.experiment import (
    ALL_CLIENTS,
    DEFAULT_CLIENTS,
    ExperimentConfig,
    ExperimentResult,
    crawl_plan,
    run_experiment,
)
from h2books.bench.h2load import find_h2load
from h2books.bench.loadtest import (
    DEFAULT_WORKLOADS,
    WORKLOADS,
    LoadConfig,
    LoadResult,
    load_plan,
    run_loadtest,
)
from h2books.bench.machine import describe_machine, h2load_version
from h2books.bench.processes import Pinning, detect_pinning
from h2books.bench.runner import Condition, network_condition
from h2books.bench.servers import OURS, OURS_PUSHING, ServerSpec, custom_server, servers_for
from h2books.bench.workspace import Workspace, workspace
from h2books.netem.conditions import Conditions

__all__ = ["BenchUsageError", "run_bench"]

PEER_HINT = "pip install 'h2books[peers]'"


class BenchUsageError(Exception):
    """A bad option; reported in one line by the main command line."""

    user_facing = True


def _pick_servers(args: argparse.Namespace) -> tuple[list[ServerSpec], list[str]]:
    """The servers to run, app set after app set, and a note per default peer not installed."""
    apps: list[str] = args.app
    if apps != ["native"] and args.load != "h2load":
        raise BenchUsageError("--app asgi and --app wsgi are for --load h2load")
    notes: list[str] = []
    servers: list[ServerSpec] = []
    if args.servers is not None:
        known = {name for app in apps for name in servers_for(app)}
        unknown = [name for name in args.servers if name not in known]
        if unknown:
            raise BenchUsageError(
                f"unknown server {', '.join(unknown)} for --app {','.join(apps)}; "
                f"choose from {', '.join(sorted(known))}"
            )
    for app in apps:
        registry = servers_for(app)
        if args.servers is not None:
            servers += [registry[name] for name in dict.fromkeys(args.servers) if name in registry]
            continue
        servers.append(registry["ours"])
        if args.quick:
            continue
        for peer in list(registry.values())[1:]:
            if peer.installed:
                servers.append(peer)
            else:
                missing = ", ".join(peer.missing())
                notes.append(f"{peer.name} ({app}) is not installed (no {missing}): left out")
    if notes:
        notes.append(f"for every peer: {PEER_HINT}")
    for entry in args.add_server:
        name, sep, template = entry.partition("=")
        if not sep or not name.strip() or not template.strip():
            raise BenchUsageError(f"--add-server needs NAME=COMMAND, not {entry!r}")
        taken = {name for app in apps for name in servers_for(app)}
        if name.strip() in taken or any(s.name == name.strip() for s in servers):
            raise BenchUsageError(f"--add-server: the name {name.strip()!r} is taken")
        servers.append(custom_server(name.strip(), template, apps[0]))
    return servers, notes


def _pick_clients(args: argparse.Namespace, h2load: str | None) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    if args.clients is not None:
        unknown = [name for name in args.clients if name not in ALL_CLIENTS]
        if unknown:
            raise BenchUsageError(
                f"unknown client {', '.join(unknown)}; choose from {', '.join(ALL_CLIENTS)}"
            )
        return list(dict.fromkeys(args.clients)), notes
    keys = list(DEFAULT_CLIENTS)
    if h2load is None:
        keys = [key for key in keys if not key.startswith("h2load")]
        notes.append("h2load is not on the PATH (apt-get install nghttp2-client): no h2load cells")
    return keys, notes


def _command_text() -> str:
    args = sys.argv[1:]
    if args[:1] != ["bench"]:
        args = ["bench", *args]
    return "h2books " + shlex.join(args)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[str, int], None]]:
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        yield _print_progress
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=total)

        def update(description: str, advance: int) -> None:
            progress.update(task, description=description, advance=advance)

        yield update


def _print_progress(description: str, advance: int) -> None:
    if advance == 0:
        print(f"  {description} …", file=sys.stderr, flush=True)


def _wanted_conditions(args: argparse.Namespace) -> list[Conditions]:
    """The network conditions of the run (--rtt/--bandwidth/--loss), checked to be possible."""
    from h2books.netem.arguments import conditions_from_args
    from h2books.netem.namespaces import unavailable_reason

    wanted = conditions_from_args(args)
    if any(conditions.emulated for conditions in wanted):
        reason = unavailable_reason()
        if reason is not None:
            raise BenchUsageError(
                f"--rtt/--bandwidth/--loss need the emulated link (network namespaces + TUN): "
                f"{reason}; 'h2books crawl --rtt ...' has a delay-proxy fallback without them"
            )
    return wanted


def _answer_mode(args: argparse.Namespace) -> bool:
    """Network conditions and no choice of servers or clients: the protocols side by side."""
    network = any(getattr(args, name) is not None for name in ("rtt", "loss", "bandwidth"))
    chosen = args.clients is not None or args.servers is not None or bool(args.add_server)
    return args.load is None and network and not chosen


def _books(args: argparse.Namespace, wanted: list[Conditions], total: int) -> dict[str, int]:
    """Books per crawl by condition key: --books, else min(all, budget / RTT)."""
    from h2books.bench.answer import books_for

    return {
        network_condition(conditions).key: min(args.books, total)
        if args.books is not None
        else books_for(conditions, total)
        for conditions in wanted
    }


def run_bench(args: argparse.Namespace) -> int:
    wanted = _wanted_conditions(args)
    conditions = [network_condition(each) for each in wanted]
    answer = _answer_mode(args)
    servers: list[ServerSpec]
    notes: list[str] = []
    if answer:
        servers = [OURS_PUSHING]
    else:
        servers, notes = _pick_servers(args)
    pinning = detect_pinning(not args.no_pin)
    h2load = find_h2load()
    machine = describe_machine()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.png is not None:
        _check_matplotlib()
    with workspace(args.data_dir, args.catalog) as space:
        if args.load == "h2load":
            result = _run_load(args, servers, space, pinning, h2load, conditions)
            result.machine = machine
            return _report_load(args, result)
        if answer:
            clients, client_notes = answer_clients(list(ALL_CLIENTS))
        else:
            clients, client_notes = _pick_clients(args, h2load)
            if any(ALL_CLIENTS[key].push for key in clients):
                servers = [OURS_PUSHING if spec is OURS else spec for spec in servers]
        for note in client_notes:
            print(f"note: {note}", file=sys.stderr)
        repeat = args.repeat or (2 if args.quick else 3)
        config = ExperimentConfig(
            servers=servers,
            clients=[ALL_CLIENTS[key] for key in clients],
            repeat=repeat,
            # A crawl through the link waits on round trips, not on warm caches.
            warm_up=not answer,
            client_timeout=args.timeout or (120.0 if answer else 60.0),
            h2load=h2load,
            conditions=conditions,
            books=_books(args, wanted, len(space.book_ids)),
        )
        if answer:
            _print_books(config, conditions)
        with _progress_bar(crawl_plan(config).steps) as progress:
            experiment = run_experiment(config, space, pinning, progress)
        experiment.machine = machine
        if answer:
            return _report_answer(args, experiment)
        return _report_experiment(args, experiment)


def _print_books(config: ExperimentConfig, conditions: list[Condition]) -> None:
    from h2books.bench.answer import condition_text

    for condition in conditions:
        books = config.books_under(condition)
        print(
            f"{condition_text(condition.title)}: {books} books per crawl",
            file=sys.stderr,
        )


DEFAULT_ANSWER_PNG = Path("h2books-answer.png")


def _report_answer(args: argparse.Namespace, result: ExperimentResult) -> int:
    from h2books.bench.answer import answer_markdown, answer_table, write_answer_png
    from h2books.bench.report import print_table, write_json

    print_table(answer_table(result))
    if args.json is not None:
        write_json(args.json, {"command": _command_text(), **result.as_dict()})
    if args.markdown is not None:
        args.markdown.write_text(answer_markdown(result, _command_text()), "utf-8")
    png = args.png if args.png is not None else DEFAULT_ANSWER_PNG
    try:
        write_answer_png(png, result)
    except RuntimeError as exc:  # no matplotlib: the table stands alone
        print(f"note: no chart: {exc}", file=sys.stderr)
    else:
        print(f"chart: {png}")
    return 1 if any(cell.failed for cell in result.cells) else 0


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchUsageError("--png needs matplotlib: pip install 'h2books[bench]'") from None


def _run_load(
    args: argparse.Namespace,
    servers: list[ServerSpec],
    space: Workspace,
    pinning: Pinning,
    h2load: str | None,
    conditions: list[Condition],
) -> LoadResult:
    if h2load is None:
        raise BenchUsageError(
            "--load h2load needs h2load on the PATH (apt-get install nghttp2-client)"
        )
    keys = args.workloads if args.workloads is not None else list(DEFAULT_WORKLOADS)
    unknown = [key for key in keys if key not in WORKLOADS]
    if unknown:
        raise BenchUsageError(
            f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    runs = args.runs or (1 if args.quick else 5)
    config = LoadConfig(
        servers=servers,
        workloads=[WORKLOADS[key] for key in dict.fromkeys(keys)],
        h2load=h2load,
        runs=runs,
        requests=args.requests or (3000 if args.quick else None),
        run_timeout=args.timeout or 180.0,
        conditions=conditions,
    )
    with _progress_bar(load_plan(config).steps) as progress:
        result = run_loadtest(config, space, pinning, progress)
    result.h2load_version = h2load_version(h2load)
    result.command = _command_text()
    return result


def _report_load(args: argparse.Namespace, result: LoadResult) -> int:
    from h2books.bench.report import (
        load_markdown,
        load_table,
        print_table,
        write_json,
        write_load_png,
    )

    print_table(load_table(result))
    if args.json is not None:
        write_json(args.json, result.as_dict())
    if args.markdown is not None:
        args.markdown.write_text(load_markdown(result), "utf-8")
    if args.png is not None:
        write_load_png(args.png, result)
    ours = [cell for cell in result.cells if cell.server == "ours"]
    return 1 if any(cell.rate() is None for cell in ours) else 0


def _report_experiment(args: argparse.Namespace, result: ExperimentResult) -> int:
    from h2books.bench.report import (
        experiment_markdown,
        experiment_table,
        header_bytes_table,
        print_table,
        write_experiment_png,
        write_json,
    )

    print_table(experiment_table(result))
    headers = header_bytes_table(result)
    if headers is not None:
        print_table(headers)
    if args.json is not None:
        write_json(args.json, {"command": _command_text(), **result.as_dict()})
    if args.markdown is not None:
        args.markdown.write_text(experiment_markdown(result, _command_text()), "utf-8")
    if args.png is not None:
        write_experiment_png(args.png, result)
    # Peers may fail (that is a finding); our own server must not.
    ours = [cell for cell in result.cells if cell.server == "ours"]
    return 1 if any(cell.failed for cell in ours) else 0
