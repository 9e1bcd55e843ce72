"""The processor's logic over the in-memory store: what the moto tests cannot easily reach."""

from __future__ import annotations

from typing import Any

from functions.stream_processor.logic import Delivery, StandingsCache, StreamProcessor
from shared.memory import InMemoryStandingsStore
from shared.scoring import points
from shared.standings import FinalResult, RiderKey
from tests.processor.conftest import reading


class Sink:
    def send(self, letters: Any) -> None:
        raise AssertionError("no dead letters expected")


def test_a_rider_evicted_from_the_cache_still_finishes_from_the_store() -> None:
    store = InMemoryStandingsStore()
    finished: list[FinalResult] = []
    logic: StreamProcessor[int] = StreamProcessor(
        store, Sink(), finished.append, lambda: 7, cache=StandingsCache(size=0)
    )
    logic.process([Delivery(reading("ann", 0), 1), Delivery(reading("bob", 0, 100, 60), 2)])
    # ann: 2 x 14,375 after her final; bob: 16,875, so ann ranks first.

    out = logic.process([Delivery(reading("ann", 1, event="final"), 3)])

    assert out.failed == []
    assert [
        (r.rider_id, r.points, r.seconds, r.rank_overall, r.rank_class, r.finished_at)
        for r in finished
    ] == [("ann", 2 * points(90, 50), 2, 1, 1, 7)]


def test_a_final_whose_write_failed_is_finished_on_the_retry() -> None:
    store = InMemoryStandingsStore()
    finished: list[FinalResult] = []
    logic: StreamProcessor[int] = StreamProcessor(store, Sink(), finished.append, lambda: 7)
    store.fail_next = {RiderKey("race-1", "ann")}

    out = logic.process([Delivery(reading("ann", 0, event="final"), 1)])

    assert [h for h, _ in out.failed] == [1]
    assert finished == []
    assert logic.process([Delivery(reading("ann", 0, event="final"), 1)]).failed == []
    assert [r.rider_id for r in finished] == ["ann"]


def test_riders_finishing_together_are_stored_together_and_announced_at_once() -> None:
    store = InMemoryStandingsStore()
    announced: list[FinalResult] = []
    handed_over: list[list[str]] = []

    def at_once(fn: Any, results: Any) -> list[Any]:
        handed_over.append([r.rider_id for r in results])
        return [fn(r) for r in results]

    logic: StreamProcessor[int] = StreamProcessor(
        store, Sink(), announced.append, lambda: 7, announce_map=at_once
    )
    out = logic.process(
        [Delivery(reading(r, 0, event="final"), i) for i, r in enumerate(("ann", "bob", "cat"))]
    )

    assert out.failed == []
    assert out.finished == 3
    assert handed_over == [["ann", "bob", "cat"]]
    assert store.calls["put_results"] == 1
    race = store.race("race-1")
    assert race is not None
    assert race.finished == 3
    assert [r.rider_id for r in announced] == ["ann", "bob", "cat"]
