"""Adapters of the closer's ports: the standings and stored placings it reads (DynamoDB), and
how a rider's placing is announced (IoT Core, a log line, or nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import items, keys, names
from shared.archive import ArchiveObject
from shared.dynamodb import BATCH_GET_LIMIT, batch_get, chunks
from shared.items import wire_key
from shared.placings import OVERALL, Placing, Tally
from shared.ports import TransientError

"""Unprocessed keys of a BatchGetItem are asked for again this way (shared/retry.py)."""
TALLY_ATTRIBUTES: Final = ("riderId", "points", "seconds")
"""All the closer reads of a standing (never the bitmap of counted seconds)."""

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


def announcement(race_id: str, placing: Placing) -> dict[str, Any]:
    """A rider's final placing as announced on the result topic (and remembered by the
    idempotency record): ``rank`` is overall, ``classRank`` within the rider's class;
    ``personalBest`` and ``record`` say whether the result set the rider's personal best or
    holds the class record (races of this length)."""
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
        "personalBest": placing.personal_best,
        "record": placing.record,
    }


class DynamoTallyReader:
    """:class:`functions.race_closer.logic.TallyReader` on the standings table, strongly
    consistent throughout: each rider's standing by its key (only points and seconds), and the
    stored overall placings page by page (they may have been stored a moment ago, by the
    invocation that failed). BatchGetItem of 100 keys; unprocessed keys asked for again."""

    def __init__(self, client: Any, table_name: str, *, chunk_map: Mapper = map) -> None:
        self._db: Any = client
        self._table = table_name
        self._map = chunk_map
        """How the BatchGetItem requests are sent: one after another, or at once."""

    def _batch_get(
        self, what: str, item_keys: Sequence[dict[str, str]], projection: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The items of these keys that exist, strongly consistent."""
        wanted = [wire_key(key) for key in item_keys]
        return batch_get(self._db, self._table, wanted, what=what, projection=projection)

    def tallies(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, Tally]:
        def chunk_of(chunk: Sequence[str]) -> list[dict[str, Any]]:
            standing_keys = [keys.standing_key(race_id, r) for r in chunk]
            return self._batch_get("standings", standing_keys, TALLY_ATTRIBUTES)

        tallies: dict[str, Tally] = {}
        for found in self._map(chunk_of, list(chunks(rider_ids, BATCH_GET_LIMIT))):
            for item in found:
                tallies[item["riderId"]["S"]] = Tally(
                    points=int(item["points"]["N"]), seconds=int(item["seconds"]["N"])
                )
        return tallies

    def stored_placings(self, race_id: str) -> list[Placing]:
        """The first page says how many there are; the others are read by key."""
        head = self._batch_get("stored placings", [keys.placings_key(race_id, OVERALL, 0)])
        if not head:
            raise TransientError(f"stored placings of {race_id}: none found")
        rows, total = items.placings_from_item(head[0])
        pages = range(1, -(-total // keys.PLACINGS_PER_ITEM))
        wanted = [keys.placings_key(race_id, OVERALL, p) for p in pages]
        found: dict[int, list[Placing]] = {}
        for chunk in chunks(wanted, BATCH_GET_LIMIT):
            for item in self._batch_get("stored placings", chunk):
                found[int(item["page"]["N"])] = items.placings_from_item(item)[0]
        for page in pages:
            rows.extend(found.get(page, []))
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


class S3ArchiveWriter:
    """:class:`shared.archive.ArchiveWriter` on the archive bucket (PutObject only)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, obj: ArchiveObject) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=obj.key, Body=obj.body)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"archive {obj.key}: {exc}") from exc
