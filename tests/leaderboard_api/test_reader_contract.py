"""The read ports' contracts: the in-memory twins answer as the DynamoDB adapters do (moto).

The logic's property tests and the API benchmark run on the twins; this holds them to what the
adapters read from and write to the table: the race records (:class:`DynamoLeaderboardReader`)
and the live ranking's builds (:class:`shared.live_store.DynamoLiveStore`): the head and its
lease, a build's chunks and rider index, and the standings a build is made of.
"""

from __future__ import annotations

import random

import pytest

from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from functions.leaderboard_api.memory import InMemoryLeaderboardReader, InMemoryLiveStore
from shared.contract import CLASS_IDS
from shared.live_store import DynamoLiveStore
from shared.ranking import BUILD_LEASE_MS, ROWS_PER_CHUNK, rank_live
from tests.leaderboard_api.helpers import STANDINGS, Db, ReadUnits, standing

rng = random.Random(7)
FIELD = [standing(f"r{i:03d}", 100 * rng.randrange(0, 30), rng.randint(1, 6)) for i in range(250)]
"""250 riders in 6 classes, with many ties: three chunks, two index pages."""
T0 = 1_795_374_300_000


@pytest.fixture
def readers(db: Db) -> tuple[DynamoLeaderboardReader, InMemoryLeaderboardReader]:
    db.put_race("race-1", FIELD, starts_at=1, last_reading_at=2)
    return DynamoLeaderboardReader(db.client, STANDINGS), InMemoryLeaderboardReader(FIELD)


@pytest.fixture
def stores(db: Db) -> tuple[DynamoLiveStore, InMemoryLiveStore]:
    record = db.put_race("race-1", FIELD, starts_at=1, last_reading_at=2)
    return DynamoLiveStore(db.client, STANDINGS), InMemoryLiveStore([record], FIELD)


def test_both_know_the_race_and_only_it(
    readers: tuple[DynamoLeaderboardReader, InMemoryLeaderboardReader],
) -> None:
    dynamo, memory = readers

    assert dynamo.race("race-1") == memory.race("race-1")
    assert dynamo.race("race-2") is memory.race("race-2") is None


def test_a_build_made_of_what_each_reads_is_the_same_ranking(
    stores: tuple[DynamoLiveStore, InMemoryLiveStore],
) -> None:
    dynamo, memory = stores
    race, head = dynamo.race_and_head("race-1")
    assert race is not None
    assert head is None

    built = rank_live("race-1", dynamo.standings(race), T0)

    assert built == rank_live("race-1", memory.standings(race), T0)
    assert [r.rider_id for r in built.rows] == sorted(
        (s.rider_id for s in FIELD),
        key=lambda r: (-next(s.points for s in FIELD if s.rider_id == r), r),
    )


def test_both_publish_and_read_a_build_alike(
    stores: tuple[DynamoLiveStore, InMemoryLiveStore],
) -> None:
    dynamo, memory = stores
    ranking = rank_live("race-1", FIELD, T0)

    assert dynamo.publish(ranking)
    assert memory.publish(ranking)

    (_, head), (_, twin) = dynamo.race_and_head("race-1"), memory.race_and_head("race-1")
    assert head == twin == ranking.head()
    assert head is not None
    assert head.chunk_classes
    assert len(head.chunk_classes) == 3
    assert sum(head.class_totals.values()) == len(FIELD)
    assert dynamo.chunks(head, [0, 1, 2, 3]) == memory.chunks(head, [0, 1, 2, 3])
    assert sorted(dynamo.chunks(head, [2, 0])) == [0, 2]
    for position, row in enumerate(ranking.rows):
        assert dynamo.position(head, row.rider_id) == memory.position(head, row.rider_id)
        assert dynamo.position(head, row.rider_id) == position
        chunk = position // ROWS_PER_CHUNK
        assert dynamo.chunks(head, [chunk])[chunk][position % ROWS_PER_CHUNK] == row
    assert dynamo.position(head, "ghost") is memory.position(head, "ghost") is None


def test_the_lease_is_taken_once_until_it_expires_and_freed_by_a_publish(
    stores: tuple[DynamoLiveStore, InMemoryLiveStore],
) -> None:
    for store in stores:
        assert store.acquire("race-1", T0)
        assert not store.acquire("race-1", T0 + BUILD_LEASE_MS)
        assert store.acquire("race-1", T0 + BUILD_LEASE_MS + 1)
        _, head = store.race_and_head("race-1")
        assert head is not None
        assert not head.built
        assert head.lease_until == T0 + 2 * BUILD_LEASE_MS + 1
        assert store.publish(rank_live("race-1", FIELD, T0 + 10))
        assert store.acquire("race-1", T0 + 11)


def test_no_lease_for_a_request_that_saw_an_older_build_than_the_one_stored(
    stores: tuple[DynamoLiveStore, InMemoryLiveStore],
) -> None:
    for store in stores:
        assert store.publish(rank_live("race-1", FIELD, T0))
        assert not store.acquire("race-1", T0 + 1_000, seen=T0 - 1)
        assert store.acquire("race-1", T0 + 1_000, seen=T0)


def test_a_head_never_moves_back_to_an_older_build(
    stores: tuple[DynamoLiveStore, InMemoryLiveStore],
) -> None:
    for store in stores:
        assert store.publish(rank_live("race-1", FIELD[:10], T0 + 5))
        assert not store.publish(rank_live("race-1", FIELD, T0))
        _, head = store.race_and_head("race-1")
        assert head is not None
        assert (head.built_at, head.riders) == (T0 + 5, 10)


def test_a_build_reads_the_entries_again_only_when_they_changed(db: Db) -> None:
    db.put_race("race-1", FIELD[:150], starts_at=1, last_reading_at=2)
    counted = ReadUnits(db.client)
    store = DynamoLiveStore(db.client, STANDINGS)
    race, _ = store.race_and_head("race-1")
    assert race is not None
    counted.reset()

    first = store.standings(race)
    again = store.standings(race)
    db.put_standings(FIELD[150:])
    moved, _ = store.race_and_head("race-1")
    assert moved is not None
    counted.reset()
    after = store.standings(moved)

    assert sorted(s.rider_id for s in first) == sorted(s.rider_id for s in again)
    assert len(after) == len(FIELD)
    # The entries (one Query), then the standings: two BatchGetItem of up to 100 keys each.
    assert counted.calls == {"Query": 1, "BatchGetItem": 3}
    assert all(s.counted == 0 for s in after)  # the bitmap is never read


def test_a_standing_is_written_without_index_keys(db: Db) -> None:
    """One item, no ranking-index entry: a standing write costs one write unit."""
    db.put_race("race-1", FIELD[:1])
    item = db.client.get_item(
        TableName=STANDINGS, Key={"pk": {"S": "RACE#race-1#RIDER#r000"}, "sk": {"S": "STANDING"}}
    )["Item"]

    assert not {"rankPk", "classRankPk", "rankSk"} & set(item)
    assert set(CLASS_IDS) == {1, 2, 3, 4, 5, 6}
