"""The processor's logic over the in-memory store: what the moto tests cannot easily reach."""

from __future__ import annotations

from typing import Any

from functions.stream_processor.logic import Delivery, StandingsCache, StreamProcessor
from shared.finishing import Finish
from shared.memory import InMemoryFinishQueue, InMemoryStandingsStore
from shared.scoring import points
from shared.standings import RiderKey
from tests.stream_processor.conftest import reading


class Sink:
    def send(self, letters: Any) -> None:
        raise AssertionError("no dead letters expected")


def handed_over(queue: InMemoryFinishQueue) -> list[list[tuple[str, int, int, int]]]:
    """Each message sent: its riders as (rider, points, seconds, finishedAt)."""
    return [
        [(f.rider_id, f.points, f.seconds, f.finished_at) for f in message]
        for message in queue.drain()
    ]


def test_a_rider_evicted_from_the_cache_is_handed_over_from_the_store() -> None:
    store = InMemoryStandingsStore()
    queue = InMemoryFinishQueue()
    logic: StreamProcessor[int] = StreamProcessor(
        store, Sink(), queue, lambda: 7, cache=StandingsCache(size=0)
    )
    logic.process([Delivery(reading("ann", 0), 1)])

    out = logic.process([Delivery(reading("ann", 1, event="final"), 3)])

    assert out.failed == []
    assert out.finishing == 1
    assert handed_over(queue) == [[("ann", 2 * points(90, 50), 2, 7)]]


def test_a_final_whose_write_failed_is_handed_over_on_the_retry() -> None:
    store = InMemoryStandingsStore()
    queue = InMemoryFinishQueue()
    logic: StreamProcessor[int] = StreamProcessor(store, Sink(), queue, lambda: 7)
    store.fail_next = {RiderKey("race-1", "ann")}

    out = logic.process([Delivery(reading("ann", 0, event="final"), 1)])

    assert [h for h, _ in out.failed] == [1]
    assert queue.messages == []
    assert logic.process([Delivery(reading("ann", 0, event="final"), 1)]).failed == []
    assert handed_over(queue) == [[("ann", points(90, 50), 1, 7)]]


def test_a_failed_hand_over_retries_the_final_and_counts_nothing_twice() -> None:
    store = InMemoryStandingsStore()
    queue = InMemoryFinishQueue()
    logic: StreamProcessor[str] = StreamProcessor(store, Sink(), queue, lambda: 7)
    queue.fail_sends = 1
    batch = [
        Delivery(reading("ann", 0), "a0"),
        Delivery(reading("ann", 1, event="final"), "a1"),
        Delivery(reading("bob", 0), "b0"),
    ]

    out = logic.process(batch)

    assert [(h, reason) for h, reason in out.failed] == [
        ("a1", "finish queue: finish queue: injected failure")
    ]
    assert out.finishing == 0
    # Lambda delivers the failed record and everything after it again.
    again = logic.process(batch[1:])
    assert again.failed == []
    assert again.applied == 0
    assert handed_over(queue) == [[("ann", 2 * points(90, 50), 2, 7)]]
    assert store.standings[RiderKey("race-1", "bob")].seconds == 1


def test_riders_finishing_together_are_handed_over_in_one_message() -> None:
    store = InMemoryStandingsStore()
    queue = InMemoryFinishQueue()
    logic: StreamProcessor[int] = StreamProcessor(store, Sink(), queue, lambda: 7)

    out = logic.process(
        [Delivery(reading(r, 0, event="final"), i) for i, r in enumerate(("ann", "bob", "cat"))]
    )

    assert out.failed == []
    assert out.finishing == 3
    assert [[f.rider_id for f in m] for m in queue.drain()] == [["ann", "bob", "cat"]]


def test_a_finish_carries_the_standing_as_counted() -> None:
    store = InMemoryStandingsStore()
    queue = InMemoryFinishQueue()
    logic: StreamProcessor[int] = StreamProcessor(store, Sink(), queue, lambda: 1_700_000_000_123)

    logic.process(
        [
            Delivery(reading("ann", 0, class_id=3, name="Ann Lee"), 1),
            Delivery(reading("ann", 4, 100, 60, class_id=3, name="Ann Lee", event="final"), 2),
        ]
    )

    assert queue.drain() == [
        (
            Finish(
                race_id="race-1",
                rider_id="ann",
                name="Ann Lee",
                class_id=3,
                points=points(90, 50) + points(100, 60),
                seconds=2,
                last_second=4,
                finished_at=1_700_000_000_123,
            ),
        )
    ]


def test_lags_are_summed_over_counted_readings_only() -> None:
    """The end-to-end lag metrics (mean and max) come from the readings that counted: a
    duplicate second adds no lag, however late it arrives."""
    device_0 = reading("ann", 0).device_timestamp
    now = device_0 + 5_000
    logic: StreamProcessor[int] = StreamProcessor(
        InMemoryStandingsStore(), Sink(), InMemoryFinishQueue(), lambda: now
    )
    batch = [reading("ann", 0), reading("ann", 2), reading("bob", 1), reading("ann", 0)]

    out = logic.process([Delivery(r, i) for i, r in enumerate(batch)])

    # ann's seconds 0 and 2 (5 s and 3 s old), bob's second 1 (4 s); ann's resent 0 is a duplicate
    assert (out.lag_count, out.lag_total_ms, out.lag_max_ms) == (3, 12_000, 5_000)
    assert out.duplicates == 1
