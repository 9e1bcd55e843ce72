"""Every patch the local stack makes to moto's internals (applied by :mod:`local.aws.moto_server`).

Before serving, moto's Kinesis shard is given an index (:func:`index_kinesis_shards`): moto 5.2
finds the newest sequence number with ``list(records)[-1]`` on every put and scans the shard
from its first record on every GetRecords, so both grow with the stream's length. The index
keeps a sorted list of sequence numbers beside moto's record dict; put and get become
O(log n). Behaviour is otherwise unchanged.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import functools
import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any


def _sequence_index(shard: Any) -> list[int]:
    """The sorted sequence numbers of ``shard.records``, rebuilt if moto replaced the dict."""
    records = shard.records
    index: list[int] | None = getattr(shard, "_bk_index", None)
    stale = getattr(shard, "_bk_owner", None) is not records
    if index is None or stale or len(index) != len(records):
        index = sorted(records)
        shard._bk_index = index
        shard._bk_owner = records
    return index


def index_kinesis_shards() -> None:
    """Patch moto's Kinesis ``Shard`` with an index of its sequence numbers (see module doc)."""
    from moto.kinesis import models

    shard_cls: Any = models.Shard
    record_cls: Any = models.Record
    lock = threading.Lock()

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> Any:
        last = int(last_sequence_id)
        with lock:
            index = _sequence_index(self)
            start = bisect.bisect_right(index, last)
            stop = len(index) if limit is None else min(len(index), start + limit)
            seqs = index[start:stop]
            results = [self.records[s] for s in seqs]
            newest = self.records[index[-1]] if index else None
        if not results:
            return [], last, 0
        assert newest is not None
        behind = newest.created_at - results[-1].created_at
        return results, seqs[-1], int(behind * 1000)

    def put_record(self: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
        with lock:
            index = _sequence_index(self)
            sequence_number = (index[-1] if index else 0) + 1
            self.records[sequence_number] = record_cls(
                partition_key, data, sequence_number, explicit_hash_key
            )
            index.append(sequence_number)
        return str(sequence_number)

    def get_min_sequence_number(self: Any) -> int:
        index = _sequence_index(self)
        return index[0] if index else 0

    def get_max_sequence_number(self: Any) -> int:
        index = _sequence_index(self)
        return index[-1] if index else 0

    shard_cls.get_records = get_records
    shard_cls.put_record = put_record
    shard_cls.get_min_sequence_number = get_min_sequence_number
    shard_cls.get_max_sequence_number = get_max_sequence_number


KINESIS_JSON = "application/x-amz-json-1.1"


def direct_kinesis_responses() -> None:
    """Write moto's GetRecords and PutRecords answers as JSON directly.

    moto 5.2 turns every answer into JSON with a generic serializer driven by the service
    model, which looks up several spellings of each attribute on each object: measured at 80%
    of the Kinesis emulator's CPU in a local race, where every record is serialized once when
    put and once for each reader (the mapping and the archiver). The answers are the same
    documents (the JSON protocol: data base64, arrival time in epoch seconds to the
    millisecond); anything but plain JSON falls back to moto's serializer.
    """
    from moto.core.serialize import TimestampSerializer
    from moto.kinesis.responses import KinesisResponse

    response_cls: Any = KinesisResponse
    original_get = response_cls.get_records
    epoch = TimestampSerializer._timestamp_unixtimestamp

    def get_records(self: Any) -> Any:
        shard_iterator = self._get_param("ShardIterator")
        if self._get_param("StreamARN") is not None or shard_iterator is None:
            return original_get(self)
        next_iterator, records, behind = self.kinesis_backend.get_records(
            None, shard_iterator, self._get_param("Limit")
        )
        body = {
            "NextShardIterator": next_iterator,
            "Records": [
                {
                    # moto keeps the base64 text it was given; its serializer sends it
                    # decoded and encoded again, so this does too
                    "Data": base64.b64encode(base64.b64decode(r.data)).decode(),
                    "PartitionKey": r.partition_key,
                    "SequenceNumber": str(r.sequence_number),
                    "ApproximateArrivalTimestamp": epoch(r.created_at_datetime),
                }
                for r in records
            ],
            "MillisBehindLatest": behind,
        }
        return json.dumps(body), {"Content-Type": KINESIS_JSON}

    def put_records(self: Any) -> Any:
        response = self.kinesis_backend.put_records(
            self._get_param("StreamARN"), self._get_param("StreamName"), self._get_param("Records")
        )
        try:
            return json.dumps(response), {"Content-Type": KINESIS_JSON}
        except TypeError:
            from moto.core.responses import ActionResult

            return ActionResult(response)

    response_cls.get_records = get_records
    response_cls.put_records = put_records


class _TableSnapshotsOff:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a deep copy of a whole
    ``Table`` (moto's transaction backup) returns the table itself; anything else is copied."""

    def __init__(self, table_cls: type) -> None:
        self._table_cls = table_cls

    def deepcopy(self, obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, self._table_cls):
            return obj
        return copy.deepcopy(obj, memo)

    def copy(self, obj: Any) -> Any:
        return copy.copy(obj)


class _WriteGate:
    """The lock every DynamoDB write of the emulator takes, and a count of the writes that
    change stored items in place.

    moto applies an update to the stored item in place (a new item: made with its key, then
    given the rest), so a read running beside it can see half of it. A read that overlapped
    such a write is read again under the lock, once it is done.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.started = 0
        self.running = 0

    @contextlib.contextmanager
    def changing_in_place(self) -> Iterator[None]:
        self.running += 1
        self.started += 1
        try:
            yield
        finally:
            self.running -= 1

    def exclusive(self, method: Any, *, in_place: bool = False) -> Any:
        @functools.wraps(method)
        def locked(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with self.lock, self.changing_in_place() if in_place else contextlib.nullcontext():
                return method(backend, *args, **kwargs)

        return locked

    def whole_items(self, method: Any) -> Any:
        @functools.wraps(method)
        def read(backend: Any, *args: Any, **kwargs: Any) -> Any:
            started, busy = self.started, self.running
            result = method(backend, *args, **kwargs)
            if busy or self.running or self.started != started:
                with self.lock:
                    result = method(backend, *args, **kwargs)
            return result

        return read


def undo_log_transactions() -> None:
    """Make moto's TransactWriteItems cost what it touches, not the size of the table.

    moto 5.2 backs up a transaction by deep-copying every table it names, once per action:
    a 25-action transaction on a table of 1,000 standings copied 25,000 items (measured: 45
    rider creations/s, and the emulator grew past 2 GB). Here the backup is an undo log of the
    items the actions name (distinct items: DynamoDB and moto refuse two actions on one item),
    restored on the same failures moto rolls back on. Results are unchanged.

    A transaction is isolated: it holds a lock that every other DynamoDB write also takes, so
    no write lands between its undo log and its rollback (moto's server runs a thread per
    connection; measured: a rollback deleted a race record another request had just created).
    A read that ran beside a write changing items in place (UpdateItem, a transaction's Update)
    is read again under the lock: measured, the API read a race record an UpdateItem had made
    with its key only, and answered 500. (Taking the lock for every read cost the full-size race
    0.9 s of visibility at p95.)
    """
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models.table import Table

    backend_cls: Any = models.DynamoDBBackend
    original = backend_cls.transact_write_items
    setattr(models, "copy", _TableSnapshotsOff(Table))  # noqa: B010 (swap a module global)
    gate = _WriteGate()
    for name in ("put_item", "delete_item", "batch_write_item"):
        setattr(backend_cls, name, gate.exclusive(getattr(backend_cls, name)))
    backend_cls.update_item = gate.exclusive(backend_cls.update_item, in_place=True)
    for name in ("get_item", "query", "scan"):
        setattr(backend_cls, name, gate.whole_items(getattr(backend_cls, name)))

    def snapshot(self: Any, action: dict[str, Any]) -> tuple[str, dict[str, Any], Any] | None:
        """What to put back if the transaction fails: the item object a Put replaces (moto
        builds a new one), a copy of one an Update changes in place, None if there is none."""
        kind, op = next(iter(action.items()))
        table_name = op.get("TableName")
        table = self.tables.get(table_name) if table_name else None
        if table is None:
            return None
        if "Item" in op:
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs.get(table.range_key_attr)
        else:
            key = op.get("Key")
        if not key or any(v is None for v in key.values()):
            return None
        try:
            current = self.get_item(table_name, key)
        except Exception:  # an invalid key: moto validates it and fails the transaction
            return None
        if current is None or kind == "Put":
            return table_name, key, current
        return table_name, key, copy.deepcopy(current.to_json()["Attributes"])

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        updates = any("Update" in action for action in transact_items)
        with gate.lock, gate.changing_in_place() if updates else contextlib.nullcontext():
            transact(self, transact_items)

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo = [u for u in (snapshot(self, a) for a in transact_items[:100]) if u is not None]
        try:
            original(self, transact_items)
        except (
            TransactionCanceledException,
            MultipleTransactionsException,
            MockValidationException,
        ):
            for table_name, key, before in reversed(undo):
                if before is None:
                    with contextlib.suppress(Exception):
                        self.delete_item(table_name, key)
                else:
                    attrs = before if isinstance(before, dict) else before.to_json()["Attributes"]
                    self.put_item(table_name, attrs)
            raise

    backend_cls.transact_write_items = transact_write_items


ITEM_SIZE_RECHECK_BYTES = 300_000
"""Above this running estimate an item's size is recomputed exactly (moto's 400 KB check)."""


def faster_dispatch() -> None:
    """Remove per-request work in moto that does not depend on the request (measured, see
    docs/benchmarks.md): the list of moto's modules (a directory listing and ~55 stats on
    every request), the method names of a response class (``inspect.getmembers`` on every
    request), and the item size check that re-sums every attribute each time one is set
    (quadratic in the attributes of an item; building an item checks it once). Behaviour is
    unchanged."""
    from moto import backends
    from moto.core import responses, utils
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    modules = tuple(backends.list_of_moto_modules())
    setattr(backends, "list_of_moto_modules", lambda: modules)  # noqa: B010
    cached_names = functools.lru_cache(maxsize=None)(utils.method_names_from_class)
    setattr(responses, "method_names_from_class", cached_names)  # noqa: B010

    dynamo_type_cls: Any = dynamo_type.DynamoType
    limited: Any = dynamo_type.LimitedSizeDict

    def size_of(value: Any) -> int:
        return int(value.size()) if type(value) is dynamo_type_cls else bytesize(str(value))

    def exact_size(d: dict[str, Any]) -> int:
        return sum(size_of(k) for k in d) + sum(size_of(v) for v in d.values())

    def setitem(self: Any, key: str, value: Any) -> None:
        current = self.__dict__.get("_bk_size")
        if current is None or current > ITEM_SIZE_RECHECK_BYTES:
            current = exact_size(self)
        new = bytesize(key) + size_of(value)
        if current + new > 405_000:
            raise ItemSizeTooLarge
        after = current + new
        if key in self:
            after -= bytesize(key) + size_of(dict.__getitem__(self, key))
        dict.__setitem__(self, key, value)
        self.__dict__["_bk_size"] = after

    limited.__setitem__ = setitem

    item_cls: Any = dynamo_type.Item

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        """moto's ``Item.__init__`` checks the size at every attribute it sets: checked once
        (each partial sum is at most the whole, so it fails exactly when moto's would)."""
        values = limited.__new__(limited)
        for key, value in attrs.items():
            dict.__setitem__(values, key, dynamo_type_cls(value))
        size = exact_size(values)
        if size > 405_000:
            raise ItemSizeTooLarge
        values.__dict__["_bk_size"] = size
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = values

    item_cls.__init__ = item_init


def indexed_queries() -> None:  # noqa: PLR0915 (one patch, kept together)
    """Make a DynamoDB Query cost the partition it reads, not the whole table.

    moto 5.2 answers every Query by sorting *all* items of the table and testing each one
    against the key condition: measured at 15.5 ms a query with 200 riders, 95% of the
    DynamoDB emulator's time in a race (the leaderboard merges 40 rank shards, and a rider's
    rank counts 40 more). Here ``Table.all_items`` is handed, for the duration of one Query,
    only the candidates of the queried partition: for a base-table Query the items under its
    hash key; for an index Query the items ever written with that index hash key value (kept
    by hooks on every path that stores or changes an item). The candidates are a superset of
    the matching items in the same order, and moto's own loop still tests each one, so the
    results are the same.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    table_cls: Any = Table
    backend_cls: Any = DynamoDBBackend
    local = threading.local()
    lock = threading.Lock()
    original_all_items = table_cls.all_items
    original_query = table_cls.query
    original_put = table_cls.put_item
    original_update = backend_cls.update_item
    query_signature = inspect.signature(original_query)

    def order(item: Any) -> Any:
        return (item.hash_key, item.range_key) if item.range_key else item.hash_key

    def hash_attrs(table: Any) -> set[str]:
        names: set[str] = set()
        for index in table.all_indexes():
            names.update(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
        return names

    def value_key(value: Any) -> tuple[str, str]:
        return (str(value.type), str(value.value))

    def note(table: Any, item: Any) -> None:
        postings = table.__dict__.get("_bk_postings")
        if postings is None:
            return
        for name in table.__dict__["_bk_hash_attrs"]:
            value = item.attrs.get(name)
            if value is not None:
                postings.setdefault((name, value_key(value)), set()).add(
                    (item.hash_key, item.range_key)
                )

    def postings_of(table: Any) -> dict[tuple[str, tuple[str, str]], set[Any]]:
        postings = table.__dict__.get("_bk_postings")
        if postings is None:
            with lock:
                postings = table.__dict__.get("_bk_postings")
                if postings is None:
                    table.__dict__["_bk_hash_attrs"] = hash_attrs(table)
                    table.__dict__["_bk_postings"] = {}
                    for item in original_all_items(table):
                        note(table, item)
                    postings = table.__dict__["_bk_postings"]
        return postings  # type: ignore[no-any-return]

    def lookup(table: Any, hash_key: Any, range_key: Any) -> Any:
        found = table.items.get(hash_key)
        if found is None:
            return None
        if table.range_key_attr:
            return found.get(range_key)
        return found

    def all_items(self: Any) -> list[Any]:
        override = getattr(local, "candidates", None)
        if override is not None and override[0] is self:
            return list(override[1])
        return original_all_items(self)  # type: ignore[no-any-return]

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = query_signature.bind(self, hash_key, *args, **kwargs).arguments
        index_name = arguments.get("index_name")
        conditions = arguments.get("hash_key_conditions")
        candidates: list[Any] | None = None
        if index_name and conditions:
            postings = postings_of(self)
            name, value = conditions[0]
            keys = list(postings.get((name, value_key(value)), ()))
            found = (lookup(self, h, r) for h, r in keys)
            candidates = sorted((i for i in found if i is not None), key=order)
        elif not index_name and hash_key is not None:
            partition = self.items.get(hash_key)
            if partition is None:
                candidates = []
            elif self.range_key_attr:
                candidates = sorted(partition.values(), key=order)
            else:
                candidates = [partition]
        if candidates is None:
            return original_query(self, hash_key, *args, **kwargs)
        local.candidates = (self, candidates)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            local.candidates = None

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, *args, **kwargs)
        note(self, item)
        return item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        item = original_update(self, table_name, *args, **kwargs)
        if item is not None:
            note(self.get_table(table_name), item)
        return item

    table_cls.all_items = all_items
    table_cls.query = query
    table_cls.put_item = put_item
    backend_cls.update_item = update_item


class _QueryResultCopies:
    """Stands in for the ``copy`` module inside moto's table code: the copy moto makes of the
    rows a Query or Scan returns is a new ``Item`` holding the stored attribute values (moto
    deep-copies every value of every row; nothing on the way to the answer changes them).
    Anything else is copied as the ``copy`` module does."""

    def __init__(self, item_cls: type, shallow: Any) -> None:
        self._item_cls = item_cls
        self._shallow = shallow

    def deepcopy(self, obj: Any, memo: Any = None) -> Any:
        if type(obj) is self._item_cls:
            item: Any = obj
            return self._shallow(item, item.attrs)
        if type(obj) is list and all(type(i) is self._item_cls for i in obj):
            return [self._shallow(i, i.attrs) for i in obj]
        return copy.deepcopy(obj, memo)

    def copy(self, obj: Any) -> Any:
        return copy.copy(obj)


def cheaper_items() -> None:
    """Costs of moto's DynamoDB that grow with the rows it returns, not with what it answers.

    * A Query deep-copies every row it returns, then projects it to the index's attributes,
      then to the ``ProjectionExpression`` (moto's ``Item.project`` converts the whole item to
      plain JSON and back for every projected attribute). Here the copy is a new ``Item``
      holding the stored values (:class:`_QueryResultCopies`), and projecting to top-level
      attributes, as every index projection is, picks those values: one dict per row.
    * Every conditional write parses its condition expression twice (once to check the names
      it uses, once to evaluate it). Parses are cached on the expression, its names and its
      values (the parsed tree is only read when evaluated).

    Measured (docs/benchmarks.md): a leaderboard page of 1,000 riders reads 1,000 index rows
    in 52 queries: 565 ms of the emulator's CPU, most of it copying and projecting rows.
    Results are unchanged (``tests/local/test_emulator.py``).
    """
    from moto.dynamodb import comparisons, responses
    from moto.dynamodb import models as backend_module
    from moto.dynamodb.models import dynamo_type, table

    item_cls: Any = dynamo_type.Item
    limited: Any = dynamo_type.LimitedSizeDict
    original_project = item_cls.project

    def shallow(item: Any, attrs: dict[str, Any]) -> Any:
        """A new ``Item`` with ``attrs`` (the stored values, not copies of them)."""
        new = item_cls.__new__(item_cls)
        new.hash_key = item.hash_key
        new.range_key = item.range_key
        values = limited.__new__(limited)
        dict.update(values, attrs)
        new.attrs = values
        return new

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        if any(len(e) != 1 or "[" in e[0] for e in projection_expressions):
            return original_project(self, projection_expressions)
        attrs = self.attrs
        names = dict.fromkeys(e[0] for e in projection_expressions)
        return shallow(self, {n: attrs[n] for n in names if n in attrs})

    item_cls.project = project
    setattr(table, "copy", _QueryResultCopies(item_cls, shallow))  # noqa: B010 (a module global)

    original_create = comparisons.create_condition_expression_parser

    class Parsed:
        """A condition parsed once: what callers read of moto's parser after ``parse()``."""

        def __init__(
            self, expr: str, names: dict[str, str] | None, values: dict[str, Any] | None
        ) -> None:
            parser = original_create(expr, names, values)
            self._op = parser.parse()
            self.expr_attr_names_found = tuple(parser.expr_attr_names_found)
            self.expr_attr_values_found = tuple(parser.expr_attr_values_found)

        def parse(self) -> Any:
            return self._op

    cache: dict[tuple[str, str, str], Parsed] = {}

    def create_condition_expression_parser(
        expr: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
    ) -> Any:
        if expr is None:
            return original_create(expr, names, values)
        # The request's own dicts, as parsed from JSON: their repr says exactly what they hold
        key = (expr, repr(names), repr(values))
        found = cache.get(key)
        if found is None:
            if len(cache) >= CONDITION_CACHE_SIZE:
                cache.clear()
            found = Parsed(expr, copy.deepcopy(names), copy.deepcopy(values))
            cache[key] = found
        return found

    for module in (comparisons, backend_module, responses):
        name = "create_condition_expression_parser"
        setattr(module, name, create_condition_expression_parser)


CONDITION_CACHE_SIZE = 4096
"""Parsed conditions kept (the cache starts again when full)."""

DIRECT_DYNAMODB_ACTIONS = frozenset(
    {"Query", "Scan", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"}
    | {"TransactWriteItems", "BatchWriteItem"}
)


def _json_blob(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _has_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_none(v) for v in value)
    return False


def direct_dynamodb_responses() -> None:
    """Write the item operations' answers as JSON directly (see :func:`direct_kinesis_responses`).

    The answers of these operations are plain documents of attribute values once moto has
    turned its types into dicts; the generic serializer only base64-encodes binary values and
    leaves out absent members, as this does. Anything else (a value that is not plain JSON, an
    absent member) goes through moto's serializer. Measured: serializing was a quarter of the
    DynamoDB emulator's CPU in a local race, most of it Query answers.
    """
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    handler_cls: Any = DynamoHandler
    original = handler_cls.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        if type(action_result) is DynamoResult and self._get_action() in DIRECT_DYNAMODB_ACTIONS:
            result = action_result.result
            if isinstance(result, dict) and not _has_none(result):
                try:
                    body = json.dumps(result, default=_json_blob)
                except TypeError:
                    return original(self, action_result)
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                headers.update(self.response_headers)
                return 200, headers, body
        return original(self, action_result)

    handler_cls.serialized = serialized


def _decode_blobs(node: Any) -> None:
    """Decode, in place, the binary attribute values of a DynamoDB request read as JSON, as
    botocore's model of the request does: ``{"B": <base64>}`` and ``{"BS": [<base64>, ...]}``
    (in DynamoDB's requests a one-member object with text there is nothing else)."""
    if type(node) is dict:
        if len(node) == 1:
            value = node.get("B")
            if type(value) is str:
                node["B"] = base64.b64decode(value)
                return
            values = node.get("BS")
            if type(values) is list and all(type(v) is str for v in values):
                node["BS"] = [base64.b64decode(v) for v in values]
                return
        for value in node.values():
            if type(value) is dict or type(value) is list:
                _decode_blobs(value)
    elif type(node) is list:
        for value in node:
            if type(value) is dict or type(value) is list:
                _decode_blobs(value)


def direct_dynamodb_requests() -> None:
    """Read the item operations' requests with ``json.loads`` (the answers: see
    :func:`direct_dynamodb_responses`).

    moto walks every request body through botocore's model of the operation. For these
    operations the walk changes two things only: binary attribute values are decoded from
    base64 (done here by :func:`_decode_blobs`) and members sent as ``null`` are left out (a
    body with a ``null`` is read moto's way). Measured: the walk costs 6.7 ms for a
    TransactWriteItems of 100 standings, ``json.loads`` and the decoding 1.3 ms; it was a third
    of the DynamoDB emulator's request handling in a local race.
    """
    from moto.dynamodb.responses import DynamoHandler

    handler_cls: Any = DynamoHandler
    original = handler_cls.parse_parameters

    def parse_parameters(self: Any, request: Any) -> None:
        body = request.data
        if self._get_action() in DIRECT_DYNAMODB_ACTIONS and body and b"null" not in body:
            try:
                params = json.loads(body)
            except ValueError:
                params = None
            if isinstance(params, dict):
                _decode_blobs(params)
                self.params = params
                return
        original(self, request)

    handler_cls.parse_parameters = parse_parameters


def apply_all() -> None:
    """Apply every patch, in the order they build on each other."""
    index_kinesis_shards()
    direct_kinesis_responses()
    undo_log_transactions()
    faster_dispatch()
    indexed_queries()
    cheaper_items()
    direct_dynamodb_requests()
    direct_dynamodb_responses()
