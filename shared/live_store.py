"""The live ranking's builds on DynamoDB (:mod:`shared.ranking`): the race's head, its build
lease, a build's chunks and rider index, and the standings a build is made of.

* The head and the race record share the race's partition (``LIVE`` sorts just before
  ``RACE``): :meth:`DynamoLiveStore.race_and_head` reads both with one eventually consistent
  Query, half a read unit when they fit in 4 KB together.
* A build's chunks and index pages are read strongly consistent: a head names a build only once
  its items are written, and an eventually consistent read could miss items written a moment
  ago. Each build's items have keys of their own and expire by TTL, so a reader that follows an
  older head still finds the build it names.
* The lease is a conditional update of the head (``leaseUntil``), so that of the requests that
  find the build stale, one builds; publishing a build moves the head only forward (its
  ``builtAt`` older than the new build's) and frees the lease.
* A build reads the race's entries (kept per execution environment while the race record's
  ``entriesVersion`` stays put: a build reads them again only after an entry changed) and
  their standings: one eventually consistent ``BatchGetItem`` per 100 riders, sent
  concurrently, without the bitmap of counted seconds.

Transient failures raise :class:`shared.ports.TransientError`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from shared import items, keys
from shared.dynamodb import (
    BATCH_GET_LIMIT,
    batch_get,
    batch_put,
    chunks,
    conditional,
    request,
)
from shared.items import wire_key
from shared.races import Race
from shared.ranking import BUILD_LEASE_MS, LiveHead, LiveRanking, LiveRow, index_page
from shared.standings import Standing

T = TypeVar("T")
R = TypeVar("R")

STANDING_ATTRIBUTES: Final = (
    "raceId",
    "riderId",
    "name",
    "classId",
    "points",
    "seconds",
    "lastSecond",
    "finalSecond",
)
"""What a build reads of a standing: never the bitmap of counted seconds."""
RACES_KEPT: Final = 64
"""Races whose entries an execution environment keeps (least recently used first out)."""


class DynamoLiveStore:
    """:class:`functions.leaderboard_api.logic.LiveSnapshots` on the standings table."""

    def __init__(self, client: Any, table_name: str, *, workers: int = 10) -> None:
        self._db: Any = client
        self._table = table_name
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._entries: OrderedDict[str, tuple[int, tuple[str, ...]]] = OrderedDict()

    def _map(self, fn: Callable[[T], R], args: Sequence[T]) -> list[R]:
        if len(args) <= 1 or self._workers <= 1:
            return [fn(a) for a in args]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="live-read")
        return list(self._pool.map(fn, args))

    # -- the head ----------------------------------------------------------------------------
    def race_and_head(self, race_id: str) -> tuple[Race | None, LiveHead | None]:
        """The race record and the live head (each None when absent): one Query."""
        response = request(
            self._db,
            "race and live head",
            "query",
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :head AND :race",
            ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK},
            ExpressionAttributeValues={
                ":pk": {"S": keys.race_pk(race_id)},
                ":head": {"S": keys.SK_LIVE},
                ":race": {"S": keys.SK_RACE},
            },
        )
        by_sk = {i[keys.SK]["S"]: i for i in response.get("Items", [])}
        race, head = by_sk.get(keys.SK_RACE), by_sk.get(keys.SK_LIVE)
        return (
            items.race_from_item(race) if race else None,
            items.live_head_from_item(head) if head else None,
        )

    def acquire(self, race_id: str, now: int, seen: int | None = None) -> bool:
        """Take the race's build lease until ``now + BUILD_LEASE_MS`` if it is free or has
        expired and, when ``seen`` is given, no build newer than ``seen`` was published since
        (the head is created, leased, if the race has none): True if taken."""
        condition = "(attribute_not_exists(#lease) OR #lease < :now)"
        names = {"#lease": "leaseUntil", "#race": "raceId"}
        values: dict[str, Any] = {
            ":until": {"N": str(now + BUILD_LEASE_MS)},
            ":now": {"N": str(now)},
            ":race": {"S": race_id},
        }
        if seen is not None:
            condition += " AND (attribute_not_exists(#built) OR #built <= :seen)"
            names["#built"] = "builtAt"
            values[":seen"] = {"N": str(seen)}
        return conditional(
            self._db,
            "live lease",
            "update_item",
            TableName=self._table,
            Key=wire_key(keys.live_head_key(race_id)),
            UpdateExpression="SET #lease = :until, #race = :race",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def publish(self, ranking: LiveRanking) -> bool:
        """Write the build's chunks and index pages, then point the head at it (only forward)
        and free the lease: False if a newer build was published meanwhile."""
        race_id, built_at = ranking.race_id, ranking.built_at
        puts = [
            items.live_chunk_item(race_id, built_at, n, c) for n, c in enumerate(ranking.chunks())
        ]
        puts += [
            items.live_index_item(race_id, built_at, n, page)
            for n, page in enumerate(ranking.rider_index())
        ]
        batch_put(self._db, self._table, puts, what="live build")
        attributes = items.live_head_attributes(ranking.head())
        names = {f"#a{i}": a for i, a in enumerate(attributes)}
        values: dict[str, Any] = {f":a{i}": v for i, v in enumerate(attributes.values())}
        return conditional(
            self._db,
            "live head",
            "update_item",
            TableName=self._table,
            Key=wire_key(keys.live_head_key(race_id)),
            UpdateExpression="SET "
            + ", ".join(f"{n} = :{n[1:]}" for n in names)
            + ", #lease = :free",
            ConditionExpression="attribute_not_exists(#built) OR #built < :built",
            ExpressionAttributeNames={**names, "#lease": "leaseUntil", "#built": "builtAt"},
            ExpressionAttributeValues={
                **values,
                ":free": {"N": "0"},
                ":built": {"N": str(built_at)},
            },
        )

    # -- a build's items ---------------------------------------------------------------------
    def chunks(self, head: LiveHead, numbers: Sequence[int]) -> dict[int, list[LiveRow]]:
        """These chunks of the head's build (one BatchGetItem per 100), strongly consistent."""
        wanted = [wire_key(keys.live_chunk_key(head.race_id, head.built_at, n)) for n in numbers]
        found = batch_get(self._db, self._table, wanted, what="live chunks") if wanted else []
        return {_chunk_number(item): items.live_chunk_from_item(item) for item in found}

    def position(self, head: LiveHead, rider_id: str) -> int | None:
        """The rider's position (0-based, overall order) in the head's build, if ranked: one
        strongly consistent GetItem of the rider's index page."""
        page = index_page(rider_id, head.index_pages)
        response = request(
            self._db,
            "live index",
            "get_item",
            TableName=self._table,
            Key=wire_key(keys.live_index_key(head.race_id, head.built_at, page)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return items.live_index_from_item(item).get(rider_id) if item else None

    # -- what a build is made of -------------------------------------------------------------
    def standings(self, race: Race) -> list[Standing]:
        """The standings of the race's entered riders that have one (eventually consistent)."""
        riders = self._riders(race)
        if not riders:
            return []

        def read(chunk: Sequence[str]) -> list[dict[str, Any]]:
            wanted = [wire_key(keys.standing_key(race.race_id, r)) for r in chunk]
            return batch_get(
                self._db,
                self._table,
                wanted,
                what="live standings",
                consistent=False,
                projection=STANDING_ATTRIBUTES,
            )

        found = self._map(read, list(chunks(riders, BATCH_GET_LIMIT)))
        return [items.standing_from_item(i) for i in _flat(found)]

    def _riders(self, race: Race) -> tuple[str, ...]:
        """The race's entered riders, read again only when its entries version moved."""
        kept = self._entries.get(race.race_id)
        if kept is not None and kept[0] == race.entries_version:
            self._entries.move_to_end(race.race_id)
            return kept[1]
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ProjectionExpression": "#rider",
            "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK, "#rider": "riderId"},
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.race_pk(race.race_id)},
                ":prefix": {"S": keys.SK_ENTRY_PREFIX},
            },
            "ConsistentRead": True,
        }
        riders: list[str] = []
        while True:
            response = request(self._db, "live entries", "query", **kwargs)
            riders.extend(i["riderId"]["S"] for i in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        self._entries[race.race_id] = (race.entries_version, tuple(riders))
        self._entries.move_to_end(race.race_id)
        while len(self._entries) > RACES_KEPT:
            self._entries.popitem(last=False)
        return tuple(riders)


def _chunk_number(item: dict[str, Any]) -> int:
    """The chunk an item of a build is (its key ends ``#C{n}``)."""
    return int(item[keys.PK]["S"].rsplit("#C", 1)[1])


def _flat(lists: Iterable[list[T]]) -> list[T]:
    return [x for found in lists for x in found]
