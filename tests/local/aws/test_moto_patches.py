"""The moto patches (local/aws/moto_patches.py): each one still needed, each one right.

Two kinds of test:

* against the emulator (moto's server with every patch applied, in its own process): the
  answers are moto's, for Kinesis reads, transactions, queries, projections, items, conditions;
* in this process, on moto as released (no patch applied here) and with one patch applied
  through ``monkeypatch`` (undone after the test): the defect or cost each patch removes still
  exists in moto (when moto fixes it, the test fails and names the patch to remove), and the
  patched moto no longer has it.
"""

from __future__ import annotations

import base64
import collections
import inspect
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.aws import moto_patches
from local.aws.lambda_runtime import ACCOUNT_ID
from local.aws.moto_patches import MotoInternalsChangedError, is_patched
from shared.names import LOCAL_REGION
from tests.local.conftest import client


def test_indexed_shard_reads_every_record_once_in_order_from_any_position(
    kinesis: Any, stream: str
) -> None:
    seqs = []
    for batch in range(4):
        out = kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": f"{batch}-{i}".encode(), "PartitionKey": "k"} for i in range(250)],
        )
        seqs += [r["SequenceNumber"] for r in out["Records"]]
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
    shard = "shardId-000000000000"

    def read(**position: Any) -> list[bytes]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, **position)[
            "ShardIterator"
        ]
        got: list[bytes] = []
        while True:
            page = kinesis.get_records(ShardIterator=it, Limit=300)
            got += [r["Data"] for r in page["Records"]]
            it = page["NextShardIterator"]
            if not page["Records"]:
                return got

    everything = [f"{b}-{i}".encode() for b in range(4) for i in range(250)]
    assert read(ShardIteratorType="TRIM_HORIZON") == everything
    first = kinesis.get_records(
        ShardIterator=kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"],
        Limit=1,
    )
    (record,) = first["Records"]
    assert (record["Data"], record["PartitionKey"], record["SequenceNumber"]) == (
        b"0-0",
        "k",
        seqs[0],
    )
    assert abs(record["ApproximateArrivalTimestamp"].timestamp() - time.time()) < 60
    assert first["MillisBehindLatest"] >= 0
    assert (
        read(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[700])
        == (everything[700:])
    )
    assert (
        read(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[700])
        == (everything[701:])
    )
    assert read(ShardIteratorType="LATEST") == []
    summary = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]
    assert summary["SequenceNumberRange"]["StartingSequenceNumber"] == seqs[0]


@pytest.fixture
def table(emulator_url: str) -> tuple[Any, str]:
    ddb = client("dynamodb", emulator_url)
    name = f"t-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byG",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return ddb, name


def test_a_cancelled_transaction_changes_nothing(table: tuple[Any, str]) -> None:
    ddb, name = table
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "g": {"S": "x"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "n": {"N": "1"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "new"}, "g": {"S": "x"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "SET n = :n, g = :g",
                        "ExpressionAttributeValues": {":n": {"N": "2"}, ":g": {"S": "y"}},
                    }
                },
                {"Delete": {"TableName": name, "Key": {"pk": {"S": "b"}}}},
                {
                    "Put": {
                        "TableName": name,
                        "Item": {"pk": {"S": "b"}, "n": {"N": "9"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert err.value.response["Error"]["Code"] in (
        "TransactionCanceledException",
        "ValidationException",
    )
    items = {i["pk"]["S"]: i for i in ddb.scan(TableName=name)["Items"]}
    assert set(items) == {"a", "b"}
    assert items["a"]["n"] == {"N": "1"}
    assert items["a"]["g"] == {"S": "x"}
    by_g = ddb.query(
        TableName=name,
        IndexName="byG",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x"}},
    )["Items"]
    assert [i["pk"]["S"] for i in by_g] == ["a"]


def test_a_failed_condition_cancels_the_others_and_reports_the_reason(
    table: tuple[Any, str],
) -> None:
    ddb, name = table
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "c"}, "n": {"N": "1"}}}},
                {
                    "Put": {
                        "TableName": name,
                        "Item": {"pk": {"S": "a"}, "n": {"N": "5"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )
    reasons = err.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["n"] == {"N": "1"}
    items = {i["pk"]["S"]: i["n"]["N"] for i in ddb.scan(TableName=name)["Items"]}
    assert items == {"a": "1"}


def test_a_transaction_that_succeeds_applies_everything(table: tuple[Any, str]) -> None:
    ddb, name = table
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": f"r{i}"}, "n": {"N": str(i)}}}}
            for i in range(25)
        ]
    )
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 25


def indexed_table(
    ddb: Any,
    *,
    table_sort_key: bool,
    index_sort_type: str,
    projection: dict[str, Any] | None = None,
) -> str:
    """A new table keyed ``pk`` (and ``sk``), with a GSI ``byG`` on ``g`` sorted by ``r``."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    keys = [("pk", "HASH", "S")] + ([("sk", "RANGE", "S")] if table_sort_key else [])
    attributes = [(n, t) for n, _, t in keys] + [("g", "S"), ("r", index_sort_type)]
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes],
        KeySchema=[{"AttributeName": n, "KeyType": k} for n, k, _ in keys],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byG",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "r", "KeyType": "RANGE"},
                ],
                "Projection": projection or {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


def test_queries_answer_exactly_what_a_scan_says_after_puts_updates_deletes(
    emulator_url: str,
) -> None:
    ddb = client("dynamodb", emulator_url)
    name = indexed_table(ddb, table_sort_key=True, index_sort_type="N")

    def item(p: int, s: int, g: str, r: int) -> dict[str, Any]:
        return {"pk": {"S": f"p{p}"}, "sk": {"S": f"s{s}"}, "g": {"S": g}, "r": {"N": str(r)}}

    # a query before any write builds the index lazily; writes after it keep it current
    assert (
        ddb.query(
            TableName=name,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "a"}},
        )["Items"]
        == []
    )
    for i in range(30):
        ddb.put_item(TableName=name, Item=item(i % 5, i, "ab"[i % 2], 100 - i))
    # move items between index partitions in place, remove one's key, delete some
    ddb.update_item(
        TableName=name,
        Key={"pk": {"S": "p0"}, "sk": {"S": "s0"}},
        UpdateExpression="SET g = :g",
        ExpressionAttributeValues={":g": {"S": "b"}},
    )
    ddb.update_item(
        TableName=name,
        Key={"pk": {"S": "p1"}, "sk": {"S": "s1"}},
        UpdateExpression="REMOVE g",
    )
    ddb.update_item(  # creates a new item straight into partition "c"
        TableName=name,
        Key={"pk": {"S": "p9"}, "sk": {"S": "s9"}},
        UpdateExpression="SET g = :g, r = :r",
        ExpressionAttributeValues={":g": {"S": "c"}, ":r": {"N": "5"}},
    )
    ddb.delete_item(TableName=name, Key={"pk": {"S": "p2"}, "sk": {"S": "s2"}})
    ddb.put_item(TableName=name, Item=item(3, 3, "c", 1))  # replaced into another partition
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": name, "Item": item(4, 99, "a", 7)}}]
    )
    everything = ddb.scan(TableName=name)["Items"]

    def keys(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(i["pk"]["S"], i["sk"]["S"]) for i in items]

    for g in ("a", "b", "c", "zzz"):
        got = ddb.query(
            TableName=name,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": g}},
        )["Items"]
        expected = sorted(
            (i for i in everything if i.get("g") == {"S": g}), key=lambda i: int(i["r"]["N"])
        )
        assert keys(got) == keys(expected), g
        # the same, a page of 3 at a time, backwards, with a range condition
        pages: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = ddb.query(
                TableName=name,
                IndexName="byG",
                KeyConditionExpression="g = :g AND r < :r",
                ExpressionAttributeValues={":g": {"S": g}, ":r": {"N": "90"}},
                ScanIndexForward=False,
                Limit=3,
                **kwargs,
            )
            pages += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        expected_desc = [i for i in reversed(expected) if int(i["r"]["N"]) < 90]
        assert keys(pages) == keys(expected_desc), g
    for p in range(6):
        got = ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"p{p}"}},
        )["Items"]
        expected = sorted(
            (i for i in everything if i["pk"]["S"] == f"p{p}"), key=lambda i: i["sk"]["S"]
        )
        assert keys(got) == keys(expected), p


def test_an_include_index_returns_the_keys_and_the_included_attributes_of_every_type(
    emulator_url: str,
) -> None:
    ddb = client("dynamodb", emulator_url)
    include = ["n", "b", "ss", "m", "l", "absent"]
    name = indexed_table(
        ddb,
        table_sort_key=False,
        index_sort_type="S",
        projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": include},
    )
    item = {
        "pk": {"S": "a"},
        "g": {"S": "x"},
        "r": {"S": "0001"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\xff"},
        "ss": {"SS": ["p", "q"]},
        "m": {"M": {"k": {"N": "1"}, "s": {"S": "v"}}},
        "l": {"L": [{"S": "one"}, {"N": "2"}]},
        "hidden": {"S": "not projected"},
    }
    ddb.put_item(TableName=name, Item=item)

    got = ddb.query(
        TableName=name,
        IndexName="byG",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x"}},
    )["Items"]

    assert len(got) == 1
    assert sorted(got[0]) == ["b", "g", "l", "m", "n", "pk", "r", "ss"]
    assert {k: v for k, v in got[0].items() if k != "ss"} == {
        k: v for k, v in item.items() if k not in ("hidden", "ss")
    }
    assert sorted(got[0]["ss"]["SS"]) == ["p", "q"]


def test_an_item_over_the_size_limit_is_refused_and_one_under_it_is_stored(
    table: tuple[Any, str],
) -> None:
    ddb, name = table
    key = {"pk": {"S": "big"}}
    under = {**key, "a": {"S": "x" * 200_000}, "b": {"S": "y" * 200_000}}
    over = {**key, "a": {"S": "x" * 200_000}, "b": {"S": "y" * 206_000}}

    ddb.put_item(TableName=name, Item=under)
    with pytest.raises(ClientError) as refused:
        ddb.put_item(TableName=name, Item=over)
    with pytest.raises(ClientError) as refused_in_transaction:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": over}}])

    for error in (refused, refused_in_transaction):
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert "Item size" in error.value.response["Error"]["Message"]
    stored = ddb.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    assert stored["b"]["S"] == "y" * 200_000


def test_binary_values_arrive_as_sent_in_every_part_of_a_request(
    table: tuple[Any, str],
) -> None:
    ddb, name = table
    key = {"pk": {"S": "bin"}}
    first = {**key, "b": {"B": b"\x00\x01"}, "bs": {"BS": [b"\xfe", b"\xff"]}}
    first["m"] = {"M": {"B": {"B": b"\x07"}, "l": {"L": [{"B": b"\x08"}]}}}

    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": name,
                    "Item": first,
                    "ConditionExpression": "attribute_not_exists(pk) OR b = :b",
                    "ExpressionAttributeValues": {":b": {"B": b"\x00"}},
                }
            }
        ]
    )
    ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET b2 = :n",
        ConditionExpression="b = :b AND contains(bs, :one)",
        ExpressionAttributeValues={
            ":n": {"B": b"\x02"},
            ":b": {"B": b"\x00\x01"},
            ":one": {"B": b"\xff"},
        },
    )
    with pytest.raises(ClientError) as failed:
        ddb.put_item(
            TableName=name,
            Item=key,
            ConditionExpression="b = :b",
            ExpressionAttributeValues={":b": {"B": b"\x00"}},
        )

    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stored = ddb.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    assert stored == {**first, "bs": stored["bs"], "b2": {"B": b"\x02"}}
    assert sorted(stored["bs"]["BS"]) == [b"\xfe", b"\xff"]


def test_an_item_an_update_creates_is_never_read_half_made(table: tuple[Any, str]) -> None:
    """moto creates the item of an UpdateItem with its key, then sets the rest in place: no read
    may see it in between (DynamoDB reads whole items)."""
    ddb, name = table
    keys = [{"pk": {"S": f"made-{i}"}} for i in range(40)]
    ATTRIBUTES = 60  # noqa: N806 (setting them takes long enough for reads to fall in between)
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for key in keys:
                item = ddb.get_item(TableName=name, Key=key).get("Item")
                if item is not None:
                    seen.append(item)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for key in keys:
            ddb.update_item(
                TableName=name,
                Key=key,
                UpdateExpression="SET " + ", ".join(f"a{n} = :v{n}" for n in range(ATTRIBUTES)),
                ExpressionAttributeValues={f":v{n}": {"N": str(n)} for n in range(ATTRIBUTES)},
            )
    finally:
        done.set()
        for reader in readers:
            reader.join()

    assert seen, "the readers saw nothing"
    assert [i for i in seen if len(i) != 1 + ATTRIBUTES] == []


def test_projection_expressions_return_exactly_the_named_attributes(emulator_url: str) -> None:
    ddb = client("dynamodb", emulator_url)
    name = indexed_table(
        ddb,
        table_sort_key=False,
        index_sort_type="S",
        projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n", "m", "b"]},
    )
    item = {
        "pk": {"S": "a"},
        "g": {"S": "x"},
        "r": {"S": "0001"},
        "n": {"N": "7"},
        "b": {"B": b"\x01"},
        "m": {"M": {"k": {"N": "1"}, "s": {"S": "v"}}},
        "secret": {"S": "h"},
    }
    ddb.put_item(TableName=name, Item=item)
    on_index = {"TableName": name, "IndexName": "byG"}
    by_g = {"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}
    by_pk = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}

    top = ddb.query(**on_index, **by_g, ProjectionExpression="n, b, secret, absent")["Items"]
    nested = ddb.query(**on_index, **by_g, ProjectionExpression="m.s, pk")["Items"]
    table = ddb.query(TableName=name, **by_pk, ProjectionExpression="secret, n")["Items"]
    scanned = ddb.scan(**on_index, ProjectionExpression="r, m")["Items"]
    whole = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})["Item"]

    assert top == [{"n": {"N": "7"}, "b": {"B": b"\x01"}}]  # "secret" is not in the index
    assert nested == [{"m": {"M": {"s": {"S": "v"}}}, "pk": {"S": "a"}}]
    assert table == [{"secret": {"S": "h"}, "n": {"N": "7"}}]
    assert scanned == [{"r": {"S": "0001"}, "m": item["m"]}]
    assert whole == item  # answering projections changed nothing stored


def test_the_same_condition_with_other_values_is_evaluated_with_those_values(
    table: tuple[Any, str],
) -> None:
    ddb, name = table
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "ver": {"N": "1"}})

    def put(expected: int, new: int) -> str:
        try:
            ddb.put_item(
                TableName=name,
                Item={"pk": {"S": "a"}, "ver": {"N": str(new)}},
                ConditionExpression="#v = :expected",
                ExpressionAttributeNames={"#v": "ver"},
                ExpressionAttributeValues={":expected": {"N": str(expected)}},
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    assert [put(1, 2), put(1, 3), put(2, 3), put(2, 4), put(3, 4)] == [
        "ok",
        "ConditionalCheckFailedException",
        "ok",
        "ConditionalCheckFailedException",
        "ok",
    ]


def test_a_name_the_condition_does_not_use_is_refused_every_time(table: tuple[Any, str]) -> None:
    ddb, name = table

    def put() -> str:
        try:
            ddb.put_item(
                TableName=name,
                Item={"pk": {"S": "a"}, "ver": {"N": "1"}},
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": "pk", "#unused": "ver"},
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Message"])
        return "ok"

    first, second = put(), put()  # the second parse comes from the cache

    assert first == second
    assert "unused in expressions: keys: {#unused}" in first


# === in this process: each patch still needed on moto as released, and right when applied ======
Patch = Callable[[moto_patches.Setter], None]
ROWS = 200
"""Items in a table of the in-process tests: enough that a cost growing with the table shows."""


@pytest.fixture
def released_moto() -> None:
    """moto as released: nothing any patch replaces is patched in this process."""
    targets: list[tuple[Any, str]] = []
    moto_patches.apply_all(lambda owner, name, _value: targets.append((owner, name)))
    patched = [f"{owner}.{name}" for owner, name in targets if is_patched(getattr(owner, name))]
    assert not patched, f"moto is patched in the test process: {patched}"


@pytest.fixture
def patch(monkeypatch: pytest.MonkeyPatch) -> Callable[[Patch], None]:
    """Apply one patch for the length of the test."""
    return lambda one: one(monkeypatch.setattr)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in this process (``mock_aws``)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def in_process(service: str) -> Any:
    return boto3.client(service, region_name=LOCAL_REGION)


def counter(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    counts: Callable[..., bool] = lambda *_args, **_kwargs: True,
) -> list[int]:
    """Count, from now on, the calls of ``owner.name`` for which ``counts(*args)`` holds."""
    original = getattr(owner, name)
    calls = [0]

    def spy(*args: Any, **kwargs: Any) -> Any:
        if counts(*args, **kwargs):
            calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def generically_serialized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations whose answers moto's generic serializer writes, from now on."""
    from moto.core.responses import ActionResult

    original = ActionResult.execute_result
    names: list[str] = []

    def execute_result(self: Any, context: Any) -> Any:
        names.append(str(context.operation_model.name))
        return original(self, context)

    monkeypatch.setattr(ActionResult, "execute_result", execute_result)
    return names


def test_every_moto_internal_the_patches_rely_on_is_still_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moto_patches.apply_all(monkeypatch.setattr)  # MotoInternalsChangedError names what is gone


def test_a_missing_internal_fails_loudly_naming_it() -> None:
    class Shard:
        pass

    with pytest.raises(MotoInternalsChangedError, match="Shard has no get_records any more"):
        moto_patches.replace(setattr, Shard, "get_records", lambda: None)
    with pytest.raises(MotoInternalsChangedError, match="takes no index_name"):
        moto_patches.require_parameters(lambda hash_key: hash_key, "index_name")
    with pytest.raises(MotoInternalsChangedError, match="no longer copies through the copy"):
        moto_patches.require_copy_module(pytest)


# --- index_kinesis_shards -------------------------------------------------------------------
class CountedRecords(collections.OrderedDict[int, Any]):
    """A shard's records, counting every record any walk over them visits."""

    visited = 0

    def __iter__(self) -> Iterator[int]:
        for key in super().__iter__():
            self.visited += 1
            yield key

    def keys(self) -> Any:
        return list(iter(self))

    def items(self) -> Any:
        return [(key, self[key]) for key in iter(self)]


def shard_of(records: int) -> Any:
    from moto.kinesis.models import Shard

    shard = Shard(0, 0, 2**128)
    shard.records = CountedRecords()
    for _ in range(records):
        shard.put_record("k", base64.b64encode(b"x").decode(), "0")
    shard.records.visited = 0
    return shard


def test_moto_still_walks_a_whole_kinesis_shard_to_put_and_to_read(released_moto: None) -> None:
    shard = shard_of(ROWS)
    shard.put_record("k", base64.b64encode(b"x").decode(), "0")
    on_put, shard.records.visited = shard.records.visited, 0
    shard.get_records(str(ROWS), 1)  # the newest record

    assert min(on_put, shard.records.visited) >= ROWS, (
        "moto's Kinesis shard no longer walks every record on a put and a read: "
        "remove index_kinesis_shards"
    )


def test_an_indexed_shard_puts_and_reads_without_walking_it(patch: Callable[[Patch], None]) -> None:
    patch(moto_patches.index_kinesis_shards)
    shard = shard_of(ROWS)
    shard.put_record("k", base64.b64encode(b"new").decode(), "0")
    newest, last, behind = shard.get_records(str(ROWS), 1)

    assert shard.records.visited == 0
    assert [(r.sequence_number, r.data) for r in newest] == [(ROWS + 1, "bmV3")]
    assert (last, behind) == (ROWS + 1, 0)
    first, _, _ = shard.get_records("0", 3)
    assert [r.sequence_number for r in first] == [1, 2, 3]
    assert (shard.get_min_sequence_number(), shard.get_max_sequence_number()) == (1, ROWS + 1)


# --- direct_kinesis_responses ---------------------------------------------------------------
def put_and_read(kinesis: Any) -> tuple[list[str], list[dict[str, Any]]]:
    kinesis.create_stream(StreamName="s", ShardCount=1)
    put = kinesis.put_records(
        StreamName="s", Records=[{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(3)]
    )
    iterator = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    read = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [r["SequenceNumber"] for r in put["Records"]], read


def test_moto_still_writes_kinesis_records_with_its_generic_serializer(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    serialized = generically_serialized(monkeypatch)
    put_and_read(in_process("kinesis"))

    assert {"PutRecords", "GetRecords"} <= set(serialized), (
        "moto no longer answers PutRecords and GetRecords through its generic serializer: "
        "remove direct_kinesis_responses"
    )


def test_kinesis_answers_written_directly_are_the_same_documents(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.direct_kinesis_responses)
    serialized = generically_serialized(monkeypatch)
    sequence_numbers, read = put_and_read(in_process("kinesis"))

    assert not {"PutRecords", "GetRecords"} & set(serialized)
    assert [(r["Data"], r["PartitionKey"], r["SequenceNumber"]) for r in read] == [
        (f"r{i}".encode(), "k", sequence_numbers[i]) for i in range(3)
    ]
    assert all(abs(r["ApproximateArrivalTimestamp"].timestamp() - time.time()) < 60 for r in read)


# --- undo_log_transactions ------------------------------------------------------------------
def table_of(ddb: Any, rows: int) -> str:
    """A new table keyed ``pk``, holding ``rows`` items."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    for i in range(rows):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"p{i}"}, "n": {"N": str(i)}})
    return name


def item_copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from moto.dynamodb.models.dynamo_type import Item

    return counter(monkeypatch, Item, "__deepcopy__")


def two_puts(name: str) -> list[dict[str, Any]]:
    return [{"Put": {"TableName": name, "Item": {"pk": {"S": f"new-{i}"}}}} for i in range(2)]


def test_moto_still_copies_every_table_a_transaction_names(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddb = in_process("dynamodb")
    name = table_of(ddb, ROWS)
    copies = item_copies(monkeypatch)
    ddb.transact_write_items(TransactItems=two_puts(name))

    assert copies[0] >= ROWS, (
        "moto no longer deep-copies the tables of a transaction: "
        "remove the undo log of undo_log_transactions"
    )


def test_an_undo_log_transaction_copies_no_table(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.undo_log_transactions)
    ddb = in_process("dynamodb")
    name = table_of(ddb, ROWS)
    copies = item_copies(monkeypatch)
    ddb.transact_write_items(TransactItems=two_puts(name))

    assert copies[0] <= 2
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == ROWS + 2


def write_during_a_failed_transaction(monkeypatch: pytest.MonkeyPatch) -> tuple[bool, bool]:
    """While a transaction that will fail applies its first action, another thread puts item
    ``other``: (whether that put finished while the transaction ran, whether ``other`` is
    stored once the transaction has rolled back)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table

    ddb = in_process("dynamodb")
    name = table_of(ddb, 1)
    backend = dynamodb_backends[ACCOUNT_ID][LOCAL_REGION]
    written = threading.Event()
    during: list[bool] = []
    original_put = Table.put_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        stored = original_put(self, *args, **kwargs)
        if threading.current_thread() is transaction and not during:
            writer = threading.Thread(
                target=lambda: (backend.put_item(name, {"pk": {"S": "other"}}), written.set())
            )
            writer.start()
            during.append(written.wait(0.5))
        return stored

    transaction = threading.current_thread()

    monkeypatch.setattr(Table, "put_item", put_item)
    fails = {"TableName": name, "Item": {"pk": {"S": "p0"}}}
    fails["ConditionExpression"] = "attribute_not_exists(pk)"
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        ddb.transact_write_items(TransactItems=[*two_puts(name)[:1], {"Put": fails}])
    assert written.wait(5)
    return during[0], "Item" in ddb.get_item(TableName=name, Key={"pk": {"S": "other"}})


def test_moto_still_lets_writes_run_beside_a_transaction_and_rolls_them_back(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_during, kept = write_during_a_failed_transaction(monkeypatch)

    assert (finished_during, kept) == (True, False), (
        "moto's transactions now keep other writes out, or roll back without undoing them: "
        "revisit the lock of undo_log_transactions"
    )


def test_a_transaction_holds_other_writes_off_and_its_rollback_keeps_them(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.undo_log_transactions)
    finished_during, kept = write_during_a_failed_transaction(monkeypatch)

    assert (finished_during, kept) == (False, True)


def read_while_an_update_fills_a_new_item(monkeypatch: pytest.MonkeyPatch) -> tuple[bool, Any]:
    """While UpdateItem fills in the item it creates, another thread reads it: (whether the
    read finished while the update ran, the attribute names it saw when it did)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

    ddb = in_process("dynamodb")
    name = table_of(ddb, 0)
    backend = dynamodb_backends[ACCOUNT_ID][LOCAL_REGION]
    key = {"pk": {"S": "new"}}
    seen: list[list[str] | None] = []
    during: list[bool] = []
    original = UpdateExpressionExecutor.execute

    def read() -> None:
        item = backend.get_item(name, key)  # moto's stored item itself: its names now
        seen.append(None if item is None else sorted(item.attrs))

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(0.5)
        during.append(bool(seen))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", execute)
    ddb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET a = :a, b = :b",
        ExpressionAttributeValues={":a": {"N": "1"}, ":b": {"N": "2"}},
    )
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    return during[0], seen[0] if seen else "never read"


def test_moto_still_lets_a_read_see_an_item_an_update_is_filling_in(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_during, attributes = read_while_an_update_fills_a_new_item(monkeypatch)

    assert (finished_during, attributes) == (True, ["pk"]), (
        "moto no longer shows a read an item half made by UpdateItem: "
        "revisit the read check of undo_log_transactions"
    )


def test_a_read_beside_an_update_waits_for_the_whole_item(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.undo_log_transactions)
    finished_during, attributes = read_while_an_update_fills_a_new_item(monkeypatch)

    assert (finished_during, attributes) == (False, ["a", "b", "pk"])


# --- cached_dispatch ------------------------------------------------------------------------
def dispatch_twice(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Route two requests by host and list the Kinesis responder's methods twice, as moto's
    server does for every request: (directory listings, ``inspect.getmembers`` calls)."""
    import moto
    from moto.core import responses
    from moto.kinesis.responses import KinesisResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    package = os.path.dirname(moto.__file__)
    listings = counter(monkeypatch, os, "listdir", lambda path=".": str(path) == package)
    members = counter(
        monkeypatch, inspect, "getmembers", lambda obj, *_, **__: obj is KinesisResponse
    )
    app = DomainDispatcherApplication(create_backend_app)
    for _ in range(2):
        assert app.get_backend_for_host("kinesis") == "kinesis"
        assert "get_records" in responses.method_names_from_class(KinesisResponse)
    return listings[0], members[0]


def test_moto_still_lists_its_modules_and_methods_for_every_request(
    released_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings, members = dispatch_twice(monkeypatch)

    assert (listings, members) == (2, 2), (
        "moto no longer lists its package and a responder's methods on every request: "
        "remove cached_dispatch"
    )


def test_dispatch_lists_modules_and_methods_once(
    patch: Callable[[Patch], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.cached_dispatch)
    listings, members = dispatch_twice(monkeypatch)

    assert (listings, members) in ((0, 0), (0, 1))  # the first listing of methods is cached


# --- incremental_item_size ------------------------------------------------------------------
ATTRIBUTES = 60


def size_checks(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(attribute sizes summed building an item of ATTRIBUTES attributes, then setting one)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    sizes = counter(monkeypatch, DynamoType, "size")
    item = Item(DynamoType({"S": "k"}), None, {f"a{i}": {"N": str(i)} for i in range(ATTRIBUTES)})
    built, sizes[0] = sizes[0], 0
    item.attrs["extra"] = DynamoType({"S": "x"})
    return built, sizes[0]


def test_moto_still_sums_every_attribute_of_an_item_each_time_one_is_set(
    released_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, set_one = size_checks(monkeypatch)

    quadratic = built >= ATTRIBUTES * (ATTRIBUTES - 1) // 2
    assert quadratic, "moto no longer re-sums an item's attributes: remove incremental_item_size"
    assert set_one >= ATTRIBUTES, "moto no longer re-sums an item's attributes: remove it too"


def test_an_item_size_is_kept_as_a_running_total_and_still_refused_over_the_limit(
    patch: Callable[[Patch], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    patch(moto_patches.incremental_item_size)
    built, set_one = size_checks(monkeypatch)

    assert (built, set_one) == (ATTRIBUTES, 1)
    with pytest.raises(ItemSizeTooLarge):
        Item(DynamoType({"S": "k"}), None, {"a": {"S": "x" * 200_000}, "b": {"S": "y" * 206_000}})
    item = Item(DynamoType({"S": "k"}), None, {"a": {"S": "x" * 200_000}})
    item.attrs["b"] = DynamoType({"S": "y" * 200_000})
    with pytest.raises(ItemSizeTooLarge):
        item.attrs["c"] = DynamoType({"S": "z" * 6_000})


# --- indexed_queries ------------------------------------------------------------------------
PARTITIONS = 20


def indexed_table_of(ddb: Any, rows: int) -> str:
    """``rows`` items in ``PARTITIONS`` partitions of the index ``byG`` (``g``, sorted by ``r``)
    projecting ``n`` and ``m``."""
    name = indexed_table(
        ddb,
        table_sort_key=False,
        index_sort_type="N",
        projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n", "m"]},
    )
    for i in range(rows):
        item = {"pk": {"S": f"p{i}"}, "g": {"S": f"g{i % PARTITIONS}"}, "r": {"N": str(i)}}
        item |= {"n": {"N": str(i)}, "m": {"S": "m"}, "hidden": {"S": "h"}}
        ddb.put_item(TableName=name, Item=item)
    return name


def query_one_partition(ddb: Any, name: str, **extra: Any) -> list[dict[str, Any]]:
    return list(
        ddb.query(
            TableName=name,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "g3"}},
            **extra,
        )["Items"]
    )


def items_examined(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most items any Query was handed to test against its key condition, from now on."""
    from moto.dynamodb.models.table import Table

    original = Table.all_items
    most = [0]

    def all_items(self: Any) -> Any:
        found = original(self)
        most[0] = max(most[0], len(found))
        return found

    monkeypatch.setattr(Table, "all_items", all_items)
    return most


def test_moto_still_tests_every_item_of_the_table_for_a_query(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddb = in_process("dynamodb")
    name = indexed_table_of(ddb, ROWS)
    examined = items_examined(monkeypatch)
    query_one_partition(ddb, name)
    on_index, examined[0] = examined[0], 0
    ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p3"}},
    )

    assert min(on_index, examined[0]) >= ROWS, (
        "moto's Query no longer tests every item of the table: remove indexed_queries"
    )


def test_an_indexed_query_tests_only_its_partition(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.indexed_queries)
    ddb = in_process("dynamodb")
    name = indexed_table_of(ddb, ROWS)
    examined = items_examined(monkeypatch)
    got = query_one_partition(ddb, name)

    assert examined[0] == ROWS // PARTITIONS
    assert [i["pk"]["S"] for i in got] == [f"p{i}" for i in range(3, ROWS, PARTITIONS)]


# --- cheaper_query_rows ---------------------------------------------------------------------
def row_costs(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], int, int]:
    """A projected Query of one index partition: (its rows, rows deep-copied, whole items
    converted to plain JSON)."""
    from moto.dynamodb.models.dynamo_type import Item

    ddb = in_process("dynamodb")
    name = indexed_table_of(ddb, ROWS)
    copies = item_copies(monkeypatch)
    conversions = counter(monkeypatch, Item, "to_regular_json")
    rows = query_one_partition(ddb, name, ProjectionExpression="pk, n")
    return rows, copies[0], conversions[0]


def test_moto_still_copies_and_converts_every_row_a_query_returns(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, copies, conversions = row_costs(monkeypatch)

    assert min(copies, conversions) >= len(rows) > 0, (
        "moto no longer deep-copies and converts each row of a Query: remove cheaper_query_rows"
    )


def test_query_rows_share_the_stored_values_and_project_exactly(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.cheaper_query_rows)
    rows, copies, conversions = row_costs(monkeypatch)

    assert (copies, conversions) == (0, 0)
    assert rows == [{"pk": {"S": f"p{i}"}, "n": {"N": str(i)}} for i in range(3, ROWS, 20)]


# --- conditions_parsed_once -----------------------------------------------------------------
def parses_of_two_conditional_puts(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(condition parses of a conditional PutItem, of the same put again)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    ddb = in_process("dynamodb")
    name = table_of(ddb, 0)
    parses = counter(monkeypatch, ConditionExpressionParser, "parse")
    counts = []
    for _ in range(2):
        ddb.put_item(
            TableName=name,
            Item={"pk": {"S": "a"}},
            ConditionExpression="attribute_not_exists(pk) OR pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
        )
        counts.append(parses[0])
        parses[0] = 0
    return counts[0], counts[1]


def test_moto_still_parses_a_condition_twice_for_one_write(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, again = parses_of_two_conditional_puts(monkeypatch)

    assert (first, again) == (2, 2), (
        "moto no longer parses each write's condition twice: remove conditions_parsed_once"
    )


def test_a_condition_is_parsed_once(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.conditions_parsed_once)

    assert parses_of_two_conditional_puts(monkeypatch) == (1, 0)


def test_a_cached_condition_serves_a_transactional_update_again_and_again(
    patch: Callable[[Patch], None], aws: None
) -> None:
    """A transaction's Update adds its update expression's names to the condition's list of
    names found (moto's ``transact_write_items``): each request gets a list of its own, so the
    same conditional update succeeds every time (the race book's ``enter``)."""
    patch(moto_patches.conditions_parsed_once)
    ddb = in_process("dynamodb")
    name = table_of(ddb, 0)
    ddb.put_item(TableName=name, Item={"pk": {"S": "race"}, "n": {"N": "0"}})
    update = {
        "TableName": name,
        "Key": {"pk": {"S": "race"}},
        "UpdateExpression": "ADD #n :one",
        "ConditionExpression": "attribute_exists(#pk)",
        "ExpressionAttributeNames": {"#n": "n", "#pk": "pk"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    for _ in range(3):
        ddb.transact_write_items(TransactItems=[{"Update": update}])
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "race"}})["Item"]["n"] == {"N": "3"}


# --- direct_dynamodb_requests and direct_dynamodb_responses ----------------------------------
BINARY_ITEM = {"pk": {"S": "b"}, "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x01"]}, "n": {"N": "1"}}


def item_round_trip(monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str], Any]:
    """PutItem, GetItem and Query of an item with binary values: (request bodies walked through
    botocore's model, operations answered by the generic serializer, the item read back)."""
    from moto.core.parse import JSONParser

    ddb = in_process("dynamodb")
    name = table_of(ddb, 0)
    walks = counter(monkeypatch, JSONParser, "parse")
    serialized = generically_serialized(monkeypatch)
    ddb.put_item(TableName=name, Item=BINARY_ITEM)
    got = ddb.get_item(TableName=name, Key={"pk": {"S": "b"}})["Item"]
    queried = ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "b"}},
    )["Items"]
    assert queried == [got]
    return walks[0], serialized, got


def test_moto_still_walks_item_requests_and_serializes_answers_generically(
    released_moto: None, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks, serialized, _ = item_round_trip(monkeypatch)

    assert walks >= 3, (
        "moto no longer walks DynamoDB item requests through botocore's model: "
        "remove direct_dynamodb_requests"
    )
    assert {"PutItem", "GetItem", "Query"} <= set(serialized), (
        "moto no longer answers DynamoDB item operations through its generic serializer: "
        "remove direct_dynamodb_responses"
    )


def test_item_requests_and_answers_read_and_written_as_json_are_the_same(
    patch: Callable[[Patch], None], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch(moto_patches.direct_dynamodb_requests)
    patch(moto_patches.direct_dynamodb_responses)
    walks, serialized, got = item_round_trip(monkeypatch)

    assert walks == 0
    assert not {"PutItem", "GetItem", "Query"} & set(serialized)
    assert got == BINARY_ITEM
