"""A rider's standing and the pure merge that makes every reading count exactly once.

A standing carries a bitmap of the race seconds already counted (bit ``s`` set = second ``s``
counted) and a version. Merging readings into a standing counts only the seconds whose bit is
clear and gives the next version; the store writes it on condition that the stored version is
still the one merged from. So a reading delivered twice, late, out of order, in a replayed or
bisected batch, or resent by the producer, changes nothing the second time.

The rider's name and class come from its entry in the race (:class:`shared.races.Entry`),
never from a reading; its ``final`` reading sets the final second, after which nothing counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shared.contract import EVENT_FINAL, MAX_RACE_SECONDS, Telemetry
from shared.races import Entry
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
    """The standing to write, at the next version (the one merged from when nothing changed)."""
    applied: tuple[Telemetry, ...]
    """Readings that counted, one per new second, in the order given."""
    duplicates: int
    """Readings that counted nothing: their second was already counted."""
    after_final: tuple[Telemetry, ...] = ()
    """Readings refused because their second comes after the rider's final second
    (:attr:`shared.counting.Refusal.AFTER_FINAL`), in the order given."""
    changed: bool = False
    """The standing must be written: a second counted, or the final second set or moved."""
    finishes: bool = False
    """This merge first sets the rider's final second: the write that stores it counts the
    rider finished in the race record, once."""


def empty_standing(race_id: str, rider_id: str, entry: Entry) -> Standing:
    return Standing(
        race_id=race_id,
        rider_id=rider_id,
        name=entry.name,
        class_id=entry.class_id,
        points=0,
        seconds=0,
        last_second=-1,
        counted=0,
        version=0,
        updated_at=0,
        last_device_ts=0,
    )


def final_second(current: int, readings: Sequence[Telemetry]) -> int:
    """The smallest final second among ``current`` (-1: none) and the ``final`` readings."""
    finals = [r.second for r in readings if r.event == EVENT_FINAL]
    if current >= 0:
        finals.append(current)
    return min(finals, default=-1)


def merge(
    current: Standing | None, readings: Iterable[Telemetry], now_ms: int, entry: Entry
) -> Merge:
    """Count each reading whose second is not counted yet and not after the rider's final
    second; a second counted already is a duplicate, one after the final second is refused.

    ``readings`` all belong to one (raceId, riderId), the rider of ``entry``, whose name and
    class the standing takes (never a reading's). The final second is the smallest second of
    any ``final`` reading seen, in this batch or before, whatever the order of arrival: in a
    batch ``[update 101, final 100]`` second 101 is refused. A second that counted before a
    smaller final second arrived stays counted (a standing only ever adds).
    """
    readings = tuple(readings)
    if not readings:
        raise ValueError("merge needs at least one reading")
    first = readings[0]
    base = current if current is not None else empty_standing(first.race_id, first.rider_id, entry)
    race_id, rider_id = base.race_id, base.rider_id
    if entry.rider_id != rider_id:
        raise ValueError(f"entry of {entry.rider_id} merged into {base.key}")
    final = final_second(base.final_second, readings)
    limit = final if final >= 0 else MAX_RACE_SECONDS
    counted = base.counted
    points = base.points
    seconds = base.seconds
    last_second = base.last_second
    last_device_ts = base.last_device_ts
    applied: list[Telemetry] = []
    after_final: list[Telemetry] = []
    for r in readings:  # the hot loop of the processor: locals, one call
        if r.rider_id != rider_id or r.race_id != race_id:
            raise ValueError(f"reading for {r.race_id}/{r.rider_id} merged into {base.key}")
        second = r.second
        if second > limit:
            after_final.append(r)
            continue
        bit = 1 << second
        if counted & bit:
            continue
        counted |= bit
        points += reading_points(r)
        seconds += 1
        applied.append(r)
        if second > last_second:  # noqa: PLR1730 - no call in the hot loop
            last_second = second
        if r.device_timestamp > last_device_ts:  # noqa: PLR1730 - no call in the hot loop
            last_device_ts = r.device_timestamp
    duplicates = len(readings) - len(applied) - len(after_final)
    if not applied and final == base.final_second:
        return Merge(base, (), duplicates, tuple(after_final))
    merged = Standing(
        race_id=race_id,
        rider_id=rider_id,
        name=entry.name,
        class_id=entry.class_id,
        points=points,
        seconds=seconds,
        last_second=last_second,
        counted=counted,
        version=base.version + 1,
        updated_at=now_ms,
        last_device_ts=last_device_ts,
        final_second=final,
    )
    return Merge(
        standing=merged,
        applied=tuple(applied),
        duplicates=duplicates,
        after_final=tuple(after_final),
        changed=True,
        finishes=base.final_second < 0 <= final,
    )
