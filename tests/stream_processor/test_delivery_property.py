"""Property: for any delivery schedule, the standings equal the ground truth.

The schedule is drawn by hypothesis: producer duplicates (a resent PutRecords entry gets a new
sequence number), reordering, batch sizes, transient write failures on any rider with Lambda's
retry from the lowest failed sequence number, cold execution environments, and replays of
already-processed ranges (as from the archive). Each batch goes through the real Powertools
batch processor and the real logic, over the in-memory store with the adapter's semantics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.stream_processor.batch import TelemetryBatchProcessor, record_letter
from functions.stream_processor.logic import StreamProcessor
from shared.memory import InMemoryRaceStore, InMemoryStandingsStore
from shared.ports import DeadLetter
from shared.scoring import ground_truth
from shared.standings import RiderKey
from tests.stream_processor.conftest import (
    NOW,
    RACE_START,
    Clock,
    entry,
    kinesis_record,
    new_race,
    reading,
    redeliver_after_failure,
)


class ListSink:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Any) -> None:
        self.letters.extend(letters)


RIDERS = ("ann", "bob", "cid", "dee")


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    riders = draw(st.integers(1, len(RIDERS)))
    seconds = draw(st.integers(1, 12))
    readings = [
        reading(RIDERS[i], s, draw(st.integers(0, 200)), draw(st.integers(0, 100)))
        for i in range(riders)
        for s in range(seconds)
    ]
    copies = [r for r in readings for _ in range(draw(st.integers(1, 3)))]
    stream = draw(st.permutations(copies))
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(1, 12),  # batch size
                st.sets(st.sampled_from(RIDERS[:riders]), max_size=2),  # throttled riders
                st.booleans(),  # cold environment before this batch
                st.booleans(),  # replay a processed range after this batch
            ),
            min_size=1,
            max_size=40,
        )
    )
    return {"readings": readings, "stream": stream, "steps": steps}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules())
def test_any_delivery_schedule_ends_at_the_ground_truth(schedule: dict[str, Any]) -> None:
    book = InMemoryRaceStore()
    book.create_race(new_race())
    book.enter("race-1", [entry(r, class_id=1 + i) for i, r in enumerate(RIDERS)], RACE_START)
    store = InMemoryStandingsStore(book)
    sink = ListSink()
    clock = Clock(NOW)
    logic: StreamProcessor[Any] = StreamProcessor(store, book, sink, clock, record_letter)
    batch = TelemetryBatchProcessor(logic)
    records = [kinesis_record(r, i) for i, r in enumerate(schedule["stream"])]

    def invoke(recs: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(process_partial_response({"Records": recs}, batch.collect, batch))

    position = 0
    for size, throttled, cold, replay in schedule["steps"]:
        if position >= len(records):
            break
        clock.advance(700)  # batches come and go; the race card is read again now and then
        if cold:
            logic.cache.clear()
            logic.cards.clear()
        store.fail_next = {RiderKey("race-1", r) for r in throttled}
        delivered = records[position : position + size]
        response = invoke(delivered)
        retry = redeliver_after_failure(delivered, response)
        position += len(delivered) - len(retry)
        if replay and position:
            store.fail_next = set()
            assert invoke(records[max(0, position - size) : position]) == {"batchItemFailures": []}
    store.fail_next = set()
    while position < len(records):  # the shard drains once the faults stop
        delivered = records[position : position + 10]
        assert invoke(delivered) == {"batchItemFailures": []}
        position += len(delivered)

    truth = ground_truth(schedule["readings"])
    stored = {
        (k.race_id, k.rider_id): (s.points, s.seconds, s.last_second)
        for k, s in store.standings.items()
    }
    assert stored == {k: (v.points, v.seconds, v.last_second) for k, v in truth.items()}
    race = book.races["race-1"]
    assert race.riders == len(truth)
    assert race.class_counts == {1 + i: 1 for i in range(len(truth))}  # one rider a class
    assert sink.letters == []
