"""The read side's pure logic: shard merge, competition ranks across pages, cursors.

An in-memory reader shards standings exactly as the index does (``keys.rank_shard``) and
counts the rows it hands out, so the tests also pin how much a page reads.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import json
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import keys
from shared import leaderboard as board
from shared.standings import RaceRecord, Standing
from tests.api.helpers import standing


class MemoryReader:
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

    def recent_races(self, limit: int, after: RaceRecord | None) -> board.RacesPage:
        raise NotImplementedError

    def rider(self, race_id: str, rider_id: str) -> board.RiderRecords:
        raise NotImplementedError

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        raise NotImplementedError

    def shard_pages(
        self, race_id: str, class_id: int | None, requests: Sequence[board.ShardRequest]
    ) -> list[board.ShardPage]:
        pages = []
        for r in requests:
            index = self._index(class_id, r.shard)
            start = 0 if r.after is None else bisect.bisect_right([k for k, _ in index], r.after)
            rows = tuple(s for _, s in index[start : start + r.limit])
            self.queries += 1
            self.rows_read += len(rows)
            pages.append(board.ShardPage(rows, more=len(index) - start >= r.limit))
        return pages

    def _index(self, class_id: int | None, shard: int) -> list[tuple[str, Standing]]:
        key = (class_id, shard)
        if key not in self._indexes:
            self._indexes[key] = sorted(
                (board.sort_key(s), s)
                for s in self.standings
                if keys.rank_shard(s.rider_id) == shard
                and (class_id is None or s.class_id == class_id)
            )
        return self._indexes[key]


def reference(standings: Sequence[Standing]) -> list[tuple[int, str]]:
    """Competition ranks by definition: 1 + how many riders have strictly more points."""
    ordered = sorted(standings, key=lambda s: (-s.points, s.rider_id))
    per_points = Counter(s.points for s in standings)
    more: dict[int, int] = {}
    total = 0
    for p in sorted(per_points, reverse=True):
        more[p] = total
        total += per_points[p]
    return [(1 + more[s.points], s.rider_id) for s in ordered]


def walk(reader: MemoryReader, limit: int, class_id: int | None = None) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    cursor = None
    for _ in range(10_000):
        page = board.leaderboard(reader, "race-1", class_id, limit, cursor)
        assert len(page.entries) <= limit
        seen.extend((e.rank, e.standing.rider_id) for e in page.entries)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert len(page.entries) == limit
    raise AssertionError("pagination did not end")


riders = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6)), min_size=0, max_size=300).map(
    lambda rows: [standing(f"r{i}", p * 100, c) for i, (p, c) in enumerate(rows)]
)


@settings(max_examples=60, deadline=None)
@given(riders, st.integers(1, 100))
def test_every_page_walk_matches_the_reference_ranking(field: list[Standing], limit: int) -> None:
    assert walk(MemoryReader(field), limit) == reference(field)


@settings(max_examples=30, deadline=None)
@given(riders, st.integers(1, 30), st.integers(1, 6))
def test_class_walk_matches_the_reference(field: list[Standing], limit: int, cls: int) -> None:
    in_class = [s for s in field if s.class_id == cls]
    assert walk(MemoryReader(field), limit, cls) == reference(in_class)


def test_ties_one_two_two_four() -> None:
    field = [standing("a", 900), standing("b", 800), standing("c", 800), standing("d", 700)]
    assert walk(MemoryReader(field), 10) == [(1, "a"), (2, "b"), (2, "c"), (4, "d")]


def test_a_tie_spanning_three_pages_keeps_one_rank() -> None:
    field = [standing("a", 900)] + [standing(f"t{i}", 500) for i in range(5)] + [standing("z", 1)]
    assert walk(MemoryReader(field), 2) == [
        (1, "a"),
        (2, "t0"),
        (2, "t1"),
        (2, "t2"),
        (2, "t3"),
        (2, "t4"),
        (7, "z"),
    ]


def test_a_page_reads_little_more_than_the_page() -> None:
    field = [standing(f"r{i:05d}", (i * 7919) % 100_000) for i in range(10_000)]
    reader = MemoryReader(field)

    page = board.leaderboard(reader, "race-1", None, 100)

    assert [e.standing.rider_id for e in page.entries] == [r for _, r in reference(field)[:100]]
    # 40 shards x 8 rows first, then a few refills: far below 40 x 101, nowhere near 10,000.
    assert reader.rows_read <= 2 * 101 + keys.RANK_SHARDS * 8
    assert reader.queries <= keys.RANK_SHARDS + 20


def test_first_fetch_is_about_twice_the_fair_share() -> None:
    assert board.first_fetch_size(11, 40) == 4
    assert board.first_fetch_size(101, 40) == 8
    assert board.first_fetch_size(3, 1) == 3


def test_limit_out_of_range_is_refused() -> None:
    with pytest.raises(board.BadRequestError, match=r"limit: must be 1 to 100 \(got 0\)"):
        board.leaderboard(MemoryReader([]), "race-1", None, 0)


def test_unknown_race_is_not_found() -> None:
    with pytest.raises(board.NotFoundError, match="race 'other' not found"):
        board.leaderboard(MemoryReader([]), "other")


def test_cursor_round_trip() -> None:
    state = board.RankState(keys.rank_sk(1234, "rider-9"), 17, 20)
    text = board.encode_cursor("race-1", 3, state)

    assert board.decode_cursor(text, "race-1", 3) == state
    assert "=" not in text


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


GOOD = {"race": "race-1", "cls": 0, "after": keys.rank_sk(5, "x"), "rank": 2, "pos": 3}


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("!!", "cursor: not a cursor this API returned"),
        (b64([1, 2]), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"rank": "2"}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"rank": 0}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"extra": 1}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"after": "12#x"}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"rank": 4, "pos": 3}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"race": "race-2"}), "cursor: it belongs to another leaderboard"),
        (b64(GOOD | {"cls": 2}), "cursor: it belongs to another leaderboard"),
        ("A" * 513, "cursor: longer than 512 characters"),
    ],
)
def test_malformed_cursors_are_bad_requests(cursor: str, message: str) -> None:
    with pytest.raises(board.BadRequestError, match=message.replace("(", r"\(")):
        board.decode_cursor(cursor, "race-1", None)


@given(st.text(max_size=80))
def test_no_text_makes_the_cursor_decoder_crash(text: str) -> None:
    with contextlib.suppress(board.BadRequestError):
        board.decode_cursor(text, "race-1", None)


def test_races_cursor_round_trip() -> None:
    race = RaceRecord("race-7", 1_795_000_000_000, 0, 0, {}, 0)
    back = board.decode_races_cursor(board.encode_races_cursor(race))
    assert (back.race_id, back.started_at) == ("race-7", 1_795_000_000_000)
