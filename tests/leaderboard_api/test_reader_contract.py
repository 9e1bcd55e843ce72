"""The read port's contract: the in-memory twin answers as the DynamoDB adapter does.

The logic's property tests and the API benchmark run on the twin; this holds it to what the
adapter reads from the table (moto), for the reads the twin serves.
"""

from __future__ import annotations

import random

import pytest

from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from functions.leaderboard_api.logic import ShardPage, ShardRequest, sort_key
from functions.leaderboard_api.memory import InMemoryLeaderboardReader
from shared import keys
from tests.leaderboard_api.helpers import STANDINGS, Db, standing

rng = random.Random(7)
FIELD = [standing(f"r{i:03d}", 100 * rng.randrange(0, 30), rng.randint(1, 6)) for i in range(150)]
"""150 riders in 6 classes, with many ties, about 3 to a shard."""


@pytest.fixture
def readers(db: Db) -> tuple[DynamoLeaderboardReader, InMemoryLeaderboardReader]:
    db.put_race("race-1", FIELD, starts_at=1, last_reading_at=2)
    return DynamoLeaderboardReader(db.client, STANDINGS), InMemoryLeaderboardReader(FIELD)


def _index(class_id: int | None, shard: int) -> list[str]:
    """The sort keys of one shard of a ranking index, in index order."""
    return sorted(
        sort_key(s)
        for s in FIELD
        if keys.rank_shard(s.rider_id) == shard and class_id in (None, s.class_id)
    )


def _shown(page: ShardPage) -> list[tuple[object, ...]]:
    """What a page shows of each row: the ranking index's projection, no more."""
    return [
        (
            s.race_id,
            s.rider_id,
            s.name,
            s.class_id,
            s.points,
            s.seconds,
            s.last_second,
            s.updated_at,
        )
        for s in page.rows
    ]


def test_both_know_the_race_and_only_it(
    readers: tuple[DynamoLeaderboardReader, InMemoryLeaderboardReader],
) -> None:
    dynamo, memory = readers

    assert dynamo.race("race-1") == memory.race("race-1")
    assert dynamo.race("race-2") is memory.race("race-2") is None


@pytest.mark.parametrize("class_id", [None, 3])
@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_both_page_every_shard_alike(
    readers: tuple[DynamoLeaderboardReader, InMemoryLeaderboardReader],
    class_id: int | None,
    limit: int,
) -> None:
    """The same rows; ``more`` whenever rows follow, never after a short page. A full page with
    nothing after it may say either (DynamoDB says more, moto does not)."""
    dynamo, memory = readers
    requests = [
        ShardRequest(shard, after, limit)
        for shard in range(keys.RANK_SHARDS)
        for after in [None, *_index(class_id, shard), keys.rank_sk(0, "zzz")]
    ]

    expected = memory.shard_pages("race-1", class_id, requests)
    actual = dynamo.shard_pages("race-1", class_id, requests)

    assert [_shown(p) for p in actual] == [_shown(p) for p in expected]
    for request, mine, theirs in zip(requests, expected, actual, strict=True):
        index = _index(class_id, request.shard)
        last = sort_key(mine.rows[-1]) if mine.rows else request.after
        follows = any(last is None or k > last for k in index)
        if follows:
            assert (mine.more, theirs.more) == (True, True), request
        if len(mine.rows) < limit:
            assert (mine.more, theirs.more) == (False, False), request
