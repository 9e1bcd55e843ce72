"""The DynamoDB adapter of the API's read port (:class:`~.logic.LeaderboardReader`).

Every read is bounded by what the request needs: a ``GetItem`` for a race, one
``BatchGetItem`` for a rider's race, standing and result, ``Query`` with ``Limit`` on the
ranking-index shards for a leaderboard page, ``Query`` on ``RecentRaces`` then
``BatchGetItem`` for the races listing. Never a scan. Ranks reuse
:meth:`shared.dynamodb.DynamoStandingsStore.rank` (a COUNT query per shard over the entries
ranked above). Transient failures raise :class:`shared.ports.TransientError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from functions.leaderboard_api.logic import RacesPage, RiderRecords, ShardPage, ShardRequest
from shared import items, keys
from shared.dynamodb import DynamoStandingsStore, is_transient
from shared.ports import TransientError
from shared.retry import Backoff, resend
from shared.standings import RaceRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
R = TypeVar("R")
BATCH_GET_RETRY: Final = Backoff(attempts=5, base_s=0.02)
"""Unprocessed keys are asked for again this often before the request answers 503."""
INDEX_ATTRIBUTES = (keys.INDEX_RANK_SK, *keys.RANK_INDEX_PROJECTION)


def _key(raw: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in raw.items()}


class DynamoLeaderboardReader:
    def __init__(self, client: DynamoDBClient, table_name: str, *, workers: int = 10) -> None:
        self._db: Any = client
        self._table = table_name
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._ranks = DynamoStandingsStore(client, table_name, 0, workers=workers)

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise TransientError(f"{what}: {exc}") from exc
            raise

    def _map(self, fn: Callable[[T], R], args: Sequence[T]) -> list[R]:
        if len(args) <= 1 or self._workers <= 1:
            return [fn(a) for a in args]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="ddb-read")
        return list(self._pool.map(fn, args))

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
    def race(self, race_id: str) -> RaceRecord | None:
        response = self._call(
            "get race",
            self._db.get_item,
            TableName=self._table,
            Key=_key(keys.race_key(race_id)),
        )
        item = response.get("Item")
        return items.race_from_item(item) if item else None

    def recent_races(self, limit: int, after: RaceRecord | None) -> RacesPage:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.INDEX_RECENT,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.INDEX_RECENT_PK},
            "ExpressionAttributeValues": {":pk": {"S": keys.RECENT_RACES_PARTITION}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                **_key(keys.race_key(after.race_id)),
                keys.INDEX_RECENT_PK: {"S": keys.RECENT_RACES_PARTITION},
                keys.INDEX_RECENT_SK: {"N": str(after.started_at)},
            }
        response = self._call("recent races", self._db.query, **kwargs)
        found = response.get("Items", [])
        wanted = [{keys.PK: i[keys.PK], keys.SK: i[keys.SK]} for i in found[:limit]]
        by_pk = {i[keys.PK]["S"]: i for i in self._batch_get(wanted)} if wanted else {}
        races = tuple(
            items.race_from_item(by_pk[k[keys.PK]["S"]]) for k in wanted if k[keys.PK]["S"] in by_pk
        )
        return RacesPage(races, more=len(found) > limit)

    def rider(self, race_id: str, rider_id: str) -> RiderRecords:
        wanted = [
            _key(keys.race_key(race_id)),
            _key(keys.standing_key(race_id, rider_id)),
            _key(keys.result_key(race_id, rider_id)),
        ]
        by_sk = {i[keys.SK]["S"]: i for i in self._batch_get(wanted)}
        race_item = by_sk.get(keys.SK_RACE)
        standing = by_sk.get(keys.SK_STANDING)
        result = by_sk.get(keys.SK_RESULT)
        return RiderRecords(
            race=items.race_from_item(race_item) if race_item else None,
            standing=items.standing_from_item(standing) if standing else None,
            result=items.result_from_item(result) if result else None,
        )

    def shard_pages(
        self, race_id: str, class_id: int | None, requests: Sequence[ShardRequest]
    ) -> list[ShardPage]:
        if class_id is None:
            index, pk_name = keys.INDEX_OVERALL, keys.INDEX_OVERALL_PK
        else:
            index, pk_name = keys.INDEX_CLASS, keys.INDEX_CLASS_PK

        def page(request: ShardRequest) -> ShardPage:
            pk = (
                keys.overall_rank_pk(race_id, request.shard)
                if class_id is None
                else keys.class_rank_pk(race_id, class_id, request.shard)
            )
            names = {f"#a{i}": a for i, a in enumerate(INDEX_ATTRIBUTES)}
            names["#pk"] = pk_name
            values: dict[str, Any] = {":pk": {"S": pk}}
            condition = "#pk = :pk"
            if request.after is not None:
                condition += " AND #a0 > :after"
                values[":after"] = {"S": request.after}
            response = self._call(
                "leaderboard query",
                self._db.query,
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression=condition,
                ProjectionExpression=", ".join(n for n in names if n != "#pk"),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=True,
                Limit=request.limit,
            )
            rows = tuple(items.standing_from_item(i) for i in response.get("Items", []))
            return ShardPage(rows, more="LastEvaluatedKey" in response)

        return self._map(page, list(requests))

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        try:
            return self._ranks.rank(race_id, class_id, points)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise TransientError(f"rank: {exc}") from exc
            raise
