"""The API's read port in memory, sharded like the ranking indexes.

Used by the logic's property tests and by the API benchmark: it counts the rows and queries it
serves, so that they pin how much a leaderboard page reads. It serves one race's leaderboard
pages (``race``, ``shard_pages``); the reads no caller of it needs (the races listing, a rider
and its ranks) are left unimplemented.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence

from functions.leaderboard_api.logic import (
    RacesPage,
    RiderRecords,
    ShardPage,
    ShardRequest,
    sort_key,
)
from shared import keys
from shared.standings import RaceRecord, Standing


class InMemoryLeaderboardReader:
    """One race's standings, queried as the DynamoDB adapter queries the ranking indexes."""

    def __init__(self, standings: Sequence[Standing], race_id: str = "race-1") -> None:
        self.race_record = RaceRecord(
            race_id, 1, 2, len(standings), dict(Counter(s.class_id for s in standings)), 0
        )
        self.standings = list(standings)
        self.rows_read = 0
        self.queries = 0
        self._indexes: dict[tuple[int | None, int], list[tuple[str, Standing]]] = {}

    def race(self, race_id: str) -> RaceRecord | None:
        return self.race_record if race_id == self.race_record.race_id else None

    def recent_races(self, limit: int, after: RaceRecord | None) -> RacesPage:
        raise NotImplementedError

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
