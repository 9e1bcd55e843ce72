"""The DynamoDB adapter of the standings store (AWS, and the local stack's emulator).

Write path, per batch: each changed standing is a whole-item ``Put`` on its own condition
(``ver = :expected``, or for a rider new to the race ``attribute_not_exists``), with
``ReturnValuesOnConditionCheckFailure=ALL_OLD`` so a conflict comes back with what is stored
and the caller re-merges without a read. Two ways to send them (``WriteMode``):

* ``item``: one ``PutItem`` per rider on a small thread pool. The default: a transactional
  write costs twice the write units of the item, and in AWS the units are the bill.
* ``transaction``: ``TransactWriteItems`` of up to 100; a cancelled one returns the conflicts
  and sends the others again. A hundred times fewer requests: the local stack's choice, where
  each request costs milliseconds of CPU (docs/decisions.md).

New riders, and riders whose final second a write first sets, are always written in a
transaction with one race-record update per race that counts them (riders, per class, finished),
so the counts stay exact under retries. The race record is the organiser's (``POST /races``):
every update of it here is conditional on its existence, so none can create one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared import items, keys
from shared.items import wire_key
from shared.ports import RaceActivity, TransientError, WriteResult, WriteStatus
from shared.retry import Backoff, UnfinishedError, resend
from shared.standings import RiderKey, Standing

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
T = TypeVar("T")
BATCH_GET_LIMIT = 100
TRANSACT_LIMIT = 100
TRANSACT_BACKOFF: Final = Backoff(attempts=4, base_s=0.02)
"""Cancelled transactions: sent again at once when conditions failed, after a wait when
nothing moved (throttled, or in conflict with another writer)."""
BATCH_GET_BACKOFF: Final = Backoff(attempts=5, base_s=0.05)
BATCH_WRITE_LIMIT: Final = 25
BATCH_WRITE_BACKOFF: Final = Backoff(attempts=5, base_s=0.05)
WriteMode = Literal["item", "transaction"]
WRITE_MODES: tuple[WriteMode, ...] = ("item", "transaction")
DEFAULT_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,
    parameter_validation=False,
)
"""The functions' DynamoDB clients. Every request is built by this package's adapters, so
botocore's walk of each request against the service model only costs CPU: a third of the
stream processor's (a ``TransactWriteItems`` of 100 standings is validated attribute by
attribute; docs/decisions.md has the measurement). DynamoDB still rejects a malformed
request."""


READ_UNIT_BYTES: Final = 4096
WRITE_UNIT_BYTES: Final = 1024


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one low-level attribute value (numbers: about a byte per two
    significant digits, plus one; lists and maps: their members plus 3 bytes)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind == "L":
        return 3 + sum(attribute_size(x) for x in v)
    if kind == "M":
        return 3 + item_size(v)
    return 1


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: its attribute names (UTF-8) plus their values."""
    return sum(len(name.encode()) + attribute_size(v) for name, v in item.items())


def read_units(size: int, *, consistent: bool) -> float:
    """Read units of reading ``size`` bytes (one item by key, or a Query's whole result): one
    per 4 KB started, half that eventually consistent, never less than one 4 KB."""
    blocks = max(1, -(-size // READ_UNIT_BYTES))
    return float(blocks) if consistent else blocks / 2


def write_units(size: int) -> int:
    """Write units of writing an item of ``size`` bytes: one per 1 KB started, at least one."""
    return max(1, -(-size // WRITE_UNIT_BYTES))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT_CODES
    return isinstance(exc, BotoCoreError)


def request(client: Any, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
    """One DynamoDB request by its client method's name; a failure worth retrying becomes
    :class:`TransientError` naming ``what``, anything else is raised as it is."""
    try:
        response: dict[str, Any] = getattr(client, operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {exc}") from exc
        raise
    return response


CONDITION_FAILED: Final = "ConditionalCheckFailedException"


def conditional(client: Any, what: str, operation: str, **kwargs: Any) -> bool:
    """:func:`request` of a write with a ``ConditionExpression``: False when the condition
    failed (the write did nothing), True when it was written."""
    try:
        request(client, what, operation, **kwargs)
    except ClientError as exc:
        if error_code(exc) == CONDITION_FAILED:
            return False
        raise
    return True


def batch_get(
    client: Any,
    table: str,
    item_keys: Sequence[dict[str, Any]],
    *,
    what: str,
    consistent: bool = True,
    projection: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The items of these keys (low-level form) that exist: one ``BatchGetItem`` per 100 keys,
    the keys DynamoDB leaves unprocessed asked for again with jittered backoff, only the
    ``projection`` attributes when given. The one batch read of the standings store, the race
    book and the closer."""
    found: list[dict[str, Any]] = []
    names = {f"#a{i}": a for i, a in enumerate(projection)}
    for chunk in chunks(item_keys, BATCH_GET_LIMIT):
        wanted: dict[str, Any] = {"Keys": list(chunk), "ConsistentRead": consistent}
        if names:
            wanted["ProjectionExpression"] = ", ".join(names)
            wanted["ExpressionAttributeNames"] = names

        def send(pending: dict[str, Any]) -> dict[str, Any]:
            response = request(client, what, "batch_get_item", RequestItems=pending)
            found.extend(response.get("Responses", {}).get(table, []))
            return dict(response.get("UnprocessedKeys") or {})

        resend(send, {table: wanted}, BATCH_GET_BACKOFF, what=f"{what}: unprocessed keys")
    return found


def batch_put(client: Any, table: str, puts: Sequence[dict[str, Any]], *, what: str) -> None:
    """Put these whole items: one ``BatchWriteItem`` per 25, the items DynamoDB leaves
    unprocessed sent again with jittered backoff."""
    for chunk in chunks(puts, BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in chunk]}

        def send(pending: dict[str, Any]) -> dict[str, Any]:
            response = request(client, what, "batch_write_item", RequestItems=pending)
            return dict(response.get("UnprocessedItems") or {})

        resend(send, pending, BATCH_WRITE_BACKOFF, what=f"{what}: unprocessed items")


def _transient(standings: Sequence[Standing], error: str) -> list[WriteResult]:
    return [WriteResult(s.key, WriteStatus.TRANSIENT, error=error) for s in standings]


def _split_cancelled(
    exc: ClientError, pending: Sequence[T]
) -> tuple[list[tuple[T, dict[str, Any] | None]], list[T]]:
    """The actions of a cancelled transaction, in order: those whose condition failed, with
    the stored item (``ALL_OLD``) when DynamoDB returned it, and the rest, to send again (no
    reason given counts as the rest)."""
    given: list[Any] = list(exc.response.get("CancellationReasons", []))
    reasons: list[Any] = given + [{}] * (len(pending) - len(given))
    failed: list[tuple[T, dict[str, Any] | None]] = []
    still: list[T] = []
    for action, reason in zip(pending, reasons, strict=False):
        if reason.get("Code") == "ConditionalCheckFailed":
            failed.append((action, reason.get("Item")))
        else:
            still.append(action)
    return failed, still


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``seq`` in consecutive slices of at most ``size`` (a batch API's limit)."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class DynamoStandingsStore:
    """:class:`shared.ports.StandingsStore` on one DynamoDB table (see :mod:`shared.keys`)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        ttl_seconds: int,
        *,
        workers: int = 16,
        clock: Any = time.time,
        write_mode: WriteMode = "item",
    ) -> None:
        if write_mode not in WRITE_MODES:
            raise ValueError(f"write_mode must be one of {WRITE_MODES}, not {write_mode!r}")
        self._db: Any = client  # low-level calls; the stubs' TypedDicts add nothing here
        self._write_mode = write_mode
        self._table = table_name
        self._ttl = ttl_seconds
        self._workers = workers
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _expires_at(self) -> int:
        return int(self._clock()) + self._ttl

    def _map(self, fn: Any, args: Sequence[Any]) -> list[Any]:
        if len(args) <= 1 or self._workers <= 1:
            return [fn(a) for a in args]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="ddb")
        return list(self._pool.map(fn, args))

    # -- reads -----------------------------------------------------------------------------
    def load(self, riders: Sequence[RiderKey]) -> dict[RiderKey, Standing]:
        found: dict[RiderKey, Standing] = {}
        wanted = [wire_key(keys.standing_key(r.race_id, r.rider_id)) for r in riders]
        for item in batch_get(self._db, self._table, wanted, what="load standings"):
            s = items.standing_from_item(item)
            found[s.key] = s
        return found

    # -- writes ----------------------------------------------------------------------------
    def save(
        self, standings: Sequence[Standing], finishing: Collection[RiderKey] = ()
    ) -> list[WriteResult]:
        if any(s.version < 1 for s in standings):
            raise ValueError("a standing to save carries its next version (1 creates it)")
        finishes = frozenset(finishing)
        results: dict[RiderKey, WriteResult] = {}
        counting = [s for s in standings if s.version == 1 or s.key in finishes]
        updates = [s for s in standings if s.version > 1 and s.key not in finishes]

        def count(pending: Sequence[Standing], _: int) -> list[dict[str, Any]]:
            return self._race_counts(pending, finishes)

        for chunk in _counting_chunks(counting):
            for r in self._transact(chunk, count):
                results[r.key] = r
        if self._write_mode == "item":
            for r in self._map(self._put, updates):
                results[r.key] = r
        else:
            pieces = list(chunks(updates, TRANSACT_LIMIT))
            for chunk_results in self._map(self._transact, pieces):
                for r in chunk_results:
                    results[r.key] = r
        return [results[s.key] for s in standings]

    def _put(self, s: Standing) -> WriteResult:
        """One conditional ``PutItem`` (``item`` mode)."""
        try:
            self._db.put_item(**self._put_action(s, self._expires_at())["Put"])
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                item: Any = exc.response.get("Item")
                current = items.standing_from_item(item) if item else None
                return WriteResult(s.key, WriteStatus.CONFLICT, current=current)
            if is_transient(exc):
                return WriteResult(s.key, WriteStatus.TRANSIENT, error=str(exc))
            raise
        except BotoCoreError as exc:
            return WriteResult(s.key, WriteStatus.TRANSIENT, error=str(exc))
        return WriteResult(s.key, WriteStatus.OK)

    def _put_action(self, s: Standing, expires_at: int) -> dict[str, Any]:
        """Replace the whole standing if it is the version merged from (or, for version 1,
        if it does not exist yet); a failed condition returns what is stored."""
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": items.standing_item(s, expires_at),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if s.version == 1:
            put["ConditionExpression"] = "attribute_not_exists(#pk)"
            put["ExpressionAttributeNames"] = {"#pk": keys.PK}
        else:
            put["ConditionExpression"] = "#ver = :expected"
            put["ExpressionAttributeNames"] = {"#ver": "ver"}
            put["ExpressionAttributeValues"] = {":expected": {"N": str(s.version - 1)}}
        return {"Put": put}

    def _transact(
        self,
        chunk: Sequence[Standing],
        extra: Callable[[Sequence[Standing], int], list[dict[str, Any]]] | None = None,
    ) -> list[WriteResult]:
        """Write up to 100 standings in one ``TransactWriteItems``, each on its condition.

        A cancelled transaction wrote nothing: the standings whose condition failed come back
        as conflicts (with what is stored), the rest are sent again in a smaller transaction.
        ``extra`` adds actions for the standings being written (the race counters of new and
        finishing riders), so they take effect exactly when those standings do; if one of
        those fails its own condition (no race record), the standings are left unwritten.
        """
        done: list[WriteResult] = []

        def send(pending: list[Standing]) -> list[Standing]:
            expires_at = self._expires_at()
            actions = [self._put_action(s, expires_at) for s in pending]
            if extra is not None:
                actions.extend(extra(pending, expires_at))
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    if is_transient(exc):
                        raise UnfinishedError(str(exc), pending) from exc
                    raise
                if _extra_failed(exc, len(pending)):
                    raise UnfinishedError("race record: no such race", pending) from exc
                failed, still = _split_cancelled(exc, pending)
                done.extend(
                    WriteResult(
                        s.key,
                        WriteStatus.CONFLICT,
                        current=items.standing_from_item(item) if item else None,
                    )
                    for s, item in failed
                )
                return still
            except BotoCoreError as exc:
                raise UnfinishedError(str(exc), pending) from exc
            done.extend(WriteResult(s.key, WriteStatus.OK) for s in pending)
            return []

        try:
            resend(
                send,
                list(chunk),
                TRANSACT_BACKOFF,
                what="transaction kept being cancelled",
                stalled_only=True,
            )
        except UnfinishedError as exc:
            return done + _transient(cast("list[Standing]", exc.pending), str(exc))
        return done

    def _race_counts(
        self, pending: Sequence[Standing], finishing: frozenset[RiderKey]
    ) -> list[dict[str, Any]]:
        """One update per race of the riders these standings create (overall and in their
        class) and finish, on condition that the race record exists (the organiser creates
        it; a write here never does)."""
        by_race: dict[str, Counter[str]] = {}
        for s in pending:
            counts = by_race.setdefault(s.race_id, Counter())
            if s.version == 1:
                counts["riders"] += 1
                counts[keys.class_count_attribute(s.class_id)] += 1
            if s.key in finishing:
                counts["finished"] += 1
        actions = []
        for race_id, counts in by_race.items():
            adds, names, values = [], {"#pk": keys.PK}, {}
            for i, (attribute, n) in enumerate(counts.items()):
                adds.append(f"#a{i} :n{i}")
                names[f"#a{i}"] = attribute
                values[f":n{i}"] = {"N": str(n)}
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": wire_key(keys.race_key(race_id)),
                        "UpdateExpression": "ADD " + ", ".join(adds),
                        "ConditionExpression": "attribute_exists(#pk)",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        return actions

    def record_activity(self, activity: Sequence[RaceActivity]) -> None:
        def touch(a: RaceActivity) -> None:
            # a failed condition: a later time is recorded already (or there is no such race)
            conditional(
                self._db,
                "race record",
                "update_item",
                TableName=self._table,
                Key=wire_key(keys.race_key(a.race_id)),
                UpdateExpression="SET #last = :at",
                ConditionExpression=(
                    "attribute_exists(#pk) AND (attribute_not_exists(#last) OR #last < :at)"
                ),
                ExpressionAttributeNames={"#last": "lastReadingAt", "#pk": keys.PK},
                ExpressionAttributeValues={":at": {"N": str(a.at)}},
            )

        self._map(touch, list(activity))


def _extra_failed(exc: ClientError, standings: int) -> bool:
    """Whether an action after the standings (a race record's update) failed its condition."""
    reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
    return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[standings:])


def _counting_chunks(standings: Sequence[Standing]) -> Iterator[list[Standing]]:
    """Standings in transactions of at most 100 actions: the standings and one race-record
    update for each race among them."""
    chunk: list[Standing] = []
    races: set[str] = set()
    for s in standings:
        if len(chunk) + 1 + len(races | {s.race_id}) > TRANSACT_LIMIT:
            yield chunk
            chunk, races = [], set()
        chunk.append(s)
        races.add(s.race_id)
    if chunk:
        yield chunk
