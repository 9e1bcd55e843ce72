"""The API's ports in memory: the read port (race records and the races index), the live
ranking's builds, and the close schedules.

Used by the logic's property tests and by the API benchmark: the live store counts the requests
it serves, as the DynamoDB adapter would send them, so that they pin how much a leaderboard
page, a rider lookup and a build read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from functions.leaderboard_api.logic import RacePosition, RacesIndexPage, StartWindow
from shared.contract import CLASS_IDS
from shared.dynamodb import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT
from shared.races import Race
from shared.ranking import (
    BUILD_LEASE_MS,
    ROWS_PER_CHUNK,
    LiveHead,
    LiveRanking,
    LiveRow,
    index_page,
)
from shared.standings import Standing


def race_of(race_id: str, standings: Sequence[Standing], **schedule: int) -> Race:
    """A running race record holding these standings' counters (the schedule's fields may be
    given)."""
    fields = {"starts_at": 1, "duration_s": 3_600, "grace_s": 30} | schedule
    starts, duration, grace = fields["starts_at"], fields["duration_s"], fields["grace_s"]
    counts = Counter(s.class_id for s in standings)
    return Race(
        race_id=race_id,
        name=f"Race {race_id}",
        starts_at=starts,
        duration_s=duration,
        grace_s=grace,
        closes_at=starts + 1000 * (duration + grace),
        entrants=len(standings),
        entries_version=1 if standings else 0,
        riders=len(standings),
        class_counts={c: counts.get(c, 0) for c in CLASS_IDS},
        last_reading_at=2,
    )


class InMemoryLeaderboardReader:
    """Race records, listed as the races index lists them."""

    def __init__(
        self,
        standings: Sequence[Standing] = (),
        race_id: str = "race-1",
        others: Sequence[Race] = (),
    ) -> None:
        self.race_record = race_of(race_id, standings)
        self.records = {r.race_id: r for r in (self.race_record, *others)}
        self.queries = 0

    def race(self, race_id: str) -> Race | None:
        return self.records.get(race_id)

    def races_by_start(
        self, window: StartWindow, after: RacePosition | None, limit: int
    ) -> RacesIndexPage:
        self.queries += 1
        ordered = sorted(self.records.values(), key=lambda r: (r.starts_at, r.race_id))[::-1]
        inside = [
            r
            for r in ordered
            if (window.oldest is None or r.starts_at >= window.oldest)
            and (window.newest is None or r.starts_at <= window.newest)
            and (after is None or (r.starts_at, r.race_id) < (after.starts_at, after.race_id))
        ]
        return RacesIndexPage(tuple(inside[:limit]), more=len(inside) > limit)

    def races(self, race_ids: Sequence[str]) -> dict[str, Race]:
        return {r: self.records[r] for r in race_ids if r in self.records}


class InMemoryLiveStore:
    """:class:`functions.leaderboard_api.logic.LiveSnapshots` in memory: race records, their
    riders' standings, each race's head and builds. ``calls`` counts the DynamoDB requests the
    adapter would send for the same work (``Query``, ``UpdateItem``, ``GetItem``,
    ``BatchGetItem``, ``BatchWriteItem``)."""

    def __init__(self, races: Sequence[Race] = (), standings: Sequence[Standing] = ()) -> None:
        self.records = {r.race_id: r for r in races}
        self.field: dict[str, dict[str, Standing]] = {}
        self.heads: dict[str, LiveHead] = {}
        self.builds: dict[tuple[str, int], LiveRanking] = {}
        self._indexes: dict[tuple[str, int], list[dict[str, int]]] = {}
        self.calls: Counter[str] = Counter()
        self.chunks_read: list[list[int]] = []
        """The chunk numbers of each ``chunks`` request, in order."""
        self.put(*standings)

    @classmethod
    def of(cls, standings: Sequence[Standing], race_id: str = "race-1") -> InMemoryLiveStore:
        """One running race holding these standings (see :func:`race_of`)."""
        return cls([race_of(race_id, standings)], standings)

    def put(self, *standings: Standing) -> None:
        for s in standings:
            self.field.setdefault(s.race_id, {})[s.rider_id] = s

    def race_and_head(self, race_id: str) -> tuple[Race | None, LiveHead | None]:
        self.calls["Query"] += 1
        return self.records.get(race_id), self.heads.get(race_id)

    def acquire(self, race_id: str, now: int, seen: int | None = None) -> bool:
        self.calls["UpdateItem"] += 1
        head = self.heads.get(race_id) or LiveHead(race_id, 0, 0, 1, dict.fromkeys(CLASS_IDS, 0))
        if head.lease_until >= now or (seen is not None and head.built_at > seen):
            return False
        self.heads[race_id] = replace(head, lease_until=now + BUILD_LEASE_MS)
        return True

    def standings(self, race: Race) -> list[Standing]:
        found = list(self.field.get(race.race_id, {}).values())
        self.calls["BatchGetItem"] += math.ceil(len(found) / BATCH_GET_LIMIT)
        return found

    def publish(self, ranking: LiveRanking) -> bool:
        items = len(ranking.chunks()) + ranking.index_pages
        self.calls["BatchWriteItem"] += math.ceil(items / BATCH_WRITE_LIMIT)
        self.calls["UpdateItem"] += 1
        self.builds[(ranking.race_id, ranking.built_at)] = ranking
        self._indexes[(ranking.race_id, ranking.built_at)] = ranking.rider_index()
        head = self.heads.get(ranking.race_id)
        if head is not None and head.built_at >= ranking.built_at:
            return False
        self.heads[ranking.race_id] = ranking.head()
        return True

    def chunks(self, head: LiveHead, numbers: Sequence[int]) -> dict[int, list[LiveRow]]:
        self.calls["BatchGetItem"] += math.ceil(len(numbers) / BATCH_GET_LIMIT)
        self.chunks_read.append(list(numbers))
        build = self.builds.get((head.race_id, head.built_at))
        rows = build.rows if build is not None else ()
        return {
            n: list(rows[n * ROWS_PER_CHUNK : (n + 1) * ROWS_PER_CHUNK])
            for n in numbers
            if 0 <= n * ROWS_PER_CHUNK < len(rows)
        }

    def position(self, head: LiveHead, rider_id: str) -> int | None:
        self.calls["GetItem"] += 1
        pages = self._indexes.get((head.race_id, head.built_at))
        if pages is None:
            return None
        return pages[index_page(rider_id, head.index_pages)].get(rider_id)


@dataclass
class InMemoryCloseScheduler:
    """The close schedules in memory: each race's due time, and each change in order (``create``
    when the race had no schedule, else ``update``: the request of the EventBridge adapter that
    takes effect). ``fail_next`` makes the next changes raise the given errors instead."""

    due: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)

    def _request(self, operation: str, race_id: str, due_at: int) -> None:
        self.requests.append((operation, race_id, due_at))
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.due[race_id] = due_at

    def create(self, race_id: str, due_at: int) -> None:
        operation = "update" if race_id in self.due else "create"
        self._request(operation, race_id, due_at)

    move = create
