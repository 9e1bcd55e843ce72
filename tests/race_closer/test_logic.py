"""The closer's logic over the in-memory race book: when it closes, what it stores, what it
announces, and how a duplicate, a retry after a half-way failure, an early or unknown close
end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from functions.race_closer.logic import CloseOutcome, CloseStatus, RaceCloser
from shared.memory import InMemoryHistoryStore, InMemoryRaceStore
from shared.placings import OVERALL, Placing, Tally
from shared.ports import TransientError
from tests.race_closer.conftest import (
    BY_CLASS,
    CLOSES_AT,
    DUE_AT,
    ENTRIES,
    PLACINGS,
    RACE_ID,
    STARTS_AT,
    TALLIES,
    race,
)


@dataclass
class Reader:
    """The closer's reads over the in-memory book and a dict of standings."""

    book: InMemoryRaceStore
    standings: dict[str, Tally]
    asked: list[list[str]] = field(default_factory=list)

    def tallies(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, Tally]:
        self.asked.append(list(rider_ids))
        return {r: self.standings[r] for r in rider_ids if r in self.standings}

    def stored_placings(self, race_id: str) -> list[Placing]:
        return list(self.book.placings[race_id].scope(OVERALL))


@dataclass
class Announcer:
    """Remembers what it announced, once per race and rider (as the idempotent announcer does);
    the riders in ``failing`` fail once each."""

    failing: set[str] = field(default_factory=set)
    published: list[tuple[str, Placing]] = field(default_factory=list)
    done: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, race_id: str, placing: Placing) -> None:
        if placing.rider_id in self.failing:
            self.failing.discard(placing.rider_id)
            raise TransientError("IoT publish: injected")
        if (race_id, placing.rider_id) not in self.done:
            self.done.add((race_id, placing.rider_id))
            self.published.append((race_id, placing))


class FailingBook(InMemoryRaceStore):
    """The in-memory book whose named method fails once with a TransientError."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def __getattribute__(self, name: str) -> object:
        if name == object.__getattribute__(self, "failing"):
            self.failing = ""

            def fail(*_: object, **__: object) -> None:
                raise TransientError(f"{name}: injected")

            return fail
        return super().__getattribute__(name)


@dataclass
class Setup:
    book: InMemoryRaceStore
    reader: Reader
    announcer: Announcer
    closer: RaceCloser
    now: list[int]
    slept: list[float]
    history: InMemoryHistoryStore


def setup(book: InMemoryRaceStore | None = None, now: int = DUE_AT) -> Setup:
    book = book if book is not None else InMemoryRaceStore()
    book.create_race(race())
    book.enter(RACE_ID, ENTRIES, now=STARTS_AT - 1)
    book.disqualify(RACE_ID, "hal")
    reader = Reader(book, dict(TALLIES))
    announcer = Announcer()
    clock = [now]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += int(seconds * 1000)

    history = InMemoryHistoryStore()
    closer = RaceCloser(
        book, reader, announcer, history=history, clock=lambda: clock[0], sleep=sleep
    )
    return Setup(book, reader, announcer, closer, clock, slept, history)


def test_a_due_race_is_placed_overall_and_per_class_with_ties_dns_and_dsq() -> None:
    s = setup()
    outcome = s.closer.close(RACE_ID)
    assert outcome == CloseOutcome(RACE_ID, CloseStatus.CLOSED, placed=8, announced=8)
    placings = s.book.placings[RACE_ID]
    assert list(placings.overall) == PLACINGS
    assert {c: list(p) for c, p in placings.by_class.items()} == BY_CLASS
    stored = s.book.races[RACE_ID]
    assert (stored.state, stored.closed_at) == ("closed", DUE_AT)
    # Every entered rider's standing is asked for, in one call; zed (not entered) is not.
    assert s.reader.asked == [sorted(e.rider_id for e in ENTRIES)]
    assert [p for _, p in s.announcer.published] == PLACINGS
    assert s.slept == []


def test_a_close_delivered_twice_changes_nothing_the_second_time() -> None:
    s = setup()
    s.closer.close(RACE_ID)
    stored, calls = s.book.placings[RACE_ID], dict(s.book.calls)
    s.now[0] += 60_000
    again = s.closer.close(RACE_ID)
    assert again == CloseOutcome(RACE_ID, CloseStatus.CLOSED_BEFORE, placed=8, announced=8)
    assert s.book.placings[RACE_ID] is stored
    assert s.book.races[RACE_ID].closed_at == DUE_AT  # the first close's time
    # The second read the race record only: no state change, no store.
    assert s.book.calls == {**calls, "get_race": calls["get_race"] + 1}
    assert Counter(p.rider_id for _, p in s.announcer.published) == dict.fromkeys(
        (e.rider_id for e in ENTRIES), 1
    )


@pytest.mark.parametrize("failing", ["mark_closing", "entries", "store_placings", "mark_closed"])
def test_a_close_failing_half_way_and_retried_ends_as_a_clean_one(failing: str) -> None:
    s = setup(FailingBook(failing))
    with pytest.raises(TransientError, match=f"{failing}: injected"):
        s.closer.close(RACE_ID)
    assert s.book.races[RACE_ID].state != "closed"
    assert s.announcer.published == []  # nothing is announced before the race is closed
    outcome = s.closer.close(RACE_ID)
    assert outcome == CloseOutcome(RACE_ID, CloseStatus.CLOSED, placed=8, announced=8)
    assert list(s.book.placings[RACE_ID].overall) == PLACINGS
    assert [p for _, p in s.announcer.published] == PLACINGS


def test_failed_announcements_are_reported_and_a_retry_announces_only_those() -> None:
    s = setup()
    s.announcer.failing = {"bob", "hal"}
    outcome = s.closer.close(RACE_ID)
    assert outcome.status is CloseStatus.CLOSED
    assert (outcome.placed, outcome.announced) == (8, 6)
    assert outcome.failed == [
        ("bob", "IoT publish: injected"),
        ("hal", "IoT publish: injected"),
    ]
    assert s.book.races[RACE_ID].state == "closed"  # the placings are final already
    retry = s.closer.close(RACE_ID)
    assert retry == CloseOutcome(RACE_ID, CloseStatus.CLOSED_BEFORE, placed=8, announced=8)
    assert [p.rider_id for _, p in s.announcer.published] == [
        "ann", "cat", "dan", "eve", "fay", "gus", "bob", "hal",
    ]  # fmt: skip


def test_an_invocation_more_than_a_minute_early_leaves_the_race_alone() -> None:
    s = setup(now=DUE_AT - 60_001)
    outcome = s.closer.close(RACE_ID)
    assert outcome == CloseOutcome(RACE_ID, CloseStatus.NOT_DUE)
    assert s.book.calls == {"create_race": 1, "enter": 1, "disqualify": 1, "get_race": 1}
    assert s.book.races[RACE_ID].state == "open"
    assert (s.slept, s.announcer.published) == ([], [])


def test_an_invocation_within_a_minute_waits_until_the_race_is_due() -> None:
    s = setup(now=DUE_AT - 42_500)
    outcome = s.closer.close(RACE_ID)
    assert outcome.status is CloseStatus.CLOSED
    assert s.slept == [42.5]
    assert s.book.races[RACE_ID].closed_at == DUE_AT


def test_a_race_closed_early_is_due_at_its_new_close_plus_the_settle_time() -> None:
    s = setup(now=STARTS_AT + 100_000)
    s.book.close_early(RACE_ID, now=STARTS_AT + 100_000)  # closesAt = now + graceS
    assert s.book.races[RACE_ID].closes_at == STARTS_AT + 130_000 < CLOSES_AT
    s.now[0] = STARTS_AT + 135_000
    assert s.closer.close(RACE_ID).status is CloseStatus.CLOSED
    assert s.slept == []


def test_an_unknown_race_is_left_alone() -> None:
    s = setup()
    assert s.closer.close("race-404") == CloseOutcome("race-404", CloseStatus.UNKNOWN)
    assert s.book.calls["get_race"] == 1
    assert s.announcer.published == []


def test_a_race_nobody_entered_closes_with_empty_placings() -> None:
    s = setup()
    s.book.create_race(replace(race(), race_id="empty"))
    outcome = s.closer.close("empty")
    assert outcome == CloseOutcome("empty", CloseStatus.CLOSED, placed=0, announced=0)
    assert s.book.placings["empty"].overall == ()
    assert s.book.races["empty"].state == "closed"


def test_the_response_counts_and_never_lists_placings() -> None:
    outcome = CloseOutcome(RACE_ID, CloseStatus.CLOSED, placed=8, announced=6)
    outcome.failed = [("bob", "x"), ("hal", "y")]
    assert outcome.response() == {
        "raceId": RACE_ID,
        "status": "closed",
        "placed": 8,
        "announced": 6,
        "announcementsFailed": 2,
    }
