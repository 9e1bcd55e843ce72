"""The key schema: leaderboard order in the index sort key, and write sharding by the numbers."""

from __future__ import annotations

from collections import Counter

from shared import keys


def test_rank_sort_key_ascending_is_points_descending_then_rider_ascending() -> None:
    entries = [(500, "b"), (900, "z"), (500, "a"), (0, "c"), (keys.MAX_RANK_POINTS, "m")]

    ordered = sorted(entries, key=lambda e: keys.rank_sk(*e))

    assert ordered == [(keys.MAX_RANK_POINTS, "m"), (900, "z"), (500, "a"), (500, "b"), (0, "c")]
    assert keys.points_from_rank_sk(keys.rank_sk(123456, "x")) == 123456


def test_points_bound_separates_more_points_from_equal_points() -> None:
    bound = keys.rank_sk_points_bound(500)

    assert keys.rank_sk(501, "zzz") < bound
    assert keys.rank_sk(500, "0") > bound
    assert keys.rank_sk(500, "-") > bound  # the smallest id character


def test_no_index_key_takes_more_than_half_a_partition_at_ten_thousand_riders() -> None:
    riders = [f"rider-{i:05d}" for i in range(keys.DESIGN_MAX_RIDERS_PER_RACE)]
    per_shard = Counter(keys.rank_shard(r) for r in riders)

    # One write per rider per second at most, two index writes per update (delete + put).
    busiest = max(per_shard.values()) * keys.MAX_RIDER_WRITES_PER_SECOND * 2
    assert keys.RANK_SHARDS == 52
    assert len(per_shard) == 52
    assert busiest <= keys.PARTITION_WRITE_BUDGET == 500


def test_shard_assignment_is_crc32_of_the_rider_id() -> None:
    # Stable across processes and Python versions (never the salted built-in hash()).
    assert [keys.rank_shard(r) for r in ("ann", "bob", "rider-00001")] == [51, 28, 31]


def test_shards_needed_grows_with_the_race() -> None:
    assert keys.shards_needed(100) == 1
    assert keys.shards_needed(250) == 2  # one shard of 250 could exceed its budget by chance
    assert keys.shards_needed(100_000) == 515
