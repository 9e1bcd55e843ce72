"""The race-card cache: how often a processor reads races and entries, and how long a change
takes to apply (``RACE_REFRESH_S``), by the batch's clock; in memory, then through the handler
against moto, counted in requests."""

from __future__ import annotations

from typing import Any

from functions.stream_processor.cards import RaceCardCache
from shared.memory import InMemoryRaceStore
from shared.ports import TransientError
from shared.races import RACE_REFRESH_S
from shared.scoring import points
from tests.stream_processor.conftest import NOW, Aws, entry, kinesis_record, new_race, reading

REFRESH_MS = RACE_REFRESH_S * 1000


def book_with(*races: str) -> InMemoryRaceStore:
    book = InMemoryRaceStore()
    for race in races:
        book.create_race(new_race(race))
        book.enter(race, [entry("ann")], NOW)
    book.calls.clear()
    return book


def test_records_are_read_together_and_entries_once_per_version() -> None:
    book = book_with("r1", "r2")
    cache = RaceCardCache(book)

    cards, failed = cache.cards(["r1", "r2", "r3"], NOW)

    assert failed == {}
    assert cards["r3"] is None
    assert {r: sorted(c.entries) for r, c in cards.items() if c is not None} == {
        "r1": ["ann"],
        "r2": ["ann"],
    }
    assert book.calls == {"get_races": 1, "entries": 2}
    book.calls.clear()
    book.enter("r2", [entry("bob")], NOW)
    book.calls.clear()

    cache.cards(["r1", "r2", "r3"], NOW + REFRESH_MS - 1)
    assert book.calls == {}
    cards, _ = cache.cards(["r1", "r2", "r3"], NOW + REFRESH_MS)
    assert book.calls == {"get_races": 1, "entries": 1}  # r2's entries: its version moved
    assert cards["r2"] is not None
    assert sorted(cards["r2"].entries) == ["ann", "bob"]


def test_only_the_stale_races_of_a_batch_are_read() -> None:
    book = book_with("r1", "r2")
    cache = RaceCardCache(book)
    cache.cards(["r1"], NOW)
    seen: list[list[str]] = []
    get_races = book.get_races

    def spy(race_ids: Any, **kwargs: Any) -> Any:
        seen.append(list(race_ids))
        return get_races(race_ids, **kwargs)

    book.get_races = spy  # type: ignore[method-assign]

    cache.cards(["r1", "r2"], NOW + 1)
    cache.cards(["r1", "r2"], NOW + REFRESH_MS)

    assert seen == [["r2"], ["r1"]]


def test_a_clock_that_went_back_reads_the_record_again() -> None:
    book = book_with("r1")
    cache = RaceCardCache(book)
    cache.cards(["r1"], NOW)
    book.calls.clear()

    cache.cards(["r1"], NOW - 1)

    assert book.calls == {"get_races": 1}


def test_failures_are_reported_per_race_and_nothing_stale_is_kept() -> None:
    book = book_with("r1", "r2")
    cache = RaceCardCache(book)
    entries = book.entries

    def flaky(race_id: str, **kwargs: Any) -> Any:
        if race_id == "r2":
            raise TransientError("throttled")
        return entries(race_id, **kwargs)

    book.entries = flaky  # type: ignore[method-assign]

    cards, failed = cache.cards(["r1", "r2"], NOW)

    assert list(cards) == ["r1"]
    assert failed == {"r2": "entries: throttled"}
    book.entries = entries  # type: ignore[method-assign]
    book.calls.clear()
    cards, failed = cache.cards(["r1", "r2"], NOW + 1)
    assert (sorted(cards), failed, book.calls) == (["r1", "r2"], {}, {"get_races": 1, "entries": 1})


def test_the_cache_holds_a_bounded_number_of_races() -> None:
    book = book_with("r1", "r2", "r3")
    cache = RaceCardCache(book, size=2)
    cache.cards(["r1", "r2"], NOW)
    cache.cards(["r1"], NOW + 1)  # r1 used last
    cache.cards(["r3"], NOW + 2)  # r2 goes
    book.calls.clear()

    cache.cards(["r1", "r3"], NOW + 3)
    assert book.calls == {}
    cache.cards(["r2"], NOW + 4)
    assert book.calls == {"get_races": 1, "entries": 1}


def test_the_processor_reads_races_per_refresh_not_per_batch(aws: Aws) -> None:
    """Through the deployed entry point: what a batch costs in race-book requests."""
    aws.invoke([kinesis_record(reading(r, 0), i) for i, r in enumerate(("ann", "bob"))])
    assert (aws.faults.calls["BatchGetItem"], aws.faults.calls["Query"]) == (2, 1)  # card, riders

    for s in range(1, 4):  # batches within the refresh: no read of the race book at all
        aws.faults.calls.clear()
        aws.clock.advance(500)
        aws.invoke(
            [kinesis_record(reading(r, s), 10 * s + i) for i, r in enumerate(("ann", "bob"))]
        )
        assert aws.faults.calls.get("BatchGetItem", 0) + aws.faults.calls.get("Query", 0) == 0

    aws.enter("eve")  # entriesVersion moves
    aws.faults.calls.clear()
    aws.clock.advance(499)  # 1,999 ms after the card was read: eve is not entered yet
    aws.invoke([kinesis_record(reading("eve", 0), 100)])
    assert aws.faults.calls.get("BatchGetItem", 0) + aws.faults.calls.get("Query", 0) == 0
    aws.clock.advance(1)  # the card is read again, and the entries, which changed
    aws.faults.calls.clear()
    aws.invoke([kinesis_record(reading("eve", 1), 101)])
    # The race record, then eve's standing (new to this environment); the entries' query.
    assert (aws.faults.calls["BatchGetItem"], aws.faults.calls["Query"]) == (2, 1)

    aws.clock.past_refresh()
    aws.faults.calls.clear()
    aws.invoke([kinesis_record(reading("eve", 2), 102)])
    assert (aws.faults.calls["BatchGetItem"], aws.faults.calls.get("Query", 0)) == (1, 0)

    assert [x["reason"] for x in aws.dead_letters()] == [
        "rider not entered: eve is not entered in race race-1"
    ]
    assert aws.standings()["eve"] == (2 * points(90, 50), 2, 2)
