"""An in-memory standings store with the DynamoDB adapter's semantics, and a finish queue.

Used by the benchmarks (to measure our processing without the emulator) and by property tests
that need thousands of delivery schedules. Faults can be injected per call: ``fail_next``
makes the next writes of the given riders report TRANSIENT, exactly as a throttled
DynamoDB write does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.finishing import Finish, encode, parse
from shared.ports import RaceActivity, TransientError, WriteResult, WriteStatus
from shared.standings import FinalResult, RaceRecord, RiderKey, Standing, ranks_among


@dataclass
class _Race:
    race_id: str
    started_at: int | None = None
    last_reading_at: int | None = None
    riders: int = 0
    class_counts: dict[int, int] = field(default_factory=dict)
    finished: int = 0


class InMemoryStandingsStore:
    def __init__(self) -> None:
        self.standings: dict[RiderKey, Standing] = {}
        self.results: dict[RiderKey, FinalResult] = {}
        self._races: dict[str, _Race] = {}
        self.fail_next: set[RiderKey] = set()
        """Riders whose next write reports TRANSIENT (each entry is used once)."""
        self.fail_activity = 0
        """How many of the next record_activity calls raise TransientError."""
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def race(self, race_id: str) -> RaceRecord | None:
        r = self._races.get(race_id)
        if r is None:
            return None
        return RaceRecord(
            race_id=r.race_id,
            started_at=r.started_at or 0,
            last_reading_at=r.last_reading_at or 0,
            riders=r.riders,
            class_counts=dict(r.class_counts),
            finished=r.finished,
        )

    def load(self, riders: Sequence[RiderKey]) -> dict[RiderKey, Standing]:
        self._count("load")
        return {k: self.standings[k] for k in riders if k in self.standings}

    def get_standing(self, rider: RiderKey) -> Standing | None:
        self._count("get_standing")
        return self.standings.get(rider)

    def save(self, standings: Sequence[Standing]) -> list[WriteResult]:
        self._count("save")
        results = []
        for s in standings:
            key = RiderKey(s.race_id, s.rider_id)
            if key in self.fail_next:
                self.fail_next.discard(key)
                results.append(WriteResult(key, WriteStatus.TRANSIENT, error="injected"))
                continue
            stored = self.standings.get(key)
            if (stored.version if stored else 0) != s.version - 1:
                results.append(WriteResult(key, WriteStatus.CONFLICT, current=stored))
                continue
            self.standings[key] = s  # standings are immutable: storing shares nothing mutable
            if stored is None:
                race = self._races.setdefault(s.race_id, _Race(s.race_id))
                race.riders += 1
                race.class_counts[s.class_id] = race.class_counts.get(s.class_id, 0) + 1
            results.append(WriteResult(key, WriteStatus.OK))
        return results

    def record_activity(self, activity: Sequence[RaceActivity]) -> None:
        self._count("record_activity")
        if self.fail_activity:
            self.fail_activity -= 1
            raise TransientError("injected")
        for a in activity:
            race = self._races.setdefault(a.race_id, _Race(a.race_id))
            if race.started_at is None or a.first_device_ts < race.started_at:
                race.started_at = a.first_device_ts
            if race.last_reading_at is None or a.last_device_ts > race.last_reading_at:
                race.last_reading_at = a.last_device_ts

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        self._count("rank")
        return 1 + sum(
            1
            for s in self.standings.values()
            if s.race_id == race_id
            and (class_id is None or s.class_id == class_id)
            and s.points > points
        )

    def ranks(self, race_id: str, riders: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        self._count("ranks")
        race = [s for s in self.standings.values() if s.race_id == race_id]
        return ranks_among([(s.points, s.class_id) for s in race], riders)

    def put_results(self, results: Sequence[FinalResult]) -> list[FinalResult]:
        self._count("put_results")
        stored: list[FinalResult] = []
        for result in results:
            key = RiderKey(result.race_id, result.rider_id)
            if key not in self.results:
                self.results[key] = result
                self._races.setdefault(result.race_id, _Race(result.race_id)).finished += 1
            stored.append(self.results[key])
        return stored


class InMemoryFinishQueue:
    """The finish queue, in memory: what the processor sent, message by message (each message
    as the finisher would receive it); ``fail_sends`` of the next sends raise TransientError."""

    def __init__(self) -> None:
        self.messages: list[tuple[Finish, ...]] = []
        self.fail_sends = 0

    def send(self, finishes: Sequence[Finish]) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise TransientError("finish queue: injected failure")
        for body in encode(finishes):
            self.messages.append(parse(body).finishes)

    def drain(self) -> list[tuple[Finish, ...]]:
        """Every message sent so far, once."""
        out, self.messages = self.messages, []
        return out
