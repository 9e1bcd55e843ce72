"""Fault injection: resends are byte-identical copies; reordering is bounded and lossless."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator.faults import FaultInjector
from simulator.model import RaceConfig, race
from simulator.transports.base import Outgoing

CFG = RaceConfig("race-f", riders=50, duration=40, seed=3, start_ms=1)


def ticks() -> list[list[Outgoing]]:
    return [
        [Outgoing(r.race_id, r.rider_id, r.event_id, r.to_json()) for r in b] for b in race(CFG)
    ]


def run(injector: FaultInjector) -> tuple[list[Outgoing], list[Outgoing]]:
    produced: list[Outgoing] = []
    sent: list[Outgoing] = []
    for items in ticks():
        produced.extend(items)
        sent.extend(injector.feed(items))
    sent.extend(injector.drain())
    return produced, sent


def test_no_faults_passes_everything_through_in_order() -> None:
    produced, sent = run(FaultInjector(1))
    assert sent == produced


def test_duplicates_are_identical_copies_of_the_asked_fraction() -> None:
    injector = FaultInjector(1, duplicate_fraction=0.1)
    produced, sent = run(injector)
    counts = Counter(sent)
    assert set(counts) == set(produced)
    assert set(counts.values()) == {1, 2}
    doubled = sum(1 for c in counts.values() if c == 2)
    assert doubled == injector.duplicates == len(sent) - len(produced)
    assert 0.08 * len(produced) < doubled < 0.12 * len(produced)


def test_reordering_loses_nothing_and_stays_within_the_window() -> None:
    window = 25
    produced, sent = run(FaultInjector(1, reorder_window=window))
    assert sorted(sent) == sorted(produced)
    assert sent != produced
    position = {item.event_id: i for i, item in enumerate(sent)}
    # an item leaves the buffer no earlier than window-1 items before its arrival position
    for i, item in enumerate(produced):
        assert position[item.event_id] >= i - (window - 1)


def test_fault_injection_is_deterministic() -> None:
    a = run(FaultInjector(5, duplicate_fraction=0.3, reorder_window=10))[1]
    b = run(FaultInjector(5, duplicate_fraction=0.3, reorder_window=10))[1]
    c = run(FaultInjector(6, duplicate_fraction=0.3, reorder_window=10))[1]
    assert a == b
    assert a != c


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultInjector(1, duplicate_fraction=1.5)
    with pytest.raises(ValueError, match="0 or more"):
        FaultInjector(1, reorder_window=-1)
