"""Ports: what the processing logic needs from the outside world, and nothing more.

Adapters: :mod:`shared.dynamodb` (AWS and the local emulator) and :mod:`shared.memory` (an
in-memory fake with the same semantics, for benchmarks and property tests).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.finishing import Finish
from shared.standings import FinalResult, RiderKey, Standing


class TransientError(Exception):
    """A failure worth retrying (throttling, timeout, conflict): the batch retries from it."""


class WriteStatus(enum.Enum):
    OK = "ok"
    CONFLICT = "conflict"
    """The stored version was not the one merged from; ``current`` holds what is stored."""
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class WriteResult:
    key: RiderKey
    status: WriteStatus
    current: Standing | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RaceActivity:
    """What one batch saw of one race: the device-time span of its counted readings."""

    race_id: str
    first_device_ts: int
    last_device_ts: int


class StandingsStore(Protocol):
    def load(self, riders: Sequence[RiderKey]) -> dict[RiderKey, Standing]:
        """Stored standings of these riders (absent riders are left out). Strongly consistent.
        Raises TransientError."""
        ...

    def save(self, standings: Sequence[Standing]) -> list[WriteResult]:
        """Write each standing, on condition that the stored version is ``standing.version - 1``
        (version 1: not stored yet, so create it). A created standing counts its rider, once,
        in the race record. One result per standing, in order."""
        ...

    def record_activity(self, activity: Sequence[RaceActivity]) -> None:
        """Create the race record if new; move ``lastReadingAt`` forward. Raises TransientError."""
        ...

    def get_standing(self, rider: RiderKey) -> Standing | None:
        """One stored standing (strongly consistent). Raises TransientError."""
        ...


class ResultsStore(Protocol):
    """What the race finisher needs: the ranking, and the results."""

    def ranks(self, race_id: str, riders: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The standard competition ranks (1 + riders with strictly more points), overall and
        in class, of each rider given as (points, class id), reading the ranking once for all
        of them. Raises TransientError."""
        ...

    def put_results(self, results: Sequence[FinalResult]) -> list[FinalResult]:
        """Store each result (one per rider) unless one is stored already, and count the ones
        stored now as finished in their race record, exactly once; return what is stored, in
        the order given (a result stored before comes back as it was stored)."""
        ...


class FinishQueue(Protocol):
    def send(self, finishes: Sequence[Finish]) -> None:
        """Hand these finishing riders to the race finisher durably, or raise TransientError.
        Sending a rider twice is harmless: the finisher stores and announces each rider once."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that can never succeed, with everything needed to inspect or replay it."""

    payload: str
    """The record's data exactly as it arrived (base64, as in the Kinesis event)."""
    reason: str
    shard_id: str
    sequence_number: str
    partition_key: str
    event_source_arn: str
    approximate_arrival: float


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Store every letter durably or raise TransientError."""
        ...


class Notifier(Protocol):
    def publish(self, result: FinalResult) -> None:
        """Tell the world a rider finished. Raises TransientError."""
        ...
