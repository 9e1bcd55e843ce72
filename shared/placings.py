"""A closed race's final placings, computed in one pass from its entries and standings (pure).

Standard competition ranking by points (1, 2, 2, 4), overall and within each class, of every
entered rider with at least one counted second who is not disqualified; ties are listed by
riderId. Entered riders with no counted second are ``DNS``, disqualified riders ``DSQ`` (even
with seconds counted: they keep their live standing, but are not placed); neither is ranked,
and both come after the ranked riders, each group by riderId. Names and classes are the
entries'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from shared.contract import CLASS_IDS
from shared.races import EnteredRider

Outcome = Literal["ranked", "DNS", "DSQ"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ranked", "DNS", "DSQ")
OVERALL: Final = "ALL"
"""The scope of the overall placings; a class's scope is :func:`class_scope`."""


def class_scope(class_id: int) -> str:
    return f"C{class_id}"


@dataclass(frozen=True, slots=True)
class Tally:
    """What the closer reads of a rider's standing."""

    points: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Placing:
    """One rider's final placing. ``rank`` is the rank in the list it is in (overall, or in its
    class); ``rank_overall`` and ``rank_class`` are both, for the rider's announcement."""

    rank: int | None
    rider_id: str
    name: str
    class_id: int
    points: int
    seconds: int
    outcome: Outcome
    rank_overall: int | None
    rank_class: int | None
    personal_best: bool = False
    """Set when the race closed: the rider's best points in this class over races of this
    length (:mod:`shared.history`)."""
    record: bool = False
    """Set when the race closed: the result holds the class record for races of this length."""


@dataclass(frozen=True, slots=True)
class Placings:
    overall: tuple[Placing, ...]
    by_class: dict[int, tuple[Placing, ...]]
    """Every class 1..6, empty when nobody is entered in it."""

    def scope(self, scope: str) -> tuple[Placing, ...]:
        if scope == OVERALL:
            return self.overall
        return self.by_class[int(scope.removeprefix("C"))]

    def scopes(self) -> dict[str, tuple[Placing, ...]]:
        return {OVERALL: self.overall} | {class_scope(c): p for c, p in self.by_class.items()}


def competition_ranks(points: Sequence[int]) -> list[int]:
    """Ranks of a list sorted by points descending: equal points share a rank (1, 2, 2, 4)."""
    ranks: list[int] = []
    for i, p in enumerate(points):
        ranks.append(ranks[-1] if i and points[i - 1] == p else i + 1)
    return ranks


def compute_placings(entries: Iterable[EnteredRider], tallies: Mapping[str, Tally]) -> Placings:
    """The placings of every entered rider. ``tallies`` holds the standing of each rider with
    one (by rider id); a rider without one, or with no counted second, did not start."""
    ranked: list[tuple[EnteredRider, Tally]] = []
    dns: list[EnteredRider] = []
    dsq: list[EnteredRider] = []
    for e in sorted(entries, key=lambda e: e.rider_id):
        tally = tallies.get(e.rider_id)
        if e.disqualified:
            dsq.append(e)
        elif tally is None or tally.seconds == 0:
            dns.append(e)
        else:
            ranked.append((e, tally))
    ranked.sort(key=lambda et: (-et[1].points, et[0].rider_id))
    overall_ranks = competition_ranks([t.points for _, t in ranked])
    class_rank: dict[str, int] = {}
    for class_id in CLASS_IDS:
        members = [t.points for e, t in ranked if e.entry.class_id == class_id]
        ids = [e.rider_id for e, _ in ranked if e.entry.class_id == class_id]
        class_rank.update(zip(ids, competition_ranks(members), strict=True))

    def placed(
        e: EnteredRider, tally: Tally | None, outcome: Outcome, overall: int | None
    ) -> Placing:
        rank_class = class_rank.get(e.rider_id)
        return Placing(
            rank=overall,
            rider_id=e.rider_id,
            name=e.entry.name,
            class_id=e.entry.class_id,
            points=tally.points if tally else 0,
            seconds=tally.seconds if tally else 0,
            outcome=outcome,
            rank_overall=overall,
            rank_class=rank_class,
        )

    overall = [placed(e, t, "ranked", r) for (e, t), r in zip(ranked, overall_ranks, strict=True)]
    overall += [placed(e, tallies.get(e.rider_id), "DNS", None) for e in dns]
    overall += [placed(e, tallies.get(e.rider_id), "DSQ", None) for e in dsq]
    by_class = {  # the same placings, ranked within the class
        c: tuple(replace(p, rank=p.rank_class) for p in overall if p.class_id == c)
        for c in CLASS_IDS
    }
    return Placings(tuple(overall), by_class)
