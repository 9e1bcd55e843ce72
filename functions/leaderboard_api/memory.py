"""The API's ports in memory: the read port, sharded like the ranking indexes, and the close
schedules.

Used by the logic's property tests and by the API benchmark: the reader counts the rows and
queries it serves, so that they pin how much a leaderboard page reads. It serves one race's
leaderboard pages (``race``, ``shard_pages``) and the races index (``races_by_start``,
``races``); a rider and its ranks, which no caller of it needs, are left unimplemented.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from functions.leaderboard_api.logic import (
    RacePosition,
    RacesIndexPage,
    RiderRecords,
    ShardPage,
    ShardRequest,
    StartWindow,
    sort_key,
)
from shared import keys
from shared.contract import CLASS_IDS
from shared.races import Race
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
        riders=len(standings),
        class_counts={c: counts.get(c, 0) for c in CLASS_IDS},
        last_reading_at=2,
    )


class InMemoryLeaderboardReader:
    """One race's standings, queried as the DynamoDB adapter queries the ranking indexes, and
    any number of race records, listed as the races index lists them."""

    def __init__(
        self,
        standings: Sequence[Standing],
        race_id: str = "race-1",
        others: Sequence[Race] = (),
    ) -> None:
        self.race_record = race_of(race_id, standings)
        self.records = {r.race_id: r for r in (self.race_record, *others)}
        self.standings = list(standings)
        self.rows_read = 0
        self.queries = 0
        self._indexes: dict[tuple[int | None, int], list[tuple[str, Standing]]] = {}

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

    def rider(self, race_id: str, rider_id: str) -> RiderRecords:
        raise NotImplementedError

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        raise NotImplementedError

    def shard_pages(
        self, race_id: str, class_id: int | None, requests: Sequence[ShardRequest]
    ) -> list[ShardPage]:
        pages = []
        for r in requests:
            index = self._index(class_id, r.shard)
            start = 0 if r.after is None else bisect.bisect_right([k for k, _ in index], r.after)
            rows = tuple(s for _, s in index[start : start + r.limit])
            self.queries += 1
            self.rows_read += len(rows)
            pages.append(ShardPage(rows, more=len(index) - start >= r.limit))
        return pages

    def _index(self, class_id: int | None, shard: int) -> list[tuple[str, Standing]]:
        key = (class_id, shard)
        if key not in self._indexes:
            self._indexes[key] = sorted(
                (sort_key(s), s)
                for s in self.standings
                if keys.rank_shard(s.rider_id) == shard
                and (class_id is None or s.class_id == class_id)
            )
        return self._indexes[key]


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
