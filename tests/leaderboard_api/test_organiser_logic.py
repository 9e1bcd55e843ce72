"""The organiser's use cases on the in-memory race book and close schedules, with faults
injected between the two writes: a race is never left without its closer, a 409 never moves a
schedule, a failed early close leaves the race closing at its scheduled time."""

from __future__ import annotations

import pytest

from functions.leaderboard_api import organiser
from functions.leaderboard_api.memory import InMemoryCloseScheduler
from shared.memory import InMemoryRaceStore
from shared.ports import TransientError
from shared.races import Entry, NewRace, Race, RaceConflictError, RaceNotFoundError

NOW = 1_795_374_300_000
REQUEST = NewRace(race_id="r-1", name="Race", starts_at=NOW + 60_000, duration_s=600, grace_s=30)
DUE = NOW + 60_000 + 630_000 + 5_000
"""closesAt (start + duration + grace) and the settle time."""


class FlakyBook(InMemoryRaceStore):
    """The in-memory race book whose next ``create_race`` fails (as a throttled write), or
    whose next ``get_race`` misses a race another request is creating at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_create = 0
        self.miss_next_get = False

    def create_race(self, race: Race) -> None:
        if self.fail_create:
            self.fail_create -= 1
            raise TransientError("injected")
        super().create_race(race)

    def get_race(self, race_id: str, *, consistent: bool = True) -> Race | None:
        if self.miss_next_get:
            self.miss_next_get = False
            return None
        return super().get_race(race_id, consistent=consistent)


@pytest.fixture
def book() -> FlakyBook:
    return FlakyBook()


@pytest.fixture
def scheduler() -> InMemoryCloseScheduler:
    return InMemoryCloseScheduler()


def test_the_schedule_is_put_before_the_race(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    race = organiser.create_race(book, scheduler, REQUEST, NOW)

    assert race == Race.new(REQUEST, created_at=NOW)
    assert book.races == {"r-1": race}
    assert scheduler.requests == [("create", "r-1", DUE)]
    assert race.close_due_at == DUE


def test_a_schedule_that_cannot_be_put_leaves_no_race(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    scheduler.fail_next = [TransientError("throttled")]

    with pytest.raises(TransientError, match=r"^throttled$"):
        organiser.create_race(book, scheduler, REQUEST, NOW)

    assert book.races == {}


def test_a_race_that_cannot_be_stored_leaves_a_schedule_the_retry_moves(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    book.fail_create = 1
    with pytest.raises(TransientError):
        organiser.create_race(book, scheduler, REQUEST, NOW)
    assert (book.races, scheduler.due) == ({}, {"r-1": DUE})

    retried = REQUEST.model_copy(update={"duration_s": 300})
    race = organiser.create_race(book, scheduler, retried, NOW + 1_000)

    assert book.races == {"r-1": race}
    assert scheduler.requests == [("create", "r-1", DUE), ("update", "r-1", DUE - 300_000)]
    assert scheduler.due == {"r-1": race.close_due_at}


def test_an_existing_race_moves_no_schedule(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    organiser.create_race(book, scheduler, REQUEST, NOW)

    with pytest.raises(RaceConflictError, match=r"^raceId: race r-1 exists already$"):
        organiser.create_race(book, scheduler, REQUEST.model_copy(update={"grace_s": 0}), NOW)

    assert scheduler.requests == [("create", "r-1", DUE)]


def test_the_loser_of_two_creates_puts_the_winners_close_back(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    """Both passed the existence check; the winner stored its race; the loser then moved the
    schedule to its own time before its write failed: it puts the stored race's back."""
    winner = organiser.create_race(book, scheduler, REQUEST, NOW)
    book.miss_next_get = True
    loser = REQUEST.model_copy(update={"starts_at": NOW + 3_600_000})

    with pytest.raises(RaceConflictError, match=r"^raceId: race r-1 exists already$"):
        organiser.create_race(book, scheduler, loser, NOW)

    loser_due = NOW + 3_600_000 + 630_000 + 5_000
    assert scheduler.requests == [
        ("create", "r-1", DUE),
        ("update", "r-1", loser_due),
        ("update", "r-1", DUE),
    ]
    assert scheduler.due == {"r-1": winner.close_due_at}
    assert book.races == {"r-1": winner}


def test_a_race_closing_in_the_past_is_refused_before_any_write(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    past = REQUEST.model_copy(update={"starts_at": NOW - 630_000})

    with pytest.raises(organiser.UnprocessableError, match=r"^startsAt: the race would close at"):
        organiser.create_race(book, scheduler, past, NOW)

    assert (book.calls, scheduler.requests) == ({}, [])


def test_an_early_close_moves_the_record_then_the_schedule(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    organiser.create_race(book, scheduler, REQUEST, NOW)
    now = NOW + 120_000  # a minute in

    race = organiser.close(book, scheduler, "r-1", now)

    assert race.closes_at == now + 30_000
    assert book.races["r-1"].closes_at == now + 30_000
    assert scheduler.requests[-1] == ("update", "r-1", now + 35_000)


def test_an_early_close_whose_schedule_fails_still_closes_at_its_scheduled_time(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    organiser.create_race(book, scheduler, REQUEST, NOW)
    scheduler.fail_next = [TransientError("throttled")]
    now = NOW + 120_000

    with pytest.raises(TransientError):
        organiser.close(book, scheduler, "r-1", now)
    assert book.races["r-1"].closes_at == now + 30_000
    assert scheduler.due == {"r-1": DUE}  # the closer still runs, at the original time

    race = organiser.close(book, scheduler, "r-1", now + 10_000)  # the organiser sends it again

    assert race.closes_at == now + 30_000
    assert scheduler.due == {"r-1": now + 35_000}


def test_a_rider_of_a_scheduled_race_may_be_disqualified(
    book: FlakyBook, scheduler: InMemoryCloseScheduler
) -> None:
    organiser.create_race(book, scheduler, REQUEST, NOW)
    organiser.enter(book, "r-1", [Entry(rider_id="x", name="X", class_id=1)], NOW)

    organiser.disqualify(book, "r-1", "x", NOW)

    assert book.entered["r-1"]["x"].disqualified is True
    with pytest.raises(RaceNotFoundError, match=r"^riderId: y is not entered in race r-1$"):
        organiser.disqualify(book, "r-1", "y", NOW)
    with pytest.raises(RaceNotFoundError, match=r"^raceId: no race r-2$"):
        organiser.disqualify(book, "r-2", "x", NOW)


def test_times_in_messages_are_utc_to_the_millisecond() -> None:
    assert organiser.iso_utc(1_795_374_336_007) == "2026-11-22T19:05:36.007Z"
    assert organiser.iso_utc(0) == "1970-01-01T00:00:00.000Z"
