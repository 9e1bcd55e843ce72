"""The DynamoDB adapter of riders' history, personal bests and class records (see
:mod:`shared.keys`). The closer writes them when a race closes; the API reads them. Its
in-memory twin is :class:`shared.memory.InMemoryHistoryStore`.

A personal best is one conditional write per rider, so two closes of races the same rider rode
cannot lose each other's best; a class's records are one item replaced on condition of its
version, so concurrent closes in one class merge, never overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared import items, keys
from shared.dynamodb import batch_put, conditional, request
from shared.history import Best, ClassRecords, RiderResult
from shared.items import wire_key


class DynamoHistoryStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db: Any = client
        self._table = table_name

    def _call(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        return request(self._db, what, operation, **kwargs)

    def _conditional_put(self, what: str, item: dict[str, Any], **condition: Any) -> bool:
        return conditional(
            self._db, what, "put_item", TableName=self._table, Item=item, **condition
        )

    # -- the close's writes --------------------------------------------------------------------
    def claim_personal_best(self, best: Best) -> bool:
        return self._conditional_put(
            "personal best",
            items.best_item(best),
            ConditionExpression="attribute_not_exists(#pk) OR #points < :points OR #race = :race",
            ExpressionAttributeNames={"#pk": keys.PK, "#points": "points", "#race": "raceId"},
            ExpressionAttributeValues={
                ":points": {"N": str(best.points)},
                ":race": {"S": best.race.race_id},
            },
        )

    def records(self, class_id: int, duration_s: int, *, consistent: bool = False) -> ClassRecords:
        response = self._call(
            "class records",
            "get_item",
            TableName=self._table,
            Key=wire_key(keys.records_key(class_id, duration_s)),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return items.records_from_item(item) if item else ClassRecords(class_id, duration_s)

    def save_records(self, records: ClassRecords) -> bool:
        if records.version == 1:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": keys.PK},
            }
        else:
            condition = {
                "ConditionExpression": "#ver = :previous",
                "ExpressionAttributeNames": {"#ver": "ver"},
                "ExpressionAttributeValues": {":previous": {"N": str(records.version - 1)}},
            }
        return self._conditional_put("class records", items.records_item(records), **condition)

    def put_results(self, results: Sequence[RiderResult]) -> None:
        batch_put(
            self._db, self._table, [items.result_item(r) for r in results], what="history: write"
        )

    # -- reads ---------------------------------------------------------------------------------
    def rider_results(
        self, rider_id: str, limit: int, after: str | None = None
    ) -> tuple[list[RiderResult], str | None]:
        """One Query of the rider's partition, newest first, reading ``limit`` + 1 items (the
        one more says whether there is a next page): the cost of a page is its size, however
        many races the rider has."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.history_pk(rider_id)},
                ":prefix": {"S": keys.SK_RESULT_PREFIX},
            },
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = wire_key(
                {keys.PK: keys.history_pk(rider_id), keys.SK: after}
            )
        found = self._call("history", "query", **kwargs).get("Items", [])
        page = [items.result_from_item(i) for i in found[:limit]]
        more = len(found) > limit
        return page, (found[limit - 1][keys.SK]["S"] if more else None)
