"""The live ranking (shared.ranking) as the board and the rider lookup serve it: exact against a
brute-force ranking with ties at 1, 10 and 10,000 riders, overall and per class; one build per
race however many requests find it stale; what each read costs in requests.

On the in-memory twin of the live store, which counts the requests the DynamoDB adapter would
send (the adapter itself, and the read units on item sizes: ``test_live_store.py``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.leaderboard_api import logic as board
from functions.leaderboard_api.memory import InMemoryLiveStore, race_of
from shared.contract import CLASS_IDS
from shared.ports import TransientError
from shared.races import Race, RaceNotFoundError
from shared.ranking import (
    BUILD_LEASE_MS,
    BUILD_MAX_AGE_MS,
    READING_SLACK_MS,
    SNAPSHOT_MAX_AGE_MS,
    LiveRanking,
    rank_live,
)
from shared.standings import Standing
from tests.leaderboard_api.helpers import standing

T0 = 1_000_000
"""The clock of the first request (the races' last reading is 2: see ``race_of``)."""


class Brute:
    """Competition ranks by definition: 1 + the riders (in the class) with strictly more points
    (counted per points value, so that 10,000 riders take a moment)."""

    def __init__(self, field: Sequence[Standing]) -> None:
        self.field = field
        self.overall = Counter(s.points for s in field)
        self.classes = Counter((s.class_id, s.points) for s in field)

    def rank(self, s: Standing, in_class: bool) -> int:
        if in_class:
            return 1 + sum(
                n for (c, p), n in self.classes.items() if c == s.class_id and p > s.points
            )
        return 1 + sum(n for p, n in self.overall.items() if p > s.points)

    def board(self, class_id: int | None) -> list[tuple[int, str]]:
        shown = [s for s in self.field if class_id is None or s.class_id == class_id]
        ordered = sorted(shown, key=lambda s: (-s.points, s.rider_id))
        return [(self.rank(s, class_id is not None), s.rider_id) for s in ordered]


def walk(live: InMemoryLiveStore, class_id: int | None, limit: int) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    cursor = None
    while True:
        page = board.leaderboard(live, "race-1", class_id, limit, cursor, now=T0)
        seen.extend((e.rank, e.row.rider_id) for e in page.entries)
        cursor = page.next_cursor
        if cursor is None:
            return seen


def check_exact(field: list[Standing], limit: int) -> None:
    """Every rider's lookup and every board's walk, overall and per class."""
    live = InMemoryLiveStore.of(field)
    brute = Brute(field)
    class_sizes = Counter(s.class_id for s in field)
    for s in field:
        view = board.rider(live, "race-1", s.rider_id, now=T0)
        assert (view.row.rank_overall, view.row.rank_class) == (
            brute.rank(s, False),
            brute.rank(s, True),
        ), s.rider_id
        assert (view.row.points, view.row.class_id, view.row.name) == (s.points, s.class_id, s.name)
        assert (view.riders, view.class_riders) == (len(field), class_sizes[s.class_id])
    for class_id in (None, *CLASS_IDS):
        assert walk(live, class_id, limit) == brute.board(class_id), class_id


def field_of(rows: Sequence[tuple[int, int]]) -> list[Standing]:
    return [standing(f"r{i:05d}", points * 100, c) for i, (points, c) in enumerate(rows)]


def fields(size: int) -> st.SearchStrategy[list[Standing]]:
    """Races of ``size`` riders, points from a few values (many ties), any classes."""
    rider = st.tuples(st.integers(0, 4), st.sampled_from(CLASS_IDS))
    return st.lists(rider, min_size=size, max_size=size).map(field_of)


@settings(max_examples=50, deadline=None)
@given(fields(1), st.integers(1, 3))
def test_one_rider_is_ranked_exactly(field: list[Standing], limit: int) -> None:
    check_exact(field, limit)


@settings(max_examples=100, deadline=None)
@given(fields(10), st.integers(1, 11))
def test_ten_riders_are_ranked_exactly_with_ties(field: list[Standing], limit: int) -> None:
    check_exact(field, limit)


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([37, 100]))
def test_ten_thousand_riders_are_ranked_exactly_with_ties(seed: int, limit: int) -> None:
    """Points from 300 values (about 33 riders a value), classes skewed (one class rare), so
    class pages span many chunks."""
    rng = random.Random(seed)
    weights = [40, 25, 15, 10, 9, 1]
    rows = [(rng.randrange(300), rng.choices(CLASS_IDS, weights)[0]) for _ in range(10_000)]
    check_exact(field_of(rows), limit)


def test_a_build_is_the_brute_force_ranking_row_by_row() -> None:
    field = field_of([(3, 1), (3, 2), (1, 1), (3, 1), (0, 6)])

    ranking = rank_live("race-1", reversed(field), T0)

    assert [(r.rider_id, r.rank_overall, r.rank_class) for r in ranking.rows] == [
        ("r00000", 1, 1),
        ("r00001", 1, 1),
        ("r00003", 1, 1),
        ("r00002", 4, 3),
        ("r00004", 5, 1),
    ]


# --- one build per race, once a second at most -------------------------------------------------
FIELD = field_of([(i % 7, 1 + i % 6) for i in range(250)])


def reading(live: InMemoryLiveStore, at: int) -> None:
    """The race's ``lastReadingAt`` moves to ``at`` (a reading counted)."""
    live.records["race-1"] = replace(live.records["race-1"], last_reading_at=at)


def builds(live: InMemoryLiveStore) -> list[int]:
    return sorted(b for race, b in live.builds if race == "race-1")


def test_the_first_request_builds_and_the_next_in_the_second_reads_it() -> None:
    live = InMemoryLiveStore.of(FIELD)

    first = board.leaderboard(live, "race-1", now=T0)
    reading(live, T0 + 500)
    second = board.leaderboard(live, "race-1", now=T0 + SNAPSHOT_MAX_AGE_MS - 1)

    assert builds(live) == [T0]
    assert first.as_of == second.as_of == T0
    assert second.entries == first.entries


def test_a_stale_build_is_built_again_when_readings_came_since() -> None:
    live = InMemoryLiveStore.of(FIELD)
    board.leaderboard(live, "race-1", now=T0)
    live.put(standing("r00000", 999_999, 1))
    reading(live, T0 + 10)

    page = board.leaderboard(live, "race-1", now=T0 + SNAPSHOT_MAX_AGE_MS)

    assert builds(live) == [T0, T0 + SNAPSHOT_MAX_AGE_MS]
    assert (page.entries[0].row.rider_id, page.entries[0].row.points) == ("r00000", 999_999)
    assert page.as_of == T0 + SNAPSHOT_MAX_AGE_MS


def test_a_reading_counted_just_before_the_build_still_rebuilds_it() -> None:
    """A batch's ``lastReadingAt`` is its clock before its writes: a build that started after
    it may have missed them."""
    live = InMemoryLiveStore.of(FIELD)
    board.leaderboard(live, "race-1", now=T0)
    reading(live, T0 - READING_SLACK_MS)

    board.leaderboard(live, "race-1", now=T0 + SNAPSHOT_MAX_AGE_MS)

    assert builds(live) == [T0, T0 + SNAPSHOT_MAX_AGE_MS]


def test_a_stale_build_with_no_reading_since_is_not_built_again() -> None:
    live = InMemoryLiveStore.of(FIELD)
    board.leaderboard(live, "race-1", now=T0)
    reading(live, T0 - READING_SLACK_MS - 1)
    live.calls.clear()

    page = board.leaderboard(live, "race-1", now=T0 + 60_000)
    view = board.rider(live, "race-1", "r00003", now=T0 + 60_000)

    assert builds(live) == [T0]
    assert page.as_of == view.as_of == T0
    assert "UpdateItem" not in live.calls  # no lease asked for


def test_an_idle_race_is_built_again_before_its_build_expires() -> None:
    live = InMemoryLiveStore.of(FIELD)
    board.leaderboard(live, "race-1", now=T0)

    board.leaderboard(live, "race-1", now=T0 + BUILD_MAX_AGE_MS - 1)
    board.leaderboard(live, "race-1", now=T0 + BUILD_MAX_AGE_MS)

    assert builds(live) == [T0, T0 + BUILD_MAX_AGE_MS]


def test_a_race_without_readings_is_an_empty_board_and_no_build() -> None:
    live = InMemoryLiveStore.of([])
    reading(live, 0)

    page = board.leaderboard(live, "race-1", now=T0)

    assert (page.entries, page.next_cursor, page.as_of) == ((), None, 0)
    assert live.calls == Counter({"Query": 1})
    with pytest.raises(RaceNotFoundError, match=r"^riderId: r1 has no standing in race race-1$"):
        board.rider(live, "race-1", "r1", now=T0)


class BuildingStore(InMemoryLiveStore):
    """A store in which, once ``arriving`` is set, another request arrives while this one
    reads the standings for its build."""

    arriving = False
    meanwhile: board.LeaderboardPage | None = None

    def standings(self, race: Race) -> list[Standing]:
        if self.arriving:
            self.arriving = False
            self.meanwhile = board.leaderboard(self, race.race_id, now=race.last_reading_at)
        return super().standings(race)


def test_of_two_requests_finding_the_build_stale_one_builds_the_other_serves_the_stored() -> None:
    live = BuildingStore([race_of("race-1", FIELD)], FIELD)
    board.leaderboard(live, "race-1", now=T0)
    reading(live, T0 + 2_000)
    live.arriving = True

    page = board.leaderboard(live, "race-1", now=T0 + 2_000)

    assert builds(live) == [T0, T0 + 2_000]
    assert live.meanwhile is not None
    assert (live.meanwhile.as_of, page.as_of) == (T0, T0 + 2_000)
    assert live.calls["UpdateItem"] == 2 + 1 + 2  # lease and head twice, one lease refused


class PublishedMeanwhile(InMemoryLiveStore):
    """A store in which another request publishes a build between this one's read of the head
    and its try for the lease (and frees the lease)."""

    def acquire(self, race_id: str, now: int, seen: int | None = None) -> bool:
        self.publish(rank_live(race_id, FIELD, now - 1))
        return super().acquire(race_id, now, seen)


def test_a_request_that_read_a_head_just_replaced_does_not_build_again() -> None:
    live = PublishedMeanwhile([race_of("race-1", FIELD)], FIELD)
    live.publish(rank_live("race-1", FIELD, T0))
    reading(live, T0 + 100)

    page = board.leaderboard(live, "race-1", now=T0 + 2_000)

    assert builds(live) == [T0, T0 + 1_999]  # the other request's build, not this one's
    assert page.as_of == T0  # served what it read


def test_a_request_finding_the_first_build_under_way_waits_for_it() -> None:
    live = InMemoryLiveStore.of(FIELD)
    assert live.acquire("race-1", T0)  # another request is building
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:  # the other request publishes its build
            live.publish(rank_live("race-1", FIELD, T0))

    page = board.leaderboard(live, "race-1", now=T0 + 10, sleep=sleep)

    assert slept == [board.FIRST_BUILD_WAIT_S] * 3
    assert page.as_of == T0
    assert builds(live) == [T0]


def test_a_first_build_that_never_comes_is_a_transient_error() -> None:
    live = InMemoryLiveStore.of(FIELD)
    assert live.acquire("race-1", T0)
    slept: list[float] = []

    with pytest.raises(TransientError, match=r"^race race-1: its live ranking is being built$"):
        board.leaderboard(live, "race-1", now=T0 + 10, sleep=slept.append)

    assert len(slept) == board.FIRST_BUILD_WAITS
    assert builds(live) == []


def test_an_expired_lease_is_taken_over() -> None:
    """The request holding the lease died: once it expires, the next request builds."""
    live = InMemoryLiveStore.of(FIELD)
    board.leaderboard(live, "race-1", now=T0)
    reading(live, T0 + 1_000)
    assert live.acquire("race-1", T0 + 1_000)  # and never publishes

    held = board.leaderboard(live, "race-1", now=T0 + 1_000 + BUILD_LEASE_MS)
    taken = board.leaderboard(live, "race-1", now=T0 + 1_001 + BUILD_LEASE_MS)

    assert held.as_of == T0
    assert taken.as_of == T0 + 1_001 + BUILD_LEASE_MS
    assert builds(live) == [T0, T0 + 1_001 + BUILD_LEASE_MS]


def test_a_build_never_moves_the_head_back() -> None:
    live = InMemoryLiveStore.of(FIELD)
    newer, older = rank_live("race-1", FIELD, T0 + 5), rank_live("race-1", FIELD, T0)

    assert live.publish(newer)
    assert not live.publish(older)
    assert live.heads["race-1"].built_at == T0 + 5


# --- what a read costs -------------------------------------------------------------------------
def stored(field: Sequence[Standing]) -> InMemoryLiveStore:
    """A store holding a fresh build of the field (no request builds)."""
    live = InMemoryLiveStore.of(field)
    reading(live, 0)
    ranking: LiveRanking = rank_live("race-1", field, T0)
    live.publish(ranking)
    live.calls.clear()
    return live


def test_a_rider_lookup_reads_the_head_one_index_page_and_one_chunk() -> None:
    field = field_of([(i % 300, 1 + i % 6) for i in range(10_000)])
    live = stored(field)

    for rider in ("r00000", "r05000", "r09999"):
        live.calls.clear()
        board.rider(live, "race-1", rider, now=T0 + 60_000)
        assert live.calls == Counter({"Query": 1, "GetItem": 1, "BatchGetItem": 1})


def test_a_page_of_a_hundred_reads_the_head_and_one_batch_of_two_chunks_at_most() -> None:
    field = field_of([(i % 300, 1 + i % 6) for i in range(10_000)])
    live = stored(field)

    board.leaderboard(live, "race-1", None, 100, board.encode_cursor("race-1", None, 50), now=T0)

    assert live.calls == Counter({"Query": 1, "BatchGetItem": 1})
    assert live.chunks_read == [[0, 1]]


def test_a_build_reads_a_batch_per_hundred_riders_and_writes_a_batch_per_25_items() -> None:
    field = field_of([(i % 300, 1 + i % 6) for i in range(1_000)])
    live = InMemoryLiveStore.of(field)

    board.rider(live, "race-1", "r00001", now=T0)

    # 10 chunks + 5 index pages: 1 BatchWriteItem; the lease and the head: 2 UpdateItem.
    assert live.calls == Counter(
        {"Query": 1, "UpdateItem": 2, "BatchGetItem": 10, "BatchWriteItem": 1}
    )
