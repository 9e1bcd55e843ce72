"""The race closer's logic: a race's one-time schedule in, final placings stored and announced.

One close, in steps that are each safe to run again, so that a close delivered twice, or
retried after failing half way, ends exactly as a clean one:

1. read the race record (strongly consistent). An unknown race is logged and left. A race
   already ``closed`` has its placings stored: go to step 5 with them.
2. not due yet (``close_due_at`` = ``closesAt`` + the settle time): wait for it if it is under
   ``MAX_EARLY_S`` away, otherwise leave it (an early or stale invocation: the race's own
   schedule comes later);
3. mark the race ``closing`` (a no-op if it is already), read its entries, then each entered
   rider's standing (points, seconds), all strongly consistent. Nothing changes them any more:
   processors refuse readings from ``closesAt`` on, and entries and disqualifications need an
   ``open`` race;
4. compute the placings (:func:`shared.placings.compute_placings`), store them (the same items
   with the same content, however often), archive the race's card (:mod:`shared.archive`:
   the same object, however often) and mark the race ``closed`` (only the first call does;
   the others find it closed);
5. announce each rider's placing through ``announce``, which does so once per race and rider
   (the handler wraps the notifier in Powertools' idempotency utility): a retry announces only
   the riders not announced before.

Transient failures in steps 1-4 propagate (the invocation fails and is retried); a failed
announcement is reported in the outcome, the others still go out, and the handler fails the
invocation so that it is retried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from shared.archive import ArchiveWriter, card_object
from shared.placings import Placing, Tally, compute_placings
from shared.ports import RaceBook, TransientError
from shared.races import Race, card

MAX_EARLY_S: Final = 60
"""An invocation at most this early waits for the race to be due; an earlier one leaves it."""


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
        clock: Callable[[], int],
        sleep: Callable[[float], None],
        announce_map: Mapper = map,
        archive: ArchiveWriter | None = None,
    ) -> None:
        self.book = book
        self.reader = reader
        self.announce = announce
        self.clock = clock
        """Epoch milliseconds (the closer's clock, never a device's)."""
        self.sleep = sleep
        self.announce_map = announce_map
        """How the riders are announced: each is independent (its own idempotency record and
        notification), so the handler runs them at once."""
        self.archive = archive
        """Where the race's card is archived (None: nowhere)."""

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
        """Steps 3 and 4: the placings, stored, and whether this call closed the race."""
        self.book.mark_closing(race.race_id)
        entries = self.book.entries(race.race_id, consistent=True)
        tallies = self.reader.tallies(race.race_id, [e.rider_id for e in entries])
        placings = compute_placings(entries, tallies)
        self.book.store_placings(race.race_id, placings)
        if self.archive is not None:
            self.archive.put(card_object(card(race, entries)))
        closed_now = self.book.mark_closed(race.race_id, self.clock())
        return list(placings.overall), closed_now

    def _announce(self, race_id: str, placings: Sequence[Placing], out: CloseOutcome) -> None:
        one = functools.partial(_announce_one, self.announce, race_id)
        for placing, error in zip(placings, self.announce_map(one, placings), strict=True):
            if error is None:
                out.announced += 1
            else:
                out.failed.append((placing.rider_id, str(error)))
