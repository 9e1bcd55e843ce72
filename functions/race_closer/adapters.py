"""Adapters of the closer's ports: the standings and stored placings it reads (DynamoDB), and
how a rider's placing is announced (IoT Core, a log line, or nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import items, keys, names
from shared.dynamodb import is_transient
from shared.placings import OVERALL, Placing, Tally
from shared.ports import TransientError
from shared.retry import Backoff, resend

BATCH_GET_LIMIT: Final = 100
BACKOFF: Final = Backoff(attempts=5, base_s=0.05)
"""Unprocessed keys of a BatchGetItem are asked for again this way (shared/retry.py)."""
TALLY_ATTRIBUTES: Final = ("riderId", "points", "seconds")
"""All the closer reads of a standing (never the bitmap of counted seconds)."""

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


def announcement(race_id: str, placing: Placing) -> dict[str, Any]:
    """A rider's final placing as announced on the result topic (and remembered by the
    idempotency record): ``rank`` is overall, ``classRank`` within the rider's class."""
    return {
        "raceId": race_id,
        "riderId": placing.rider_id,
        "name": placing.name,
        "classId": placing.class_id,
        "outcome": placing.outcome,
        "rank": placing.rank_overall,
        "classRank": placing.rank_class,
        "points": placing.points,
        "seconds": placing.seconds,
    }


def _chunks(seq: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class DynamoTallyReader:
    """:class:`functions.race_closer.logic.TallyReader` on the standings table: each rider's
    standing by its key (BatchGetItem of 100, strongly consistent, only points and seconds),
    and the stored overall placings (a Query of the ``PLACINGS#ALL#`` pages, strongly
    consistent: they may have been stored a moment ago by the invocation that failed)."""

    def __init__(self, client: Any, table_name: str, *, chunk_map: Mapper = map) -> None:
        self._db: Any = client
        self._table = table_name
        self._map = chunk_map
        """How the BatchGetItem requests are sent: one after another, or at once."""

    def _call(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._db, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise TransientError(f"{what}: {exc}") from exc
            raise
        return response

    def _get_chunk(self, race_id: str, rider_ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            self._table: {
                "Keys": [
                    {k: {"S": v} for k, v in keys.standing_key(race_id, r).items()}
                    for r in rider_ids
                ],
                "ConsistentRead": True,
                "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(TALLY_ATTRIBUTES))),
                "ExpressionAttributeNames": {f"#a{i}": a for i, a in enumerate(TALLY_ATTRIBUTES)},
            }
        }

        def send(request: dict[str, Any]) -> dict[str, Any]:
            response = self._call("standings", "batch_get_item", RequestItems=request)
            found.extend(response.get("Responses", {}).get(self._table, []))
            return dict(response.get("UnprocessedKeys") or {})

        resend(send, request, BACKOFF, what="standings: unprocessed keys")
        return found

    def tallies(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, Tally]:
        chunks = list(_chunks(rider_ids, BATCH_GET_LIMIT))
        tallies: dict[str, Tally] = {}
        for found in self._map(lambda chunk: self._get_chunk(race_id, chunk), chunks):
            for item in found:
                tallies[item["riderId"]["S"]] = Tally(
                    points=int(item["points"]["N"]), seconds=int(item["seconds"]["N"])
                )
        return tallies

    def stored_placings(self, race_id: str) -> list[Placing]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.race_pk(race_id)},
                ":prefix": {"S": f"{keys.SK_PLACINGS_PREFIX}{OVERALL}#"},
            },
            "ConsistentRead": True,
        }
        rows: list[Placing] = []
        total = 0
        while True:
            response = self._call("stored placings", "query", **kwargs)
            for item in response.get("Items", []):
                page, total = items.placings_from_item(item)
                rows.extend(page)
            if not response.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if len(rows) != total:
            raise TransientError(f"stored placings of {race_id}: {len(rows)} of {total} read")
        return rows


class IotNotifier:
    """Publishes on ``breakaway/races/{raceId}/riders/{riderId}/result`` (QoS 1)."""

    def __init__(self, client: Any) -> None:
        self._iot = client

    def publish(self, race_id: str, placing: Placing) -> None:
        payload = json.dumps(announcement(race_id, placing), separators=(",", ":")).encode()
        try:
            self._iot.publish(
                topic=names.result_topic(race_id, placing.rider_id), qos=1, payload=payload
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"IoT publish: {exc}") from exc


class LogNotifier:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def publish(self, race_id: str, placing: Placing) -> None:
        self._logger.info("rider placed", extra={"placing": announcement(race_id, placing)})


class NoNotifier:
    def publish(self, race_id: str, placing: Placing) -> None:
        return None
