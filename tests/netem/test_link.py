"""The link model with a fake clock: exact delays, serialization at the rate, loss, the queue."""

from __future__ import annotations

import random

import pytest

from h2books.netem.conditions import Conditions
from h2books.netem.link import LinkDirection, LinkSpec


def _link(**spec: float | int | None) -> LinkDirection:
    return LinkDirection(LinkSpec(**spec), random.Random(7))  # type: ignore[arg-type]


def test_a_packet_arrives_exactly_one_delay_later() -> None:
    link = _link(delay=0.025)
    assert link.send(b"a" * 100, now=10.0)
    assert link.next_due() == pytest.approx(10.025)
    assert link.take_due(10.0249) == []
    assert link.take_due(10.025) == [b"a" * 100]
    assert link.next_due() is None


def test_the_rate_serializes_packets_one_after_the_other() -> None:
    link = _link(rate=8_000_000.0)  # 1 MB/s: 1,000 bytes take 1 ms
    for _ in range(3):
        link.send(b"x" * 1000, now=0.0)
    arrivals = []
    while (due := link.next_due()) is not None:
        arrivals.append(due)
        link.take_due(due)
    assert arrivals == pytest.approx([0.001, 0.002, 0.003])


def test_an_idle_link_starts_serializing_at_arrival_not_earlier() -> None:
    link = _link(rate=8_000_000.0, delay=0.010)
    link.send(b"x" * 1000, now=0.0)
    link.take_due(1.0)
    link.send(b"x" * 1000, now=5.0)
    assert link.next_due() == pytest.approx(5.011)  # 1 ms on the wire + 10 ms of delay


def test_the_queue_drops_the_tail_once_full() -> None:
    link = _link(rate=8_000_000.0, queue_bytes=3_000)
    accepted = [link.send(b"x" * 1000, now=0.0) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert link.stats.dropped == 2
    assert link.queued_bytes(0.0) == pytest.approx(3000)
    # 1.5 ms later one and a half packets have left: room for one more, not two.
    assert link.queued_bytes(0.0015) == pytest.approx(1500)
    assert [link.send(b"x" * 1000, now=0.0015) for _ in range(2)] == [True, False]


def test_without_a_rate_the_delay_line_is_bounded_and_its_drops_counted() -> None:
    link = _link(delay=0.050, queue_bytes=3_000)  # no serializer: the bound is on the flight
    assert [link.send(b"x" * 1000, now=0.0) for _ in range(5)] == [True] * 3 + [False] * 2
    assert link.stats.dropped == 2
    assert len(link) == 3
    assert len(link.take_due(0.050)) == 3  # delivered: the room is back
    assert link.send(b"x" * 1000, now=0.050)
    assert link.stats.dropped == 2


def test_conditions_without_a_bandwidth_still_bound_the_flight() -> None:
    up, _ = Conditions(rtt=0.1).directions()
    assert up.rate is None
    assert 1_000_000 <= up.queue_bytes <= 64 << 20
    link = LinkDirection(up, random.Random(1))
    sent = sum(link.send(b"x" * 65_536, now=0.0) for _ in range(2_000))  # 131 MB at once
    assert sent * 65_536 <= up.queue_bytes
    assert link.stats.dropped == 2_000 - sent


def test_loss_takes_its_share_with_a_fixed_seed() -> None:
    link = _link(loss=0.01)
    kept = sum(link.send(b"p", now=0.0) for _ in range(100_000))
    assert link.stats.lost == 100_000 - kept
    assert 900 <= link.stats.lost <= 1100  # 1% of 100,000, within 3 standard deviations
    again = _link(loss=0.01)
    assert sum(again.send(b"p", now=0.0) for _ in range(100_000)) == kept  # same seed, same losses


def test_no_loss_loses_nothing() -> None:
    link = _link()
    assert all(link.send(b"p", now=0.0) for _ in range(10_000))
    assert len(link.take_due(0.0)) == 10_000


def test_jitter_stays_within_its_bounds_and_can_reorder() -> None:
    link = _link(delay=0.050, jitter=0.010)
    for number in range(1000):
        link.send(number.to_bytes(2, "big"), now=number * 0.0001)
    arrivals = []
    while (due := link.next_due()) is not None:
        assert 0.040 <= due <= 0.0999 + 0.060
        arrivals.extend(int.from_bytes(p, "big") for p in link.take_due(due))
    assert sorted(arrivals) == list(range(1000))
    assert arrivals != list(range(1000))


def test_reorder_sends_some_packets_past_the_delay_line() -> None:
    link = _link(delay=0.050, reorder=0.25)
    for number in range(400):
        link.send(bytes([number % 256]), now=0.0)
    early = link.take_due(0.0)
    assert link.stats.reordered == len(early)
    assert 60 <= len(early) <= 140
    assert len(link.take_due(0.050)) == 400 - len(early)


@pytest.mark.parametrize(
    "spec",
    [
        {"delay": -0.001},
        {"rate": 0.0},
        {"loss": 1.0},
        {"loss": -0.1},
        {"queue_bytes": 0},
        {"reorder": 1.5},
    ],
)
def test_impossible_specs_are_refused(spec: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LinkSpec(**spec)  # type: ignore[arg-type]
