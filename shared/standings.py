"""A rider's standing and the pure merge that makes every reading count exactly once.

A standing carries a bitmap of the race seconds already counted (bit ``s`` set = second ``s``
counted) and a version. Merging readings into a standing counts only the seconds whose bit is
clear and gives the next version; the store writes it on condition that the stored version is
still the one merged from. So a reading delivered twice, late, out of order, in a replayed or
bisected batch, or resent by the producer, changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from shared.contract import Telemetry
from shared.scoring import reading_points


class RiderKey(NamedTuple):
    """A rider in a race (a tuple: cheap to build and hash once per reading)."""

    race_id: str
    rider_id: str


@dataclass(frozen=True, slots=True)
class Standing:
    """What the table holds for one rider in one race (``sk = STANDING``)."""

    race_id: str
    rider_id: str
    name: str
    class_id: int
    points: int
    seconds: int
    last_second: int
    counted: int
    """Bitmap of counted seconds as a Python int (bit s = second s)."""
    version: int
    """The stored version (0: never stored). A merged standing carries the version it will have
    once written: the store writes it on condition that the stored version is one less."""
    updated_at: int
    """Epoch ms when this standing was last written."""
    last_device_ts: int
    """deviceTimestamp of the newest counted reading (informational: the lag metric)."""
    final_second: int = -1
    """The second of the rider's ``final`` reading (-1: none yet). Seconds after it are
    refused; a standing with one is shown finished."""

    @property
    def key(self) -> RiderKey:
        return RiderKey(self.race_id, self.rider_id)


@dataclass(frozen=True, slots=True)
class Merge:
    """The outcome of merging readings into a standing."""

    standing: Standing
    """The standing to write, at the next version."""
    applied: tuple[Telemetry, ...]
    """Readings that counted, one per new second, in the order given."""
    duplicates: int
    """Readings that counted nothing: their second was already counted."""

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def empty_standing(first: Telemetry) -> Standing:
    return Standing(
        race_id=first.race_id,
        rider_id=first.rider_id,
        name=first.name,
        class_id=first.class_id,
        points=0,
        seconds=0,
        last_second=-1,
        counted=0,
        version=0,
        updated_at=0,
        last_device_ts=0,
    )


def merge(current: Standing | None, readings: Iterable[Telemetry], now_ms: int) -> Merge:
    """Count each reading whose second is not counted yet; everything else is a duplicate.

    ``readings`` all belong to one (raceId, riderId). The name and class follow the newest
    counted second (a rider's display name may be corrected mid-race).
    """
    readings = tuple(readings)
    if not readings:
        raise ValueError("merge needs at least one reading")
    base = current if current is not None else empty_standing(readings[0])
    counted = base.counted
    points = base.points
    seconds = base.seconds
    last_second = base.last_second
    last_device_ts = base.last_device_ts
    name, class_id = base.name, base.class_id
    race_id, rider_id = base.race_id, base.rider_id
    applied: list[Telemetry] = []
    for r in readings:  # the hot loop of the processor: locals, no calls but the scoring
        if r.rider_id != rider_id or r.race_id != race_id:
            raise ValueError(f"reading for {r.race_id}/{r.rider_id} merged into {base.key}")
        second = r.second
        bit = 1 << second
        if counted & bit:
            continue
        counted |= bit
        points += reading_points(r)
        seconds += 1
        applied.append(r)
        if second >= last_second:
            last_second = second
            name, class_id = r.name, r.class_id
        if r.device_timestamp > last_device_ts:  # noqa: PLR1730 - no call in the hot loop
            last_device_ts = r.device_timestamp
    if not applied:
        return Merge(standing=base, applied=(), duplicates=len(readings))
    merged = Standing(
        race_id=base.race_id,
        rider_id=base.rider_id,
        name=name,
        class_id=class_id,
        points=points,
        seconds=seconds,
        last_second=last_second,
        counted=counted,
        version=base.version + 1,
        updated_at=now_ms,
        last_device_ts=last_device_ts,
    )
    return Merge(standing=merged, applied=tuple(applied), duplicates=len(readings) - len(applied))
