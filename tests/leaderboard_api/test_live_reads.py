"""What the live board and the rider lookup read from DynamoDB (moto), in read units by
DynamoDB's rules on the sizes of the items read: a lookup reads the race's head (with the race
record), one rider-index page and one chunk, whatever the race's size; a page of the board the
head and the chunks holding it. The worst case over every rider of a 10,000-rider race is the
API benchmark's ``rider_lookup_read_units_10000_riders``."""

from __future__ import annotations

import random

import pytest

from functions.leaderboard_api import handler as api
from shared import items
from shared.dynamodb import item_size, read_units
from shared.ranking import ROWS_PER_CHUNK, index_page, rank_live
from tests.leaderboard_api.helpers import NOW, Db, ReadUnits, get, runtime_on, standing

LOOKUP_BUDGET = 30
"""Issue 18: an exact rank, overall and in class, in at most 30 read units."""

rng = random.Random(18)
FIELD = [
    standing(
        f"rider-{i:04d}", 100 * rng.randrange(0, 60), rng.randint(1, 6), name=f"Rider {i} " * 4
    )
    for i in range(450)
]
"""450 riders with long names (five chunks, three index pages), ties throughout."""


@pytest.fixture
def counted(db: Db) -> ReadUnits:
    db.put_race("race-1", FIELD)
    api.install(runtime_on(db.client, db.scheduler, db.clock))  # no BuildCache: every read
    assert get("/races/race-1/leaderboard").status == 200  # the build
    return ReadUnits(db.client)


def expected_lookup_units(rider_id: str) -> float:
    """The head and race record (one eventually consistent Query), the rider's index page and
    chunk (strongly consistent), sized from the codecs."""
    ranking = rank_live("race-1", FIELD, NOW)
    head = ranking.head()
    position = next(i for i, r in enumerate(ranking.rows) if r.rider_id == rider_id)
    chunk = position // ROWS_PER_CHUNK
    page = index_page(rider_id, head.index_pages)
    race_and_head = item_size(items.live_head_item(ranking)) + 600
    index = items.live_index_item("race-1", NOW, page, ranking.rider_index()[page])
    rows = items.live_chunk_item("race-1", NOW, chunk, ranking.chunks()[chunk])
    return (
        read_units(race_and_head, consistent=False)
        + read_units(item_size(index), consistent=True)
        + read_units(item_size(rows), consistent=True)
    )


def test_every_rider_lookup_reads_three_items_within_the_budget(counted: ReadUnits) -> None:
    worst = 0.0
    for s in FIELD:
        counted.reset()
        reply = get(f"/races/race-1/riders/{s.rider_id}")
        assert reply.status == 200
        assert counted.calls == {"Query": 1, "GetItem": 1, "BatchGetItem": 1}
        assert counted.units == expected_lookup_units(s.rider_id), s.rider_id
        worst = max(worst, counted.units)

    assert worst <= LOOKUP_BUDGET
    assert worst == 3.5  # 0.5 for the head and race, 1 for an index page, 2 for a 7 KB chunk


def test_a_page_of_a_hundred_reads_the_head_and_two_chunks_at_most(counted: ReadUnits) -> None:
    cursor = get("/races/race-1/leaderboard", {"limit": "50"}).body["nextCursor"]
    counted.reset()

    reply = get("/races/race-1/leaderboard", {"limit": "100", "cursor": cursor})

    assert [e["riderId"] for e in reply.body["entries"]] == [
        r.rider_id for r in rank_live("race-1", FIELD, NOW).rows[50:150]
    ]
    assert counted.calls == {"Query": 1, "BatchGetItem": 1}
    assert counted.units == 0.5 + 2 + 2


def test_a_class_page_reads_the_chunks_the_head_says_hold_it(counted: ReadUnits) -> None:
    counted.reset()

    reply = get("/races/race-1/leaderboard", {"classId": "4", "limit": "100"})

    shown = [r for r in rank_live("race-1", FIELD, NOW).rows if r.class_id == 4]
    assert [(e["rank"], e["riderId"]) for e in reply.body["entries"]] == [
        (r.rank_class, r.rider_id) for r in shown
    ]
    assert counted.calls == {"Query": 1, "BatchGetItem": 1}
    chunks = rank_live("race-1", FIELD, NOW).chunks()
    assert all(any(r.class_id == 4 for r in c) for c in chunks)  # so it reads every chunk
    assert counted.units == 0.5 + sum(
        read_units(item_size(items.live_chunk_item("race-1", NOW, n, c)), consistent=True)
        for n, c in enumerate(chunks)
    )
