"""Several races with the same riders closed through the deployed closer and the DynamoDB
adapters (moto): each ranked rider's history, personal bests and the class records, exactly,
and the same whether a close ran cleanly, was delivered twice, or failed at a step of the
weighing and was retried."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import pytest

from functions.race_closer.logic import RaceCloser
from shared import items, keys
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.memory import InMemoryHistoryStore, InMemoryRaceStore
from shared.placings import Placing
from shared.ports import TransientError
from shared.race_store import now_ms
from shared.races import EnteredRider, Race
from tests.race_closer.conftest import DISQUALIFIED, ENTRIES, STANDINGS, Aws
from tests.race_closer.test_history import A, B, C, Reader, Ridden

HOUR: Final = 3_600_000
RACES: Final = ((A, -3 * HOUR), (B, -2 * HOUR), (C, -HOUR))
"""The logic tests' first three races (one length), each due this long ago: an hour apart."""
CLASS_OF: Final = {e.rider_id: e.class_id for e in ENTRIES}


def close_all(aws: Aws) -> dict[str, Race]:
    created = {}
    for ridden, due_in_ms in RACES:
        created[ridden.race_id] = aws.add_race(
            ridden.race_id, ENTRIES, ridden.tallies(), due_in_ms=due_in_ms
        )
        assert aws.close(ridden.race_id)["status"] == "closed"
    return created


def stored_history(aws: Aws) -> tuple[dict[Any, Best], dict[Any, ClassRecords], dict[str, Any]]:
    """Every personal best and class record in the table, and each rider's whole history,
    read back through the codecs and the history adapter."""
    store = DynamoHistoryStore(aws.ddb, STANDINGS)
    found = aws.ddb.scan(TableName=STANDINGS)["Items"]
    bests = {}
    for item in found:
        if item[keys.SK]["S"].startswith(keys.SK_BEST_PREFIX):
            b = items.best_from_item(item)
            bests[(b.rider_id, b.class_id, b.duration_s)] = b
    records = {
        (r.class_id, r.duration_s): r
        for item in found
        if item[keys.SK]["S"] == keys.SK_RECORDS
        for r in [items.records_from_item(item)]
    }
    histories = {e.rider_id: store.rider_results(e.rider_id, 10)[0] for e in ENTRIES}
    return bests, records, {r: h for r, h in histories.items() if h}


def in_memory_twin(created: dict[str, Race]) -> InMemoryHistoryStore:
    """The same races closed by the same logic over the in-memory stores."""
    book, history = InMemoryRaceStore(), InMemoryHistoryStore()
    reader = Reader(book)
    closer = RaceCloser(
        book, reader, lambda *_: None, history=history, clock=now_ms, sleep=lambda _: None
    )
    for ridden, _ in RACES:
        race = created[ridden.race_id]
        book.races[race.race_id] = replace(race, state="open")
        book.entered[race.race_id] = {
            e.rider_id: EnteredRider(e, e.rider_id in DISQUALIFIED) for e in ENTRIES
        }
        reader.standings[race.race_id] = ridden.tallies()
        closer.close(race.race_id)
    return history


def ref(created: dict[str, Race], ridden: Ridden) -> RaceRef:
    race = created[ridden.race_id]
    return RaceRef(race.race_id, race.name, race.starts_at, race.duration_s)


def test_several_races_leave_exact_history_bests_and_records(aws: Aws) -> None:
    created = close_all(aws)
    bests, records, histories = stored_history(aws)

    def best(rider: str, ridden: Ridden) -> Best:
        points = ridden.points[rider]
        return Best(rider, rider.title(), CLASS_OF[rider], points, points // 10 + 1,
                    ref(created, ridden))  # fmt: skip

    assert bests == {
        ("ann", 1, 300): best("ann", C),
        ("cat", 1, 300): best("cat", B),
        ("dan", 1, 300): best("dan", A),
        ("bob", 2, 300): best("bob", B),
        ("eve", 2, 300): best("eve", B),
    }
    assert records == {
        (1, 300): ClassRecords(1, 300, (best("cat", B), best("ann", C), best("dan", A)), version=3),
        (2, 300): ClassRecords(2, 300, (best("bob", B), best("eve", B)), version=2),
    }
    assert [b.rider_id for b in records[(1, 300)].holders()] == ["cat"]
    assert [b.rider_id for b in records[(2, 300)].holders()] == ["bob", "eve"]  # one race: joint
    assert {r: [(x.race.race_id, x.personal_best, x.record) for x in h]
            for r, h in histories.items()} == {
        "ann": [("c", True, False), ("b", False, False), ("a", True, True)],
        "bob": [("c", False, False), ("b", True, True), ("a", True, True)],
        "cat": [("c", False, False), ("b", True, True), ("a", True, False)],
        "dan": [("c", False, False), ("b", False, False), ("a", True, False)],
        "eve": [("c", False, False), ("b", True, True), ("a", True, False)],
    }  # fmt: skip
    assert histories["ann"][0] == RiderResult(
        "ann", "Ann", ref(created, C), 1, 3, 1, 950, 96, personal_best=True, record=False
    )
    # the same as the in-memory stores hold after the same closes by the same logic
    twin = in_memory_twin(created)
    assert bests == twin.bests
    assert records == twin.stored_records
    assert histories == {r: twin.rider_results(r, 10)[0] for r in twin.results}


def _flags(placings: list[Placing]) -> dict[str, tuple[bool, bool]]:
    return {p.rider_id: (p.personal_best, p.record) for p in placings}


def test_the_flags_are_stored_with_the_placings_and_announced(aws: Aws) -> None:
    close_all(aws)
    overall = aws.placings("b")["ALL"]
    assert _flags(overall) == {
        "ann": (False, False), "bob": (True, True), "cat": (True, True), "dan": (False, False),
        "eve": (True, True), "fay": (False, False), "gus": (False, False),
        "hal": (False, False),
    }  # fmt: skip
    assert _flags(aws.placings("b")["C2"]) == {
        "bob": (True, True), "eve": (True, True), "gus": (False, False),
    }  # fmt: skip
    announced = {
        (m["raceId"], m["riderId"]): (m["personalBest"], m["record"])
        for _, m in aws.announcements()
    }
    assert {rider: f for (race, rider), f in announced.items() if race == "b"} == _flags(overall)
    assert len(announced) == 3 * len(ENTRIES)


def test_a_close_delivered_twice_keeps_the_history_as_it_was(aws: Aws) -> None:
    close_all(aws)
    before = stored_history(aws)
    writes = aws.faults.calls["BatchWriteItem"]
    for ridden, _ in RACES:
        assert aws.close(ridden.race_id)["status"] == "closed before"
    assert stored_history(aws) == before
    assert aws.faults.calls["BatchWriteItem"] == writes


@pytest.mark.parametrize(
    ("operation", "contains"),
    [
        ("PutItem", keys.SK_BEST_PREFIX),  # a personal best claimed
        ("GetItem", "RECORDS#"),  # a class's records read
        ("PutItem", "RECORDS#"),  # a class's records saved
        ("BatchWriteItem", keys.SK_RESULT_PREFIX),  # the results kept
    ],
)
def test_a_close_failing_at_a_weighing_step_and_retried_ends_as_a_clean_one(
    aws: Aws, operation: str, contains: str
) -> None:
    created = {}
    for ridden, due_in_ms in RACES:
        created[ridden.race_id] = aws.add_race(
            ridden.race_id, ENTRIES, ridden.tallies(), due_in_ms=due_in_ms
        )
        if ridden is B:
            aws.faults.fail(operation, contains, code="ThrottlingException")
            with pytest.raises(TransientError):
                aws.close("b")
            race = aws.book.get_race("b")
            assert race is not None
            assert race.state == "closing"
            assert not [m for _, m in aws.announcements() if m["raceId"] == "b"]
        assert aws.close(ridden.race_id)["status"] == "closed"
    assert aws.faults.injected == 1
    twin = in_memory_twin(created)
    bests, records, histories = stored_history(aws)
    assert bests == twin.bests
    assert records == twin.stored_records
    assert histories == {r: twin.rider_results(r, 10)[0] for r in twin.results}


def test_a_records_save_whose_answer_is_lost_is_not_saved_twice(aws: Aws) -> None:
    """The save took effect, the SDK sent it again and its version condition failed: the close
    reads the records again, finds its results in them, and goes on."""
    created = {}
    for ridden, due_in_ms in RACES:
        created[ridden.race_id] = aws.add_race(
            ridden.race_id, ENTRIES, ridden.tallies(), due_in_ms=due_in_ms
        )
        if ridden is B:
            aws.faults.lose_response("PutItem", "RECORDS#", times=1)
        assert aws.close(ridden.race_id)["status"] == "closed"
    assert aws.faults.injected == 1
    _, records, _ = stored_history(aws)
    assert records == in_memory_twin(created).stored_records
