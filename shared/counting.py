"""Which readings count: the one definition of the rules, used by the stream processor (and by
anything that recomputes a race from the archive).

A reading that parses is counted only if its race exists and is open, its rider is entered,
its second lies inside the race, it is not from the future by the processor's clock, and it
comes from the rider's entered device where the entry names one. Otherwise it is a dead letter
whose reason names the rule (:class:`Refusal`), counted per reason, never retried. A rider's
seconds after its ``final`` second are refused in the merge (:mod:`shared.standings`), where
the final second is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from shared.contract import Telemetry
from shared.races import RaceCard


class Refusal(Enum):
    """Why a record does not count. ``value`` is the reason's metric name (``DeadLetters``
    has a ``Reason`` dimension with it); :attr:`text` starts the dead letter's reason."""

    INVALID_READING = "InvalidReading"
    CONTRACT_V1 = "ContractV1"
    UNKNOWN_RACE = "UnknownRace"
    RACE_CLOSED = "RaceClosed"
    NOT_ENTERED = "NotEntered"
    SECOND_OUT_OF_RANGE = "SecondOutOfRange"
    FROM_THE_FUTURE = "FromTheFuture"
    WRONG_DEVICE = "WrongDevice"
    AFTER_FINAL = "AfterFinal"

    @property
    def text(self) -> str:
        return _TEXTS[self]


_TEXTS: Final = {
    Refusal.INVALID_READING: "invalid reading",
    Refusal.CONTRACT_V1: "contract v1",
    Refusal.UNKNOWN_RACE: "unknown race",
    Refusal.RACE_CLOSED: "race closed",
    Refusal.NOT_ENTERED: "rider not entered",
    Refusal.SECOND_OUT_OF_RANGE: "second out of range",
    Refusal.FROM_THE_FUTURE: "from the future",
    Refusal.WRONG_DEVICE: "wrong device",
    Refusal.AFTER_FINAL: "after final",
}


def refusal(  # noqa: PLR0911 - one return per rule, in the order they are checked
    reading: Telemetry, race: RaceCard | None, now_ms: int, slack_s: int
) -> tuple[Refusal, str] | None:
    """None if ``reading`` may count (its second may still be a duplicate, or after the rider's
    final second); else the rule it breaks and a reason naming the values.

    ``now_ms`` is the processor's clock when the batch is processed; ``race`` is None when no
    such race exists.
    """
    if race is None:
        return Refusal.UNKNOWN_RACE, f"unknown race: no race {reading.race_id}"
    r = race.race
    if not r.accepts_readings(now_ms):
        return Refusal.RACE_CLOSED, f"race closed: race {r.race_id} closed at {r.closes_at}"
    entered = race.entries.get(reading.rider_id)
    if entered is None:
        return (
            Refusal.NOT_ENTERED,
            f"rider not entered: {reading.rider_id} is not entered in race {r.race_id}",
        )
    second = reading.second
    if second >= r.duration_s:
        return (
            Refusal.SECOND_OUT_OF_RANGE,
            f"second out of range: {second} is not below the race's {r.duration_s} seconds",
        )
    # The race clock: whole seconds since the start, by the processor's clock (floor, so a
    # reading a moment early is measured against the second already begun).
    elapsed = (now_ms - r.starts_at) // 1000
    if second > elapsed + slack_s:
        return (
            Refusal.FROM_THE_FUTURE,
            f"from the future: second {second} arrived {elapsed} s into the race "
            f"(slack {slack_s} s)",
        )
    device = entered.entry.device_id
    if device is not None and reading.device_id != device:
        return (
            Refusal.WRONG_DEVICE,
            f"wrong device: {reading.rider_id} rides on {device}, "
            f"the reading came from {reading.device_id or 'no device'}",
        )
    return None


@dataclass(frozen=True, slots=True)
class RiderGate:
    """The rules of :func:`refusal` settled for one rider of one race at one moment (a batch):
    all that is left to check of each reading is its second and its device. The processor
    builds one per rider per batch and asks :meth:`admits` of each reading, so a batch looks the
    race and the entry up once per rider, not once per reading; a reading it does not admit
    goes through :func:`refusal` for its reason. Tested to agree with :func:`refusal` on every
    reading (``tests/unit/test_counting.py``)."""

    last_second: int
    """The highest second that may count now (-1: none may; the race or the entry refuses)."""
    device: str | None
    """The only device whose readings count for the rider (None: any)."""

    def admits(self, reading: Telemetry) -> bool:
        return reading.second <= self.last_second and (
            self.device is None or reading.device_id == self.device
        )


NO_READING: Final = RiderGate(-1, None)


def rider_gate(race: RaceCard | None, rider_id: str, now_ms: int, slack_s: int) -> RiderGate:
    """What :func:`refusal` leaves to check of a reading of ``rider_id`` at ``now_ms``."""
    if race is None or not race.race.accepts_readings(now_ms):
        return NO_READING
    entered = race.entries.get(rider_id)
    if entered is None:
        return NO_READING
    r = race.race
    last = min(r.duration_s - 1, (now_ms - r.starts_at) // 1000 + slack_s)
    return RiderGate(last, entered.entry.device_id)
