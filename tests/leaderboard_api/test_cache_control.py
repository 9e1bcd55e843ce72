"""``Cache-Control`` per route (issue 18): the handler sends what ``shared.routes`` declares,
and CloudFront caches by it. The expected values are written out here, not read back from the
declaration: a change to a route's age must change this test too."""

from __future__ import annotations

from typing import Any

import pytest

from functions.leaderboard_api.handler import with_cache_control
from shared.placings import Tally, compute_placings
from shared.races import EnteredRider, Entry
from shared.routes import API_ROUTES
from shared.routes import Route as DeclaredRoute
from tests.leaderboard_api.helpers import Db, get, post
from tests.support.faults import FaultInjector

DAY = "max-age=86400"
SECOND = "max-age=1"


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/", None, "max-age=300"),
        ("/openapi.json", None, "max-age=300"),
        ("/swagger", None, "max-age=300"),
        ("/races", None, "max-age=5"),
        ("/races", {"status": "running", "limit": "2"}, "max-age=5"),
        ("/races/race-1", None, SECOND),
        ("/races/race-1/leaderboard", None, SECOND),
        ("/races/race-1/leaderboard", {"classId": "2", "limit": "2"}, SECOND),
        ("/races/race-1/riders/rider-04", None, SECOND),
    ],
)
def test_each_read_sends_its_declared_age(
    ties: Db, path: str, query: dict[str, str] | None, expected: str
) -> None:
    reply = get(path, query)

    assert reply.status == 200, reply.body
    assert reply.headers["cache-control"] == expected


def test_a_closed_race_s_results_are_kept_a_day(db: Db) -> None:
    field = [EnteredRider(Entry(rider_id="a1", name="A1", class_id=1), False)]
    db.put_race("race-1")
    db.close("race-1", compute_placings(field, {"a1": Tally(900, 10)}))

    reply = get("/races/race-1/results", {"classId": "1", "limit": "5"})

    assert reply.status == 200, reply.body
    assert reply.headers["cache-control"] == DAY


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/races/race-1/results", None, 409),  # running: published once it is closed
        ("/races/nope", None, 404),
        ("/races/race-1/riders/nobody", None, 404),
        ("/no/such/route", None, 404),
        ("/races/race-1/leaderboard", {"limit": "0"}, 422),
        ("/races/race-1/leaderboard", {"cursor": "not-a-cursor"}, 400),
    ],
)
def test_an_error_to_a_read_is_kept_a_second(
    ties: Db, path: str, query: dict[str, Any] | None, status: int
) -> None:
    """Never the route's own age: a 409 kept a day would hide the results once the race
    closes."""
    reply = get(path, query)

    assert reply.status == status, reply.body
    assert reply.headers["cache-control"] == SECOND


def test_a_throttled_read_is_kept_a_second(faults: FaultInjector) -> None:
    faults.fail("Query", times=1000)

    reply = get("/races/race-1/leaderboard")

    assert reply.status == 503
    assert reply.headers["cache-control"] == SECOND
    assert reply.headers["retry-after"] == "1"


def test_the_organiser_s_answers_are_never_stored(ties: Db) -> None:
    ok = post("/races/race-1/close")
    refused = post("/races/nope/close")

    assert (ok.status, refused.status) == (202, 404)
    assert ok.headers["cache-control"] == "no-store"
    assert refused.headers["cache-control"] == "no-store"


def test_exactly_one_cache_control_header() -> None:
    """The route's own header is replaced, whichever case it was written in."""
    response = {
        "statusCode": 200,
        "multiValueHeaders": {"cache-control": ["max-age=9"], "X": ["y"]},
    }
    event = {"httpMethod": "GET", "resource": "/races/{raceId}"}

    assert with_cache_control(response, event)["multiValueHeaders"] == {
        "X": ["y"],
        "Cache-Control": [SECOND],
    }


def test_every_read_declares_an_age_and_no_write_does() -> None:
    """A new GET route must say how long it may be cached (the distribution caches by it)."""
    reads = [r for r in API_ROUTES if not r.organiser]
    writes = [r for r in API_ROUTES if r.organiser]

    assert [r.path for r in reads if r.max_age_s is None] == []
    assert [r.path for r in writes if r.max_age_s is not None] == []
    assert {r.cache_control for r in writes} == {"no-store"}
    assert DeclaredRoute("/x", max_age_s=60).cache_control == "max-age=60"
