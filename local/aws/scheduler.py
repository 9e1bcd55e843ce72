"""EventBridge Scheduler, locally: run a schedule group's one-time schedules when they are due.

The schedules themselves live in the emulator (moto serves the ``scheduler`` API): the API
creates a race's schedule there with boto3, exactly as in AWS. This poller plays the service's
part that moto does not: it lists the group's schedules, and at each one's time invokes its
target with its ``Input``. What AWS documents for a one-time schedule, and what this does:

- the expression is ``at(yyyy-mm-ddThh:mm:ss)`` in ``ScheduleExpressionTimezone`` (UTC when
  unset); a schedule that is ``DISABLED`` does not run; a schedule whose time has passed when
  it is created or enabled runs at once;
- the target's ``Input`` is the event, parsed from JSON (a Lambda target receives the JSON
  document itself);
- a failed invocation is retried with exponential backoff until ``RetryPolicy``'s
  ``MaximumRetryAttempts`` retries are spent or ``MaximumEventAgeInSeconds`` has passed since
  the schedule's time; then, if the target names a ``DeadLetterConfig``, the event goes to
  that SQS queue, its body the ``Input`` and its message attributes the dead-letter event's
  (``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``, ``RETRY_ATTEMPTS``,
  ``SCHEDULE_ARN``, ``TARGET_ARN``);
- once it has run (invoked, or dead-lettered), a schedule with ``ActionAfterCompletion``
  ``DELETE`` is deleted; any other is left and not run again unless it is updated.

Unlike EventBridge Scheduler: only one-time (``at``) schedules (rate and cron are logged and
left), no flexible time window, and a Lambda target is invoked synchronously, in this process,
so that a failed function is retried by the schedule's retry policy (in AWS the function is
invoked asynchronously and Lambda's own retries and on-failure destination take over).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from local.aws.lambda_runtime import Handler, LambdaContext

log = logging.getLogger(__name__)

AT_EXPRESSION: Final = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
DEFAULT_RETRY: Final = {"MaximumEventAgeInSeconds": 86_400, "MaximumRetryAttempts": 185}
"""EventBridge Scheduler's retry policy when a schedule names none."""
RETRIES_EXHAUSTED: Final = "MaximumRetryAttemptsExhausted"
EVENT_AGE_EXHAUSTED: Final = "MaximumEventAgeExhausted"


class ScheduleExpressionError(ValueError):
    """Not a one-time schedule expression this emulator runs."""


def at_time(expression: str, timezone: str | None = None) -> float:
    """The epoch seconds of ``at(yyyy-mm-ddThh:mm:ss)`` in ``timezone`` (an IANA name; UTC when
    None or empty)."""
    match = AT_EXPRESSION.fullmatch(expression.strip())
    if match is None:
        raise ScheduleExpressionError(f"not a one-time schedule expression: {expression!r}")
    try:
        local = datetime.fromisoformat(match.group(1))
    except ValueError as exc:
        raise ScheduleExpressionError(f"{expression!r}: {exc}") from exc
    return local.replace(tzinfo=ZoneInfo(timezone or "UTC")).timestamp()


@dataclass(frozen=True)
class SchedulerConfig:
    group_name: str
    region: str
    poll_interval_s: float = 0.25
    retry_base_s: float = 1.0
    """The first retry waits this long, each next one twice as long (to ``retry_cap_s``)."""
    retry_cap_s: float = 30.0


@dataclass
class _Run:
    """A due schedule being run: its time, its attempts so far, when to try next."""

    due: float
    attempts: int = 0
    next_at: float = 0.0
    last_error: tuple[str, str] = ("", "")


@dataclass
class SchedulerStats:
    invocations: int = 0
    failures: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    completed: list[str] = field(default_factory=list)
    """Names of the schedules that ran, in order."""


def _exhausted(schedule: dict[str, Any], run: _Run, now: float) -> str | None:
    """Why the schedule's retry policy allows no further attempt, or None if it does."""
    policy = {**DEFAULT_RETRY, **schedule["Target"].get("RetryPolicy", {})}
    if run.attempts - 1 >= policy["MaximumRetryAttempts"]:
        return RETRIES_EXHAUSTED
    if now - run.due >= policy["MaximumEventAgeInSeconds"]:
        return EVENT_AGE_EXHAUSTED
    return None


class EmulatedScheduler:
    """Polls one schedule group and runs its due schedules (:meth:`poll_once`), in a thread of
    its own between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        targets: Mapping[str, Handler],
        config: SchedulerConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._scheduler = scheduler
        self._sqs = sqs
        self._targets = dict(targets)
        """Target ARN -> the handler it invokes (each in its own execution environment)."""
        self.config = config
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        self._done: set[tuple[str, str]] = set()
        """(schedule ARN, last modification) of schedules that ran and were left in place."""
        self._details: dict[str, tuple[str, dict[str, Any]]] = {}
        self.stats = SchedulerStats()
        self._busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("scheduler poll failed")
            self._stop.wait(self.config.poll_interval_s)

    @property
    def idle(self) -> bool:
        """Nothing running, and nothing due or waiting for a retry at the last poll (a schedule
        whose time has not come is no work yet)."""
        return not self._busy and not self._runs

    # --- one poll -------------------------------------------------------------------------
    def poll_once(self) -> None:
        """Run every schedule of the group that is due now (and every retry that is)."""
        self._busy = True
        try:
            now = self._clock()
            for schedule in self._schedules():
                self._consider(schedule, now)
        finally:
            self._busy = False

    def _schedules(self) -> list[dict[str, Any]]:
        """Every schedule of the group, in full (GetSchedule only for new or changed ones:
        ListSchedules gives a summary)."""
        found: list[dict[str, Any]] = []
        pages = self._scheduler.get_paginator("list_schedules").paginate(
            GroupName=self.config.group_name
        )
        live: set[str] = set()
        for page in pages:
            for summary in page.get("Schedules", []):
                name = summary["Name"]
                live.add(name)
                stamp = str(summary.get("LastModificationDate"))
                cached = self._details.get(name)
                if cached is None or cached[0] != stamp:
                    details = self._scheduler.get_schedule(
                        Name=name, GroupName=self.config.group_name
                    )
                    cached = (stamp, details)
                    self._details[name] = cached
                found.append(cached[1])
        for gone in set(self._details) - live:
            self._details.pop(gone, None)
            self._runs.pop(gone, None)
        return found

    def _consider(self, schedule: dict[str, Any], now: float) -> None:
        name = schedule["Name"]
        done_key = (schedule["Arn"], str(schedule.get("LastModificationDate")))
        if schedule.get("State", "ENABLED") != "ENABLED" or done_key in self._done:
            self._runs.pop(name, None)
            return
        try:
            due = at_time(
                schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone")
            )
        except ScheduleExpressionError:
            log.warning("schedule %s: %s is not run locally", name, schedule["ScheduleExpression"])
            self._done.add(done_key)
            return
        run = self._runs.get(name)
        if run is None or run.due != due:
            self._runs.pop(name, None)
            if now < due:
                return  # not due: nothing to do yet (and the scheduler stays idle)
            run = self._runs[name] = _Run(due=due, next_at=due)
        if now < run.next_at:
            return
        if self._attempt(schedule, run):
            self._complete(schedule, done_key)
            return
        exhausted = _exhausted(schedule, run, now)
        if exhausted is None:
            delay = min(self.config.retry_cap_s, self.config.retry_base_s * 2 ** (run.attempts - 1))
            run.next_at = now + delay
            return
        self._dead_letter(schedule, run, exhausted)
        self._complete(schedule, done_key)

    def _attempt(self, schedule: dict[str, Any], run: _Run) -> bool:
        """Invoke the target once; True if it succeeded."""
        target = schedule["Target"]
        run.attempts += 1
        self.stats.invocations += 1
        handler = self._targets.get(target["Arn"])
        try:
            if handler is None:
                raise LookupError(f"Function not found: {target['Arn']}")
            event = json.loads(target.get("Input") or "{}")
            function_name = target["Arn"].rsplit(":", 1)[-1]
            handler(event, LambdaContext(function_name=function_name, region=self.config.region))
        except Exception as exc:
            self.stats.failures += 1
            code = "ResourceNotFoundException" if handler is None else type(exc).__name__
            run.last_error = (code, str(exc) or traceback.format_exc(limit=1))
            log.warning("schedule %s: attempt %d failed: %s", schedule["Name"], run.attempts, exc)
            return False
        return True

    def _dead_letter(self, schedule: dict[str, Any], run: _Run, exhausted: str) -> None:
        target = schedule["Target"]
        queue_arn = target.get("DeadLetterConfig", {}).get("Arn")
        if not queue_arn:
            log.error(
                "schedule %s failed and names no dead-letter queue: dropped", schedule["Name"]
            )
            return
        _, _, _, _, account, queue = queue_arn.split(":", 5)
        url = self._sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
        code, message = run.last_error
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message[:1000],
            "EXHAUSTED_RETRY_CONDITION": exhausted,
            "RETRY_ATTEMPTS": str(run.attempts - 1),
            "SCHEDULE_ARN": schedule["Arn"],
            "TARGET_ARN": target["Arn"],
        }
        self._sqs.send_message(
            QueueUrl=url,
            MessageBody=target.get("Input") or "{}",
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        )
        self.stats.dead_lettered += 1

    def _complete(self, schedule: dict[str, Any], done_key: tuple[str, str]) -> None:
        name = schedule["Name"]
        self._runs.pop(name, None)
        self.stats.completed.append(name)
        if schedule.get("ActionAfterCompletion") == "DELETE":
            self._scheduler.delete_schedule(Name=name, GroupName=self.config.group_name)
            self._details.pop(name, None)
            self.stats.deleted += 1
        else:
            self._done.add(done_key)
