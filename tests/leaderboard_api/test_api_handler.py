"""The leaderboard API handler's public reads: REST proxy events in, exact JSON out, against
moto, on the tests' clock (``helpers.NOW``)."""

from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import random
from dataclasses import replace
from typing import Any

import pytest

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import LocalContext
from shared import names
from shared.routes import API_ROUTES
from tests.leaderboard_api.helpers import (
    NOW,
    STARTS,
    Db,
    fixture,
    get,
    invoke,
    standing,
)
from tests.support.faults import FaultInjector

LAST_READING = 1_795_374_299_000
"""The seeded races' ``lastReadingAt`` (helpers.race)."""
AS_OF = NOW
"""A board's ``asOf``: when its live ranking was built (the first request, at the tests' clock)."""


def entry(rank: int, rider: str, name: str, class_id: int, points: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "riderId": rider,
        "name": name,
        "classId": class_id,
        "points": points,
        "seconds": 10,
        "lastSecond": 9,
        "finished": False,
    }


ALL = [
    entry(1, "rider-01", "Ana", 1, 9000),
    entry(2, "rider-02", "Bo", 2, 8000),
    entry(2, "rider-03", "Cy", 1, 8000),
    entry(4, "rider-04", "Di", 2, 7000),
    entry(5, "rider-05", "Ed", 2, 6000),
    entry(5, "rider-06", "Flo", 3, 6000),
]


def cursor_of(body: dict[str, Any]) -> dict[str, Any]:
    text = body["nextCursor"]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return decoded


# --- leaderboard -------------------------------------------------------------------------------
def test_fixture_event_ranks_ties_one_two_two_four(ties: Db) -> None:
    reply = invoke(fixture("rest_leaderboard.json"))  # limit=5, as API Gateway sends it

    assert reply.status == 200
    assert reply.headers["cache-control"] == "max-age=1"
    assert reply.headers["content-type"] == "application/json"
    assert reply.body == {
        "raceId": "race-1",
        "classId": None,
        "asOf": AS_OF,
        "entries": ALL[:5],
        "nextCursor": reply.body["nextCursor"],
    }
    assert cursor_of(reply.body) == {"race": "race-1", "cls": 0, "pos": 5}


def test_tie_across_a_page_boundary_keeps_its_rank(ties: Db) -> None:
    first = get("/races/race-1/leaderboard", {"limit": "2"})
    second = get("/races/race-1/leaderboard", {"limit": "2", "cursor": first.body["nextCursor"]})
    third = get("/races/race-1/leaderboard", {"limit": "2", "cursor": second.body["nextCursor"]})

    assert first.body["entries"] == ALL[0:2]
    assert second.body["entries"] == ALL[2:4]
    assert third.body["entries"] == ALL[4:6]
    assert third.body["nextCursor"] is None


def test_whole_board_fits_one_page(ties: Db) -> None:
    reply = get("/races/race-1/leaderboard")

    assert reply.body == {
        "raceId": "race-1",
        "classId": None,
        "asOf": AS_OF,
        "entries": ALL,
        "nextCursor": None,
    }


def test_class_filter_ranks_within_the_class(ties: Db) -> None:
    reply = invoke(fixture("rest_leaderboard_class.json"))  # classId=2, limit=10

    assert reply.status == 200
    assert reply.body == {
        "raceId": "race-1",
        "classId": 2,
        "asOf": AS_OF,
        "entries": [
            entry(1, "rider-02", "Bo", 2, 8000),
            entry(2, "rider-04", "Di", 2, 7000),
            entry(3, "rider-05", "Ed", 2, 6000),
        ],
        "nextCursor": None,
    }


def test_class_without_riders_is_an_empty_board(ties: Db) -> None:
    reply = get("/races/race-1/leaderboard", {"classId": "6"})

    assert reply.status == 200
    assert reply.body == {
        "raceId": "race-1",
        "classId": 6,
        "asOf": AS_OF,
        "entries": [],
        "nextCursor": None,
    }


def test_races_do_not_mix(ties: Db) -> None:
    ties.put_race("race-2", [standing("rider-01", 1, 1, race="race-2", name="Ana")])

    reply = get("/races/race-2/leaderboard")

    assert reply.body["entries"] == [
        {
            "rank": 1,
            "riderId": "rider-01",
            "name": "Ana",
            "classId": 1,
            "points": 1,
            "seconds": 10,
            "lastSecond": 9,
            "finished": False,
        }
    ]


def test_a_rider_whose_final_reading_counted_is_shown_finished(ties: Db) -> None:
    ties.put_race(
        "race-3",
        [
            standing("rider-01", 5, 1, race="race-3", name="Ana", final_second=9),
            standing("rider-02", 4, 1, race="race-3", name="Bo"),
        ],
    )

    reply = get("/races/race-3/leaderboard")

    assert [(e["riderId"], e["finished"]) for e in reply.body["entries"]] == [
        ("rider-01", True),
        ("rider-02", False),
    ]


def test_pagination_through_a_1000_rider_race(db: Db) -> None:
    limit = 100
    rng = random.Random(20261122)
    riders = [
        standing(f"r{i:04d}", rng.choice(range(0, 300_000, 2_500)), rng.randint(1, 6), race="big")
        for i in range(1000)
    ]
    db.put_race("big", riders)
    expected_order = sorted(riders, key=lambda s: (-s.points, s.rider_id))
    expected_rank = {s.rider_id: 1 + sum(1 for o in riders if o.points > s.points) for s in riders}

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        reply = get("/races/big/leaderboard", query)
        assert reply.status == 200
        assert len(reply.body["entries"]) <= limit
        seen.extend(reply.body["entries"])
        pages += 1
        cursor = reply.body["nextCursor"]
        if cursor is None:
            break
        assert pages < 1000 // limit + 2

    assert pages == -(-1000 // limit)
    assert [e["riderId"] for e in seen] == [s.rider_id for s in expected_order]
    assert {e["riderId"]: e["rank"] for e in seen} == expected_rank
    assert len({e["riderId"] for e in seen}) == 1000


def test_class_pagination_in_a_1000_rider_race(db: Db) -> None:
    rng = random.Random(7)
    riders = [
        standing(f"r{i:04d}", rng.randrange(0, 50) * 100, rng.randint(1, 3), race="big")
        for i in range(1000)
    ]
    db.put_race("big", riders)
    in_class = sorted((s for s in riders if s.class_id == 2), key=lambda s: (-s.points, s.rider_id))

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        query = {"limit": "100", "classId": "2"} | ({"cursor": cursor} if cursor else {})
        reply = get("/races/big/leaderboard", query)
        seen.extend(reply.body["entries"])
        cursor = reply.body["nextCursor"]
        if cursor is None:
            break

    assert [e["riderId"] for e in seen] == [s.rider_id for s in in_class]
    ranks = {e["riderId"]: e["rank"] for e in seen}
    assert ranks == {
        s.rider_id: 1 + sum(1 for o in in_class if o.points > s.points) for s in in_class
    }


# --- riders, races -----------------------------------------------------------------------------
def test_rider_rank_overall_and_in_class(ties: Db) -> None:
    reply = invoke(fixture("rest_rider.json"))  # rider-04

    assert reply.status == 200
    assert reply.body == {
        "raceId": "race-1",
        "riderId": "rider-04",
        "name": "Di",
        "classId": 2,
        "points": 7000,
        "seconds": 10,
        "lastSecond": 9,
        "rank": 4,
        "classRank": 2,
        "riders": 6,
        "classRiders": 3,
        "finished": False,
        "asOf": AS_OF,
    }
    assert reply.headers["cache-control"] == "max-age=1"


def test_tied_rider_shares_the_rank(ties: Db) -> None:
    reply = get("/races/race-1/riders/rider-06")

    assert (reply.body["rank"], reply.body["classRank"]) == (5, 1)


def test_race_summary(ties: Db) -> None:
    reply = invoke(fixture("rest_race.json"))

    assert reply.status == 200
    assert reply.body == {
        "raceId": "race-1",
        "name": "Race race-1",
        "status": "running",
        "startsAt": STARTS,
        "durationS": 3600,
        "graceS": 30,
        "closesAt": STARTS + 3_630_000,
        "entrants": 6,
        "riders": 6,
        "finished": 0,
        "lastReadingAt": LAST_READING,
        "classes": [
            {"classId": 1, "riders": 2},
            {"classId": 2, "riders": 3},
            {"classId": 3, "riders": 1},
            {"classId": 4, "riders": 0},
            {"classId": 5, "riders": 0},
            {"classId": 6, "riders": 0},
        ],
    }


@pytest.mark.parametrize(
    ("now", "state", "status"),
    [
        (STARTS - 1, "open", "scheduled"),
        (STARTS, "open", "running"),
        (STARTS + 3_629_999, "open", "running"),
        (STARTS + 3_630_000, "open", "closing"),
        (STARTS + 10, "closing", "closing"),
        (STARTS + 10, "closed", "closed"),
    ],
)
def test_a_race_status_is_derived_from_its_times_and_the_closer(
    db: Db, now: int, state: str, status: str
) -> None:
    db.put_race("race-1", state=state)
    db.clock.now = now

    assert get("/races/race-1").body["status"] == status


def test_races_newest_first_paginated(db: Db) -> None:
    for i, starts in enumerate([3000, 1000, 2000]):
        db.put_race(f"race-{i}", [], starts_at=starts, last_reading_at=starts + 5)

    first = invoke(fixture("rest_races.json"))  # limit=2
    second = get("/races", {"limit": "2", "cursor": first.body["nextCursor"]})

    assert first.status == 200
    assert [r["raceId"] for r in first.body["races"]] == ["race-0", "race-2"]
    assert first.body["races"][0] == {
        "raceId": "race-0",
        "name": "Race race-0",
        "status": "closing",
        "startsAt": 3000,
        "durationS": 3600,
        "graceS": 30,
        "closesAt": 3_633_000,
        "entrants": 0,
        "riders": 0,
        "finished": 0,
        "lastReadingAt": 3005,
        "classes": [{"classId": c, "riders": 0} for c in range(1, 7)],
    }
    assert cursor_of(first.body) == {"race": "race-2", "starts": 2000}
    assert [r["raceId"] for r in second.body["races"]] == ["race-1"]
    assert second.body["nextCursor"] is None


MINUTE = 60_000
DAY = 86_400_000


@pytest.fixture
def season(db: Db) -> Db:
    """Races at every stage at NOW, and one closed early before it started."""
    db.put_race("later", starts_at=NOW + DAY)
    db.put_race("next", starts_at=NOW + MINUTE)
    db.put_race("cancelled", starts_at=NOW + 2 * MINUTE, state="closed")
    db.put_race("warmup", starts_at=NOW - 2 * MINUTE, duration_s=600)
    db.put_race("main", starts_at=NOW - MINUTE, duration_s=600)
    db.put_race("ending", starts_at=NOW - 10 * MINUTE, duration_s=570)  # closes at NOW
    db.put_race("stalled", starts_at=NOW - DAY, state="closing")
    db.put_race("morning", starts_at=NOW - 5 * 3_600_000, state="closed")
    db.put_race("yesterday", starts_at=NOW - DAY - 5 * MINUTE, state="closed")
    db.put_race("long-ago", starts_at=NOW - 400 * DAY, state="closed")
    return db


def listing(status: str, limit: int = 20) -> list[tuple[str, str]]:
    """Every race a status listing holds, following its cursors: (raceId, status)."""
    seen: list[tuple[str, str]] = []
    query: dict[str, str] = {"status": status, "limit": str(limit)}
    for _ in range(20):
        reply = get("/races", query)
        assert reply.status == 200, reply.body
        seen.extend((r["raceId"], r["status"]) for r in reply.body["races"])
        if reply.body["nextCursor"] is None:
            return seen
        query["cursor"] = reply.body["nextCursor"]
    raise AssertionError("the listing did not end")


@pytest.mark.parametrize("limit", [1, 2, 20])
def test_races_by_status_newest_start_first(season: Db, limit: int) -> None:
    assert listing("scheduled", limit) == [("later", "scheduled"), ("next", "scheduled")]
    assert listing("running", limit) == [("main", "running"), ("warmup", "running")]
    assert listing("closing", limit) == [("ending", "closing"), ("stalled", "closing")]
    assert listing("closed", limit) == [
        ("cancelled", "closed"),
        ("morning", "closed"),
        ("yesterday", "closed"),
        ("long-ago", "closed"),
    ]


def test_the_live_page_default_is_the_running_race_that_started_last(season: Db) -> None:
    reply = invoke(fixture("rest_races_running.json"))  # status=running&limit=1

    assert [r["raceId"] for r in reply.body["races"]] == ["main"]
    assert cursor_of(reply.body) == {"race": "main", "starts": NOW - MINUTE}


def test_a_race_becomes_running_then_closing_as_the_clock_moves(season: Db) -> None:
    season.clock.now = NOW + MINUTE

    assert listing("running")[:2] == [("next", "running"), ("main", "running")]
    assert ("next", "scheduled") not in listing("scheduled")


def test_a_closing_race_stalled_past_the_window_is_not_listed_as_closing(season: Db) -> None:
    """The documented bound: a closing race is looked for among races started within the
    longest race and grace before now (a closer stalled for a day is an alarm, not a listing)."""
    season.clock.now = NOW + 3 * 3_600_000

    assert ("stalled", "closing") not in listing("closing")
    assert get("/races/stalled").body["status"] == "closing"


def test_no_races_is_an_empty_list(db: Db) -> None:
    assert get("/races").body == {"races": [], "nextCursor": None}
    assert get("/races", {"status": "running"}).body == {"races": [], "nextCursor": None}


# --- every 4xx ---------------------------------------------------------------------------------
def other_board_cursor() -> str:
    body = {"race": "race-1", "cls": 3, "pos": 1}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def forged(**fields: Any) -> str:
    body = {"race": "race-1", "cls": 0, "pos": 1}
    return base64.urlsafe_b64encode(json.dumps(body | fields).encode()).decode()


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/races/nope/leaderboard", {}, 404, "raceId: no race nope"),
        ("/races/nope", {}, 404, "raceId: no race nope"),
        ("/races/nope/riders/rider-01", {}, 404, "raceId: no race nope"),
        ("/races/nope/results", {}, 404, "raceId: no race nope"),
        ("/races/race-1/riders/ghost", {}, 404, "riderId: ghost has no standing in race race-1"),
        (
            "/races",
            {"status": "finished"},
            422,
            "status: Input should be 'scheduled', 'running', 'closing' or 'closed'",
        ),
        ("/nowhere", {}, 404, "no route GET /nowhere"),
        (
            "/races/race-1/leaderboard/extra",
            {},
            404,
            "no route GET /races/race-1/leaderboard/extra",
        ),
        (
            "/races/race-1/leaderboard",
            {"classId": "0"},
            422,
            "classId: Input should be greater than or equal to 1",
        ),
        (
            "/races/race-1/leaderboard",
            {"classId": "7"},
            422,
            "classId: Input should be less than or equal to 6",
        ),
        (
            "/races/race-1/leaderboard",
            {"classId": "two"},
            422,
            "classId: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "/races/race-1/leaderboard",
            {"limit": "0"},
            422,
            "limit: Input should be greater than or equal to 1",
        ),
        (
            "/races/race-1/leaderboard",
            {"limit": "101"},
            422,
            "limit: Input should be less than or equal to 100",
        ),
        (
            "/races/race-1/leaderboard",
            {"limit": "1.5"},
            422,
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        ("/races", {"limit": "500"}, 422, "limit: Input should be less than or equal to 100"),
        (
            "/races/race-1/leaderboard",
            {"cursor": "not a cursor!"},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": "e30"},  # {}
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": other_board_cursor()},
            400,
            "cursor: it belongs to another leaderboard (raceId or classId)",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": forged(pos=0)},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": forged(pos=1_000_001)},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": forged(after="000000000001#x")},
            400,
            "cursor: not a cursor this API returned",
        ),
        (
            "/races/race-1/leaderboard",
            {"cursor": "x" * 600},
            422,
            "cursor: String should have at most 512 characters",
        ),
        ("/races", {"cursor": "%%%"}, 400, "cursor: not a cursor this API returned"),
        (
            "/races/bad.id/leaderboard",
            {},
            422,
            "raceId: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
    ],
)
def test_bad_input_says_what_is_wrong(
    ties: Db, path: str, query: dict[str, str], status: int, message: str
) -> None:
    reply = get(path, query)

    assert (reply.status, reply.body) == (status, {"message": message})
    assert reply.headers["content-type"] == "application/json"


def test_cursor_from_another_race_is_refused(ties: Db) -> None:
    ties.put_race("race-2", [standing(f"x{i}", i, race="race-2") for i in range(3)])
    cursor = get("/races/race-2/leaderboard", {"limit": "1"}).body["nextCursor"]

    reply = get("/races/race-1/leaderboard", {"cursor": cursor})

    assert reply.status == 400
    assert reply.body == {
        "message": "cursor: it belongs to another leaderboard (raceId or classId)"
    }


# --- storage faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/races/race-1/leaderboard", "Query"),
        ("/races/race-1/leaderboard", "UpdateItem"),
        ("/races/race-1/leaderboard", "BatchGetItem"),
        ("/races/race-1/leaderboard", "BatchWriteItem"),
        ("/races/race-1/riders/rider-01", "BatchGetItem"),
        ("/races/race-1/riders/rider-01", "Query"),
        ("/races", "Query"),
    ],
)
def test_throttling_is_a_503_with_retry_after(
    faults: FaultInjector, path: str, operation: str
) -> None:
    faults.fail(operation, times=1000)

    reply = get(path)

    assert (reply.status, reply.body) == (503, {"message": "the API is busy, retry in a second"})
    assert reply.headers["retry-after"] == "1"
    assert faults.injected >= 1


def test_an_unexpected_storage_error_is_a_json_500(faults: FaultInjector) -> None:
    faults.fail("Query", code="AccessDeniedException")

    reply = get("/races/race-1/leaderboard")

    assert (reply.status, reply.body) == (500, {"message": "internal error"})


def test_one_throttle_then_the_next_request_succeeds(faults: FaultInjector) -> None:
    faults.fail("Query", times=1)

    assert get("/races/race-1/leaderboard").status == 503
    assert get("/races/race-1/leaderboard").body["entries"] == ALL


# --- the page, the spec, CORS ------------------------------------------------------------------
def test_root_serves_the_page(db: Db) -> None:
    reply = invoke(fixture("rest_page.json"))

    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.body == api.PAGE_FILE.read_text(encoding="utf-8")
    assert '<table id="board"' in reply.body


def test_openapi_json_describes_every_route_with_the_stage_as_server(db: Db) -> None:
    reply = get("/openapi.json")

    assert reply.status == 200
    spec = reply.body
    assert sorted((p, m) for p, v in spec["paths"].items() for m in v) == [
        ("/classes/{classId}/records", "get"),
        ("/races", "get"),
        ("/races", "post"),
        ("/races/{raceId}", "get"),
        ("/races/{raceId}/close", "post"),
        ("/races/{raceId}/entries", "post"),
        ("/races/{raceId}/entries/{riderId}/disqualify", "post"),
        ("/races/{raceId}/leaderboard", "get"),
        ("/races/{raceId}/results", "get"),
        ("/races/{raceId}/riders/{riderId}", "get"),
        ("/riders/{riderId}/results", "get"),
    ]
    # relative to the document: right on the API's URL (stage path), the distribution and locally
    assert spec["servers"] == [{"url": "./"}]
    history = spec["paths"]["/riders/{riderId}/results"]["get"]
    assert sorted(history["responses"]) == ["200", "400", "404", "422", "503"]
    limit = {p["name"]: p for p in history["parameters"]}["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
    records = spec["paths"]["/classes/{classId}/records"]["get"]
    assert sorted(records["responses"]) == ["200", "404", "422", "503"]
    params = {p["name"]: p for p in records["parameters"]}
    assert (params["durationS"]["required"], params["durationS"]["schema"]["maximum"]) == (
        True,
        86_400,
    )
    assert (params["classId"]["schema"]["minimum"], params["classId"]["schema"]["maximum"]) == (
        1,
        6,
    )
    assert params["limit"]["schema"]["default"] == 10
    board = spec["paths"]["/races/{raceId}/leaderboard"]["get"]
    params = {p["name"]: p for p in board["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["limit"]["schema"]["default"] == 10
    assert sorted(board["responses"]) == ["200", "400", "404", "422", "503"]
    assert sorted(spec["paths"]["/races/{raceId}/results"]["get"]["responses"]) == [
        "200",
        "400",
        "404",
        "409",
        "422",
        "503",
    ]
    status = {p["name"]: p for p in spec["paths"]["/races"]["get"]["parameters"]}["status"]
    assert status["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/RaceStatus"}
    assert spec["components"]["schemas"]["RaceStatus"]["enum"] == [
        "scheduled",
        "running",
        "closing",
        "closed",
    ]
    # The organiser's operations: their bodies, answers and signature.
    create = spec["paths"]["/races"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewRace"
    }
    assert sorted(create["responses"]) == ["201", "409", "422", "503"]
    close = spec["paths"]["/races/{raceId}/close"]["post"]
    assert sorted(close["responses"]) == ["202", "404", "409", "422", "503"]
    organiser = [v["post"] for v in spec["paths"].values() if "post" in v]
    iam = {"type": "AWS_IAM"}
    assert [op["x-amazon-apigateway-auth"] for op in organiser] == [iam] * 4
    assert "x-amazon-apigateway-auth" not in board
    entries = spec["components"]["schemas"]["Entries"]["properties"]["entries"]
    assert (entries["minItems"], entries["maxItems"]) == (1, 1000)
    # The routes API Gateway declares (shared.routes) are exactly the ones the handler serves.
    documented = {
        (p, m.upper()): sorted(
            prm["name"] for prm in op.get("parameters", []) if prm["in"] == "query"
        )
        for p, v in spec["paths"].items()
        for m, op in v.items()
    }
    declared = {(r.path, r.method): sorted(r.query) for r in API_ROUTES if r.path in spec["paths"]}
    assert documented == declared
    assert {r.path for r in API_ROUTES} - set(spec["paths"]) == {"/", "/openapi.json", "/swagger"}


def test_swagger_ui(db: Db) -> None:
    reply = get("/swagger")

    assert reply.status == 200
    assert "SwaggerUIBundle" in reply.body


def test_cors_origin_from_the_environment(ties: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGIN", "https://leaderboard.example.com")
    try:
        module = importlib.reload(api)
        raw = module.handler(fixture("rest_leaderboard.json"), LocalContext())
    finally:
        monkeypatch.delenv("CORS_ORIGIN")
        importlib.reload(api)
    headers = raw.get("multiValueHeaders") or raw.get("headers")
    flat = {k.lower(): v if isinstance(v, str) else ",".join(v) for k, v in headers.items()}
    assert raw["statusCode"] == 200
    assert flat["access-control-allow-origin"] == "https://leaderboard.example.com"


def test_no_cors_headers_without_cors_origin(ties: Db) -> None:
    reply = get("/races/race-1/leaderboard")

    assert "access-control-allow-origin" not in reply.headers


# --- observability -----------------------------------------------------------------------------
def test_logs_carry_the_api_gateway_request_id_and_metrics_count_responses(
    faults: FaultInjector, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    log_handler.setFormatter(api.logger.registered_formatter)
    std_logger = logging.getLogger(names.POWERTOOLS_SERVICE_API)
    std_logger.addHandler(log_handler)
    faults.fail("Query", times=10)
    try:
        reply = invoke(fixture("rest_leaderboard.json"))
    finally:
        std_logger.removeHandler(log_handler)

    assert reply.status == 503
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    warning = next(r for r in logged if r["message"] == "storage throttled")
    assert warning["correlation_id"] == "5f0b6a2c-9d1e-4c3b-8a7f-2e6d5c4b3a21"
    assert warning["service"] == "leaderboard-api"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf[-1]["Responses5xx"] == [1.0]
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == names.METRICS_NAMESPACE


def test_a_page_follows_the_next_build_once_its_build_is_a_second_old(ties: Db) -> None:
    first = get("/races/race-1/leaderboard", {"limit": "1"})
    ties.put_standings([standing("rider-09", 9999, 1, name="Zed")])
    ties.reading("race-1", NOW + 500)

    ties.clock.now += 999
    same = get("/races/race-1/leaderboard", {"limit": "1"})
    ties.clock.now += 1
    fresh = get("/races/race-1/leaderboard", {"limit": "1"})

    assert same.body == first.body
    assert first.body["entries"][0]["riderId"] == "rider-01"
    assert fresh.body["entries"] == [entry(1, "rider-09", "Zed", 1, 9999)]
    assert (first.body["asOf"], fresh.body["asOf"]) == (NOW, NOW + 1_000)
    assert fresh.headers["cache-control"] == "max-age=1"


def test_a_finished_rider_says_so(ties: Db) -> None:
    """Finished: the rider's final reading counted (its standing's finalSecond)."""
    ties.put_standings([replace(standing("rider-03", 8000, 1, name="Cy"), final_second=9)])

    reply = get("/races/race-1/riders/rider-03")

    assert reply.body["finished"] is True
    assert (reply.body["rank"], reply.body["classRank"]) == (2, 2)
    assert get("/races/race-1/riders/rider-01").body["finished"] is False


def test_names_and_classes_shown_are_the_standings_which_the_processor_takes_from_the_entries(
    ties: Db,
) -> None:
    """No route reads a name from anywhere else: the leaderboard and the rider show what the
    standing holds (the entry's name and class, written by the processor)."""
    ties.put_standings([replace(standing("rider-04", 7000, 2, name="Di"), name="Diana Dunn")])

    board = get("/races/race-1/leaderboard", {"classId": "2"}).body["entries"]
    rider = get("/races/race-1/riders/rider-04").body

    assert [(e["riderId"], e["name"]) for e in board] == [
        ("rider-02", "Bo"),
        ("rider-04", "Diana Dunn"),
        ("rider-05", "Ed"),
    ]
    assert (rider["name"], rider["classId"]) == ("Diana Dunn", 2)
