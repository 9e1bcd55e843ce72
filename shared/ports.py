"""Ports: what the processing logic needs from the outside world, and nothing more.

Adapters: :mod:`shared.dynamodb` (AWS and the local emulator) and :mod:`shared.memory` (an
in-memory fake with the same semantics, for benchmarks and property tests).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.history import Best, ClassRecords, RiderResult
from shared.placings import Placing, Placings
from shared.races import EnteredRider, Entry, Race, RaceCard
from shared.standings import RiderKey, Standing


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
    """A batch counted readings of this race at ``at`` (epoch ms, the processor's clock: never
    a device's)."""

    race_id: str
    at: int


class StandingsStore(Protocol):
    def load(self, riders: Sequence[RiderKey]) -> dict[RiderKey, Standing]:
        """Stored standings of these riders (absent riders are left out). Strongly consistent.
        Raises TransientError."""
        ...

    def save(
        self, standings: Sequence[Standing], finishing: Collection[RiderKey] = ()
    ) -> list[WriteResult]:
        """Write each standing, on condition that the stored version is ``standing.version - 1``
        (version 1: not stored yet, so create it). A created standing counts its rider (and its
        class), and a standing of a rider in ``finishing`` (its final second set by this write)
        counts the rider finished, once, in the race record, in the same transaction: never in
        a race record that does not exist. One result per standing, in order."""
        ...

    def record_activity(self, activity: Sequence[RaceActivity]) -> None:
        """Move each existing race record's ``lastReadingAt`` forward to ``at`` (a race record
        is never created here). Raises TransientError."""
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


class RaceCards(Protocol):
    """What the stream processor reads of the race book (:class:`RaceBook`): race records, a
    batch's at once, and a race's entries when they changed."""

    def get_races(self, race_ids: Sequence[str], *, consistent: bool = True) -> dict[str, Race]:
        """The records of these races that exist. Raises TransientError."""
        ...

    def entries(self, race_id: str, *, consistent: bool = False) -> list[EnteredRider]:
        """Every entry of the race. Raises TransientError."""
        ...


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Store every letter durably or raise TransientError."""
        ...


class Notifier(Protocol):
    def publish(self, race_id: str, placing: Placing) -> None:
        """Announce a rider's final placing (on ``names.RESULT_TOPIC``). Raises
        TransientError."""
        ...


class RaceBook(Protocol):
    """Races, entries and placings (:class:`shared.race_store.DynamoRaceStore`, and its twin
    :class:`shared.memory.InMemoryRaceStore`). Raises TransientError for failures worth
    retrying, :class:`shared.races.RaceNotFoundError` / :class:`shared.races.RaceConflictError`
    for requests that can never succeed as they are."""

    def get_race(self, race_id: str, *, consistent: bool = True) -> Race | None: ...
    def get_races(self, race_ids: Sequence[str], *, consistent: bool = True) -> dict[str, Race]: ...
    def entries(self, race_id: str, *, consistent: bool = False) -> list[EnteredRider]: ...
    def race_card(self, race_id: str, *, consistent: bool = False) -> RaceCard | None: ...
    def get_entries(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, EnteredRider]: ...
    def placings_page(
        self, race_id: str, scope: str, offset: int, limit: int
    ) -> tuple[list[Placing], int] | None: ...
    def create_race(self, race: Race) -> None: ...
    def enter(self, race_id: str, entries: Sequence[Entry], now: int) -> tuple[int, int]: ...
    def close_early(self, race_id: str, now: int) -> Race: ...
    def disqualify(self, race_id: str, rider_id: str) -> None: ...
    def mark_closing(self, race_id: str) -> None: ...
    def store_placings(self, race_id: str, placings: Placings) -> int: ...
    def mark_closed(self, race_id: str, now: int) -> bool: ...


class HistoryBook(Protocol):
    """Riders' history, personal bests and class records (:mod:`shared.history`):
    :class:`shared.history_store.DynamoHistoryStore` and its twin
    :class:`shared.memory.InMemoryHistoryStore`. Raises TransientError."""

    def claim_personal_best(self, best: Best) -> bool:
        """Store ``best`` as the rider's personal best if it beats the stored one (or there is
        none), or if the stored one was set in the same race (a close run again). True when the
        stored best is now this one: the result set a personal best."""
        ...

    def records(self, class_id: int, duration_s: int, *, consistent: bool = False) -> ClassRecords:
        """The records of a class over races of one length (empty, version 0, if none)."""
        ...

    def save_records(self, records: ClassRecords) -> bool:
        """Store ``records`` on condition that the stored version is ``records.version - 1``.
        False when another close stored a version first: read again and merge."""
        ...

    def put_results(self, results: Sequence[RiderResult]) -> None:
        """Store these races in the riders' histories (the same item, however often)."""
        ...

    def rider_results(
        self, rider_id: str, limit: int, after: str | None = None
    ) -> tuple[list[RiderResult], str | None]:
        """Up to ``limit`` results of the rider, newest race first, from after the position
        ``after`` (a value this method returned); and the position of the next page, if any."""
        ...
