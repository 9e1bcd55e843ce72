"""The read side's pure logic on the live ranking: board pages and competition ranks across
pages, cursors, races listings, the page cache.

The live store is the in-memory twin (:class:`functions.leaderboard_api.memory.InMemoryLiveStore`),
which counts the requests the DynamoDB adapter would send, so the tests also pin how much a page
reads. Single flight and the reads of a rider lookup: ``test_live_ranking.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.leaderboard_api import logic as board
from functions.leaderboard_api.memory import InMemoryLiveStore
from shared.races import RaceNotFoundError
from shared.standings import Standing
from tests.leaderboard_api.helpers import standing

NOW = 10_000


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


def walk(live: InMemoryLiveStore, limit: int, class_id: int | None = None) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    cursor = None
    for _ in range(10_000):
        page = board.leaderboard(live, "race-1", class_id, limit, cursor, now=NOW)
        assert len(page.entries) <= limit
        seen.extend((e.rank, e.row.rider_id) for e in page.entries)
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
    assert walk(InMemoryLiveStore.of(field), limit) == reference(field)


@settings(max_examples=30, deadline=None)
@given(riders, st.integers(1, 30), st.integers(1, 6))
def test_class_walk_matches_the_reference(field: list[Standing], limit: int, cls: int) -> None:
    in_class = [s for s in field if s.class_id == cls]
    assert walk(InMemoryLiveStore.of(field), limit, cls) == reference(in_class)


def test_ties_one_two_two_four() -> None:
    field = [standing("a", 900), standing("b", 800), standing("c", 800), standing("d", 700)]
    assert walk(InMemoryLiveStore.of(field), 10) == [(1, "a"), (2, "b"), (2, "c"), (4, "d")]


def test_a_tie_spanning_three_pages_keeps_one_rank() -> None:
    field = [standing("a", 900)] + [standing(f"t{i}", 500) for i in range(5)] + [standing("z", 1)]
    assert walk(InMemoryLiveStore.of(field), 2) == [
        (1, "a"),
        (2, "t0"),
        (2, "t1"),
        (2, "t2"),
        (2, "t3"),
        (2, "t4"),
        (7, "z"),
    ]


def test_a_page_reads_the_head_and_the_chunks_holding_it() -> None:
    field = [standing(f"r{i:05d}", (i * 7919) % 100_000, 1 + i % 6) for i in range(10_000)]
    live = InMemoryLiveStore.of(field)
    board.leaderboard(live, "race-1", None, 10, now=NOW)  # builds
    live.calls.clear()

    page = board.leaderboard(
        live, "race-1", None, 100, board.encode_cursor("race-1", None, 150), now=NOW
    )

    assert [e.row.rider_id for e in page.entries] == [r for _, r in reference(field)[150:250]]
    # The head (with the race record: one Query) and one BatchGetItem of chunks 1 and 2.
    assert live.calls == Counter({"Query": 1, "BatchGetItem": 1})


def test_a_class_page_reads_only_the_chunks_holding_its_rows() -> None:
    field = [standing(f"r{i:05d}", 10_000 - i, 3 if i % 50 == 0 else 1) for i in range(1_000)]
    live = InMemoryLiveStore.of(field)
    board.leaderboard(live, "race-1", None, 10, now=NOW)  # builds
    live.chunks_read.clear()

    page = board.leaderboard(live, "race-1", 3, 4, board.encode_cursor("race-1", 3, 5), now=NOW)

    # Class 3 is every 50th rider: its rows 5..8 are overall rows 250..400, chunks 2 to 4.
    assert [e.row.rider_id for e in page.entries] == ["r00250", "r00300", "r00350", "r00400"]
    assert [e.rank for e in page.entries] == [6, 7, 8, 9]
    assert live.chunks_read == [[2, 3, 4]]


def test_limit_out_of_range_is_refused() -> None:
    with pytest.raises(board.BadRequestError, match=r"limit: must be 1 to 100 \(got 0\)"):
        board.leaderboard(InMemoryLiveStore.of([]), "race-1", None, 0, now=NOW)


def test_unknown_race_is_not_found() -> None:
    with pytest.raises(RaceNotFoundError, match=r"^raceId: no race other$"):
        board.leaderboard(InMemoryLiveStore.of([]), "other", now=NOW)


def test_cursor_round_trip() -> None:
    text = board.encode_cursor("race-1", 3, 20)

    assert board.decode_cursor(text, "race-1", 3) == 20
    assert "=" not in text


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


GOOD = {"race": "race-1", "cls": 0, "pos": 3}


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("!!", "cursor: not a cursor this API returned"),
        (b64([1, 2]), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"pos": "2"}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"pos": 0}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"pos": 1_000_001}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"extra": 1}), "cursor: not a cursor this API returned"),
        (b64(GOOD | {"after": "12#x"}), "cursor: not a cursor this API returned"),
        (b64({"race": "race-1", "cls": 0}), "cursor: not a cursor this API returned"),
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
    position = board.RacePosition(1_795_000_000_000, "race-7")

    assert board.decode_races_cursor(board.encode_races_cursor(position)) == position


def test_results_cursor_round_trip_and_scope() -> None:
    text = board.encode_results_cursor("race-1", "C3", 200)

    assert board.decode_results_cursor(text, "race-1", "C3") == 200
    with pytest.raises(board.BadRequestError, match=r"^cursor: it belongs to other results"):
        board.decode_results_cursor(text, "race-1", "ALL")
    with pytest.raises(board.BadRequestError, match=r"^cursor: it belongs to other results"):
        board.decode_results_cursor(text, "race-2", "C3")


@pytest.mark.parametrize(
    "body",
    [
        {"race": "race-1", "scope": "C7", "offset": 5},
        {"race": "race-1", "scope": "ALL", "offset": 0},
        {"race": "race-1", "scope": "ALL", "offset": "5"},
        {"race": "race-1", "scope": "ALL"},
        {"race": "race-1", "scope": "ALL", "offset": 5, "more": 1},
    ],
)
def test_malformed_results_cursors_are_bad_requests(body: dict[str, object]) -> None:
    with pytest.raises(board.BadRequestError, match=r"^cursor: not a cursor this API returned$"):
        board.decode_results_cursor(b64(body), "race-1", "ALL")


def test_a_build_cache_reads_each_chunk_of_a_build_once() -> None:
    field = [standing(f"r{i:04d}", i, 1 + i % 6) for i in range(450)]
    live = InMemoryLiveStore.of(field)
    board.leaderboard(live, "race-1", now=NOW)  # built by a request of another environment
    cached = board.BuildCache(live, max_chunks=3)
    live.calls.clear()

    first = board.leaderboard(
        cached, "race-1", None, 100, board.encode_cursor("race-1", None, 50), now=NOW
    )
    again = board.leaderboard(
        cached, "race-1", None, 100, board.encode_cursor("race-1", None, 50), now=NOW
    )
    board.leaderboard(
        cached, "race-1", None, 100, board.encode_cursor("race-1", None, 350), now=NOW
    )
    board.leaderboard(cached, "race-1", None, 10, now=NOW)  # chunk 0 was let go (3 kept)

    assert again == first
    assert live.chunks_read == [[0, 1], [3, 4], [0]]
    assert live.calls["Query"] == 4  # the head, every request


def test_a_build_cache_keeps_what_its_request_built_and_reads_a_new_build_again() -> None:
    field = [standing(f"r{i:04d}", i, 1 + i % 6) for i in range(250)]
    live = InMemoryLiveStore.of(field)
    cached = board.BuildCache(live)

    board.leaderboard(cached, "race-1", now=NOW)  # builds
    board.leaderboard(
        cached, "race-1", None, 100, board.encode_cursor("race-1", None, 100), now=NOW
    )
    live.put(standing("r0000", 999_999, 1))
    live.records["race-1"] = replace(live.records["race-1"], last_reading_at=NOW + 500)
    other = InMemoryLiveStore.of([])  # another environment builds the next one
    other.records, other.field, other.heads, other.builds = (
        live.records,
        live.field,
        live.heads,
        live.builds,
    )
    board.leaderboard(other, "race-1", now=NOW + 1_000)
    page = board.leaderboard(cached, "race-1", None, 1, now=NOW + 1_000)

    assert live.chunks_read == [[0]]  # only the new build's first chunk
    assert page.entries[0].row.rider_id == "r0000"
    assert page.as_of == NOW + 1_000
