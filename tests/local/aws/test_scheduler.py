"""The emulated EventBridge Scheduler against the local moto server: ``at(...)`` parsed as AWS
reads it, a due schedule invoking its target with its Input, deleted after completion, retries
per its retry policy, and the dead-letter queue when they run out."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from local.aws.lambda_runtime import function_arn
from local.aws.scheduler import (
    EVENT_AGE_EXHAUSTED,
    RETRIES_EXHAUSTED,
    EmulatedScheduler,
    ScheduleExpressionError,
    SchedulerConfig,
    at_time,
)
from shared.names import LOCAL_REGION
from tests.local.conftest import client

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/breakaway-local-scheduler"
CLOSER = function_arn("closer", LOCAL_REGION)
T0 = datetime(2026, 11, 22, 19, 0, 5, tzinfo=UTC).timestamp()
"""The schedules' time: ``at(2026-11-22T19:00:05)`` in UTC."""


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("at(2026-11-22T19:00:05)", None, T0),
        ("at(2026-11-22T19:00:05)", "UTC", T0),
        ("at(2026-11-22T20:00:05)", "Europe/Paris", T0),  # UTC+1 in November
        ("at(2026-11-22T14:00:05)", "America/New_York", T0),  # UTC-5
        ("at(1970-01-01T00:00:00)", "", 0.0),
    ],
)
def test_at_expressions_are_read_in_their_timezone(
    expression: str, timezone: str | None, expected: float
) -> None:
    assert at_time(expression, timezone) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(5 minutes)",
        "cron(0 19 * * ? *)",
        "at(2026-11-22 19:00:05)",
        "at(2026-11-22T19:00)",
        "at(2026-13-22T19:00:05)",
        "at(2026-11-22T19:00:05Z)",
    ],
)
def test_other_expressions_are_not_run(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        at_time(expression)


class Target:
    """A handler recording its events; fails the first ``failures`` invocations."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.events: list[dict[str, Any]] = []
        self.functions: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.functions.append(context.function_name)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("injected failure")
        return {"status": "closed"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self, url: str) -> None:
        self.scheduler = client("scheduler", url)
        self.sqs = client("sqs", url)
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        self.scheduler.create_schedule_group(Name=self.group)
        self.queue = self.sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.clock = Clock(T0 - 10)

    def runner(self, target: Target, **config: Any) -> EmulatedScheduler:
        return EmulatedScheduler(
            self.scheduler,
            self.sqs,
            {CLOSER: target},
            SchedulerConfig(group_name=self.group, region=LOCAL_REGION, **config),
            clock=self.clock,
        )

    def create(
        self,
        name: str,
        *,
        at: str = "2026-11-22T19:00:05",
        retry: dict[str, int] | None = None,
        **extra: Any,
    ) -> None:
        target: dict[str, Any] = {
            "Arn": CLOSER,
            "RoleArn": ROLE,
            "Input": json.dumps({"v": 1, "raceId": name}),
            "DeadLetterConfig": {"Arn": self.queue_arn},
        }
        if retry is not None:
            target["RetryPolicy"] = retry
        self.scheduler.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=f"at({at})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
            **{"ActionAfterCompletion": "DELETE", **extra},
        )

    def names(self) -> list[str]:
        listed = self.scheduler.list_schedules(GroupName=self.group)["Schedules"]
        return sorted(s["Name"] for s in listed)

    def dead_letters(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return list(got.get("Messages", []))


@pytest.fixture
def aws(emulator_url: str) -> Setup:
    return Setup(emulator_url)


def test_a_schedule_runs_at_its_time_with_its_input_and_is_deleted(aws: Setup) -> None:
    target = Target()
    runner = aws.runner(target)
    aws.create("race-1")
    runner.poll_once()
    assert (target.events, aws.names(), runner.idle) == ([], ["race-1"], True)
    aws.clock.now = T0
    runner.poll_once()
    assert target.events == [{"v": 1, "raceId": "race-1"}]
    assert target.functions == ["closer"]
    assert aws.names() == []
    assert (runner.stats.completed, runner.stats.deleted, runner.idle) == (["race-1"], 1, True)
    runner.poll_once()
    assert len(target.events) == 1


def test_a_schedule_moved_earlier_runs_at_its_new_time(aws: Setup) -> None:
    target = Target()
    runner = aws.runner(target)
    aws.create("race-1")
    runner.poll_once()
    schedule = aws.scheduler.get_schedule(Name="race-1", GroupName=aws.group)
    aws.scheduler.update_schedule(
        Name="race-1",
        GroupName=aws.group,
        ScheduleExpression="at(2026-11-22T18:59:56)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
    )
    aws.clock.now = T0 - 9
    runner.poll_once()
    assert target.events == [{"v": 1, "raceId": "race-1"}]


def test_a_schedule_left_after_completion_does_not_run_again(aws: Setup) -> None:
    target = Target()
    runner = aws.runner(target)
    aws.create("race-1", ActionAfterCompletion="NONE")
    aws.clock.now = T0 + 3600  # long past: it runs at once
    runner.poll_once()
    runner.poll_once()
    assert len(target.events) == 1
    assert aws.names() == ["race-1"]


def test_a_disabled_schedule_does_not_run(aws: Setup) -> None:
    target = Target()
    runner = aws.runner(target)
    aws.create("race-1", State="DISABLED")
    aws.clock.now = T0
    runner.poll_once()
    assert target.events == []


def test_a_failed_invocation_is_retried_with_backoff_and_then_succeeds(aws: Setup) -> None:
    target = Target(failures=2)
    runner = aws.runner(target, retry_base_s=1.0)
    aws.create("race-1", retry={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600})
    aws.clock.now = T0
    runner.poll_once()  # attempt 1 fails: the next in 1 s
    aws.clock.now = T0 + 0.9
    runner.poll_once()
    assert (len(target.events), runner.idle) == (1, False)  # a retry is pending
    aws.clock.now = T0 + 1
    runner.poll_once()  # attempt 2 fails: the next in 2 s
    aws.clock.now = T0 + 3
    runner.poll_once()  # attempt 3 succeeds
    assert len(target.events) == 3
    assert aws.names() == []
    assert aws.dead_letters() == []
    assert (runner.stats.invocations, runner.stats.failures) == (3, 2)


def test_a_schedule_out_of_retries_goes_to_its_dead_letter_queue(aws: Setup) -> None:
    target = Target(failures=10)
    runner = aws.runner(target, retry_base_s=0.0)
    aws.create("race-1", retry={"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600})
    aws.clock.now = T0
    for _ in range(5):
        runner.poll_once()
    assert len(target.events) == 3  # the attempt and two retries
    (letter,) = aws.dead_letters()
    assert json.loads(letter["Body"]) == {"v": 1, "raceId": "race-1"}
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes == {
        "ERROR_CODE": "RuntimeError",
        "ERROR_MESSAGE": "injected failure",
        "EXHAUSTED_RETRY_CONDITION": RETRIES_EXHAUSTED,
        "RETRY_ATTEMPTS": "2",
        "SCHEDULE_ARN": f"arn:aws:scheduler:{LOCAL_REGION}:{ACCOUNT}:schedule/{aws.group}/race-1",
        "TARGET_ARN": CLOSER,
    }
    assert aws.names() == []  # completed (dead-lettered): deleted
    assert runner.stats.dead_lettered == 1


def test_a_schedule_past_its_event_age_goes_to_its_dead_letter_queue(aws: Setup) -> None:
    target = Target(failures=10)
    runner = aws.runner(target)
    aws.create("race-1", retry={"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60})
    aws.clock.now = T0
    runner.poll_once()
    aws.clock.now = T0 + 60
    runner.poll_once()
    (letter,) = aws.dead_letters()
    assert letter["MessageAttributes"]["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == (
        EVENT_AGE_EXHAUSTED
    )
    assert letter["MessageAttributes"]["RETRY_ATTEMPTS"]["StringValue"] == "1"


def test_an_unknown_target_fails_like_a_missing_function(aws: Setup) -> None:
    runner = EmulatedScheduler(
        aws.scheduler,
        aws.sqs,
        {},
        SchedulerConfig(group_name=aws.group, region=LOCAL_REGION),
        clock=aws.clock,
    )
    aws.create("race-1", retry={"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60})
    aws.clock.now = T0
    runner.poll_once()
    (letter,) = aws.dead_letters()
    assert letter["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"


def test_the_thread_runs_a_schedule_due_now(aws: Setup) -> None:
    target = Target()
    runner = EmulatedScheduler(
        aws.scheduler,
        aws.sqs,
        {CLOSER: target},
        SchedulerConfig(group_name=aws.group, region=LOCAL_REGION, poll_interval_s=0.05),
    )
    aws.create("race-1", at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not target.events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert target.events == [{"v": 1, "raceId": "race-1"}]
