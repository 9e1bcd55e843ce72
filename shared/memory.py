"""In-memory twins of the standings store and the race book, with the DynamoDB adapters' semantics.

Used by the benchmarks (to measure our processing without the emulator) and by property tests
that need thousands of delivery schedules. Faults can be injected per call: ``fail_next``
makes the next writes of the given riders report TRANSIENT, exactly as a throttled
DynamoDB write does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from shared import keys
from shared.history import Best, ClassRecords, RiderResult
from shared.placings import Placing, Placings
from shared.ports import RaceActivity, TransientError, WriteResult, WriteStatus
from shared.races import (
    EnteredRider,
    Entry,
    Race,
    RaceCard,
    RaceConflictError,
    RaceNotFoundError,
    card,
)
from shared.standings import RiderKey, Standing


@dataclass
class _Counts:
    """What one ``save`` counts in one race record: new riders per class, and finishes."""

    riders: dict[int, int] = field(default_factory=dict)
    finished: int = 0

    def applied_to(self, race: Race) -> Race:
        classes = dict(race.class_counts)
        for class_id, n in self.riders.items():
            classes[class_id] = classes.get(class_id, 0) + n
        return replace(
            race,
            riders=race.riders + sum(self.riders.values()),
            class_counts=classes,
            finished=race.finished + self.finished,
        )


class InMemoryStandingsStore:
    """:class:`shared.dynamodb.DynamoStandingsStore` in memory. The race records it counts
    riders in are those of ``races`` (the same table, in DynamoDB): a write that would count
    a rider in a race that does not exist fails, as the adapter's conditional update does."""

    def __init__(self, races: InMemoryRaceStore | None = None) -> None:
        self.standings: dict[RiderKey, Standing] = {}
        self.races = races if races is not None else InMemoryRaceStore()
        self.fail_next: set[RiderKey] = set()
        """Riders whose next write reports TRANSIENT (each entry is used once)."""
        self.fail_activity = 0
        """How many of the next record_activity calls raise TransientError."""
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def load(self, riders: Sequence[RiderKey]) -> dict[RiderKey, Standing]:
        self._count("load")
        return {k: self.standings[k] for k in riders if k in self.standings}

    def save(
        self, standings: Sequence[Standing], finishing: Collection[RiderKey] = ()
    ) -> list[WriteResult]:
        self._count("save")
        finishes = frozenset(finishing)
        counts: dict[str, _Counts] = {}
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
            if stored is None or key in finishes:  # counted in the race record, which exists
                if s.race_id not in self.races.races:
                    results.append(WriteResult(key, WriteStatus.TRANSIENT, error="no such race"))
                    continue
                c = counts.setdefault(s.race_id, _Counts())
                if stored is None:
                    c.riders[s.class_id] = c.riders.get(s.class_id, 0) + 1
                c.finished += key in finishes
            self.standings[key] = s  # standings are immutable: storing shares nothing mutable
            results.append(WriteResult(key, WriteStatus.OK))
        # Each race record once per call, as the adapter updates it once per transaction (and a
        # record rebuilt per rider made the fake, not the processor, what the CPU benchmark timed).
        for race_id, c in counts.items():
            self.races.races[race_id] = c.applied_to(self.races.races[race_id])
        return results

    def record_activity(self, activity: Sequence[RaceActivity]) -> None:
        self._count("record_activity")
        if self.fail_activity:
            self.fail_activity -= 1
            raise TransientError("injected")
        for a in activity:
            race = self.races.races.get(a.race_id)
            if race is not None and a.at > race.last_reading_at:
                self.races.races[a.race_id] = replace(race, last_reading_at=a.at)

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        self._count("rank")
        return 1 + sum(
            1
            for s in self.standings.values()
            if s.race_id == race_id
            and (class_id is None or s.class_id == class_id)
            and s.points > points
        )


class InMemoryRaceStore:
    """:class:`shared.race_store.DynamoRaceStore` in memory, with the same rules: for logic
    tests, property tests and benchmarks. ``calls`` counts the requests the adapter would
    send (one per method call)."""

    def __init__(self) -> None:
        self.races: dict[str, Race] = {}
        self.entered: dict[str, dict[str, EnteredRider]] = {}
        self.placings: dict[str, Placings] = {}
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def get_race(self, race_id: str, *, consistent: bool = True) -> Race | None:
        self._count("get_race")
        return self.races.get(race_id)

    def get_races(self, race_ids: Sequence[str], *, consistent: bool = True) -> dict[str, Race]:
        self._count("get_races")
        return {r: self.races[r] for r in race_ids if r in self.races}

    def entries(self, race_id: str, *, consistent: bool = False) -> list[EnteredRider]:
        self._count("entries")
        return sorted(self.entered.get(race_id, {}).values(), key=lambda e: e.rider_id)

    def race_card(self, race_id: str, *, consistent: bool = False) -> RaceCard | None:
        race = self.get_race(race_id)
        return None if race is None else card(race, self.entries(race_id))

    def get_entries(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, EnteredRider]:
        self._count("get_entries")
        stored = self.entered.get(race_id, {})
        return {r: stored[r] for r in rider_ids if r in stored}

    def placings_page(
        self, race_id: str, scope: str, offset: int, limit: int
    ) -> tuple[list[Placing], int] | None:
        self._count("placings_page")
        placings = self.placings.get(race_id)
        if placings is None:
            return None
        rows = placings.scope(scope)
        return list(rows[offset : offset + limit]), len(rows)

    def create_race(self, race: Race) -> None:
        self._count("create_race")
        if race.race_id in self.races:
            raise RaceConflictError(f"raceId: race {race.race_id} exists already")
        self.races[race.race_id] = race
        self.entered[race.race_id] = {}

    def enter(self, race_id: str, entries: Sequence[Entry], now: int) -> tuple[int, int]:
        self._count("enter")
        race = self.races.get(race_id)
        if race is None:
            raise RaceNotFoundError(f"raceId: no race {race_id}")
        if not race.accepts_readings(now):
            raise RaceConflictError(f"race {race_id} is {race.status(now)}: entries are closed")
        stored = self.entered[race_id]
        added = updated = 0
        for e in entries:
            old = stored.get(e.rider_id)
            if old is not None and old.entry != e and now >= race.starts_at:
                raise RaceConflictError(
                    f"entries: {e.rider_id} cannot change: race {race_id} has started"
                )
        for e in entries:
            old = stored.get(e.rider_id)
            if old is None:
                stored[e.rider_id] = EnteredRider(e)
                added += 1
            elif old.entry != e:
                stored[e.rider_id] = EnteredRider(e, old.disqualified)
                updated += 1
        if added or updated:
            self.races[race_id] = replace(
                race,
                entrants=race.entrants + added,
                entries_version=race.entries_version + 1,
            )
        return added, updated

    def close_early(self, race_id: str, now: int) -> Race:
        self._count("close_early")
        race = self.races.get(race_id)
        if race is None:
            raise RaceNotFoundError(f"raceId: no race {race_id}")
        if not race.accepts_readings(now):
            raise RaceConflictError(f"race {race_id} is {race.status(now)} already")
        self.races[race_id] = race.closed_early(now)
        return self.races[race_id]

    def disqualify(self, race_id: str, rider_id: str) -> None:
        self._count("disqualify")
        race = self.races.get(race_id)
        if race is None:
            raise RaceNotFoundError(f"raceId: no race {race_id}")
        if race.state != "open":
            raise RaceConflictError(f"race {race_id} is {race.state}")
        old = self.entered[race_id].get(rider_id)
        if old is None:
            raise RaceNotFoundError(f"riderId: {rider_id} is not entered in race {race_id}")
        self.entered[race_id][rider_id] = EnteredRider(old.entry, disqualified=True)

    def mark_closing(self, race_id: str) -> None:
        self._count("mark_closing")
        race = self.races.get(race_id)
        if race is not None and race.state == "open":
            self.races[race_id] = replace(race, state="closing")

    def store_placings(self, race_id: str, placings: Placings) -> int:
        self._count("store_placings")
        self.placings[race_id] = placings
        return sum(
            max(1, -(-len(rows) // keys.PLACINGS_PER_ITEM)) for rows in placings.scopes().values()
        )

    def mark_closed(self, race_id: str, now: int) -> bool:
        self._count("mark_closed")
        race = self.races.get(race_id)
        if race is None or race.state == "closed":
            return False
        self.races[race_id] = replace(race, state="closed", closed_at=now)
        return True


class InMemoryHistoryStore:
    """:class:`shared.history_store.DynamoHistoryStore` in memory, with the same conditions.
    ``fail_next`` makes the next calls of a method raise TransientError (a throttled request),
    for the closer's retry tests."""

    def __init__(self) -> None:
        self.bests: dict[tuple[str, int, int], Best] = {}
        self.stored_records: dict[tuple[int, int], ClassRecords] = {}
        self.results: dict[str, dict[str, RiderResult]] = {}
        """rider id -> history position (the item's sort key) -> result"""
        self.calls: dict[str, int] = {}
        self.fail_next: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.fail_next.get(name, 0) > 0:
            self.fail_next[name] -= 1
            raise TransientError(f"{name}: injected failure")

    def claim_personal_best(self, best: Best) -> bool:
        self._count("claim_personal_best")
        key = (best.rider_id, best.class_id, best.duration_s)
        held = self.bests.get(key)
        if held is None or held.points < best.points or held.race.race_id == best.race.race_id:
            self.bests[key] = best
            return True
        return False

    def records(self, class_id: int, duration_s: int, *, consistent: bool = False) -> ClassRecords:
        self._count("records")
        return self.stored_records.get((class_id, duration_s), ClassRecords(class_id, duration_s))

    def save_records(self, records: ClassRecords) -> bool:
        self._count("save_records")
        key = (records.class_id, records.duration_s)
        stored = self.stored_records.get(key)
        if (stored.version if stored else 0) != records.version - 1:
            return False
        self.stored_records[key] = records
        return True

    def put_results(self, results: Sequence[RiderResult]) -> None:
        self._count("put_results")
        for r in results:
            sk = keys.result_sk(r.race.starts_at, r.race.race_id)
            self.results.setdefault(r.rider_id, {})[sk] = r

    def rider_results(
        self, rider_id: str, limit: int, after: str | None = None
    ) -> tuple[list[RiderResult], str | None]:
        self._count("rider_results")
        positions = sorted(self.results.get(rider_id, {}), reverse=True)
        if after is not None:
            positions = [p for p in positions if p < after]
        page = positions[:limit]
        more = len(positions) > limit
        return [self.results[rider_id][p] for p in page], (page[-1] if more else None)
