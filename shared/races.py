"""Races as an organiser runs them: the race, its entries, its status. Defined once.

A race is created before it is ridden (``POST /races``, ``breakaway race create``), riders are
entered in it, and it closes itself at ``closesAt``. The API, the stream processor, the race
closer, the simulator and the local stack all read races through these models.

Status is derived, not stored, except for the two steps only the closer takes:

* ``scheduled`` before ``startsAt``;
* ``running`` from ``startsAt`` until ``closesAt`` (the grace after the last race second still
  takes late readings, so the race is still being decided);
* ``closing`` from ``closesAt`` until the closer has stored the placings (the closer also
  stores ``closing`` when it starts, so a close that stalls is visible);
* ``closed`` once the placings are stored: from then on nothing changes them.

Deriving the time-driven steps means every reader agrees on them to the millisecond, whenever
the scheduled closer actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, Field, model_validator

from shared.contract import MAX_RACE_SECONDS, NUM_CLASSES, WIRE_MODEL, Id, Name

DEFAULT_GRACE_S: Final = 30
MAX_GRACE_S: Final = 3_600
MAX_ENTRIES_PER_REQUEST: Final = 1_000
MAX_EPOCH_MS: Final = 2**53 - 1
DEFAULT_FUTURE_SLACK_S: Final = 5
"""How far a reading's second may run ahead of the race clock (the processor's clock, never the
device's): ``second <= (now - startsAt) / 1000 + slack``."""
CLOSE_SETTLE_S: Final = 5
"""The closer runs this long after ``closesAt``. A processor refuses readings by its own clock
against the ``closesAt`` it has cached (refreshed every ``RACE_REFRESH_S``), so an early close
reaches every processor within that refresh, and a batch that passed the check before
``closesAt`` has written its standings within the rest of the settle time."""
RACE_REFRESH_S: Final = 2
"""How old a processor's copy of a race record may be (the entries are read again only when
the record says they changed): a new entry or an early close applies within this."""


class RaceStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


RACE_STATUSES: Final = tuple(s.value for s in RaceStatus)

StoredState = Literal["open", "closing", "closed"]
"""What the race record stores: ``open`` until the closer starts."""


def closes_at(starts_at: int, duration_s: int, grace_s: int) -> int:
    return starts_at + 1000 * (duration_s + grace_s)


class NewRace(BaseModel):
    """``POST /races``: what an organiser gives to schedule a race."""

    model_config = WIRE_MODEL

    race_id: Id
    name: Name
    starts_at: Annotated[int, Field(ge=0, le=MAX_EPOCH_MS, description="epoch milliseconds")]
    duration_s: Annotated[int, Field(ge=1, le=MAX_RACE_SECONDS)]
    grace_s: Annotated[int, Field(ge=0, le=MAX_GRACE_S)] = DEFAULT_GRACE_S


class Entry(BaseModel):
    """One rider entered in a race. ``deviceId``, when given, is the only device whose readings
    count for the rider (the IoT thing that carries it)."""

    model_config = WIRE_MODEL

    rider_id: Id
    name: Name
    class_id: Annotated[int, Field(ge=1, le=NUM_CLASSES)]
    device_id: Id | None = None


class Entries(BaseModel):
    """``POST /races/{raceId}/entries``: at most 1,000 riders a request, each once."""

    model_config = WIRE_MODEL

    entries: Annotated[list[Entry], Field(min_length=1, max_length=MAX_ENTRIES_PER_REQUEST)]
    """A list, not a tuple: a JSON array is a list in Python, and Powertools' resolver validates
    the body already parsed (strict mode takes a list only as a list). A tuple with a length
    bound also reports a second, misleading error when an item fails."""

    @model_validator(mode="after")
    def _each_rider_once(self) -> Entries:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.rider_id in seen:
                raise ValueError(f"entries: rider {entry.rider_id} is given twice")
            seen.add(entry.rider_id)
        return self


@dataclass(frozen=True, slots=True)
class EnteredRider:
    """An entry as stored: the organiser's entry, and whether the rider was disqualified."""

    entry: Entry
    disqualified: bool = False

    @property
    def rider_id(self) -> str:
        return self.entry.rider_id


@dataclass(frozen=True, slots=True)
class Race:
    """The race record (``sk = RACE``): the organiser's schedule, the closer's state, and the
    counters the processor keeps (by its own clock, never a device's)."""

    race_id: str
    name: str
    starts_at: int
    duration_s: int
    grace_s: int
    closes_at: int
    state: StoredState = "open"
    entrants: int = 0
    entries_version: int = 0
    """Moves on every change to the entries: a processor reads them again when it moves."""
    created_at: int = 0
    closed_at: int = 0
    riders: int = 0
    """Riders with a live standing (at least one counted second)."""
    class_counts: dict[int, int] = field(default_factory=dict)
    finished: int = 0
    """Riders whose ``final`` reading counted."""
    last_reading_at: int = 0
    """When a processor last counted a reading of this race (the processor's clock)."""

    @classmethod
    def new(cls, request: NewRace, created_at: int) -> Race:
        return cls(
            race_id=request.race_id,
            name=request.name,
            starts_at=request.starts_at,
            duration_s=request.duration_s,
            grace_s=request.grace_s,
            closes_at=closes_at(request.starts_at, request.duration_s, request.grace_s),
            created_at=created_at,
        )

    @property
    def ends_at(self) -> int:
        """When the last race second is over (late readings are taken until ``closes_at``)."""
        return self.starts_at + 1000 * self.duration_s

    @property
    def close_due_at(self) -> int:
        """When the closer runs: ``closes_at`` and the settle time."""
        return self.closes_at + 1000 * CLOSE_SETTLE_S

    def status(self, now_ms: int) -> RaceStatus:
        if self.state == "closed":
            return RaceStatus.CLOSED
        if self.state == "closing" or now_ms >= self.closes_at:
            return RaceStatus.CLOSING
        if now_ms >= self.starts_at:
            return RaceStatus.RUNNING
        return RaceStatus.SCHEDULED

    def accepts_readings(self, now_ms: int) -> bool:
        return self.state == "open" and now_ms < self.closes_at

    def closed_early(self, now_ms: int) -> Race:
        """The race as ``POST /close`` leaves it: closing ``graceS`` from now, or at its
        scheduled close if that is sooner."""
        return replace(self, closes_at=min(self.closes_at, now_ms + 1000 * self.grace_s))


@dataclass(frozen=True, slots=True)
class RaceCard:
    """A race and everyone entered in it: what the processor checks readings against and what
    the closer places."""

    race: Race
    entries: dict[str, EnteredRider]
    """By rider id."""

    def entry(self, rider_id: str) -> EnteredRider | None:
        return self.entries.get(rider_id)


def card(race: Race, entries: Sequence[EnteredRider]) -> RaceCard:
    return RaceCard(race, {e.rider_id: e for e in entries})


class RaceNotFoundError(LookupError):
    """No such race (or no such rider entered in it): the message says which (404)."""


class RaceConflictError(Exception):
    """The race's state forbids this: it exists already, has started, or is closing or closed.
    The message says which (409)."""


class CloseRace(BaseModel):
    """What a race's one-time schedule hands the closer (the schedule target's ``Input``)."""

    model_config = WIRE_MODEL

    v: Literal[1] = 1
    race_id: Id
