"""The deployed entry point against moto: a race's schedule invokes the closer, which stores the
placings once and announces each rider once, however the close is delivered or interrupted."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from moto import mock_aws
from pydantic import ValidationError

from functions.race_closer import handler
from functions.race_closer.config import CloserSettings, ConfigError
from functions.race_closer.handler import CloseIncompleteError
from shared import names
from shared.placings import OVERALL, Tally, class_scope
from shared.ports import TransientError
from shared.race_store import now_ms
from shared.races import Entry
from shared.tables import create_tables
from tests.race_closer.conftest import (
    BY_CLASS,
    ENTRIES,
    PLACINGS,
    RACE_ID,
    Aws,
    LambdaContext,
    announced,
    fixture,
)

CLOSED = {"raceId": RACE_ID, "status": "closed", "placed": 8, "announced": 8,
          "announcementsFailed": 0}  # fmt: skip
CLOSED_BEFORE = {**CLOSED, "status": "closed before"}


def expected_scopes() -> dict[str, list[Any]]:
    return {OVERALL: PLACINGS} | {class_scope(c): p for c, p in BY_CLASS.items()}


def announcements_by_rider(aws: Aws) -> Counter[str]:
    return Counter(payload["riderId"] for _, payload in aws.announcements())


def assert_closed_cleanly(aws: Aws, before: int) -> None:
    """What a clean close leaves: the placings of every scope, the race closed, each rider
    announced once on its own topic."""
    assert aws.placings() == expected_scopes()
    race = aws.book.get_race(RACE_ID)
    assert race is not None
    assert race.state == "closed"
    assert before <= race.closed_at <= now_ms()
    assert sorted(aws.announcements(), key=lambda a: a[0]) == [
        (names.result_topic(RACE_ID, e.rider_id), announced(e.rider_id))
        for e in sorted(ENTRIES, key=lambda e: names.result_topic(RACE_ID, e.rider_id))
    ]


def test_the_schedule_closes_the_race_and_stores_and_announces_the_placings(aws: Aws) -> None:
    aws.add_race()
    before = now_ms()
    assert aws.close() == CLOSED
    assert_closed_cleanly(aws, before)
    # 1 overall page and 6 class pages (classes 4-6 hold none: one empty page each).
    assert len(aws.placings_items()) == 7


def test_a_close_delivered_twice_changes_nothing(aws: Aws) -> None:
    aws.add_race()
    before = now_ms()
    assert aws.close() == CLOSED
    stored, race = aws.placings_items(), aws.book.get_race(RACE_ID)
    writes = sum(aws.faults.calls[op] for op in ("BatchWriteItem", "UpdateItem"))
    assert aws.close() == CLOSED_BEFORE
    assert aws.placings_items() == stored
    assert aws.book.get_race(RACE_ID) == race
    assert sum(aws.faults.calls[op] for op in ("BatchWriteItem", "UpdateItem")) == writes
    assert_closed_cleanly(aws, before)


@pytest.mark.parametrize(
    ("operation", "contains"),
    [
        ("UpdateItem", "closing"),  # marking the race closing
        ("Query", "ENTRY#"),  # reading the entries
        ("BatchGetItem", "STANDING"),  # reading the standings
        ("BatchWriteItem", "PLACINGS#"),  # storing the placings
        ("UpdateItem", "closedAt"),  # placings stored, the race not marked closed
    ],
)
def test_a_close_failing_half_way_and_retried_ends_as_a_clean_one(
    aws: Aws, operation: str, contains: str
) -> None:
    aws.add_race()
    aws.faults.fail(operation, contains, code="ProvisionedThroughputExceededException")
    before = now_ms()
    with pytest.raises(TransientError):
        aws.close()
    race = aws.book.get_race(RACE_ID)
    assert race is not None
    assert race.state != "closed"
    assert aws.announcements() == []
    assert aws.close() == CLOSED
    assert_closed_cleanly(aws, before)


def test_a_close_whose_closing_write_is_lost_after_it_took_effect_is_retried_cleanly(
    aws: Aws,
) -> None:
    aws.add_race()
    aws.faults.lose_response("UpdateItem", "closedAt", times=4)  # botocore's 4 attempts
    before = now_ms()
    with pytest.raises(TransientError):
        aws.close()
    # The race is closed (the write took effect), nobody announced: the retry announces.
    assert aws.announcements() == []
    assert aws.close() == CLOSED_BEFORE
    assert_closed_cleanly(aws, before)


def test_a_close_failing_during_announcements_announces_each_rider_once_on_retry(
    aws: Aws,
) -> None:
    aws.add_race()
    before = now_ms()
    aws.faults.fail("Publish", "bob", code="InternalFailureException")
    aws.faults.fail("PutItem", "race-closer-announce", code="ThrottlingException")
    with pytest.raises(CloseIncompleteError, match="race-1: 2 announcements failed"):
        aws.close()
    assert len(aws.announcements()) == 6
    assert "bob" not in announcements_by_rider(aws)
    assert aws.close() == CLOSED_BEFORE
    assert announcements_by_rider(aws) == dict.fromkeys((e.rider_id for e in ENTRIES), 1)
    assert_closed_cleanly(aws, before)


def test_an_invocation_more_than_a_minute_early_changes_nothing(aws: Aws) -> None:
    aws.add_race(due_in_ms=61_000)
    race = aws.book.get_race(RACE_ID)
    assert aws.close() == {**CLOSED, "status": "not due", "placed": 0, "announced": 0}
    assert aws.book.get_race(RACE_ID) == race
    assert aws.placings_items() == []
    assert aws.announcements() == []


def test_an_unknown_race_is_logged_and_left(aws: Aws) -> None:
    assert aws.close("race-404") == {
        "raceId": "race-404",
        "status": "unknown race",
        "placed": 0,
        "announced": 0,
        "announcementsFailed": 0,
    }
    assert aws.announcements() == []


@pytest.mark.parametrize(
    "event",
    [{"v": 2, "raceId": RACE_ID}, {"v": 1}, {"v": 1, "raceId": "race/1"}],
)
def test_an_input_that_is_not_a_close_fails_the_invocation(aws: Aws, event: dict[str, Any]) -> None:
    aws.add_race()
    with pytest.raises(ValidationError):
        handler.handler(event, LambdaContext(function_name="closer", region="us-east-1"))
    assert aws.placings_items() == []


def test_a_300_rider_race_closes_exactly(aws: Aws) -> None:
    """Three BatchGetItem chunks of standings and three pages of overall placings: every rider
    read, placed and announced, ranks as a hand-written competition ranking gives them."""
    rng = random.Random(15)
    entries = [Entry(rider_id=f"r{i:03d}", name=f"R {i}", class_id=1 + i % 6) for i in range(300)]
    tallies = {
        e.rider_id: Tally(points=rng.randrange(0, 40) * 100, seconds=rng.randrange(1, 300))
        for e in entries
        if rng.random() > 0.1
    }
    aws.add_race("big", entries, tallies)
    reads = aws.faults.calls["BatchGetItem"]
    assert aws.close("big") == {
        "raceId": "big", "status": "closed", "placed": 300, "announced": 300,
        "announcementsFailed": 0,
    }  # fmt: skip
    assert aws.faults.calls["BatchGetItem"] - reads == 3  # the standings, 100 a request
    ranked = sorted(tallies.items(), key=lambda rt: (-rt[1].points, rt[0]))
    expected_rank, rank = {}, 0
    for i, (rider, tally) in enumerate(ranked):
        if i == 0 or tally.points != ranked[i - 1][1].points:
            rank = i + 1
        expected_rank[rider] = rank
    overall = aws.placings("big")[OVERALL]
    assert [(p.rider_id, p.rank, p.outcome) for p in overall] == [
        (rider, expected_rank[rider], "ranked") for rider, _ in ranked
    ] + [(e.rider_id, None, "DNS") for e in entries if e.rider_id not in tallies]
    assert {p.rider_id: (p.points, p.seconds) for p in overall if p.outcome == "ranked"} == {
        r: (t.points, t.seconds) for r, t in tallies.items()
    }
    assert announcements_by_rider(aws) == dict.fromkeys((e.rider_id for e in entries), 1)


def test_a_close_sends_the_requests_the_capacity_model_counts(aws: Aws) -> None:
    """infra/capacity's count of a close's requests, against the requests really sent."""
    from infra.capacity.model import close_requests

    entries = [Entry(rider_id=f"r{i:03d}", name=f"R {i}", class_id=1 + i % 6) for i in range(300)]
    aws.add_race(
        "big", entries, {e.rider_id: Tally(100 * (i % 7), 10) for i, e in enumerate(entries)}
    )
    before = dict(aws.faults.calls)
    aws.close("big")
    sent = {op: n - before.get(op, 0) for op, n in aws.faults.calls.items()}
    assert {op: n for op, n in sent.items() if n} == close_requests((50,) * 6)


def test_the_closer_cold_starts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    handler.install(None)
    try:
        with mock_aws():
            import boto3

            create_tables(boto3.client("dynamodb"), "standings", "idempotency")
            monkeypatch.setenv(names.ENV_STANDINGS_TABLE, "standings")
            monkeypatch.setenv(names.ENV_IDEMPOTENCY_TABLE, "idempotency")
            monkeypatch.setenv(names.ENV_NOTIFY_TARGET, "none")
            response = handler.handler(
                fixture("schedule_close_event.json"), LambdaContext("closer", "us-east-1")
            )
        assert response["status"] == "unknown race"
    finally:
        handler.install(None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "STANDINGS_TABLE: Field required; IDEMPOTENCY_TABLE: Field required"),
        (
            {"STANDINGS_TABLE": "s", "IDEMPOTENCY_TABLE": "idempotency"},
            "STANDINGS_TABLE: String should have at least 3 characters",
        ),
        (
            {"STANDINGS_TABLE": "standings", "IDEMPOTENCY_TABLE": "idem", "NOTIFY_TARGET": "sns"},
            "NOTIFY_TARGET: Input should be 'iot', 'log' or 'none'",
        ),
        (
            {"STANDINGS_TABLE": "standings", "IDEMPOTENCY_TABLE": "idem",
             "IDEMPOTENCY_TTL_SECONDS": "59"},
            "IDEMPOTENCY_TTL_SECONDS: Input should be greater than or equal to 60",
        ),
    ],
)  # fmt: skip
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CloserSettings.from_env(env)
    assert str(caught.value).startswith(f"race closer configuration: {message}")
