"""``GET /riders/{riderId}/results`` and ``GET /classes/{classId}/records`` through the handler on
moto: the items as the closer stores them (written here with the history store), every field on
the wire, pages, ties and joint holders, the refusals, and what each request reads (one Query,
one GetItem: counted at the SDK)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from tests.leaderboard_api.helpers import STANDINGS, Db, get
from tests.support.faults import FaultInjector

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_790_000_000_000
SPRING = RaceRef("spring", "Spring GP", T0, 1_800)
SUMMER = RaceRef("summer", "Summer Crit", T0 + 30 * DAY, 1_800)
AUTUMN = RaceRef("autumn", "Autumn Hour", T0 + 60 * DAY, 3_600)


def result(
    rider: str,
    race: RaceRef,
    points: int,
    *,
    class_id: int = 2,
    ranks: tuple[int, int] = (1, 1),
    pb: bool = False,
    record: bool = False,
) -> RiderResult:
    return RiderResult(
        rider_id=rider,
        name=rider.title(),
        race=race,
        class_id=class_id,
        rank_overall=ranks[0],
        rank_class=ranks[1],
        points=points,
        seconds=race.duration_s - 5,
        personal_best=pb,
        record=record,
    )


def wire_race(race: RaceRef) -> dict[str, Any]:
    return {
        "raceId": race.race_id,
        "name": race.name,
        "startsAt": race.starts_at,
        "durationS": race.duration_s,
    }


ANA = [
    result("ana", SPRING, 150_000, ranks=(3, 2), pb=True),
    result("ana", SUMMER, 180_000, ranks=(1, 1), pb=True, record=True),
    result("ana", AUTUMN, 290_000, class_id=3, ranks=(7, 4), pb=True),
]


@pytest.fixture
def store(db: Db) -> DynamoHistoryStore:
    return DynamoHistoryStore(db.client, STANDINGS)


@pytest.fixture
def stored(store: DynamoHistoryStore) -> DynamoHistoryStore:
    store.put_results([*ANA, result("bo", SUMMER, 170_000, ranks=(2, 2))])
    return store


def test_a_rider_s_history_is_newest_first_with_every_field(stored: DynamoHistoryStore) -> None:
    reply = get("/riders/ana/results")

    assert reply.status == 200
    assert reply.headers["cache-control"] == "max-age=60"
    assert reply.body == {
        "riderId": "ana",
        "results": [
            {
                "race": wire_race(AUTUMN),
                "name": "Ana",
                "classId": 3,
                "rankOverall": 7,
                "rankClass": 4,
                "points": 290_000,
                "seconds": 3_595,
                "personalBest": True,
                "record": False,
            },
            {
                "race": wire_race(SUMMER),
                "name": "Ana",
                "classId": 2,
                "rankOverall": 1,
                "rankClass": 1,
                "points": 180_000,
                "seconds": 1_795,
                "personalBest": True,
                "record": True,
            },
            {
                "race": wire_race(SPRING),
                "name": "Ana",
                "classId": 2,
                "rankOverall": 3,
                "rankClass": 2,
                "points": 150_000,
                "seconds": 1_795,
                "personalBest": True,
                "record": False,
            },
        ],
        "nextCursor": None,
    }


def test_a_rider_with_no_closed_race_has_an_empty_history(stored: DynamoHistoryStore) -> None:
    """No rider is registered anywhere (entries are per race): an id that never rode a closed
    race is an empty history, not a 404."""
    reply = get("/riders/nobody/results")

    assert (reply.status, reply.body) == (
        200,
        {"riderId": "nobody", "results": [], "nextCursor": None},
    )


def walk(rider: str, limit: int) -> tuple[list[str], int]:
    """Every race id of the rider's history, page by page, and how many pages it took."""
    seen: list[str] = []
    query = {"limit": str(limit)}
    for pages in range(1, 1000):
        reply = get(f"/riders/{rider}/results", query)
        assert reply.status == 200, reply.body
        assert len(reply.body["results"]) <= limit
        seen += [r["race"]["raceId"] for r in reply.body["results"]]
        if reply.body["nextCursor"] is None:
            return seen, pages
        query["cursor"] = reply.body["nextCursor"]
    raise AssertionError("the history did not end")


def many(store: DynamoHistoryStore, rider: str, races: int) -> list[str]:
    """``races`` closed races of the rider a day apart; their ids, newest first."""
    refs = [RaceRef(f"r{i:04d}", f"Race {i}", T0 + i * DAY, 1_800) for i in range(races)]
    store.put_results([result(rider, ref, 1_000 + i) for i, ref in enumerate(refs)])
    return [ref.race_id for ref in reversed(refs)]


@pytest.mark.parametrize(("limit", "pages"), [(1, 25), (7, 4), (25, 1), (100, 1)])
def test_pages_walk_the_whole_history(store: DynamoHistoryStore, limit: int, pages: int) -> None:
    newest_first = many(store, "cy", 25)

    assert walk("cy", limit) == (newest_first, pages)


def cursor(**body: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def test_the_cursor_names_the_rider_and_the_position(stored: DynamoHistoryStore) -> None:
    reply = get("/riders/ana/results", {"limit": "2"})

    assert [r["race"]["raceId"] for r in reply.body["results"]] == ["autumn", "summer"]
    text = reply.body["nextCursor"]
    assert json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) == {
        "rider": "ana",
        "after": f"RESULT#{SUMMER.starts_at:013d}#summer",
    }
    last = get("/riders/ana/results", {"limit": "2", "cursor": text})
    assert [r["race"]["raceId"] for r in last.body["results"]] == ["spring"]
    assert last.body["nextCursor"] is None


ANA_AFTER_SUMMER = f"RESULT#{SUMMER.starts_at:013d}#summer"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (
            {"cursor": cursor(rider="bo", after=ANA_AFTER_SUMMER)},
            400,
            "cursor: it belongs to another rider's history (riderId)",
        ),
        ({"cursor": "%%%"}, 400, "cursor: not a cursor this API returned"),
        (
            {"cursor": cursor(rider="ana", after="BEST#2#01800")},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            {"cursor": cursor(rider="ana", after=ANA_AFTER_SUMMER, extra=1)},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            {"cursor": cursor(race="race-1", scope="ALL", offset=2)},
            400,
            "cursor: not a cursor this API returned",
        ),
        ({"limit": "0"}, 422, "limit: Input should be greater than or equal to 1"),
        ({"limit": "101"}, 422, "limit: Input should be less than or equal to 100"),
        (
            {"limit": "ten"},
            422,
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_bad_history_requests_say_what_is_wrong(
    stored: DynamoHistoryStore, query: dict[str, str], status: int, message: str
) -> None:
    reply = get("/riders/ana/results", query)

    assert (reply.status, reply.body) == (status, {"message": message})


def test_a_malformed_rider_id_is_a_422(stored: DynamoHistoryStore) -> None:
    reply = get("/riders/ana!/results")

    assert (reply.status, reply.body) == (
        422,
        {"message": "riderId: String should match pattern '^[A-Za-z0-9_-]{1,64}$'"},
    )


# --- records -----------------------------------------------------------------------------------
def best(rider: str, points: int, race: RaceRef, class_id: int = 2) -> Best:
    return Best(rider, rider.title(), class_id, points, race.duration_s - 5, race)


SPRING_2 = RaceRef("spring-2", "Spring GP II", T0 + DAY, 1_800)
WINTER = RaceRef("winter", "Winter GP", T0 + 90 * DAY, 1_800)
CLASS_2 = ClassRecords(2, 1_800).merged(
    [
        best("ana", 180_000, SUMMER),
        best("bo", 180_000, SUMMER),  # joint holders: the same points in the same race
        best("cy", 180_000, WINTER),
        best("di", 170_000, SPRING),
        best("ed", 150_000, SPRING_2),
    ]
)
"""Ana and Bo set 1,800.00 in Summer Crit; Cy equalled it later (Winter GP): no holder."""


def record_row(
    rank: int, rider: str, points: int, race: RaceRef, *, holder: bool = False
) -> dict[str, Any]:
    return {
        "rank": rank,
        "riderId": rider,
        "name": rider.title(),
        "points": points,
        "seconds": race.duration_s - 5,
        "race": wire_race(race),
        "holder": holder,
    }


ROWS = [
    record_row(1, "ana", 180_000, SUMMER, holder=True),
    record_row(1, "bo", 180_000, SUMMER, holder=True),
    record_row(1, "cy", 180_000, WINTER),
    record_row(4, "di", 170_000, SPRING),
    record_row(5, "ed", 150_000, SPRING_2),
]


@pytest.fixture
def records(store: DynamoHistoryStore) -> DynamoHistoryStore:
    assert store.save_records(CLASS_2)
    assert store.save_records(ClassRecords(2, 3_600).merged([best("fay", 400_000, AUTUMN)]))
    return store


def test_class_records_rank_by_points_and_name_the_holders(records: DynamoHistoryStore) -> None:
    reply = get("/classes/2/records", {"durationS": "1800"})

    assert reply.status == 200
    assert reply.headers["cache-control"] == "max-age=60"
    assert reply.body == {"classId": 2, "durationS": 1_800, "records": ROWS}


def test_a_limit_keeps_the_best_rows(records: DynamoHistoryStore) -> None:
    reply = get("/classes/2/records", {"durationS": "1800", "limit": "4"})

    assert reply.body["records"] == ROWS[:4]


def test_races_of_another_length_are_not_compared(records: DynamoHistoryStore) -> None:
    hour = get("/classes/2/records", {"durationS": "3600"})
    other = get("/classes/2/records", {"durationS": "1200"})
    other_class = get("/classes/3/records", {"durationS": "1800"})

    assert hour.body["records"] == [record_row(1, "fay", 400_000, AUTUMN, holder=True)]
    assert (other.status, other.body) == (
        200,
        {"classId": 2, "durationS": 1_200, "records": []},
    )
    assert other_class.body == {"classId": 3, "durationS": 1_800, "records": []}


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/classes/2/records", {}, "durationS: Field required"),
        (
            "/classes/2/records",
            {"durationS": "0"},
            "durationS: Input should be greater than or equal to 1",
        ),
        (
            "/classes/2/records",
            {"durationS": "86401"},
            "durationS: Input should be less than or equal to 86400",
        ),
        (
            "/classes/7/records",
            {"durationS": "1800"},
            "classId: Input should be less than or equal to 6",
        ),
        (
            "/classes/0/records",
            {"durationS": "1800"},
            "classId: Input should be greater than or equal to 1",
        ),
        (
            "/classes/two/records",
            {"durationS": "1800"},
            "classId: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "/classes/2/records",
            {"durationS": "1800", "limit": "101"},
            "limit: Input should be less than or equal to 100",
        ),
        (
            "/classes/2/records",
            {"durationS": "1800", "limit": "0"},
            "limit: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_records_requests_name_the_field(
    records: DynamoHistoryStore, path: str, query: dict[str, str], message: str
) -> None:
    reply = get(path, query)

    assert (reply.status, reply.body) == (422, {"message": message})


# --- what a request reads ----------------------------------------------------------------------
def test_a_history_page_is_one_query_however_long_the_history(
    ties: Db, faults: FaultInjector
) -> None:
    newest_first = many(DynamoHistoryStore(ties.client, STANDINGS), "cy", 1_000)

    first = get("/riders/cy/results", {"limit": "100"})
    assert faults.calls == {"Query": 1}
    second = get("/riders/cy/results", {"limit": "100", "cursor": first.body["nextCursor"]})
    assert faults.calls == {"Query": 2}
    shown = [r["race"]["raceId"] for r in first.body["results"] + second.body["results"]]
    assert shown == newest_first[:200]


def test_class_records_are_one_get_item(ties: Db, faults: FaultInjector) -> None:
    store = DynamoHistoryStore(ties.client, STANDINGS)
    assert store.save_records(CLASS_2)

    reply = get("/classes/2/records", {"durationS": "1800", "limit": "100"})

    assert reply.body["records"] == ROWS
    assert faults.calls == {"GetItem": 1}


@pytest.mark.parametrize(
    ("path", "operation"),
    [("/riders/ana/results", "Query"), ("/classes/2/records?durationS=1800", "GetItem")],
)
def test_throttled_reads_are_a_503_with_retry_after(
    faults: FaultInjector, path: str, operation: str
) -> None:
    faults.fail(operation, times=1000)
    route, _, query = path.partition("?")

    reply = get(route, dict([query.split("=")]) if query else None)

    assert (reply.status, reply.body) == (503, {"message": "the API is busy, retry in a second"})
    assert reply.headers["retry-after"] == "1"
