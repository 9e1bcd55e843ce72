"""What outlives a race: each ranked rider's history, personal bests and the class records (pure).

A closed race's placings are weighed once, in the race's close:

- a rider's **result** (history) is their placing in that race, with the race it belongs to;
- a **personal best** is the rider's best points in a class over races of one length;
- the **records** of a class and race length are the best results ever in it, one row per
  rider (their best), kept to the top :data:`RECORDS_KEPT`.

Races of different lengths are not compared: points add up second by second, so a longer race
scores more, and output per second is not comparable either (a rider holds more power for one
minute than for an hour). Records are kept per race length (``durationS``), as cycling keeps
them per distance or time.

Who holds a record on a tie: equalling a record does not take it. Rows are ordered by points
(descending), then by when they were set (the race's ``startsAt``, earlier first), then by rider
id; the holders are the rows with the top points set in the earliest race among them, so riders
who tie for a new record in the same race hold it together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

RECORDS_KEPT: Final = 100
"""Rows kept per class and race length: the records route returns at most this many."""
HISTORY_PAGE_MAX: Final = 100
"""The most results one history page returns."""


@dataclass(frozen=True, slots=True)
class RaceRef:
    """The race a result belongs to, as history shows it."""

    race_id: str
    name: str
    starts_at: int
    duration_s: int


@dataclass(frozen=True, slots=True)
class Best:
    """A rider's best points in a class over races of one length: a personal best, and a row of
    the class records. ``set_at`` is when it was set: the race's ``startsAt``."""

    rider_id: str
    name: str
    class_id: int
    points: int
    seconds: int
    race: RaceRef

    @property
    def set_at(self) -> int:
        return self.race.starts_at

    @property
    def duration_s(self) -> int:
        return self.race.duration_s

    def beats(self, other: Best | None) -> bool:
        """More points than ``other`` (a best it would replace)."""
        return other is None or self.points > other.points


@dataclass(frozen=True, slots=True)
class RiderResult:
    """One race in a rider's history: the placing, and whether it set a personal best or a
    class record when the race closed."""

    rider_id: str
    name: str
    race: RaceRef
    class_id: int
    rank_overall: int
    rank_class: int
    points: int
    seconds: int
    personal_best: bool
    record: bool


def record_order(b: Best) -> tuple[int, int, str]:
    return (-b.points, b.set_at, b.rider_id)


@dataclass(frozen=True, slots=True)
class ClassRecords:
    """The records of one class and race length: at most :data:`RECORDS_KEPT` rows, one per
    rider, in :func:`record_order`. ``version`` guards concurrent closes (0: none stored)."""

    class_id: int
    duration_s: int
    rows: tuple[Best, ...] = ()
    version: int = 0

    def holders(self) -> tuple[Best, ...]:
        """The rows holding the record: the top points, set in the earliest race among them."""
        if not self.rows:
            return ()
        top = self.rows[0]
        return tuple(
            b for b in self.rows if b.points == top.points and b.race.race_id == top.race.race_id
        )

    def held_by(self, rider_id: str, race_id: str) -> bool:
        """Whether this rider's result in this race holds the record."""
        return any(b.rider_id == rider_id and b.race.race_id == race_id for b in self.holders())

    def merged(self, results: Iterable[Best]) -> ClassRecords:
        """These records with ``results`` weighed in: each rider keeps their best row (an equal
        later result does not replace an earlier one), and the top :data:`RECORDS_KEPT` stay.
        Merging the same results again changes nothing; ``version`` is the next one."""
        best: dict[str, Best] = {b.rider_id: b for b in self.rows}
        for r in results:
            if r.class_id != self.class_id or r.duration_s != self.duration_s:
                raise ValueError(
                    f"{r} is not a result of class {self.class_id}, {self.duration_s} s"
                )
            held = best.get(r.rider_id)
            if held is None or record_order(r) < record_order(held):
                best[r.rider_id] = r
        rows = tuple(sorted(best.values(), key=record_order)[:RECORDS_KEPT])
        return ClassRecords(self.class_id, self.duration_s, rows, self.version + 1)
