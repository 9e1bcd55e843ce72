"""``GET /races/{raceId}/results``: a closed race's final placings, as the closer stored them
(``RaceBook.store_placings`` of ``compute_placings``), paginated overall and per class, with
ties, DNS and DSQ; refused while the race is not closed."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import replace
from typing import Any

import pytest

from shared.placings import Placing, Placings, Tally, compute_placings
from shared.races import EnteredRider, Entry
from tests.leaderboard_api.helpers import NOW, STARTS, Db, fixture, get, invoke


def entered(rider: str, class_id: int, *, dsq: bool = False) -> EnteredRider:
    return EnteredRider(Entry(rider_id=rider, name=rider.upper(), class_id=class_id), dsq)


FIELD = [
    entered("a1", 1),
    entered("b2", 2),
    entered("c1", 1),
    entered("d2", 2),
    entered("e1", 1),
    entered("f3", 3),
    entered("g2", 2, dsq=True),
    entered("h1", 1),
]
TALLIES = {
    "a1": Tally(900, 10),
    "b2": Tally(800, 9),
    "c1": Tally(800, 10),
    "d2": Tally(700, 8),
    "e1": Tally(0, 0),  # a standing with no counted second: did not start
    "g2": Tally(950, 10),  # the best score, disqualified
    "h1": Tally(700, 7),
}
"""f3 has no standing at all."""


def placing(
    rank: int | None,
    rider: str,
    class_id: int,
    points: int,
    seconds: int,
    outcome: str,
    *,
    personal_best: bool = False,
    record: bool = False,
) -> dict[str, Any]:
    return {
        "rank": rank,
        "riderId": rider,
        "name": rider.upper(),
        "classId": class_id,
        "points": points,
        "seconds": seconds,
        "outcome": outcome,
        "personalBest": personal_best,
        "record": record,
    }


OVERALL = [
    placing(1, "a1", 1, 900, 10, "ranked"),
    placing(2, "b2", 2, 800, 9, "ranked"),
    placing(2, "c1", 1, 800, 10, "ranked"),
    placing(4, "d2", 2, 700, 8, "ranked"),
    placing(4, "h1", 1, 700, 7, "ranked"),
    placing(None, "e1", 1, 0, 0, "DNS"),
    placing(None, "f3", 3, 0, 0, "DNS"),
    placing(None, "g2", 2, 950, 10, "DSQ"),
]
CLASS_1 = [
    placing(1, "a1", 1, 900, 10, "ranked"),
    placing(2, "c1", 1, 800, 10, "ranked"),
    placing(3, "h1", 1, 700, 7, "ranked"),
    placing(None, "e1", 1, 0, 0, "DNS"),
]
CLASS_2 = [
    placing(1, "b2", 2, 800, 9, "ranked"),
    placing(2, "d2", 2, 700, 8, "ranked"),
    placing(None, "g2", 2, 950, 10, "DSQ"),
]


def closed(db: Db, race_id: str, placings: Placings) -> None:
    db.put_race(race_id)
    db.close(race_id, placings)


@pytest.fixture
def final(db: Db) -> Db:
    closed(db, "race-1", compute_placings(FIELD, TALLIES))
    return db


def walk(race_id: str, limit: int, class_id: int | None = None) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    query = {"limit": str(limit)} | ({"classId": str(class_id)} if class_id else {})
    for _ in range(1000):
        reply = get(f"/races/{race_id}/results", query)
        assert reply.status == 200, reply.body
        assert len(reply.body["entries"]) <= limit
        seen.extend(reply.body["entries"])
        if reply.body["nextCursor"] is None:
            return seen
        query["cursor"] = reply.body["nextCursor"]
    raise AssertionError("the results did not end")


def test_the_first_page_of_the_fixture(final: Db) -> None:
    reply = invoke(fixture("rest_results.json"))  # race-1, limit=3

    assert reply.status == 200
    assert reply.headers["cache-control"] == "max-age=86400"
    assert reply.body == {
        "raceId": "race-1",
        "classId": None,
        "entries": OVERALL[:3],
        "nextCursor": reply.body["nextCursor"],
    }
    text = reply.body["nextCursor"]
    assert json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) == {
        "race": "race-1",
        "scope": "ALL",
        "offset": 3,
    }


@pytest.mark.parametrize("limit", [1, 3, 5, 8, 100])
def test_pages_walk_the_placings_overall_and_per_class(final: Db, limit: int) -> None:
    assert walk("race-1", limit) == OVERALL
    assert walk("race-1", limit, 1) == CLASS_1
    assert walk("race-1", limit, 2) == CLASS_2
    assert walk("race-1", limit, 3) == [placing(None, "f3", 3, 0, 0, "DNS")]
    assert walk("race-1", limit, 6) == []


def test_a_large_race_pages_across_the_stored_items(db: Db) -> None:
    """Placings are stored 100 to an item: pages of 100 and of 7 cross them."""
    rng = random.Random(15)
    field = [entered(f"r{i:03d}", rng.randint(1, 6), dsq=i % 37 == 0) for i in range(250)]
    tallies = {
        e.rider_id: Tally(rng.randrange(0, 20) * 100, rng.randint(0, 5))
        for e in field
        if rng.random() < 0.9
    }
    placings = compute_placings(field, tallies)
    closed(db, "big", placings)

    def shown(rows: Any) -> list[tuple[Any, ...]]:
        return [(p.rank, p.rider_id, p.outcome) for p in rows]

    expected = shown(placings.overall)
    assert [(e["rank"], e["riderId"], e["outcome"]) for e in walk("big", 100)] == expected
    assert [(e["rank"], e["riderId"], e["outcome"]) for e in walk("big", 7)] == expected
    in_class_4 = [(e["rank"], e["riderId"], e["outcome"]) for e in walk("big", 9, 4)]
    assert in_class_4 == shown(placings.by_class[4])
    assert {o for _, _, o in expected} == {"ranked", "DNS", "DSQ"}


@pytest.mark.parametrize(
    ("now", "state", "status"),
    [
        (STARTS - 1, "open", "scheduled"),
        (NOW, "open", "running"),
        (STARTS + 3_630_000, "open", "closing"),
        (NOW, "closing", "closing"),
    ],
)
def test_results_of_a_race_not_closed_are_a_409(db: Db, now: int, state: str, status: str) -> None:
    db.put_race("race-1", state=state)
    db.clock.now = now

    reply = get("/races/race-1/results")

    assert (reply.status, reply.body) == (
        409,
        {"message": f"race race-1 is {status}: its results are published once it is closed"},
    )
    assert reply.headers["cache-control"] == "max-age=1"  # an error: a second


def test_a_closed_race_whose_placings_are_not_readable_yet_is_a_503(db: Db) -> None:
    db.put_race("race-1", state="closed")

    reply = get("/races/race-1/results")

    assert (reply.status, reply.body) == (503, {"message": "the API is busy, retry in a second"})
    assert reply.headers["retry-after"] == "1"


def cursor(**body: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"cursor": "%%%"}, 400, "cursor: not a cursor this API returned"),
        (
            {"cursor": cursor(race="race-1", scope="C1", offset=2)},
            400,
            "cursor: it belongs to other results (raceId or classId)",
        ),
        (
            {"cursor": cursor(race="race-2", scope="ALL", offset=2)},
            400,
            "cursor: it belongs to other results (raceId or classId)",
        ),
        (
            {"cursor": cursor(race="race-1", scope="ALL", offset=0)},
            400,
            "cursor: not a cursor this API returned",
        ),
        ({"classId": "7"}, 422, "classId: Input should be less than or equal to 6"),
        ({"limit": "101"}, 422, "limit: Input should be less than or equal to 100"),
    ],
)
def test_bad_results_requests_say_what_is_wrong(
    final: Db, query: dict[str, str], status: int, message: str
) -> None:
    reply = get("/races/race-1/results", query)

    assert (reply.status, reply.body) == (status, {"message": message})


def test_a_cursor_past_the_end_is_an_empty_last_page(final: Db) -> None:
    reply = get("/races/race-1/results", {"cursor": cursor(race="race-1", scope="ALL", offset=50)})

    assert (reply.status, reply.body["entries"], reply.body["nextCursor"]) == (200, [], None)


def flagged(placings: Placings, personal_bests: set[str], records: set[str]) -> Placings:
    """The placings with the flags the close sets (shared.history), in every scope."""

    def mark(rows: tuple[Placing, ...]) -> tuple[Placing, ...]:
        return tuple(
            replace(p, personal_best=p.rider_id in personal_bests, record=p.rider_id in records)
            for p in rows
        )

    return Placings(mark(placings.overall), {c: mark(r) for c, r in placings.by_class.items()})


def test_each_row_says_whether_it_set_a_personal_best_or_a_record(db: Db) -> None:
    closed(
        db, "race-1", flagged(compute_placings(FIELD, TALLIES), {"a1", "b2", "h1"}, {"a1", "b2"})
    )

    assert walk("race-1", 3, 1) == [
        placing(1, "a1", 1, 900, 10, "ranked", personal_best=True, record=True),
        placing(2, "c1", 1, 800, 10, "ranked"),
        placing(3, "h1", 1, 700, 7, "ranked", personal_best=True),
        placing(None, "e1", 1, 0, 0, "DNS"),
    ]
    overall = walk("race-1", 100)
    assert [(e["riderId"], e["personalBest"], e["record"]) for e in overall[:3]] == [
        ("a1", True, True),
        ("b2", True, True),
        ("c1", False, False),
    ]
