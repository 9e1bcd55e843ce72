"""The audit: a closed race's placings recomputed from the archive alone and compared, rider by
rider, with the placings the closer stored (pure; ``breakaway audit`` reads both).

The archive holds every record the stream carried for the race, copies and refused ones
included. The audit counts them with the processor's own definitions, never a copy of them:
:func:`shared.contract.parse_reading` (a record that does not parse does not count),
:func:`shared.counting.refusal` against the archived race card, :func:`shared.standings.merge`
(one reading per second, nothing after the rider's final second), then the closer's
:func:`shared.placings.compute_placings`.

What the processor knew that the archive does not (docs/decisions.md, "The audit"):

- its clock. The audit asks the rules at the last moment a reading could count (``closesAt``
  less a millisecond): a reading the processor refused as from the future, or as arriving
  after the close, counts here if its second lies inside the race;
- the order of arrival. Each rider's records are merged in one go in the order the archive
  query gives (the device's clock, then eventId): the first of a second is the earliest, and
  the rider's final second is known from the start, as the processor knows it whenever the
  final reading arrives before the seconds after it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shared.contract import V1_REFUSED, ContractError, Telemetry, parse_reading
from shared.counting import Refusal, refusal
from shared.placings import Placing, Tally, compute_placings
from shared.races import DEFAULT_FUTURE_SLACK_S, RaceCard
from shared.standings import merge

WIRE_NAMES: Final = {
    (f.alias or name).lower(): f.alias or name for name, f in Telemetry.model_fields.items()
}
"""A column's wire name by its lower-case name (Glue's, Athena's)."""
PLACING_FIELDS: Final = ("rank", "name", "classId", "points", "seconds", "outcome")
"""What is compared of each rider's placing (``GET /races/{raceId}/results``' fields)."""


@dataclass(frozen=True, slots=True)
class Difference:
    scope: str
    """``ALL`` or a class's scope (``C3``)."""
    rider_id: str
    stored: Mapping[str, Any] | None
    recomputed: Mapping[str, Any] | None

    def __str__(self) -> str:
        who = f"{self.scope} {self.rider_id}"
        if self.stored is None:
            return f"{who}: not stored, the archive places {_fields(self.recomputed)}"
        if self.recomputed is None:
            return f"{who}: stored {_fields(self.stored)}, not in the archive's card"
        changed = [k for k in PLACING_FIELDS if self.stored.get(k) != self.recomputed.get(k)]
        shown = ", ".join(
            f"{k} stored {self.stored.get(k)!r} != archive {self.recomputed.get(k)!r}"
            for k in changed
        )
        return f"{who}: {shown}"


def _fields(placing: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k} {(placing or {}).get(k)!r}" for k in PLACING_FIELDS)


@dataclass
class Recount:
    """What the archive's records of one race come to."""

    tallies: dict[str, Tally] = field(default_factory=dict)
    records: int = 0
    counted: int = 0
    duplicates: int = 0
    refused: Counter[Refusal] = field(default_factory=Counter)


@dataclass
class AuditResult:
    race_id: str
    recount: Recount
    differences: list[Difference]
    placings_compared: int

    @property
    def exact(self) -> bool:
        return not self.differences


def reading_of(row: Mapping[str, Any]) -> Telemetry | Refusal:
    """A row of the archive as the processor would have parsed the record, or the refusal."""
    wire = {WIRE_NAMES.get(k.lower(), k): v for k, v in row.items() if v is not None}
    try:
        return parse_reading(_json(wire))
    except ContractError as exc:
        return Refusal.CONTRACT_V1 if str(exc) == V1_REFUSED else Refusal.INVALID_READING


def _json(wire: Mapping[str, Any]) -> str:
    return json.dumps(wire, separators=(",", ":"))


def recount(
    race_card: RaceCard, rows: Iterable[Mapping[str, Any]], slack_s: int = DEFAULT_FUTURE_SLACK_S
) -> Recount:
    """Each rider's tally from the race's records, by the processor's rules (module doc)."""
    out = Recount()
    now = race_card.race.closes_at - 1
    by_rider: dict[str, list[Telemetry]] = {}
    for row in rows:
        out.records += 1
        reading = reading_of(row)
        if isinstance(reading, Refusal):
            out.refused[reading] += 1
            continue
        verdict = refusal(reading, race_card, now, slack_s)
        if verdict is not None:
            out.refused[verdict[0]] += 1
            continue
        by_rider.setdefault(reading.rider_id, []).append(reading)
    for rider_id, readings in by_rider.items():
        m = merge(None, readings, now, race_card.entries[rider_id].entry)
        out.tallies[rider_id] = Tally(points=m.standing.points, seconds=m.standing.seconds)
        out.counted += len(m.applied)
        out.duplicates += m.duplicates
        out.refused[Refusal.AFTER_FINAL] += len(m.after_final)
    out.refused = +out.refused
    return out


def placing_fields(p: Placing) -> dict[str, Any]:
    """A placing as the results list shows it (the compared fields)."""
    return {
        "rank": p.rank,
        "name": p.name,
        "classId": p.class_id,
        "points": p.points,
        "seconds": p.seconds,
        "outcome": p.outcome,
    }


def compare(
    scope: str, stored: Sequence[Mapping[str, Any]], recomputed: Sequence[Placing]
) -> list[Difference]:
    """Rider by rider: every rider listed on either side, in the recomputed order first."""
    theirs = {str(s["riderId"]): {k: s.get(k) for k in PLACING_FIELDS} for s in stored}
    ours = {p.rider_id: placing_fields(p) for p in recomputed}
    riders = list(ours) + [r for r in theirs if r not in ours]
    return [
        Difference(scope, r, theirs.get(r), ours.get(r))
        for r in riders
        if theirs.get(r) != ours.get(r)
    ]


def audit(
    race_card: RaceCard,
    rows: Iterable[Mapping[str, Any]],
    stored: Mapping[str, Sequence[Mapping[str, Any]]],
    slack_s: int = DEFAULT_FUTURE_SLACK_S,
) -> AuditResult:
    """The race's placings from the archive against ``stored`` (by scope: ``ALL``, ``C1``..)."""
    counted = recount(race_card, rows, slack_s)
    placings = compute_placings(race_card.entries.values(), counted.tallies)
    differences: list[Difference] = []
    compared = 0
    for scope, listed in placings.scopes().items():
        differences += compare(scope, stored.get(scope, ()), listed)
        compared += len(listed)
    return AuditResult(race_card.race.race_id, counted, differences, compared)
