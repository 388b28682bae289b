"""The bench's side: --rtt/--loss sweeps become runner conditions that move the clients."""

from __future__ import annotations

import os
import subprocess

from h2books.bench.cli import build_parser
from h2books.bench.runner import LOOPBACK, network_condition
from h2books.netem.arguments import conditions_from_args
from h2books.netem.conditions import Conditions
from tests.netem.conftest import ours, require_namespaces


def test_a_sweep_is_every_pair_of_rtt_and_loss() -> None:
    args = build_parser().parse_args(
        ["--rtt", "0,10,50", "--loss", "0,1%", "--bandwidth", "20mbit"]
    )
    swept = conditions_from_args(args)
    assert [c.key for c in swept] == [
        "rtt0ms-20mbit",
        "rtt0ms-20mbit-loss1%",
        "rtt10ms-20mbit",
        "rtt10ms-20mbit-loss1%",
        "rtt50ms-20mbit",
        "rtt50ms-20mbit-loss1%",
    ]
    assert "RTT 50 ms, 20 Mbit/s each way, 1% loss each way" in swept[-1].describe()
    none = conditions_from_args(build_parser().parse_args([]))
    assert none == [Conditions()] and network_condition(none[0]) is LOOPBACK


def test_a_condition_puts_the_runs_clients_in_the_client_namespace() -> None:
    require_namespaces()
    before = ours()
    home = os.readlink("/proc/self/ns/net")
    condition = network_condition(Conditions(rtt=0.010))
    assert condition.key == "rtt10ms" and "RTT 10 ms" in condition.title
    with condition.applied():
        client = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True)
    assert client.stdout.strip() not in ("", home)  # a client started during the run
    assert ours() == before  # and the link is down after it
