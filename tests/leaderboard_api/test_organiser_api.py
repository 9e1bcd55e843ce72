"""The organiser's routes through the handler: signed REST proxy events in (the JSON fixtures),
exact JSON out, the race book on moto's DynamoDB and the close schedules on moto's EventBridge
Scheduler, on the tests' clock (``helpers.NOW`` = 2026-11-22T19:05:00Z)."""

from __future__ import annotations

import copy
import io
import json
import logging
from typing import Any

import pytest

from functions.leaderboard_api import handler as api
from shared import names
from shared.races import EnteredRider, Entry
from tests.leaderboard_api.helpers import (
    CLOSER_ARN,
    NOW,
    SCHEDULE_DLQ_ARN,
    SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN,
    STARTS,
    Db,
    SentRequests,
    fixture,
    get,
    invoke,
    post,
)
from tests.support.faults import FaultInjector

SPRING_STARTS = 1_795_377_600_000  # 2026-11-22T20:00:00Z
SPRING_CLOSES = SPRING_STARTS + 1000 * (1800 + 60)  # 20:31:00Z
SPRING = {
    "raceId": "spring-classic",
    "name": "Spring Classic",
    "status": "scheduled",
    "startsAt": SPRING_STARTS,
    "durationS": 1800,
    "graceS": 60,
    "closesAt": SPRING_CLOSES,
    "entrants": 0,
    "riders": 0,
    "finished": 0,
    "lastReadingAt": 0,
    "classes": [{"classId": c, "riders": 0} for c in range(1, 7)],
}
NEW_RACE = json.loads(fixture("rest_create_race.json")["body"])


def schedule_request(expression: str) -> dict[str, Any]:
    """The whole CreateSchedule/UpdateSchedule request of spring-classic's close."""
    return {
        "Name": "spring-classic",
        "GroupName": SCHEDULE_GROUP,
        "Description": "Close race spring-classic",
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": CLOSER_ARN,
            "RoleArn": SCHEDULER_ROLE_ARN,
            "Input": '{"v":1,"raceId":"spring-classic"}',
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            "DeadLetterConfig": {"Arn": SCHEDULE_DLQ_ARN},
        },
        "ActionAfterCompletion": "DELETE",
    }


def error(status: int, message: str) -> tuple[int, dict[str, str]]:
    return status, {"message": message}


# --- POST /races -------------------------------------------------------------------------------
def test_a_race_is_created_with_its_close_scheduled(db: Db, sent: SentRequests) -> None:
    reply = invoke(fixture("rest_create_race.json"))

    assert (reply.status, reply.body) == (201, SPRING)
    assert reply.headers["content-type"] == "application/json"
    assert get("/races/spring-classic").body == SPRING
    # closesAt 20:31:00Z and the settle time: the closer runs at 20:31:05Z.
    assert sent.requests == [("CreateSchedule", schedule_request("at(2026-11-22T20:31:05)"))]
    stored = db.schedule("spring-classic")
    assert stored["ScheduleExpression"] == "at(2026-11-22T20:31:05)"
    assert stored["ScheduleExpressionTimezone"] == "UTC"
    assert stored["Target"] == {
        "Arn": CLOSER_ARN,
        "RoleArn": SCHEDULER_ROLE_ARN,
        "Input": '{"v":1,"raceId":"spring-classic"}',
        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
        "DeadLetterConfig": {"Arn": SCHEDULE_DLQ_ARN},
    }
    assert (stored["ActionAfterCompletion"], stored["FlexibleTimeWindow"]) == (
        "DELETE",
        {"Mode": "OFF"},
    )


def test_a_close_due_between_seconds_is_scheduled_at_the_next_second(
    db: Db, sent: SentRequests
) -> None:
    reply = post("/races", NEW_RACE | {"startsAt": SPRING_STARTS + 1})

    assert reply.status == 201
    assert db.schedule("spring-classic")["ScheduleExpression"] == "at(2026-11-22T20:31:06)"


def test_an_existing_race_is_a_409_that_touches_neither_the_race_nor_its_schedule(
    db: Db, sent: SentRequests
) -> None:
    assert invoke(fixture("rest_create_race.json")).status == 201

    again = post("/races", NEW_RACE | {"startsAt": SPRING_STARTS + 3_600_000, "name": "Other"})

    assert (again.status, again.body) == error(409, "raceId: race spring-classic exists already")
    assert get("/races/spring-classic").body == SPRING
    assert [op for op, _ in sent.requests] == ["CreateSchedule"]
    assert db.schedule("spring-classic")["ScheduleExpression"] == "at(2026-11-22T20:31:05)"


def test_a_race_that_has_started_but_not_closed_may_be_created(db: Db, sent: SentRequests) -> None:
    reply = post("/races", NEW_RACE | {"startsAt": NOW - 60_000})

    assert (reply.status, reply.body["status"]) == (201, "running")


def test_a_race_that_would_close_in_the_past_is_refused_naming_starts_at(
    db: Db, sent: SentRequests
) -> None:
    starts = NOW - 1000 * (1800 + 60)  # closes exactly now

    reply = post("/races", NEW_RACE | {"startsAt": starts})

    assert (reply.status, reply.body) == error(
        422,
        "startsAt: the race would close at 2026-11-22T19:05:00.000Z (startsAt + durationS + "
        "graceS), which is past: start it later",
    )
    assert sent.requests == []
    assert get("/races/spring-classic").status == 404


YEAR_AHEAD = NOW + 366 * 86_400_000  # 2027-11-23T19:05:00Z


@pytest.mark.parametrize(
    ("starts_at", "status"),
    [(YEAR_AHEAD, 201), (YEAR_AHEAD + 1, 422), (2**53 - 1, 422)],
)
def test_a_race_starts_at_most_a_year_ahead(
    db: Db, sent: SentRequests, starts_at: int, status: int
) -> None:
    reply = post("/races", NEW_RACE | {"startsAt": starts_at})

    assert reply.status == status
    if status == 422:
        assert reply.body == {
            "message": "startsAt: a race starts at most 366 days ahead, by 2027-11-23T19:05:00.000Z"
        }
        assert sent.requests == []
    else:
        assert db.schedule("spring-classic")["ScheduleExpression"] == "at(2027-11-23T19:36:05)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({k: v for k, v in NEW_RACE.items() if k != "name"}, "name: Field required"),
        (NEW_RACE | {"startsAt": "1795377600000"}, "startsAt: Input should be a valid integer"),
        (NEW_RACE | {"durationS": 0}, "durationS: Input should be greater than or equal to 1"),
        (
            NEW_RACE | {"durationS": 86_401},
            "durationS: Input should be less than or equal to 86400",
        ),
        (NEW_RACE | {"graceS": 3_601}, "graceS: Input should be less than or equal to 3600"),
        (NEW_RACE | {"graceS": -1}, "graceS: Input should be greater than or equal to 0"),
        (
            NEW_RACE | {"raceId": "spring classic"},
            "raceId: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
        (
            NEW_RACE | {"name": "Spring\u0000Classic"},
            "name: String should match pattern '^(?:[^\\p{C}\\p{Z}]| )*$'",
        ),
        (NEW_RACE | {"closesAt": 1}, "closesAt: Extra inputs are not permitted"),
        ("{not json", "body: not valid JSON (Expecting property name enclosed in double quotes)"),
        ("[]", "body: Input should be a valid dictionary or object to extract fields from"),
        (None, "body: Field required"),
    ],
)
def test_a_bad_new_race_is_a_422_naming_the_field(
    db: Db, sent: SentRequests, body: Any, message: str
) -> None:
    reply = post("/races", body)

    assert (reply.status, reply.body) == error(422, message)
    assert sent.requests == []


def test_a_scheduler_that_throttles_is_a_503_and_no_race_is_stored(
    faults: FaultInjector,
) -> None:
    faults.fail("CreateSchedule", code="ThrottlingException", times=10)

    reply = invoke(fixture("rest_create_race.json"))

    assert (reply.status, reply.body) == error(503, "the API is busy, retry in a second")
    assert reply.headers["retry-after"] == "1"
    assert get("/races/spring-classic").status == 404


def test_a_race_record_that_fails_leaves_a_schedule_the_retry_moves(
    faults: FaultInjector, db: Db
) -> None:
    faults.fail("PutItem", times=1)
    first = invoke(fixture("rest_create_race.json"))
    retry = post("/races", NEW_RACE | {"durationS": 1200})

    assert first.status == 503
    assert (retry.status, retry.body["closesAt"]) == (201, SPRING_STARTS + 1000 * (1200 + 60))
    assert db.schedule("spring-classic")["ScheduleExpression"] == "at(2026-11-22T20:21:05)"
    assert faults.calls["CreateSchedule"] == 2
    assert faults.calls["UpdateSchedule"] == 1


def test_the_caller_is_logged(sent: SentRequests) -> None:
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    log_handler.setFormatter(api.logger.registered_formatter)
    std_logger = logging.getLogger(names.POWERTOOLS_SERVICE_API)
    std_logger.addHandler(log_handler)
    level = api.logger.log_level
    api.logger.setLevel(logging.INFO)  # the suite runs at WARNING
    try:
        invoke(fixture("rest_create_race.json"))
    finally:
        api.logger.setLevel(level)
        std_logger.removeHandler(log_handler)

    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    line = next(r for r in logged if r["message"] == "create race")
    assert (line["raceId"], line["caller"]) == (
        "spring-classic",
        "arn:aws:sts::123456789012:assumed-role/RaceOrganiser/organiser",
    )


# --- POST /races/{raceId}/entries --------------------------------------------------------------
ANA = {"riderId": "ana", "name": "Ana Alvarez", "classId": 1, "deviceId": "bike-07"}
BO = {"riderId": "bo", "name": "Bo Berg", "classId": 2}
CY = {"riderId": "cy", "name": "Cy Chen", "classId": 3}


@pytest.fixture
def spring(db: Db, sent: SentRequests) -> Db:
    assert invoke(fixture("rest_create_race.json")).status == 201
    return db


def test_entries_are_added_and_a_resent_request_changes_nothing(spring: Db) -> None:
    first = invoke(fixture("rest_enter.json"))
    again = invoke(fixture("rest_enter.json"))

    assert (first.status, first.body) == (200, {"added": 2, "updated": 0})
    assert (again.status, again.body) == (200, {"added": 0, "updated": 0})
    assert get("/races/spring-classic").body["entrants"] == 2
    assert spring.book.get_entries("spring-classic", ["ana", "bo"]) == {
        "ana": EnteredRider(
            Entry(rider_id="ana", name="Ana Alvarez", class_id=1, device_id="bike-07")
        ),
        "bo": EnteredRider(Entry(rider_id="bo", name="Bo Berg", class_id=2)),
    }


def test_an_entry_changes_until_the_start_then_only_new_riders_are_entered(spring: Db) -> None:
    invoke(fixture("rest_enter.json"))
    renamed = {**BO, "name": "Bo Bergman", "classId": 4}

    before = post("/races/spring-classic/entries", {"entries": [renamed, CY]})
    spring.clock.now = SPRING_STARTS
    changed = post("/races/spring-classic/entries", {"entries": [{**ANA, "classId": 2}]})
    unchanged = post("/races/spring-classic/entries", {"entries": [ANA, renamed]})
    late = post("/races/spring-classic/entries", {"entries": [{"riderId": "di", **DI}]})

    assert (before.status, before.body) == (200, {"added": 1, "updated": 1})
    assert (changed.status, changed.body) == error(
        409, "entries: ana cannot change: race spring-classic has started"
    )
    assert (unchanged.status, unchanged.body) == (200, {"added": 0, "updated": 0})
    assert (late.status, late.body) == (200, {"added": 1, "updated": 0})
    entered = spring.book.get_entries("spring-classic", ["ana", "bo", "cy", "di"])
    assert {r: (e.entry.name, e.entry.class_id) for r, e in entered.items()} == {
        "ana": ("Ana Alvarez", 1),
        "bo": ("Bo Bergman", 4),
        "cy": ("Cy Chen", 3),
        "di": ("Di Dunn", 5),
    }
    assert get("/races/spring-classic").body["entrants"] == 4


DI = {"name": "Di Dunn", "classId": 5}


@pytest.mark.parametrize(
    ("now", "state", "message"),
    [
        (SPRING_CLOSES, "open", "race spring-classic is closing: entries are closed"),
        (NOW, "closed", "race spring-classic is closed: entries are closed"),
    ],
)
def test_a_closing_or_closed_race_takes_no_entry(
    spring: Db, now: int, state: str, message: str
) -> None:
    if state == "closed":
        spring.book.mark_closing("spring-classic")
        spring.book.mark_closed("spring-classic", NOW)
    spring.clock.now = now

    reply = invoke(fixture("rest_enter.json"))

    assert (reply.status, reply.body) == error(409, message)


def entries(n: int) -> dict[str, Any]:
    return {"entries": [{"riderId": f"r{i:04d}", "name": f"R {i}", "classId": 1} for i in range(n)]}


def test_a_thousand_entries_in_one_request(spring: Db) -> None:
    reply = post("/races/spring-classic/entries", entries(1000))

    assert (reply.status, reply.body) == (200, {"added": 1000, "updated": 0})
    assert get("/races/spring-classic").body["entrants"] == 1000


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/races/nope/entries", {"entries": [ANA]}, 404, "raceId: no race nope"),
        (
            "/races/spring-classic/entries",
            entries(1001),
            422,
            "entries: List should have at most 1000 items after validation, not 1001",
        ),
        (
            "/races/spring-classic/entries",
            {"entries": []},
            422,
            "entries: List should have at least 1 item after validation, not 0",
        ),
        (
            "/races/spring-classic/entries",
            {"entries": [ANA, BO, {**ANA, "name": "Ana Again"}]},
            422,
            "entries: rider ana is given twice",
        ),
        (
            "/races/spring-classic/entries",
            {"entries": [ANA, {**BO, "classId": 7}]},
            422,
            "entries.1.classId: Input should be less than or equal to 6",
        ),
        (
            "/races/spring-classic/entries",
            {"entries": [{**ANA, "deviceId": "bike 7"}]},
            422,
            "entries.0.deviceId: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
        (  # Powertools validates a one-item array body as its item
            "/races/spring-classic/entries",
            [ANA],
            422,
            "entries: Field required; riderId: Extra inputs are not permitted; name: Extra "
            "inputs are not permitted; classId: Extra inputs are not permitted; deviceId: Extra "
            "inputs are not permitted",
        ),
    ],
)
def test_bad_entries_say_what_is_wrong(
    spring: Db, path: str, body: Any, status: int, message: str
) -> None:
    reply = post(path, body)

    assert (reply.status, reply.body) == error(status, message)
    assert get("/races/spring-classic").body["entrants"] == 0


# --- POST /races/{raceId}/close ----------------------------------------------------------------
def test_an_early_close_is_grace_from_now_and_moves_the_schedule(
    spring: Db, sent: SentRequests
) -> None:
    spring.clock.now = SPRING_STARTS + 600_000  # 20:10:00Z, ten minutes in

    reply = post("/races/spring-classic/close")

    closes = SPRING_STARTS + 600_000 + 60_000  # graceS from now: 20:11:00Z
    assert (reply.status, reply.body) == (
        202,
        SPRING | {"status": "running", "closesAt": closes},
    )
    assert get("/races/spring-classic").body["closesAt"] == closes
    assert sent.requests == [
        ("CreateSchedule", schedule_request("at(2026-11-22T20:31:05)")),
        ("UpdateSchedule", schedule_request("at(2026-11-22T20:11:05)")),
    ]
    assert spring.schedule("spring-classic")["ScheduleExpression"] == "at(2026-11-22T20:11:05)"


def test_a_close_sooner_than_grace_from_now_keeps_the_scheduled_close(
    spring: Db, sent: SentRequests
) -> None:
    spring.clock.now = SPRING_CLOSES - 30_000  # the scheduled close is sooner than now + 60 s

    reply = post("/races/spring-classic/close")

    assert (reply.status, reply.body["closesAt"]) == (202, SPRING_CLOSES)
    assert sent.requests[-1] == ("UpdateSchedule", schedule_request("at(2026-11-22T20:31:05)"))


def test_a_close_sent_twice_keeps_the_first_close(spring: Db, sent: SentRequests) -> None:
    spring.clock.now = SPRING_STARTS
    first = post("/races/spring-classic/close")
    spring.clock.now += 20_000
    second = post("/races/spring-classic/close")

    assert first.body["closesAt"] == second.body["closesAt"] == SPRING_STARTS + 60_000
    assert [r["ScheduleExpression"] for _, r in sent.requests] == [
        "at(2026-11-22T20:31:05)",
        "at(2026-11-22T20:01:05)",
        "at(2026-11-22T20:01:05)",
    ]


def test_a_close_of_a_race_without_a_schedule_creates_one(db: Db, sent: SentRequests) -> None:
    db.put_race("race-1")

    reply = invoke(fixture("rest_close.json"))

    assert (reply.status, reply.body["closesAt"]) == (202, NOW + 30_000)
    assert [op for op, _ in sent.requests] == ["UpdateSchedule", "CreateSchedule"]
    assert db.schedule("race-1")["ScheduleExpression"] == "at(2026-11-22T19:05:35)"


@pytest.mark.parametrize(
    ("path", "now", "status", "message"),
    [
        ("/races/nope/close", NOW, 404, "raceId: no race nope"),
        (
            "/races/spring-classic/close",
            SPRING_CLOSES,
            409,
            "race spring-classic is closing already",
        ),
    ],
)
def test_a_close_of_an_unknown_or_closing_race(
    spring: Db, sent: SentRequests, path: str, now: int, status: int, message: str
) -> None:
    spring.clock.now = now
    before = list(sent.requests)

    reply = post(path)

    assert (reply.status, reply.body) == error(status, message)
    assert sent.requests == before


# --- POST /races/{raceId}/entries/{riderId}/disqualify -----------------------------------------
@pytest.fixture
def entered(ties: Db) -> Db:
    ties.book.enter(
        "race-1",
        [Entry(rider_id=f"rider-0{i}", name=f"R{i}", class_id=1) for i in range(1, 7)],
        STARTS - 1,
    )
    return ties


def test_a_rider_is_disqualified(entered: Db) -> None:
    reply = invoke(fixture("rest_disqualify.json"))  # race-1, rider-03

    assert (reply.status, reply.body) == (
        200,
        {"raceId": "race-1", "riderId": "rider-03", "disqualified": True},
    )
    stored = entered.book.get_entries("race-1", ["rider-03", "rider-04"])
    assert (stored["rider-03"].disqualified, stored["rider-04"].disqualified) == (True, False)
    # The rider keeps its live standing.
    assert get("/races/race-1/riders/rider-03").body["rank"] == 2


@pytest.mark.parametrize(
    ("path", "now", "status", "message"),
    [
        ("/races/nope/entries/rider-03/disqualify", NOW, 404, "raceId: no race nope"),
        (
            "/races/race-1/entries/ghost/disqualify",
            NOW,
            404,
            "riderId: ghost is not entered in race race-1",
        ),
        (
            "/races/race-1/entries/rider-03/disqualify",
            STARTS + 3_630_000,
            409,
            "race race-1 is closing: its riders can no longer be disqualified",
        ),
        (
            "/races/race-1/entries/bad.id/disqualify",
            NOW,
            422,
            "riderId: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
        ),
    ],
)
def test_a_disqualification_that_cannot_be(
    entered: Db, path: str, now: int, status: int, message: str
) -> None:
    entered.clock.now = now

    reply = post(path)

    assert (reply.status, reply.body) == error(status, message)
    assert entered.book.get_entries("race-1", ["rider-03"])["rider-03"].disqualified is False


def test_a_closed_race_disqualifies_nobody(entered: Db) -> None:
    entered.book.mark_closing("race-1")
    entered.book.mark_closed("race-1", NOW)

    reply = invoke(fixture("rest_disqualify.json"))

    assert (reply.status, reply.body) == error(
        409, "race race-1 is closed: its riders can no longer be disqualified"
    )


def test_the_organisers_fixtures_are_signed_requests() -> None:
    """What API Gateway hands the function once it has authorized a SigV4 request."""
    for name in ("rest_create_race.json", "rest_enter.json", "rest_close.json"):
        e = copy.deepcopy(fixture(name))
        assert e["httpMethod"] == e["requestContext"]["httpMethod"] == "POST"
        assert e["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
        assert e["requestContext"]["identity"]["userArn"].startswith("arn:aws:sts::")
