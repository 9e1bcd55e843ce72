"""The emulator's performance fixes keep moto's behaviour: Kinesis, transactions, queries, items."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


def test_full_collections_freeze_what_survives_and_still_free_garbage() -> None:
    import gc
    import weakref

    from local.aws.moto_server import freeze_after_full_collections

    class Node:
        def __init__(self) -> None:
            self.peer: Node | None = None

    callback = freeze_after_full_collections()
    try:
        before = gc.get_freeze_count()
        kept = [Node() for _ in range(1_000)]  # a stream's records: they live on
        gc.collect()
        assert gc.get_freeze_count() - before >= len(kept)

        dropped = Node()
        gone = weakref.ref(dropped)
        del dropped  # no cycle: freed at once, frozen or not
        assert gone() is None

        a, b = Node(), Node()
        a.peer, b.peer = b, a  # a cycle made after the freeze: the next collection frees it
        cycle = weakref.ref(a)
        del a, b
        gc.collect()
        assert cycle() is None
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()
