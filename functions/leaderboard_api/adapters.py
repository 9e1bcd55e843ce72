"""The API's adapters: the read port on DynamoDB (:class:`DynamoLeaderboardReader`) and the close
schedules on EventBridge Scheduler (:class:`EventBridgeCloseScheduler`).

Every read is bounded by what the request needs: a ``GetItem`` for a race, ``Query`` on
``RecentRaces`` (a ``startsAt`` range) then ``BatchGetItem`` for the races listing. Never a
scan. The live board and the rider lookup read the live ranking
(:class:`shared.live_store.DynamoLiveStore`). Transient failures raise
:class:`shared.ports.TransientError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.leaderboard_api.logic import RacePosition, RacesIndexPage, StartWindow
from shared import items, keys, names
from shared.dynamodb import error_code, is_transient
from shared.items import wire_key
from shared.ports import TransientError
from shared.races import CloseRace, Race
from shared.retry import Backoff, resend

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_RETRY: Final = Backoff(attempts=5, base_s=0.02)
"""Unprocessed keys are asked for again this often before the request answers 503."""


def _start_condition(window: StartWindow) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The races index's key condition for a ``startsAt`` window, its names and values."""
    names_ = {"#pk": keys.INDEX_RECENT_PK}
    values: dict[str, Any] = {":pk": {"S": keys.RECENT_RACES_PARTITION}}
    condition = "#pk = :pk"
    if window.oldest is not None or window.newest is not None:
        names_["#at"] = keys.INDEX_RECENT_SK
    if window.oldest is not None:
        values[":oldest"] = {"N": str(window.oldest)}
    if window.newest is not None:
        values[":newest"] = {"N": str(window.newest)}
    if window.oldest is not None and window.newest is not None:
        condition += " AND #at BETWEEN :oldest AND :newest"
    elif window.oldest is not None:
        condition += " AND #at >= :oldest"
    elif window.newest is not None:
        condition += " AND #at <= :newest"
    return condition, names_, values


class DynamoLeaderboardReader:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db: Any = client
        self._table = table_name

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise TransientError(f"{what}: {exc}") from exc
            raise

    def _batch_get(self, keys_: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items for up to 100 keys (absent ones left out), unprocessed keys asked again."""
        found: list[dict[str, Any]] = []

        def send(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
            request = {self._table: {"Keys": pending}}
            response = self._call("batch get", self._db.batch_get_item, RequestItems=request)
            found.extend(response.get("Responses", {}).get(self._table, []))
            unprocessed = (response.get("UnprocessedKeys") or {}).get(self._table, {})
            return list(unprocessed.get("Keys", []))

        resend(send, list(keys_), BATCH_GET_RETRY, what="batch get")
        return found

    # -- the port --------------------------------------------------------------------------
    def race(self, race_id: str) -> Race | None:
        response = self._call(
            "get race",
            self._db.get_item,
            TableName=self._table,
            Key=wire_key(keys.race_key(race_id)),
        )
        item = response.get("Item")
        return items.race_from_item(item) if item else None

    def races_by_start(
        self, window: StartWindow, after: RacePosition | None, limit: int
    ) -> RacesIndexPage:
        condition, names_, values = _start_condition(window)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.INDEX_RECENT,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names_,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                **wire_key(keys.race_key(after.race_id)),
                keys.INDEX_RECENT_PK: {"S": keys.RECENT_RACES_PARTITION},
                keys.INDEX_RECENT_SK: {"N": str(after.starts_at)},
            }
        response = self._call("races by start", self._db.query, **kwargs)
        found = tuple(items.race_from_item(i) for i in response.get("Items", []))
        return RacesIndexPage(found, more="LastEvaluatedKey" in response)

    def races(self, race_ids: Sequence[str]) -> dict[str, Race]:
        found = self._batch_get([wire_key(keys.race_key(r)) for r in race_ids])
        return {race.race_id: race for race in map(items.race_from_item, found)}


# --- EventBridge Scheduler -----------------------------------------------------------------------
SCHEDULE_RETRIES: Final = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}
"""Scheduler's most: a close that cannot be delivered (the closer throttled or failing) is tried
again for a day, then goes to the dead-letter queue, where an alarm sees it."""
SCHEDULER_TRANSIENT_CODES: Final = frozenset({"ThrottlingException", "InternalServerException"})
SCHEDULER_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
)


@dataclass(frozen=True, slots=True)
class CloseTarget:
    """Where every race's schedule points: the settings' closer, role and dead-letter queue."""

    group: str
    closer_arn: str
    role_arn: str
    dead_letter_arn: str


def at_expression(epoch_ms: int) -> str:
    """Scheduler's one-time expression, ``at(yyyy-mm-ddThh:mm:ss)`` in UTC: whole seconds, so
    rounded up (a close never runs before it is due)."""
    seconds = -(-epoch_ms // 1000)
    return f"at({datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S})"


def close_schedule(target: CloseTarget, race_id: str, due_at: int) -> dict[str, Any]:
    """The whole ``CreateSchedule``/``UpdateSchedule`` request of a race's close. An update
    replaces every field (unset ones go back to their defaults), so both send all of them."""
    return {
        "Name": names.close_schedule_name(race_id),
        "GroupName": target.group,
        "Description": f"Close race {race_id}",
        "ScheduleExpression": at_expression(due_at),
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": target.closer_arn,
            "RoleArn": target.role_arn,
            "Input": CloseRace(race_id=race_id).model_dump_json(),
            "RetryPolicy": dict(SCHEDULE_RETRIES),
            "DeadLetterConfig": {"Arn": target.dead_letter_arn},
        },
        "ActionAfterCompletion": "DELETE",
    }


class EventBridgeCloseScheduler:
    """:class:`functions.leaderboard_api.organiser.CloseScheduler` on EventBridge Scheduler."""

    def __init__(self, client: Any, target: CloseTarget) -> None:
        self._scheduler: Any = client
        self._target = target

    def _send(self, operation: str, race_id: str, due_at: int, expected: str) -> bool:
        """Send the request: True if done, False if it failed with ``expected`` (the schedule
        exists already, or does not); transient failures raise :class:`TransientError`."""
        try:
            getattr(self._scheduler, operation)(**close_schedule(self._target, race_id, due_at))
        except ClientError as exc:
            code = error_code(exc)
            if code == expected:
                return False
            if code in SCHEDULER_TRANSIENT_CODES:
                raise TransientError(f"close schedule of {race_id}: {exc}") from exc
            raise
        except BotoCoreError as exc:
            raise TransientError(f"close schedule of {race_id}: {exc}") from exc
        return True

    def create(self, race_id: str, due_at: int) -> None:
        if not self._send("create_schedule", race_id, due_at, "ConflictException"):
            self._moved_meanwhile(
                race_id, self._send("update_schedule", race_id, due_at, "ResourceNotFoundException")
            )

    def move(self, race_id: str, due_at: int) -> None:
        if not self._send("update_schedule", race_id, due_at, "ResourceNotFoundException"):
            self._moved_meanwhile(
                race_id, self._send("create_schedule", race_id, due_at, "ConflictException")
            )

    @staticmethod
    def _moved_meanwhile(race_id: str, done: bool) -> None:
        """The schedule appeared or vanished between two requests: another request is at it."""
        if not done:
            raise TransientError(f"close schedule of {race_id}: changed meanwhile, try again")
