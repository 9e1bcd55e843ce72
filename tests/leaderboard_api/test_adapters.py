"""The API's adapters: the DynamoDB reader's BatchGetItem (keys DynamoDB leaves unprocessed are
asked again) and the close schedules on EventBridge Scheduler (the request, on moto, and how
each error is taken)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.leaderboard_api.adapters import (
    BATCH_GET_RETRY,
    DynamoLeaderboardReader,
    EventBridgeCloseScheduler,
    at_expression,
    close_schedule,
)
from shared import items, keys
from shared.ports import TransientError
from shared.races import CloseRace
from tests.leaderboard_api.helpers import (
    CLOSER_ARN,
    EXPIRES,
    SCHEDULE_DLQ_ARN,
    SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN,
    TARGET,
    standing,
)


class BatchGetStub:
    """A client whose BatchGetItem answers one key per call and leaves the rest unprocessed,
    ``stuck`` keys never."""

    def __init__(self, table: str, riders: list[str], stuck: int = 0) -> None:
        self.table = table
        self.stuck = stuck
        self.requests: list[list[dict[str, Any]]] = []
        stored = [items.standing_item(standing(r, 100), EXPIRES) for r in riders]
        self.items = {i[keys.PK]["S"]: i for i in stored}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        wanted = RequestItems[self.table]["Keys"]
        self.requests.append(wanted)
        served = wanted[:1] if len(wanted) > self.stuck else []
        left = wanted[len(served) :]
        found = [self.items[k[keys.PK]["S"]] for k in served]
        unprocessed = {self.table: {"Keys": left}} if left else {}
        return {"Responses": {self.table: found}, "UnprocessedKeys": unprocessed}


def _wanted(*riders: str) -> list[dict[str, Any]]:
    return [{k: {"S": v} for k, v in keys.standing_key("race-1", r).items()} for r in riders]


def test_unprocessed_keys_are_asked_again_until_all_are_read() -> None:
    stub = BatchGetStub("t", ["a", "b", "c"])
    reader = DynamoLeaderboardReader(stub, "t")  # type: ignore[arg-type]

    found = reader._batch_get(_wanted("a", "b", "c"))

    assert [len(r) for r in stub.requests] == [3, 2, 1]
    assert [items.standing_from_item(i).rider_id for i in found] == ["a", "b", "c"]


def test_keys_still_unprocessed_after_the_last_attempt_are_transient() -> None:
    stub = BatchGetStub("t", ["a", "b", "c"], stuck=2)
    reader = DynamoLeaderboardReader(stub, "t")  # type: ignore[arg-type]

    with pytest.raises(TransientError, match=r"^batch get: 2 left unprocessed after 5 attempts$"):
        reader._batch_get(_wanted("a", "b", "c"))

    assert len(stub.requests) == BATCH_GET_RETRY.attempts


# --- EventBridge Scheduler ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("due_at", "expression"),
    [
        (1_795_379_465_000, "at(2026-11-22T20:31:05)"),
        (1_795_379_465_001, "at(2026-11-22T20:31:06)"),
        (1_795_379_464_999, "at(2026-11-22T20:31:05)"),
        (0, "at(1970-01-01T00:00:00)"),
    ],
)
def test_a_close_is_scheduled_at_the_whole_second_it_is_due_or_after(
    due_at: int, expression: str
) -> None:
    assert at_expression(due_at) == expression


def test_the_schedule_request_is_complete_for_create_and_update() -> None:
    assert close_schedule(TARGET, "r-9", 1_795_379_465_000) == {
        "Name": "r-9",
        "GroupName": SCHEDULE_GROUP,
        "Description": "Close race r-9",
        "ScheduleExpression": "at(2026-11-22T20:31:05)",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": CLOSER_ARN,
            "RoleArn": SCHEDULER_ROLE_ARN,
            "Input": '{"v":1,"raceId":"r-9"}',
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            "DeadLetterConfig": {"Arn": SCHEDULE_DLQ_ARN},
        },
        "ActionAfterCompletion": "DELETE",
    }
    assert CloseRace.model_validate_json('{"v":1,"raceId":"r-9"}') == CloseRace(race_id="r-9")


@pytest.fixture
def scheduler() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name=SCHEDULE_GROUP)
        yield client


def _expression(client: Any, race_id: str) -> str:
    found = client.get_schedule(Name=race_id, GroupName=SCHEDULE_GROUP)
    return str(found["ScheduleExpression"])


def test_create_moves_a_schedule_left_by_a_failed_attempt(scheduler: Any) -> None:
    adapter = EventBridgeCloseScheduler(scheduler, TARGET)

    adapter.create("r-1", 1_795_379_465_000)
    adapter.create("r-1", 1_795_379_525_000)

    assert _expression(scheduler, "r-1") == "at(2026-11-22T20:32:05)"


def test_move_creates_a_missing_schedule(scheduler: Any) -> None:
    adapter = EventBridgeCloseScheduler(scheduler, TARGET)

    adapter.move("r-2", 1_795_379_465_000)
    adapter.move("r-2", 1_795_378_265_000)

    assert _expression(scheduler, "r-2") == "at(2026-11-22T20:11:05)"
    found = scheduler.get_schedule(Name="r-2", GroupName=SCHEDULE_GROUP)
    assert (found["Target"]["Arn"], found["Target"]["RoleArn"]) == (CLOSER_ARN, SCHEDULER_ROLE_ARN)
    assert found["Target"]["Input"] == '{"v":1,"raceId":"r-2"}'


class SchedulerStub:
    """A Scheduler client answering each call with the next outcome (None: success)."""

    def __init__(self, *outcomes: str | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str]] = []

    def _answer(self, operation: str, **request: Any) -> dict[str, Any]:
        self.calls.append((operation, request["ScheduleExpression"]))
        code = self.outcomes.pop(0)
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": "stub"}}, operation)
        return {}

    def create_schedule(self, **request: Any) -> dict[str, Any]:
        return self._answer("CreateSchedule", **request)

    def update_schedule(self, **request: Any) -> dict[str, Any]:
        return self._answer("UpdateSchedule", **request)


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServerException"])
def test_a_throttled_scheduler_is_transient(code: str) -> None:
    adapter = EventBridgeCloseScheduler(SchedulerStub(code), TARGET)

    with pytest.raises(TransientError, match=r"^close schedule of r-1: An error occurred"):
        adapter.create("r-1", 1000)


def test_a_schedule_that_vanishes_between_update_and_create_is_transient() -> None:
    stub = SchedulerStub("ConflictException", "ResourceNotFoundException")

    with pytest.raises(
        TransientError, match=r"^close schedule of r-1: changed meanwhile, try again$"
    ):
        EventBridgeCloseScheduler(stub, TARGET).create("r-1", 1000)

    assert [op for op, _ in stub.calls] == ["CreateSchedule", "UpdateSchedule"]


def test_a_missing_schedule_group_is_no_transient_error() -> None:
    """CreateSchedule answers ResourceNotFoundException for a group that does not exist: a
    deployment error (a 500, logged), not a schedule to move."""
    stub = SchedulerStub("ResourceNotFoundException")

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        EventBridgeCloseScheduler(stub, TARGET).create("r-1", 1000)

    assert [op for op, _ in stub.calls] == ["CreateSchedule"]
