"""The DynamoDB adapter of the race book: races, entries and placings (see :mod:`shared.keys`).

One adapter for everyone who reads or writes a race: the API's organiser routes create races,
enter riders, close early and disqualify; the stream processor reads race cards to check
readings against; the closer stores the placings and closes the race. The in-memory twin with
the same semantics is :class:`shared.memory.InMemoryRaceStore`.

Every change that must hold together is one request: entries are written in transactions of up
to 99 with the race record's update (``entrants``, ``entriesVersion``) and its condition (open,
not past ``closesAt``, and for a changed entry not started), so counts stay exact under retries
and a race that closes meanwhile takes no entry.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from shared import items, keys
from shared.dynamodb import batch_get, batch_put, chunks, conditional, error_code, request
from shared.items import wire_key
from shared.placings import Placing, Placings
from shared.races import (
    EnteredRider,
    Entry,
    Race,
    RaceCard,
    RaceConflictError,
    RaceNotFoundError,
    card,
)

ENTRIES_PER_TRANSACTION: Final = 99
"""TransactWriteItems takes 100 actions: 99 entries and the race record's update."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class DynamoRaceStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db: Any = client
        self._table = table_name

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        return request(self._db, what, operation, **kwargs)

    def _batch_get(self, keys_: Sequence[dict[str, Any]], consistent: bool) -> list[dict[str, Any]]:
        return batch_get(
            self._db, self._table, keys_, what="race book: read", consistent=consistent
        )

    def _batch_put(self, puts: Sequence[dict[str, Any]]) -> None:
        batch_put(self._db, self._table, puts, what="race book: write")

    # -- reads -------------------------------------------------------------------------------
    def get_race(self, race_id: str, *, consistent: bool = True) -> Race | None:
        response = self._call(
            "race record",
            "get_item",
            TableName=self._table,
            Key=wire_key(keys.race_key(race_id)),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return items.race_from_item(item) if item else None

    def get_races(self, race_ids: Sequence[str], *, consistent: bool = True) -> dict[str, Race]:
        """The race records of these ids that exist (one BatchGetItem per 100)."""
        found = self._batch_get([wire_key(keys.race_key(r)) for r in race_ids], consistent)
        return {race.race_id: race for race in map(items.race_from_item, found)}

    def entries(self, race_id: str, *, consistent: bool = False) -> list[EnteredRider]:
        """Every entry of the race, by rider id (one Query, paginated at 1 MB)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.race_pk(race_id)},
                ":prefix": {"S": keys.SK_ENTRY_PREFIX},
            },
            "ConsistentRead": consistent,
        }
        found: list[EnteredRider] = []
        while True:
            response = self._call("entries", "query", **kwargs)
            found.extend(items.entry_from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            kwargs["ExclusiveStartKey"] = last

    def race_card(self, race_id: str, *, consistent: bool = False) -> RaceCard | None:
        race = self.get_race(race_id, consistent=consistent)
        if race is None:
            return None
        return card(race, self.entries(race_id, consistent=consistent))

    def get_entries(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, EnteredRider]:
        """These riders' entries, where they exist (strongly consistent)."""
        found = self._batch_get([wire_key(keys.entry_key(race_id, r)) for r in rider_ids], True)
        return {e.rider_id: e for e in map(items.entry_from_item, found)}

    def placings_page(
        self, race_id: str, scope: str, offset: int, limit: int
    ) -> tuple[list[Placing], int] | None:
        """Placings ``offset`` .. ``offset + limit - 1`` of a scope, and the scope's total; None
        if the race has no placings stored (it is not closed)."""
        first, last = (
            offset // keys.PLACINGS_PER_ITEM,
            (offset + limit - 1) // keys.PLACINGS_PER_ITEM,
        )
        wanted = [wire_key(keys.placings_key(race_id, scope, p)) for p in range(first, last + 1)]
        pages = {
            int(i["page"]["N"]): items.placings_from_item(i) for i in self._batch_get(wanted, False)
        }
        if first not in pages:
            if first == 0:
                return None
            head = self._batch_get([wire_key(keys.placings_key(race_id, scope, 0))], False)
            return ([], items.placings_from_item(head[0])[1]) if head else None
        rows: list[Placing] = []
        total = pages[first][1]
        for p in range(first, last + 1):
            rows.extend(pages.get(p, ([], total))[0])
        skip = offset - first * keys.PLACINGS_PER_ITEM
        return rows[skip : skip + limit], total

    # -- organiser's writes ------------------------------------------------------------------
    def create_race(self, race: Race) -> None:
        """Store a new race; :class:`RaceConflictError` if the id is taken."""
        created = conditional(
            self._db,
            "create race",
            "put_item",
            TableName=self._table,
            Item=items.race_item(race),
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": keys.PK},
        )
        if not created:
            raise RaceConflictError(f"raceId: race {race.race_id} exists already")

    def enter(self, race_id: str, entries: Sequence[Entry], now: int) -> tuple[int, int]:
        """Enter these riders; returns (added, updated). An entry may change until the race
        starts; new riders may be entered until it closes. An entry given again unchanged
        counts as neither (a retried request changes nothing)."""
        race = self.get_race(race_id)
        if race is None:
            raise RaceNotFoundError(f"raceId: no race {race_id}")
        if not race.accepts_readings(now):
            raise RaceConflictError(f"race {race_id} is {race.status(now)}: entries are closed")
        stored = self.get_entries(race_id, [e.rider_id for e in entries])
        started = now >= race.starts_at
        added: list[EnteredRider] = []
        updated: list[EnteredRider] = []
        for e in entries:
            old = stored.get(e.rider_id)
            if old is None:
                added.append(EnteredRider(e))
            elif old.entry != e:
                if started:
                    raise RaceConflictError(
                        f"entries: {e.rider_id} cannot change: race {race_id} has started"
                    )
                updated.append(EnteredRider(e, old.disqualified))
        changes = [(e, True) for e in added] + [(e, False) for e in updated]
        for chunk in chunks(changes, ENTRIES_PER_TRANSACTION):
            self._enter_chunk(race_id, chunk, now)
        return len(added), len(updated)

    def _enter_chunk(
        self, race_id: str, chunk: Sequence[tuple[EnteredRider, bool]], now: int
    ) -> None:
        actions: list[dict[str, Any]] = []
        for entered, is_new in chunk:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": items.entry_item(race_id, entered, now),
                        "ConditionExpression": "attribute_not_exists(#pk)"
                        if is_new
                        else "attribute_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": keys.PK},
                    }
                }
            )
        changes_entry = any(not is_new for _, is_new in chunk)
        condition = "#state = :open AND #closes > :now" + (
            " AND #starts > :now" if changes_entry else ""
        )
        names = {"#state": "state", "#closes": "closesAt", "#n": "entrants", "#v": "entriesVersion"}
        if changes_entry:
            names["#starts"] = keys.INDEX_RECENT_SK
        actions.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": wire_key(keys.race_key(race_id)),
                    "UpdateExpression": "ADD #n :added, #v :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        ":open": {"S": "open"},
                        ":now": {"N": str(now)},
                        ":added": {"N": str(sum(1 for _, is_new in chunk if is_new))},
                        ":one": {"N": "1"},
                    },
                }
            }
        )
        try:
            self._call("enter riders", "transact_write_items", TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise RaceConflictError(
                    f"race {race_id} changed while entering riders (closed, started, or entered "
                    "by another request): read it and try again"
                ) from exc
            raise

    def close_early(self, race_id: str, now: int) -> Race:
        """The race with ``closesAt`` moved to ``graceS`` from now, unless its scheduled close
        is sooner (then unchanged)."""
        race = self.get_race(race_id)
        if race is None:
            raise RaceNotFoundError(f"raceId: no race {race_id}")
        if not race.accepts_readings(now):
            raise RaceConflictError(f"race {race_id} is {race.status(now)} already")
        closing = race.closed_early(now)
        if closing.closes_at == race.closes_at:
            return race
        moved = conditional(
            self._db,
            "close race",
            "update_item",
            TableName=self._table,
            Key=wire_key(keys.race_key(race_id)),
            UpdateExpression="SET #closes = :new",
            ConditionExpression="#closes = :old AND #state = :open",
            ExpressionAttributeNames={"#closes": "closesAt", "#state": "state"},
            ExpressionAttributeValues={
                ":new": {"N": str(closing.closes_at)},
                ":old": {"N": str(race.closes_at)},
                ":open": {"S": "open"},
            },
        )
        if not moved:
            raise RaceConflictError(f"race {race_id} changed meanwhile: try again")
        return closing

    def disqualify(self, race_id: str, rider_id: str) -> None:
        """Mark an entered rider disqualified, while the race is open (before the closer
        reads the entries)."""
        actions = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": wire_key(keys.race_key(race_id)),
                    "ConditionExpression": "#state = :open",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {":open": {"S": "open"}},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": wire_key(keys.entry_key(race_id, rider_id)),
                    "UpdateExpression": "SET #dsq = :yes",
                    "ConditionExpression": "attribute_exists(#pk)",
                    "ExpressionAttributeNames": {"#dsq": "disqualified", "#pk": keys.PK},
                    "ExpressionAttributeValues": {":yes": {"BOOL": True}},
                }
            },
        ]
        try:
            self._call("disqualify", "transact_write_items", TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            race = self.get_race(race_id)
            if race is None:
                raise RaceNotFoundError(f"raceId: no race {race_id}") from exc
            if race.state != "open":
                raise RaceConflictError(f"race {race_id} is {race.state}") from exc
            raise RaceNotFoundError(
                f"riderId: {rider_id} is not entered in race {race_id}"
            ) from exc

    # -- the closer's writes -----------------------------------------------------------------
    def mark_closing(self, race_id: str) -> None:
        """``open`` -> ``closing`` (nothing if it is past that already)."""
        self._set_state(race_id, "closing", "#state = :from", "open")

    def store_placings(self, race_id: str, placings: Placings) -> int:
        """Every page of every scope; returns the number of items written. Retry-safe until the
        race is marked closed: the same placings overwrite the same items."""
        puts: list[dict[str, Any]] = []
        for scope, rows in placings.scopes().items():
            pages = list(chunks(rows, keys.PLACINGS_PER_ITEM)) or [()]
            for page, chunk in enumerate(pages):
                puts.append(items.placings_item(race_id, scope, page, len(rows), chunk))
        self._batch_put(puts)
        return len(puts)

    def mark_closed(self, race_id: str, now: int) -> bool:
        """``closed``, once: True if this call closed it, False if it was closed already."""
        return self._set_state(race_id, "closed", "#state <> :from", "closed", closed_at=now)

    def _set_state(
        self, race_id: str, state: str, condition: str, from_state: str, closed_at: int = 0
    ) -> bool:
        expression = "SET #state = :to" + (", #closedAt = :at" if closed_at else "")
        names = {"#state": "state"} | ({"#closedAt": "closedAt"} if closed_at else {})
        values = {":to": {"S": state}, ":from": {"S": from_state}}
        if closed_at:
            values[":at"] = {"N": str(closed_at)}
        return conditional(
            self._db,
            f"race {state}",
            "update_item",
            TableName=self._table,
            Key=wire_key(keys.race_key(race_id)),
            UpdateExpression=expression,
            ConditionExpression=f"attribute_exists(#pk) AND {condition}",
            ExpressionAttributeNames=names | {"#pk": keys.PK},
            ExpressionAttributeValues=values,
        )
