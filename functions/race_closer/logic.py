"""The race closer's logic: a race's one-time schedule in, final placings weighed, stored and
announced.

One close, in steps that are each safe to run again, so that a close delivered twice, or
retried after failing half way, ends exactly as a clean one:

1. read the race record (strongly consistent). An unknown race is logged and left. A race
   already ``closed`` has its placings stored, flags and all: go to step 6 with them.
2. not due yet (``close_due_at`` = ``closesAt`` + the settle time): wait for it if it is under
   ``MAX_EARLY_S`` away, otherwise leave it (an early or stale invocation: the race's own
   schedule comes later);
3. mark the race ``closing`` (a no-op if it is already), read its entries, then each entered
   rider's standing (points, seconds), all strongly consistent. Nothing changes them any more:
   processors refuse readings from ``closesAt`` on, and entries and disqualifications need an
   ``open`` race;
4. compute the placings (:func:`shared.placings.compute_placings`) and weigh them
   (:func:`weigh`): each ranked rider's personal best claimed, each class's records merged
   and saved, each ranked rider's result put in their history, with both flags;
5. store the placings with the flags (the same items with the same content, however often)
   and mark the race ``closed`` (only the first call does; the others find it closed);
6. announce each rider's placing, flags included, through ``announce``, which does so once per
   race and rider (the handler wraps the notifier in Powertools' idempotency utility): a retry
   announces only the riders not announced before.

Transient failures in steps 1-5 propagate (the invocation fails and is retried); a failed
announcement is reported in the outcome, the others still go out, and the handler fails the
invocation so that it is retried.

Weighing again is harmless: a personal best already claimed by this race is claimed again
(the same item), a class's records that already hold this race's results merge to the same
rows (nothing is written), and a rider's result is the same item. Only what *another* close did
in between can change the answer. If a different race of the same class and length improved a
rider's best (or took the record) after this close weighed and before its retry, the retry
finds the stored best beyond this race's: it leaves the stored best alone (a best is never
lowered) and flags this race's result as no personal best (or no record): as if this race had closed
after the other. Nothing was announced yet (announcements follow the close), so the placings,
the history and the announcement agree; acceptable for a close that failed and came back late.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, Protocol

from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.placings import Placing, Placings, Tally, compute_placings
from shared.ports import HistoryBook, RaceBook, TransientError
from shared.races import Race

MAX_EARLY_S: Final = 60
"""An invocation at most this early waits for the race to be due; an earlier one leaves it."""
RECORD_ATTEMPTS: Final = 5
"""A class's records are read, merged and saved (on condition of their version) at most this
many times in one close: each lost save means another close of the class saved first."""


class TallyReader(Protocol):
    def tallies(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, Tally]:
        """The standing of each of these riders that has one (strongly consistent). Raises
        TransientError."""
        ...

    def stored_placings(self, race_id: str) -> list[Placing]:
        """The race's stored overall placings, every rider (strongly consistent). Raises
        TransientError."""
        ...


Announcer = Callable[[str, Placing], object]
"""Announces a rider's final placing, at most once per race and rider, or raises
TransientError."""
AnnounceResult = TransientError | None
Mapper = Callable[
    [Callable[[Placing], AnnounceResult], Sequence[Placing]], Iterable[AnnounceResult]
]
"""Runs a function over the placings and yields its answers in their order, one after another
(``map``) or at once (``ThreadPoolExecutor.map``)."""
ClaimMapper = Callable[[Callable[[Best], bool], Sequence[Best]], Iterable[bool]]
"""The same, over the personal bests claimed."""


def race_ref(race: Race) -> RaceRef:
    return RaceRef(race.race_id, race.name, race.starts_at, race.duration_s)


def _save_records(history: HistoryBook, bests: Sequence[Best]) -> ClassRecords:
    """One class's records with ``bests`` (one race's, one class) merged in and saved: read
    consistently, merged, saved on condition of the version read; read and merged again when
    another close saved first. Records that already hold these results are not written."""
    class_id, duration_s = bests[0].class_id, bests[0].duration_s
    for _ in range(RECORD_ATTEMPTS):
        stored = history.records(class_id, duration_s, consistent=True)
        merged = stored.merged(bests)
        if merged.rows == stored.rows:
            return stored
        if history.save_records(merged):
            return merged
    raise TransientError(
        f"records of class {class_id}, {duration_s} s: {RECORD_ATTEMPTS} saves lost to other closes"
    )


def _flagged(placings: Placings, bests: set[str], records: set[str]) -> Placings:
    def flag(p: Placing) -> Placing:
        if p.rider_id in bests or p.rider_id in records:
            return replace(p, personal_best=p.rider_id in bests, record=p.rider_id in records)
        return p

    return Placings(
        tuple(flag(p) for p in placings.overall),
        {c: tuple(flag(p) for p in rows) for c, rows in placings.by_class.items()},
    )


def _result(p: Placing, race: RaceRef) -> RiderResult:
    if p.rank_overall is None or p.rank_class is None:
        raise ValueError(f"{p.rider_id} is not ranked: no result to keep")
    return RiderResult(
        rider_id=p.rider_id,
        name=p.name,
        race=race,
        class_id=p.class_id,
        rank_overall=p.rank_overall,
        rank_class=p.rank_class,
        points=p.points,
        seconds=p.seconds,
        personal_best=p.personal_best,
        record=p.record,
    )


def weigh(
    race: Race, placings: Placings, history: HistoryBook, claim_map: ClaimMapper = map
) -> Placings:
    """The placings with each ranked rider's result weighed against their personal best and
    the class records (races of this length), and kept in their history: each best claimed
    (through ``claim_map``), each class's records merged and saved, then the results put, with
    the flags the placings return. DNS and DSQ riders are not weighed. Safe to run again (the
    module's docstring says what another close in between changes)."""
    ref = race_ref(race)
    bests = [
        Best(p.rider_id, p.name, p.class_id, p.points, p.seconds, ref)
        for p in placings.overall
        if p.outcome == "ranked"
    ]
    claimed = claim_map(history.claim_personal_best, bests)
    personal = {b.rider_id for b, won in zip(bests, claimed, strict=True) if won}
    held: set[str] = set()
    for class_id in sorted({b.class_id for b in bests}):
        records = _save_records(history, [b for b in bests if b.class_id == class_id])
        held.update(h.rider_id for h in records.holders() if h.race.race_id == race.race_id)
    flagged = _flagged(placings, personal, held)
    history.put_results([_result(p, ref) for p in flagged.overall if p.outcome == "ranked"])
    return flagged


class CloseStatus(StrEnum):
    UNKNOWN = "unknown race"
    NOT_DUE = "not due"
    CLOSED = "closed"
    """This invocation stored the placings and closed the race."""
    CLOSED_BEFORE = "closed before"
    """The race was closed already (a duplicate or a retry): only announcements were left."""


@dataclass
class CloseOutcome:
    race_id: str
    status: CloseStatus
    placed: int = 0
    """Riders placed (every entered rider: ranked, DNS or DSQ)."""
    announced: int = 0
    """Riders whose placing is announced (now, or by an earlier invocation)."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """Riders whose announcement failed this time, with the reason."""

    def response(self) -> dict[str, object]:
        """What the handler returns (and logs): counts, never the placings."""
        return {
            "raceId": self.race_id,
            "status": self.status.value,
            "placed": self.placed,
            "announced": self.announced,
            "announcementsFailed": len(self.failed),
        }


def _announce_one(announce: Announcer, race_id: str, placing: Placing) -> AnnounceResult:
    try:
        announce(race_id, placing)
    except TransientError as exc:
        return exc
    return None


class RaceCloser:
    def __init__(
        self,
        book: RaceBook,
        reader: TallyReader,
        announce: Announcer,
        *,
        history: HistoryBook,
        clock: Callable[[], int],
        sleep: Callable[[float], None],
        announce_map: Mapper = map,
        claim_map: ClaimMapper = map,
    ) -> None:
        self.book = book
        self.reader = reader
        self.announce = announce
        self.history = history
        self.clock = clock
        """Epoch milliseconds (the closer's clock, never a device's)."""
        self.sleep = sleep
        self.announce_map = announce_map
        """How the riders are announced: each is independent (its own idempotency record and
        notification), so the handler runs them at once."""
        self.claim_map = claim_map
        """How the personal bests are claimed (one conditional write each): at once too."""

    def close(self, race_id: str) -> CloseOutcome:
        race = self.book.get_race(race_id, consistent=True)
        if race is None:
            return CloseOutcome(race_id, CloseStatus.UNKNOWN)
        if race.state == "closed":
            placings = self.reader.stored_placings(race_id)
            outcome = CloseOutcome(race_id, CloseStatus.CLOSED_BEFORE, placed=len(placings))
        else:
            wait_ms = race.close_due_at - self.clock()
            if wait_ms > MAX_EARLY_S * 1000:
                return CloseOutcome(race_id, CloseStatus.NOT_DUE)
            if wait_ms > 0:
                self.sleep(wait_ms / 1000)
            placings, closed_now = self._store(race)
            status = CloseStatus.CLOSED if closed_now else CloseStatus.CLOSED_BEFORE
            outcome = CloseOutcome(race_id, status, placed=len(placings))
        self._announce(race_id, placings, outcome)
        return outcome

    def _store(self, race: Race) -> tuple[list[Placing], bool]:
        """Steps 3 to 5: the placings, weighed and stored, and whether this call closed the
        race."""
        self.book.mark_closing(race.race_id)
        entries = self.book.entries(race.race_id, consistent=True)
        tallies = self.reader.tallies(race.race_id, [e.rider_id for e in entries])
        placings = weigh(race, compute_placings(entries, tallies), self.history, self.claim_map)
        self.book.store_placings(race.race_id, placings)
        closed_now = self.book.mark_closed(race.race_id, self.clock())
        return list(placings.overall), closed_now

    def _announce(self, race_id: str, placings: Sequence[Placing], out: CloseOutcome) -> None:
        one = functools.partial(_announce_one, self.announce, race_id)
        for placing, error in zip(placings, self.announce_map(one, placings), strict=True):
            if error is None:
                out.announced += 1
            else:
                out.failed.append((placing.rider_id, str(error)))
