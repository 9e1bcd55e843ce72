"""The processor's logic over the in-memory race book and standings store: every counting rule
with its exact reason, the requests a batch costs, and what the moto tests cannot easily reach."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from functions.stream_processor.logic import Delivery, Poison, StreamProcessor
from shared.contract import Telemetry
from shared.counting import Refusal
from shared.memory import InMemoryRaceStore, InMemoryStandingsStore
from shared.ports import DeadLetter, TransientError
from shared.races import RACE_REFRESH_S
from shared.scoring import points
from shared.standings import RiderKey
from tests.stream_processor.conftest import NOW, RACE_START, Clock, entry, new_race, reading

ONE = points(90, 50)


class Sink:
    """The dead-letter store: what it was sent, per send; ``down`` makes sends fail."""

    def __init__(self) -> None:
        self.sends: list[list[DeadLetter]] = []
        self.down = False

    def send(self, letters: Any) -> None:
        if self.down:
            raise TransientError("queue unavailable")
        self.sends.append(list(letters))

    @property
    def reasons(self) -> list[str]:
        return [letter.reason for send in self.sends for letter in send]


def letter(handle: int, reason: str) -> DeadLetter:
    """The dead letter of record ``handle`` (the handler builds it from the Kinesis record)."""
    return DeadLetter(
        payload=f"record-{handle}",
        reason=reason,
        shard_id="shardId-000000000000",
        sequence_number=str(handle),
        partition_key="",
        event_source_arn="",
        approximate_arrival=0.0,
    )


class World:
    """A race book with ``race-1`` (the roster entered), the standings store on it, a sink,
    the processor's clock, and the logic."""

    def __init__(self, slack_s: int = 5) -> None:
        self.book = InMemoryRaceStore()
        self.book.create_race(new_race())
        self.book.enter("race-1", [entry(r) for r in ("ann", "bob", "cid")], RACE_START - 1)
        self.store = InMemoryStandingsStore(self.book)
        self.sink = Sink()
        self.clock = Clock()
        self.logic: StreamProcessor[int] = StreamProcessor(
            self.store, self.book, self.sink, self.clock, letter, slack_s=slack_s
        )

    def process(self, *readings: Telemetry, poison: tuple[Poison[int], ...] = ()) -> Any:
        return self.logic.process([Delivery(r, i) for i, r in enumerate(readings)], poison)

    def standings(self) -> dict[str, tuple[int, int, int]]:
        return {
            k.rider_id: (s.points, s.seconds, s.last_second)
            for k, s in self.store.standings.items()
        }


def at_close(w: World, r: Telemetry) -> Telemetry:
    """``r``, processed when the race's scheduled close comes."""
    w.clock.now = new_race().closes_at
    return r


@pytest.fixture
def world() -> World:
    return World()


@pytest.mark.parametrize(
    ("make", "rule", "reason"),
    [
        (
            lambda w: reading("ann", 0, race="race-9"),
            Refusal.UNKNOWN_RACE,
            "unknown race: no race race-9",
        ),
        (
            lambda w: reading("zed", 0),
            Refusal.NOT_ENTERED,
            "rider not entered: zed is not entered in race race-1",
        ),
        (
            lambda w: reading("ann", 10_800),
            Refusal.SECOND_OUT_OF_RANGE,
            "second out of range: 10800 is not below the race's 10800 seconds",
        ),
        (
            lambda w: reading("ann", 10_801),
            Refusal.SECOND_OUT_OF_RANGE,
            "second out of range: 10801 is not below the race's 10800 seconds",
        ),
        (
            lambda w: reading("ann", 606),
            Refusal.FROM_THE_FUTURE,
            "from the future: second 606 arrived 600 s into the race (slack 5 s)",
        ),
        (
            lambda w: (
                w.book.enter("race-1", [entry("eve", device="bike-7")], NOW),
                reading("eve", 0, device="bike-8"),
            )[1],
            Refusal.WRONG_DEVICE,
            "wrong device: eve rides on bike-7, the reading came from bike-8",
        ),
        (
            lambda w: (
                w.book.enter("race-1", [entry("eve", device="bike-7")], NOW),
                reading("eve", 0),
            )[1],
            Refusal.WRONG_DEVICE,
            "wrong device: eve rides on bike-7, the reading came from no device",
        ),
        (
            lambda w: (w.book.mark_closed("race-1", NOW), reading("ann", 0))[1],
            Refusal.RACE_CLOSED,
            f"race closed: race race-1 closed at {new_race().closes_at}",
        ),
        (
            lambda w: at_close(w, reading("ann", 0)),
            Refusal.RACE_CLOSED,
            f"race closed: race race-1 closed at {new_race().closes_at}",
        ),
    ],
    ids=[
        "unknown race",
        "not entered",
        "second at the duration",
        "second past the duration",
        "from the future",
        "another device",
        "no device",
        "closed",
        "closes at",
    ],
)
def test_each_rule_refuses_with_its_reason_and_counts_it(
    world: World, make: Any, rule: Refusal, reason: str
) -> None:
    refused = make(world)

    out = world.process(refused, reading("bob", 1, race="race-2"))  # an unknown race's too

    assert world.sink.reasons == [reason, "unknown race: no race race-2"]
    assert out.dead_letters == Counter({rule: 1}) + Counter({Refusal.UNKNOWN_RACE: 1})
    assert (out.dead_lettered, out.failed, out.applied) == (2, [], 0)
    assert world.standings() == {}


def test_an_early_close_applies_when_the_card_is_read_again(world: World) -> None:
    world.book.create_race(new_race("sprint", grace_s=0))
    world.book.enter("sprint", [entry("ann")], NOW)
    world.process(reading("ann", 0, race="sprint"))  # the card is read at NOW
    world.book.close_early("sprint", NOW + 1)  # no grace: it closes at once

    world.clock.advance(RACE_REFRESH_S * 1000 - 1)
    counted = world.process(reading("ann", 1, race="sprint"))
    world.clock.advance(1)
    refused = world.process(reading("ann", 2, race="sprint"))

    assert (counted.applied, counted.dead_lettered) == (1, 0)
    assert refused.dead_letters == Counter({Refusal.RACE_CLOSED: 1})
    assert world.sink.reasons == [f"race closed: race sprint closed at {NOW + 1}"]


def test_a_reading_from_the_entered_device_counts(world: World) -> None:
    world.book.enter("race-1", [entry("eve", device="bike-7")], NOW)

    out = world.process(reading("eve", 0, device="bike-7"))

    assert (out.applied, out.dead_lettered) == (1, 0)
    assert world.standings() == {"eve": (ONE, 1, 0)}


def test_every_dead_letter_of_a_batch_goes_in_one_send_with_the_poison(world: World) -> None:
    poison = Poison(letter(90, "invalid reading: cadence: ..."), 90, Refusal.INVALID_READING)
    v1 = Poison(letter(91, "contract v1: v: ..."), 91, Refusal.CONTRACT_V1)

    out = world.process(
        reading("ann", 101),
        reading("ann", 100, event="final"),
        reading("zed", 0),
        poison=(poison, v1),
    )

    assert [[x.sequence_number for x in send] for send in world.sink.sends] == [
        ["90", "91", "2", "0"]
    ]
    assert out.dead_letters == Counter(
        {
            Refusal.INVALID_READING: 1,
            Refusal.CONTRACT_V1: 1,
            Refusal.NOT_ENTERED: 1,
            Refusal.AFTER_FINAL: 1,
        }
    )
    assert world.sink.reasons[3] == "after final: second 101 comes after ann's final second 100"
    assert out.dead_lettered == 4


def test_refused_readings_are_retried_only_when_the_dead_letter_store_is_down(
    world: World,
) -> None:
    world.sink.down = True

    out = world.process(reading("zed", 0), reading("ann", 0), reading("ann", 700))

    assert out.failed == [
        (0, "dead-letter store: queue unavailable"),
        (2, "dead-letter store: queue unavailable"),
    ]
    assert (out.dead_lettered, out.dead_letters) == (0, Counter())
    assert world.standings() == {"ann": (ONE, 1, 0)}


def test_a_batch_costs_requests_per_batch_not_per_reading(world: World) -> None:
    readings = [reading(r, s) for s in range(50) for r in ("ann", "bob", "cid", "zed")]
    world.book.calls.clear()

    out = world.process(*readings)

    assert (out.applied, out.dead_lettered) == (150, 50)
    assert world.book.calls == {"get_races": 1, "entries": 1}
    assert world.store.calls == {"load": 1, "save": 1, "record_activity": 1}
    race = world.book.races["race-1"]
    assert (race.riders, race.class_counts[2], race.class_counts[3], race.class_counts[1]) == (
        3,
        1,
        1,
        1,
    )
    assert race.last_reading_at == NOW


def test_the_card_is_read_again_after_the_refresh_and_the_entries_when_they_change(
    world: World,
) -> None:
    world.process(reading("ann", 0))
    world.book.calls.clear()

    world.clock.advance(RACE_REFRESH_S * 1000 - 1)
    world.process(reading("ann", 1))
    assert world.book.calls == {}  # the copy is still fresh
    world.clock.advance(1)
    world.process(reading("ann", 2))
    assert world.book.calls == {"get_races": 1}  # the record again, the entries kept
    world.book.enter("race-1", [entry("dee")], world.clock.now)
    world.book.calls.clear()
    out = world.process(reading("dee", 0))
    assert (out.dead_letters, world.book.calls) == (Counter({Refusal.NOT_ENTERED: 1}), {})
    world.clock.advance(RACE_REFRESH_S * 1000)
    out = world.process(reading("dee", 1))
    assert world.book.calls == {"get_races": 1, "entries": 1}  # the version moved
    assert out.applied == 1


def test_an_unknown_race_is_remembered_until_the_refresh(world: World) -> None:
    world.process(reading("ann", 0, race="race-2"))
    world.book.create_race(new_race("race-2"))
    world.book.enter("race-2", [entry("ann")], NOW)
    world.book.calls.clear()

    world.clock.advance(RACE_REFRESH_S * 1000 - 1)
    first = world.process(reading("ann", 1, race="race-2"))
    world.clock.advance(1)
    second = world.process(reading("ann", 2, race="race-2"))

    assert first.dead_letters == Counter({Refusal.UNKNOWN_RACE: 1})
    assert (second.applied, second.dead_lettered) == (1, 0)
    assert world.book.calls == {"get_races": 1, "entries": 1}


def test_a_race_book_that_fails_retries_the_races_readings_only(world: World) -> None:
    world.book.create_race(new_race("race-2"))
    world.book.enter("race-2", [entry("bob")], NOW)
    world.process(reading("bob", 0, race="race-2"))  # race-2's card is cached at NOW
    world.clock.advance(RACE_REFRESH_S * 1000 - 1)

    def fail(*_: Any, **__: Any) -> Any:
        raise TransientError("throttled")

    world.book.get_races = fail  # type: ignore[method-assign]
    out = world.process(reading("ann", 0), reading("ann", 1), reading("bob", 1, race="race-2"))

    assert out.failed == [(0, "race race-1: race records: throttled")]
    assert world.standings() == {"bob": (2 * ONE, 2, 1)}
    assert world.sink.sends == []


def test_a_failed_write_leaves_its_after_final_readings_to_the_retry(world: World) -> None:
    world.store.fail_next = {RiderKey("race-1", "ann")}
    batch = (reading("ann", 5, event="final"), reading("ann", 6), reading("bob", 0))

    out = world.process(*batch)

    assert out.failed == [(0, "rider ann: write: injected")]
    assert world.sink.sends == []  # ann's second 6 is judged again with the retry
    again = world.process(*batch)
    assert world.sink.reasons == ["after final: second 6 comes after ann's final second 5"]
    assert (again.applied, again.duplicates, again.finished) == (1, 1, 1)
    assert world.book.races["race-1"].finished == 1


def test_a_stale_environment_counts_a_finish_once(world: World) -> None:
    world.process(reading("ann", 0))
    stale = world.logic.cache.get(RiderKey("race-1", "ann"))
    assert stale is not None
    world.process(reading("ann", 1, event="final"))  # another environment, say
    world.logic.cache.put(stale)

    out = world.process(reading("ann", 1, event="final"), reading("ann", 2))

    assert (out.conflicts, out.finished, out.applied) == (1, 0, 0)
    assert world.sink.reasons == ["after final: second 2 comes after ann's final second 1"]
    assert world.book.races["race-1"].finished == 1


def test_names_and_classes_are_the_entrys_even_when_it_changes_before_the_start() -> None:
    w = World()
    w.book.create_race(new_race("later", starts_at=NOW + 3_000))
    w.book.enter("later", [entry("ann", class_id=4)], NOW)
    w.process(reading("ann", 0, race="later"))
    w.book.enter("later", [entry("ann", class_id=4).model_copy(update={"name": "Ann B"})], NOW + 1)
    w.clock.advance(RACE_REFRESH_S * 1000)

    w.process(reading("ann", 1, race="later"))

    ann = w.store.standings[RiderKey("later", "ann")]
    assert (ann.name, ann.class_id, ann.seconds) == ("Ann B", 4, 2)


def test_lags_are_summed_over_counted_readings_only(world: World) -> None:
    """The end-to-end lag metrics (mean and max) come from the readings that counted: a
    duplicate second adds no lag, however late it arrives."""
    world.clock.now = reading("ann", 0).device_timestamp + 5_000  # 5 s into the race

    out = world.process(reading("ann", 0), reading("ann", 2), reading("bob", 1), reading("ann", 0))

    # ann's seconds 0 and 2 (5 s and 3 s old), bob's second 1 (4 s); ann's resent 0 is a duplicate
    assert (out.lag_count, out.lag_total_ms, out.lag_max_ms) == (3, 12_000, 5_000)
    assert out.duplicates == 1
