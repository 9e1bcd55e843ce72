"""Every patch the local stack makes to moto's internals, and why.

:mod:`local.aws.moto_server` applies them all (:func:`apply_all`) before serving. Each keeps
moto's answers and removes a cost that grows with the work moto holds (the stream's length,
the table's size, the attributes of an item) rather than with the answer, or a race between
the threads of moto's server. For each, ``tests/local/aws/test_moto_patches.py`` shows the
defect on unpatched moto (that test fails, naming the patch to remove, once moto fixes it) and
checks the patched behaviour. A patch names the moto internals it replaces or relies on:
applying it when one is gone raises :class:`MotoInternalsChangedError`, so that a moto upgrade
revisits the patch instead of running without it unnoticed.

Kinesis

:func:`index_kinesis_shards`
    moto finds a shard's newest sequence number by listing all of them on every put, and
    GetRecords walks the shard from its first record, so both grow with the stream. An index of
    the sorted sequence numbers beside moto's records makes both logarithmic.
:func:`direct_kinesis_responses`
    moto serializes GetRecords and PutRecords answers with its generic serializer, driven by the
    service model, which looks up several spellings of every attribute of every record, and
    every record is serialized again for each reader. The same documents are written as JSON.

DynamoDB

:func:`undo_log_transactions`
    moto backs up a TransactWriteItems by deep-copying every table it names, once per action,
    so a transaction costs (and holds in memory) the size of its tables. The backup becomes an
    undo log of the items the actions name. moto's server runs a thread per connection and
    takes no lock: a rollback would restore its snapshot over writes made meanwhile, and an
    UpdateItem stores a new item with its key only and then fills it in place, so a read beside
    it sees half an item. A transaction holds a lock every write takes, and a read that
    overlapped an in-place write is read again under that lock.
:func:`incremental_item_size`
    Setting one attribute of an item re-sums the size of all of them, and building an item
    does so at each attribute (quadratic in the attributes). The size is kept as a running
    total, recomputed exactly near the limit, so an item is refused exactly when moto would.
:func:`indexed_queries`
    A Query sorts every item of the table and tests each against the key condition. moto's
    own loop is handed only the queried partition's candidates (a superset of the matches, in
    moto's order), kept by hooks on every path that stores or changes an item.
:func:`cheaper_query_rows`
    A Query deep-copies every row it returns, and projecting a row converts the whole item to
    plain JSON and back for every projected attribute. The copy becomes a new item sharing
    the stored values (nothing on the way to the answer changes them), and a projection to
    top-level attributes picks those values.
:func:`conditions_parsed_once`
    Every conditional write parses its condition expression twice (to check the names it
    uses, then to evaluate it). Parses are kept per expression, names and values.
:func:`direct_dynamodb_requests`
    moto walks every request body through botocore's model of the operation; for item
    operations the walk only decodes binary values from base64 and leaves out nulls.
    ``json.loads`` and the same decoding read them (a body with a null is read moto's way).
:func:`direct_dynamodb_responses`
    Item operations' answers go through the generic serializer, though they are plain documents
    once moto has turned its types into dicts. They are written as JSON directly.

Every service

:func:`cached_dispatch`
    Every request lists moto's package directory (to route by host name) and lists the methods
    of the response class (``inspect.getmembers``): neither depends on the request. Both are
    computed once.

(:mod:`local.aws.moto_server` also freezes what survives full garbage collections, which
touches no code of moto's.)
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
from collections.abc import Callable, Iterator
from typing import Any

Setter = Callable[[Any, str, Any], None]
"""How a patch replaces an attribute: ``setattr`` in the server; in the tests, pytest's
``monkeypatch.setattr``, which puts moto back after each test."""


class MotoInternalsChangedError(RuntimeError):
    """moto no longer has what a patch replaces or relies on: the patch must be revisited."""


def _name(owner: Any) -> str:
    if inspect.ismodule(owner):
        return str(owner.__name__)
    return f"{owner.__module__}.{owner.__qualname__}"


def require(owner: Any, *names: str) -> None:
    """Fail loudly unless ``owner`` (a moto class or module) still has every one of ``names``."""
    missing = [n for n in names if not hasattr(owner, n)]
    if missing:
        raise MotoInternalsChangedError(
            f"{_name(owner)} has no {', '.join(missing)} any more: moto changed, so the patch "
            f"that relies on it must be revisited (local/aws/moto_patches.py)"
        )


def require_parameters(function: Any, *names: str) -> None:
    """Fail loudly unless moto's ``function`` still takes every one of ``names``."""
    parameters = inspect.signature(function).parameters
    missing = [n for n in names if n not in parameters]
    if missing:
        raise MotoInternalsChangedError(
            f"{function.__module__}.{function.__qualname__} takes no {', '.join(missing)} any "
            f"more: moto changed, so the patch that relies on it must be revisited"
        )


def require_copy_module(module: Any) -> None:
    """Fail loudly unless ``module`` still uses the ``copy`` module as its global ``copy``
    (a patch replaces that global to change what moto copies)."""
    if getattr(module, "copy", None) is not copy:
        raise MotoInternalsChangedError(
            f"{module.__name__} no longer copies through the copy module: the patch that "
            f"replaces its copies must be revisited"
        )


PATCHED = "_breakaway_patch"
"""Set on everything a patch puts in moto's place (see :func:`is_patched`)."""


def replace(setter: Setter, owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name`` (which must exist) with ``value``, marked as a patch."""
    require(owner, name)
    setattr(value, PATCHED, True)
    setter(owner, name, value)


def is_patched(value: Any) -> bool:
    """Whether ``value`` (what moto holds under some name) was put there by a patch."""
    return getattr(value, PATCHED, False) is True


# --- Kinesis --------------------------------------------------------------------------------
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


def index_kinesis_shards(setter: Setter = setattr) -> None:
    """Give moto's Kinesis ``Shard`` an index of its sequence numbers (see the module doc)."""
    from moto.kinesis import models

    require(models, "Shard", "Record")
    require_parameters(
        models.Record.__init__, "partition_key", "data", "sequence_number", "explicit_hash_key"
    )
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

    for function in (get_records, put_record, get_min_sequence_number, get_max_sequence_number):
        replace(setter, models.Shard, function.__name__, function)


KINESIS_JSON = "application/x-amz-json-1.1"


def direct_kinesis_responses(setter: Setter = setattr) -> None:
    """Write moto's GetRecords and PutRecords answers as JSON directly (see the module doc).

    The answers are the same documents (the JSON protocol: data base64, arrival time in epoch
    seconds to the millisecond); anything but plain JSON falls back to moto's serializer.
    """
    from moto.core.responses import ActionResult
    from moto.core.serialize import TimestampSerializer
    from moto.kinesis.responses import KinesisResponse

    require(KinesisResponse, "_get_param", "kinesis_backend")
    require(TimestampSerializer, "_timestamp_unixtimestamp")
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
            return ActionResult(response)

    replace(setter, response_cls, "get_records", get_records)
    replace(setter, response_cls, "put_records", put_records)


# --- DynamoDB transactions and isolation ----------------------------------------------------
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

    WRITES = ("put_item", "delete_item", "batch_write_item")
    IN_PLACE_WRITES = ("update_item",)
    READS = ("get_item", "query", "scan")

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

    def install(self, setter: Setter, backend_cls: Any) -> None:
        """Put every write of ``backend_cls`` behind the lock and every read behind the check."""
        for name in self.WRITES:
            replace(setter, backend_cls, name, self.exclusive(getattr(backend_cls, name)))
        for name in self.IN_PLACE_WRITES:
            method = getattr(backend_cls, name)
            replace(setter, backend_cls, name, self.exclusive(method, in_place=True))
        for name in self.READS:
            replace(setter, backend_cls, name, self.whole_items(getattr(backend_cls, name)))


UndoEntry = tuple[str, dict[str, Any], Any]
"""(table name, key, what to put back: None for nothing, an ``Item`` or its attributes)."""


def _undo_entry(backend: Any, action: dict[str, Any]) -> UndoEntry | None:
    """What to put back if the transaction fails: the item object a Put replaces (moto builds a
    new one), a copy of one an Update changes in place, None if there is none."""
    kind, op = next(iter(action.items()))
    table_name = op.get("TableName")
    table = backend.tables.get(table_name) if table_name else None
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
        current = backend.get_item(table_name, key)
    except Exception:  # an invalid key: moto validates it and fails the transaction
        return None
    if current is None or kind == "Put":
        return table_name, key, current
    return table_name, key, copy.deepcopy(current.to_json()["Attributes"])


def _roll_back(backend: Any, undo: list[UndoEntry]) -> None:
    for table_name, key, before in reversed(undo):
        if before is None:
            with contextlib.suppress(Exception):
                backend.delete_item(table_name, key)
        else:
            attrs = before if isinstance(before, dict) else before.to_json()["Attributes"]
            backend.put_item(table_name, attrs)


def undo_log_transactions(setter: Setter = setattr) -> None:
    """Back a TransactWriteItems up with an undo log of the items it names, and isolate it
    (see the module doc): restored on the failures moto rolls back on; results unchanged."""
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models.table import Table

    require(models, "DynamoDBBackend")
    require_copy_module(models)
    backend_cls: Any = models.DynamoDBBackend
    original = backend_cls.transact_write_items
    rolled_back = (
        TransactionCanceledException,
        MultipleTransactionsException,
        MockValidationException,
    )
    replace(setter, models, "copy", _TableSnapshotsOff(Table))
    gate = _WriteGate()
    gate.install(setter, backend_cls)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        updates = any("Update" in action for action in transact_items)
        with gate.lock, gate.changing_in_place() if updates else contextlib.nullcontext():
            entries = (_undo_entry(self, action) for action in transact_items[:100])
            undo = [entry for entry in entries if entry is not None]
            try:
                original(self, transact_items)
            except rolled_back:
                _roll_back(self, undo)
                raise

    replace(setter, backend_cls, "transact_write_items", transact_write_items)


# --- DynamoDB items -------------------------------------------------------------------------
ITEM_SIZE_LIMIT_BYTES = 405_000
"""moto's item size limit (DynamoDB's 400 KB, as moto measures it)."""
ITEM_SIZE_RECHECK_BYTES = 300_000
"""Above this running total an item's size is recomputed exactly."""


def incremental_item_size(setter: Setter = setattr) -> None:
    """Keep an item's size as a running total instead of re-summing it at every attribute
    (see the module doc); items are refused exactly when moto refuses them."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    require(dynamo_type, "DynamoType", "LimitedSizeDict", "Item")
    require_parameters(dynamo_type.Item.__init__, "hash_key", "range_key", "attrs")
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
        if current + new > ITEM_SIZE_LIMIT_BYTES:
            raise ItemSizeTooLarge
        after = current + new
        if key in self:
            after -= bytesize(key) + size_of(dict.__getitem__(self, key))
        dict.__setitem__(self, key, value)
        self.__dict__["_bk_size"] = after

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        """Checked once (each partial sum is at most the whole, so it fails exactly when
        moto's check at each attribute would)."""
        values = limited.__new__(limited)
        for key, value in attrs.items():
            dict.__setitem__(values, key, dynamo_type_cls(value))
        size = exact_size(values)
        if size > ITEM_SIZE_LIMIT_BYTES:
            raise ItemSizeTooLarge
        values.__dict__["_bk_size"] = size
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = values

    replace(setter, limited, "__setitem__", setitem)
    replace(setter, dynamo_type.Item, "__init__", item_init)


# --- DynamoDB queries -----------------------------------------------------------------------
class _QueryCandidates:
    """The items moto's Query loop is handed instead of the whole table (see the module doc).

    Postings map ``(index hash attribute, value)`` to the keys of the items ever written with
    that value: a superset of the partition (an item that moved away stays listed, and moto's
    loop drops it), built on a table's first index Query and kept by every write after it.
    """

    def __init__(self, all_items: Callable[[Any], list[Any]]) -> None:
        self.all_items = all_items
        self.lock = threading.Lock()
        self.local = threading.local()

    @staticmethod
    def order(item: Any) -> Any:
        return (item.hash_key, item.range_key) if item.range_key else item.hash_key

    @staticmethod
    def value_key(value: Any) -> tuple[str, str]:
        return (str(value.type), str(value.value))

    def note(self, table: Any, item: Any) -> None:
        postings = table.__dict__.get("_bk_postings")
        if postings is None:
            return
        for name in table.__dict__["_bk_hash_attrs"]:
            value = item.attrs.get(name)
            if value is not None:
                postings.setdefault((name, self.value_key(value)), set()).add(
                    (item.hash_key, item.range_key)
                )

    def postings_of(self, table: Any) -> dict[tuple[str, tuple[str, str]], set[Any]]:
        postings = table.__dict__.get("_bk_postings")
        if postings is None:
            with self.lock:
                postings = table.__dict__.get("_bk_postings")
                if postings is None:
                    table.__dict__["_bk_hash_attrs"] = {
                        k["AttributeName"]
                        for index in table.all_indexes()
                        for k in index.schema
                        if k["KeyType"] == "HASH"
                    }
                    table.__dict__["_bk_postings"] = {}
                    for item in self.all_items(table):
                        self.note(table, item)
                    postings = table.__dict__["_bk_postings"]
        return postings  # type: ignore[no-any-return]

    @staticmethod
    def lookup(table: Any, hash_key: Any, range_key: Any) -> Any:
        found = table.items.get(hash_key)
        if found is None or not table.range_key_attr:
            return found
        return found.get(range_key)

    def find(self, table: Any, hash_key: Any, arguments: dict[str, Any]) -> list[Any] | None:
        """The candidates of a Query, in moto's order; None: let moto read the whole table."""
        index_name = arguments.get("index_name")
        conditions = arguments.get("hash_key_conditions")
        if index_name and conditions:
            name, value = conditions[0]
            keys = list(self.postings_of(table).get((name, self.value_key(value)), ()))
            found = (self.lookup(table, h, r) for h, r in keys)
            return sorted((i for i in found if i is not None), key=self.order)
        if index_name or hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        if table.range_key_attr:
            return sorted(partition.values(), key=self.order)
        return [partition]

    @contextlib.contextmanager
    def only(self, table: Any, candidates: list[Any]) -> Iterator[None]:
        """While a Query runs in this thread, ``table.all_items()`` is ``candidates``."""
        self.local.candidates = (table, candidates)
        try:
            yield
        finally:
            self.local.candidates = None

    def items_of(self, table: Any) -> list[Any]:
        override = getattr(self.local, "candidates", None)
        if override is not None and override[0] is table:
            return list(override[1])
        return self.all_items(table)


def indexed_queries(setter: Setter = setattr) -> None:
    """Make a DynamoDB Query cost the partition it reads, not the whole table (see the module
    doc); moto's own loop still tests each candidate, so the results are the same."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    require(Table, "all_items", "all_indexes", "put_item", "query")
    require_parameters(Table.query, "hash_key", "index_name", "hash_key_conditions")
    require_parameters(DynamoDBBackend.update_item, "table_name")
    table_cls: Any = Table
    backend_cls: Any = DynamoDBBackend
    original_query = table_cls.query
    original_put = table_cls.put_item
    original_update = backend_cls.update_item
    query_signature = inspect.signature(original_query)
    candidates = _QueryCandidates(table_cls.all_items)

    def all_items(self: Any) -> list[Any]:
        return candidates.items_of(self)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = query_signature.bind(self, hash_key, *args, **kwargs).arguments
        found = candidates.find(self, hash_key, arguments)
        if found is None:
            return original_query(self, hash_key, *args, **kwargs)
        with candidates.only(self, found):
            return original_query(self, hash_key, *args, **kwargs)

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, *args, **kwargs)
        candidates.note(self, item)
        return item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        item = original_update(self, table_name, *args, **kwargs)
        if item is not None:
            candidates.note(self.get_table(table_name), item)
        return item

    replace(setter, table_cls, "all_items", all_items)
    replace(setter, table_cls, "query", query)
    replace(setter, table_cls, "put_item", put_item)
    replace(setter, backend_cls, "update_item", update_item)


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


def cheaper_query_rows(setter: Setter = setattr) -> None:
    """A Query's rows share the stored values instead of deep copies, and a projection to
    top-level attributes picks them (see the module doc)."""
    from moto.dynamodb.models import dynamo_type, table

    require(dynamo_type, "Item", "LimitedSizeDict")
    require_copy_module(table)
    require_parameters(dynamo_type.Item.__init__, "hash_key", "range_key", "attrs")
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

    replace(setter, item_cls, "project", project)
    replace(setter, table, "copy", _QueryResultCopies(item_cls, shallow))


# --- DynamoDB conditions --------------------------------------------------------------------
CONDITION_CACHE_SIZE = 4096
"""Parsed conditions kept (the cache starts again when full)."""
CONDITION_PARSER = "create_condition_expression_parser"


class _ParsedCondition:
    """A condition parsed once: what callers read of moto's parser after ``parse()``. The
    names and values found are handed out as a new list each time, as a new parser's are: a
    transaction's ``Update`` adds its update expression's names to that list."""

    def __init__(self, parser: Any) -> None:
        self._op = parser.parse()
        self._names = tuple(parser.expr_attr_names_found)
        self._values = tuple(parser.expr_attr_values_found)

    @property
    def expr_attr_names_found(self) -> list[str]:
        return list(self._names)

    @property
    def expr_attr_values_found(self) -> list[str]:
        return list(self._values)

    def parse(self) -> Any:
        return self._op


def conditions_parsed_once(setter: Setter = setattr) -> None:
    """Parse a condition expression once per expression, names and values (see the module
    doc); the parsed tree is only read when evaluated."""
    from moto.dynamodb import comparisons, responses
    from moto.dynamodb import models as backend_module

    for module in (comparisons, backend_module, responses):
        require(module, CONDITION_PARSER)
    require(comparisons.ConditionExpressionParser, "parse")
    original_create = comparisons.create_condition_expression_parser

    cache: dict[tuple[str, str, str], _ParsedCondition] = {}

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
            found = _ParsedCondition(
                original_create(expr, copy.deepcopy(names), copy.deepcopy(values))
            )
            cache[key] = found
        return found

    for module in (comparisons, backend_module, responses):
        replace(setter, module, CONDITION_PARSER, create_condition_expression_parser)


# --- DynamoDB requests and answers ----------------------------------------------------------
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


def direct_dynamodb_responses(setter: Setter = setattr) -> None:
    """Write the item operations' answers as JSON directly (see the module doc).

    The generic serializer only base64-encodes binary values and leaves out absent members,
    as this does. Anything else (a value that is not plain JSON, an absent member) goes
    through moto's serializer.
    """
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    require(DynamoHandler, "serialized", "_get_action")
    require(DynamoResult, "result")
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

    replace(setter, handler_cls, "serialized", serialized)


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


def direct_dynamodb_requests(setter: Setter = setattr) -> None:
    """Read the item operations' requests with ``json.loads`` (see the module doc): binary
    values decoded from base64 as the model walk does; a body with a ``null`` goes moto's way
    (the walk leaves such members out)."""
    from moto.dynamodb.responses import DynamoHandler

    require(DynamoHandler, "parse_parameters", "_get_action")
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

    replace(setter, handler_cls, "parse_parameters", parse_parameters)


# --- every service --------------------------------------------------------------------------
def cached_dispatch(setter: Setter = setattr) -> None:
    """Compute once what moto's request routing recomputes on every request (see the module
    doc): the list of moto's modules and the method names of each response class."""
    from moto import backends
    from moto.core import responses, utils

    require(utils, "method_names_from_class")
    modules = tuple(backends.list_of_moto_modules())
    cached_names = functools.lru_cache(maxsize=None)(utils.method_names_from_class)
    replace(setter, backends, "list_of_moto_modules", lambda: modules)
    replace(setter, responses, "method_names_from_class", cached_names)


PATCHES: tuple[Callable[[Setter], None], ...] = (
    index_kinesis_shards,
    direct_kinesis_responses,
    undo_log_transactions,  # before indexed_queries, which wraps its locked update_item
    cached_dispatch,
    incremental_item_size,
    indexed_queries,
    cheaper_query_rows,
    conditions_parsed_once,
    direct_dynamodb_requests,
    direct_dynamodb_responses,
)
"""Every patch, in the order they are applied."""


def apply_all(setter: Setter = setattr) -> None:
    """Apply every patch (:class:`MotoInternalsChangedError` if moto lacks what one needs)."""
    for patch in PATCHES:
        patch(setter)
