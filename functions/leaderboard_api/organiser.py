"""The organiser's use cases: schedule a race, enter riders, close early, disqualify.

The race book (:class:`shared.ports.RaceBook`) holds the rules of entries and closing; this
module adds what the API alone does: every race has one EventBridge Scheduler one-time schedule
that runs its closer at ``close_due_at``, behind the :class:`CloseScheduler` port
(:mod:`functions.leaderboard_api.adapters` on boto3, :mod:`functions.leaderboard_api.memory`
in memory).

Creating a race is two writes to two services, so their order is what keeps them consistent:

1. the race must not exist (a strongly consistent read): a 409 touches nothing;
2. its schedule is put (created, or moved if a create that failed before step 3 left one);
3. the race record is created, on condition that the id is still free.

The race record is written last, so no failure leaves a race without its closer. A failure
after 2 leaves a schedule without a race: the closer finds no race and does nothing, the
schedule deletes itself after it runs, and the organiser's retry moves it and creates the
race. Two requests creating the same race at once both pass 1; the one whose record write
loses puts the winner's close time back on the schedule before answering 409.

An early close moves the record's ``closesAt`` first, then the schedule: if the schedule cannot
be moved, the race still closes, at the time it was scheduled to (the request answers 503 and
may be sent again while the race is still open).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

from functions.leaderboard_api.logic import race_not_found
from shared.ports import RaceBook
from shared.races import Entry, NewRace, Race, RaceConflictError, RaceStatus


class CloseScheduler(Protocol):
    """Each race's one-time close schedule. Raises ``shared.ports.TransientError`` for failures
    worth retrying."""

    def create(self, race_id: str, due_at: int) -> None:
        """Schedule the race's close at ``due_at`` (epoch ms): create its schedule, or move the
        one a failed earlier attempt left."""
        ...

    def move(self, race_id: str, due_at: int) -> None:
        """Move the race's schedule to ``due_at`` (created if it is missing)."""
        ...


MAX_DAYS_AHEAD: Final = 366
"""How far ahead a race may start: a season's calendar, not a date no schedule could hold (a
``startsAt`` of 2^53 - 1 ms is in the year 285,428)."""


class UnprocessableError(ValueError):
    """A well-formed request that cannot be carried out as it is (422); the message names the
    field to change."""


def iso_utc(epoch_ms: int) -> str:
    """``2026-11-22T19:05:36.000Z``: a time in a message, readable and exact."""
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def create_race(book: RaceBook, scheduler: CloseScheduler, request: NewRace, now: int) -> Race:
    """Schedule a new race and its close (see the module's docstring for the order)."""
    race = Race.new(request, created_at=now)
    if race.closes_at <= now:
        raise UnprocessableError(
            f"startsAt: the race would close at {iso_utc(race.closes_at)} (startsAt + durationS "
            f"+ graceS), which is past: start it later"
        )
    if race.starts_at > now + MAX_DAYS_AHEAD * 86_400_000:
        raise UnprocessableError(
            f"startsAt: a race starts at most {MAX_DAYS_AHEAD} days ahead, by "
            f"{iso_utc(now + MAX_DAYS_AHEAD * 86_400_000)}"
        )
    if book.get_race(race.race_id) is not None:
        raise RaceConflictError(f"raceId: race {race.race_id} exists already")
    scheduler.create(race.race_id, race.close_due_at)
    try:
        book.create_race(race)
    except RaceConflictError:
        _reschedule_stored(book, scheduler, race.race_id)
        raise
    return race


def _reschedule_stored(book: RaceBook, scheduler: CloseScheduler, race_id: str) -> None:
    """Another request created this race between our check and our write, after we had put
    its schedule at our time: put it back at the stored race's."""
    stored = book.get_race(race_id)
    if stored is not None and stored.state != "closed":
        scheduler.move(race_id, stored.close_due_at)


def enter(book: RaceBook, race_id: str, entries: Sequence[Entry], now: int) -> tuple[int, int]:
    """(added, updated): the race book applies the rules (changes until the start, new riders
    until the close)."""
    return book.enter(race_id, entries, now)


def close(book: RaceBook, scheduler: CloseScheduler, race_id: str, now: int) -> Race:
    """Close ``graceS`` from now, or at the scheduled close if that is sooner, and move the
    schedule to the new time (record first: see the module's docstring)."""
    race = book.close_early(race_id, now)
    scheduler.move(race_id, race.close_due_at)
    return race


def disqualify(book: RaceBook, race_id: str, rider_id: str, now: int) -> None:
    """Mark an entered rider disqualified while the race is scheduled or running: once it is
    closing its placings are being computed."""
    race = book.get_race(race_id)
    if race is None:
        raise race_not_found(race_id)
    status = race.status(now)
    if status in (RaceStatus.CLOSING, RaceStatus.CLOSED):
        raise RaceConflictError(
            f"race {race_id} is {status}: its riders can no longer be disqualified"
        )
    book.disqualify(race_id, rider_id)
