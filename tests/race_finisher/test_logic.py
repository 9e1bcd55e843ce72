"""The race finisher's logic over the in-memory store: ranks, results and announcements."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.race_finisher.logic import RaceFinisher
from shared.finishing import MAX_FINISHES_PER_MESSAGE, MAX_MESSAGE_BYTES, Finish, encode, parse
from shared.memory import InMemoryStandingsStore
from shared.ports import TransientError
from shared.standings import FinalResult, RiderKey, Standing


def finish(rider: str, points: int, class_id: int = 1, race: str = "race-1", at: int = 7) -> Finish:
    return Finish(
        race_id=race,
        rider_id=rider,
        name=rider.title(),
        class_id=class_id,
        points=points,
        seconds=3,
        last_second=2,
        finished_at=at,
    )


def store_with(*riders: tuple[str, int, int], race: str = "race-1") -> InMemoryStandingsStore:
    """A store whose race has these (rider, points, class) standings."""
    store = InMemoryStandingsStore()
    for rider, points, class_id in riders:
        key = RiderKey(race, rider)
        store.standings[key] = Standing(
            race_id=race,
            rider_id=rider,
            name=rider.title(),
            class_id=class_id,
            points=points,
            seconds=3,
            last_second=2,
            counted=0b111,
            version=1,
            updated_at=0,
            last_device_ts=0,
        )
    return store


class Flaky:
    """An announcer that fails the riders named in ``failing`` once each."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.announced: list[FinalResult] = []

    def __call__(self, result: FinalResult) -> None:
        if result.rider_id in self.failing:
            self.failing.discard(result.rider_id)
            raise TransientError("throttled")
        self.announced.append(result)


def test_finishers_are_ranked_with_one_read_per_race_stored_once_and_announced() -> None:
    store = store_with(("ann", 300, 1), ("bob", 200, 2), ("cat", 200, 1), ("dan", 100, 1))
    announce = Flaky()
    finisher: RaceFinisher[str] = RaceFinisher(store, announce)

    out = finisher.finish([("m1", [finish("cat", 200)]), ("m2", [finish("dan", 100)])])

    assert out.failed == []
    assert out.finished == 2
    assert store.calls["ranks"] == 1
    assert store.calls["put_results"] == 1
    announced = announce.announced
    assert [(r.rider_id, r.rank_overall, r.rank_class, r.finished_at) for r in announced] == [
        ("cat", 2, 2, 7),
        ("dan", 4, 3, 7),
    ]


def test_a_rider_handed_over_twice_is_finished_once() -> None:
    store = store_with(("ann", 300, 1))
    announce = Flaky()
    finisher: RaceFinisher[str] = RaceFinisher(store, announce)

    out = finisher.finish([("m1", [finish("ann", 300, at=7)]), ("m2", [finish("ann", 300, at=9)])])
    again = finisher.finish([("m3", [finish("ann", 300, at=11)])])

    assert (out.failed, again.failed) == ([], [])
    # Within a batch once; a later batch announces the result as stored (the handler's
    # idempotency utility then sends nothing: see the pipeline tests).
    assert [r.finished_at for r in announce.announced] == [7, 7]
    race = store.race("race-1")
    assert race is not None
    assert race.finished == 1
    assert store.results[RiderKey("race-1", "ann")].finished_at == 7


def test_a_failed_ranking_read_fails_that_race_only() -> None:
    store = store_with(("ann", 300, 1))
    store.standings.update(store_with(("zed", 10, 1), race="race-2").standings)
    announce = Flaky()
    finisher: RaceFinisher[str] = RaceFinisher(store, announce)
    real_ranks = store.ranks

    def ranks(race_id: str, riders: Any) -> list[tuple[int, int]]:
        if race_id == "race-1":
            raise TransientError("throttled")
        return real_ranks(race_id, riders)

    store.ranks = ranks  # type: ignore[method-assign]

    out = finisher.finish(
        [("m1", [finish("ann", 300)]), ("m2", [finish("zed", 10, race="race-2")])]
    )

    assert out.failed == [("m1", "ranks of race race-1: throttled")]
    assert [r.rider_id for r in announce.announced] == ["zed"]
    assert RiderKey("race-1", "ann") not in store.results


def test_a_failed_announcement_fails_every_message_holding_the_rider_and_only_those() -> None:
    store = store_with(("ann", 300, 1), ("bob", 200, 1), ("cat", 100, 1))
    announce = Flaky("bob")
    finisher: RaceFinisher[str] = RaceFinisher(store, announce)
    messages: list[tuple[str, list[Finish]]] = [
        ("m1", [finish("ann", 300), finish("bob", 200)]),
        ("m2", [finish("bob", 200)]),
        ("m3", [finish("cat", 100)]),
    ]

    out = finisher.finish(messages)

    assert out.failed == [("m1", "announce: throttled"), ("m2", "announce: throttled")]
    assert out.finished == 2
    stored = dict(store.results)
    # SQS delivers m1 and m2 again: bob is announced, nobody is stored or counted twice.
    again = finisher.finish(messages[:2])
    assert again.failed == []
    assert sorted(r.rider_id for r in announce.announced) == ["ann", "ann", "bob", "cat"]
    assert store.results == stored
    race = store.race("race-1")
    assert race is not None
    assert race.finished == 3


def test_a_batch_is_announced_at_once() -> None:
    store = store_with(("ann", 300, 1), ("bob", 200, 1))
    handed: list[list[str]] = []

    def at_once(fn: Any, results: Any) -> list[Any]:
        handed.append([r.rider_id for r in results])
        return [fn(r) for r in results]

    finisher: RaceFinisher[str] = RaceFinisher(store, Flaky(), announce_map=at_once)
    finisher.finish([("m1", [finish("ann", 300)]), ("m2", [finish("bob", 200)])])

    assert handed == [["ann", "bob"]]


def test_the_largest_message_fits_in_sqs() -> None:
    longest = Finish(
        race_id="r" * 64,
        rider_id="x" * 64,
        name="N" * 64,
        class_id=6,
        points=10**12,
        seconds=86_401,
        last_second=86_400,
        finished_at=2**53,
    )

    bodies = encode([longest] * (2 * MAX_FINISHES_PER_MESSAGE + 1))

    assert [len(parse(b).finishes) for b in bodies] == [500, 500, 1]
    assert max(len(b.encode()) for b in bodies) < MAX_MESSAGE_BYTES // 1.5


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"v":1,"finishes":[]}', "at least 1 item"),
        ('{"v":2,"finishes":[]}', "Input should be 1"),
        ("not json", "Invalid JSON"),
        (
            '{"v":1,"finishes":[{"raceId":"r","riderId":"a","name":"A","classId":"1",'
            '"points":1,"seconds":1,"lastSecond":0,"finishedAt":1}]}',
            "Input should be a valid integer",
        ),
    ],
)
def test_a_malformed_message_is_refused_with_the_reason(body: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        parse(body)
