"""Scoring: integer arithmetic, so totals are exact whatever the batching.

A reading scores ``(cadence + 35) * (resistance + 65)`` hundredths of an output unit (the
Alleycat output formula scaled to stay in integers). A rider's score in a race is the sum
over *distinct* seconds: the first reading of a second counts, any later copy counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from shared.contract import Telemetry

CADENCE_OFFSET: Final = 35
RESISTANCE_OFFSET: Final = 65
POINTS_PER_OUTPUT: Final = 100
"""Points are hundredths of an output unit: the page shows ``points / 100``."""
MAX_POINTS_PER_SECOND: Final = (200 + CADENCE_OFFSET) * (100 + RESISTANCE_OFFSET)


def points(cadence: int, resistance: int) -> int:
    """Points for one second at this cadence (rpm) and resistance (percent)."""
    return (cadence + CADENCE_OFFSET) * (resistance + RESISTANCE_OFFSET)


def reading_points(reading: Telemetry) -> int:
    return points(reading.cadence, reading.resistance)


@dataclass(frozen=True, slots=True)
class Score:
    """A rider's exact score: points over distinct seconds, how many seconds, the latest one."""

    points: int
    seconds: int
    last_second: int


def ground_truth(readings: Iterable[Telemetry]) -> dict[tuple[str, str], Score]:
    """Each (raceId, riderId)'s exact score over the given readings, duplicates counted once.

    This is the reference every delivery path is checked against: the simulator writes it,
    the tests compare the stored standings with it.
    """
    seen: dict[tuple[str, str], dict[int, int]] = {}
    for r in readings:
        per_second = seen.setdefault((r.race_id, r.rider_id), {})
        if r.second not in per_second:
            per_second[r.second] = reading_points(r)
    return {
        key: Score(points=sum(secs.values()), seconds=len(secs), last_second=max(secs))
        for key, secs in seen.items()
    }
