"""The stream processor end to end against moto, with events in the shape Lambda sends: exactly
once per second under every kind of redelivery and fault, and the race record's counts."""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.scoring import points
from shared.standings import RiderKey
from tests.stream_processor.conftest import (
    NOW,
    RACE_START,
    STANDINGS,
    Aws,
    fixture,
    kinesis_record,
    reading,
    redeliver_after_failure,
)

ANN_0 = points(90, 50)
ANN_1 = points(95, 55)
BOB_0 = points(80, 40)
BOB_1 = points(85, 45)


def test_fixture_batch_scores_each_rider_exactly(aws: Aws) -> None:
    response = aws.invoke(fixture("kinesis_batch.json")["Records"])

    assert response == {"batchItemFailures": []}
    assert aws.standings() == {"ann": (ANN_0 + ANN_1, 2, 1), "bob": (BOB_0 + BOB_1, 2, 1)}
    race = aws.race()
    # ann is entered in class 2 and bob in class 3; the readings name no class.
    assert (race.riders, race.class_counts[2], race.class_counts[3], race.finished) == (2, 1, 1, 0)
    # The processor's clock, never a device's; the start is the organiser's, untouched.
    assert (race.last_reading_at, race.starts_at) == (NOW, RACE_START)


def test_the_same_batch_delivered_twice_counts_once(aws: Aws) -> None:
    records = fixture("kinesis_batch.json")["Records"]
    aws.invoke(records)
    first = aws.standing("ann")

    assert aws.invoke(records) == {"batchItemFailures": []}

    assert aws.standings() == {"ann": (ANN_0 + ANN_1, 2, 1), "bob": (BOB_0 + BOB_1, 2, 1)}
    assert aws.standing("ann") == first  # not even rewritten
    assert aws.race().riders == 2


def test_the_same_batch_redelivered_to_a_cold_environment_counts_once(aws: Aws) -> None:
    records = fixture("kinesis_batch.json")["Records"]
    aws.invoke(records)
    from functions.stream_processor import handler

    handler.runtime().batch.logic.cache.clear()  # a new execution environment

    assert aws.invoke(records) == {"batchItemFailures": []}
    assert aws.standings() == {"ann": (ANN_0 + ANN_1, 2, 1), "bob": (BOB_0 + BOB_1, 2, 1)}
    assert aws.race().riders == 2


def test_producer_duplicates_with_new_sequence_numbers_count_once(aws: Aws) -> None:
    a0, a1 = reading("ann", 0, 90, 50), reading("ann", 1, 95, 55)
    # A PutRecords retry resends an entry: same payload, new sequence number, maybe next batch.
    aws.invoke([kinesis_record(a0, 1), kinesis_record(a0, 2), kinesis_record(a1, 3)])
    aws.invoke([kinesis_record(a1, 4), kinesis_record(a0, 5)])

    assert aws.standings() == {"ann": (ANN_0 + ANN_1, 2, 1)}


def test_seconds_out_of_order_across_batches(aws: Aws) -> None:
    late = [reading("ann", s, 60 + s, 30 + s) for s in range(6)]
    aws.invoke([kinesis_record(late[s], s) for s in (3, 4, 5)])
    aws.invoke([kinesis_record(late[s], 10 + s) for s in (1, 0)])
    aws.invoke([kinesis_record(late[s], 20 + s) for s in (2, 5, 0)])

    expected = sum(points(60 + s, 30 + s) for s in range(6))
    assert aws.standings() == {"ann": (expected, 6, 5)}


def test_poison_records_go_to_the_dead_letter_queue_and_the_shard_moves_on(aws: Aws) -> None:
    records = fixture("kinesis_poison.json")["Records"]

    response = aws.invoke(records)

    assert response == {"batchItemFailures": []}
    assert aws.standings() == {"ann": (ANN_0, 1, 0), "bob": (BOB_1, 1, 1)}
    letters = aws.dead_letters()
    assert [(x["sequence_number"][-4:], x["shard_id"], x["partition_key"]) for x in letters] == [
        ("0101", "shardId-000000000000", "ann"),
        ("0102", "shardId-000000000000", "bob"),
        ("0103", "shardId-000000000000", "bob"),
    ]
    assert [x["payload"] for x in letters] == [r["kinesis"]["data"] for r in records[1:4]]
    reasons = [x["reason"] for x in letters]
    assert reasons[0].startswith("invalid reading: data: not valid base64")
    assert reasons[1].startswith("invalid reading: reading: Invalid JSON: EOF while parsing")
    assert reasons[2] == (
        "invalid reading: cadence: Input should be less than or equal to 200 (got 250)"
    )
    assert {x["event_source_arn"] for x in letters} == {
        "arn:aws:kinesis:us-east-1:123456789012:stream/breakaway-telemetry"
    }


def test_oversized_reading_is_a_dead_letter(aws: Aws) -> None:
    big = b'{"v":2,"eventId":"' + b"x" * 1100 + b'"}'

    assert aws.invoke([kinesis_record(big, 1)]) == {"batchItemFailures": []}

    [letter] = aws.dead_letters()
    assert letter["reason"] == "invalid reading: data: reading is 1120 bytes, the limit is 1024"


def test_an_unavailable_dead_letter_queue_retries_the_poison_records(aws: Aws) -> None:
    records = fixture("kinesis_poison.json")["Records"]
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    response = aws.invoke(records)

    # Nothing is lost: the poison records are retried (checkpoint at the lowest) ...
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["kinesis"]["sequenceNumber"] for r in records[1:4]]
    # ... and the good ones were applied; their replay will count nothing.
    assert aws.standings() == {"ann": (ANN_0, 1, 0), "bob": (BOB_1, 1, 1)}


def test_records_of_two_races_update_both_race_records(aws: Aws) -> None:
    aws.enter("ann", "bob", race="race-2", class_id=6)
    aws.invoke(
        [
            kinesis_record(reading("ann", 0, race="race-1"), 1),
            kinesis_record(reading("ann", 0, race="race-2"), 2),
            kinesis_record(reading("bob", 0, race="race-2"), 3),
        ]
    )

    one, two = aws.race("race-1"), aws.race("race-2")
    assert (one.riders, one.class_counts, one.last_reading_at) == (
        1,
        {1: 0, 2: 1, 3: 0, 4: 0, 5: 0, 6: 0},
        NOW,
    )
    assert (two.riders, two.class_counts[6], two.last_reading_at) == (2, 2, NOW)


RIDERS_ABC = ("ann", "bob", "cid")


def three_riders_stored_and_their_next_two_seconds(
    aws: Aws,
) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """ann, bob and cid stored at second 0; the batch of their seconds 1 and 2, interleaved."""
    aws.invoke([kinesis_record(reading(r, 0, 90, 50), i) for i, r in enumerate(RIDERS_ABC)])
    batch = [
        kinesis_record(reading(r, s, 100, 60), 10 * s + i)
        for s in (1, 2)
        for i, r in enumerate(RIDERS_ABC)
    ]
    return RIDERS_ABC, batch


def test_a_throttled_write_is_retried_from_the_lowest_failed_record(aws_items: Aws) -> None:
    aws = aws_items
    riders, batch = three_riders_stored_and_their_next_two_seconds(aws)
    # bob's write is throttled past the SDK's own retries: nothing of it is written.
    aws.faults.fail("PutItem", contains="RIDER#bob")

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": batch[1]["kinesis"]["sequenceNumber"]}]
    }
    assert aws.faults.injected == 1
    assert aws.standings() == {
        "ann": (points(90, 50) + 2 * points(100, 60), 3, 2),
        "bob": (points(90, 50), 1, 0),
        "cid": (points(90, 50) + 2 * points(100, 60), 3, 2),
    }
    # Lambda retries from bob's first record: cid's and ann's records after it come again.
    retry = redeliver_after_failure(batch, response)
    assert len(retry) == 5
    assert aws.invoke(retry) == {"batchItemFailures": []}
    expected = points(90, 50) + 2 * points(100, 60)
    assert aws.standings() == {r: (expected, 3, 2) for r in riders}


def test_a_throttled_transaction_fails_its_riders_and_is_retried_from_the_lowest(
    aws_transactions: Aws,
) -> None:
    aws = aws_transactions
    riders, batch = three_riders_stored_and_their_next_two_seconds(aws)
    # bob's partition throttles on every attempt: the transaction that writes all three
    # riders is cancelled each time, so none of them is written.
    aws.faults.cancel(contains="RIDER#bob", times=4)

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in batch[:3]]
    }
    assert aws.faults.injected == 4
    assert aws.standings() == {r: (points(90, 50), 1, 0) for r in riders}
    # Lambda retries from ann's first record: the whole batch comes again.
    retry = redeliver_after_failure(batch, response)
    assert len(retry) == 6
    assert aws.invoke(retry) == {"batchItemFailures": []}
    expected = points(90, 50) + 2 * points(100, 60)
    assert aws.standings() == {r: (expected, 3, 2) for r in riders}


def test_a_transaction_cancelled_once_is_sent_again_within_the_invocation(
    aws_transactions: Aws,
) -> None:
    aws = aws_transactions
    riders = ("ann", "bob")
    aws.invoke([kinesis_record(reading(r, 0), i) for i, r in enumerate(riders)])
    aws.faults.cancel(contains="RIDER#bob", times=1)

    response = aws.invoke([kinesis_record(reading(r, 1), 10 + i) for i, r in enumerate(riders)])

    assert response == {"batchItemFailures": []}
    assert aws.faults.calls["TransactWriteItems"] == 3  # creation, cancelled, sent again
    assert aws.standings() == {r: (2 * points(90, 50), 2, 1) for r in riders}


def test_a_stale_environment_re_merges_conflicts_and_writes_the_others(aws: Aws) -> None:
    from functions.stream_processor import handler

    cache = handler.runtime().batch.logic.cache
    aws.invoke([kinesis_record(reading(r, 0), i) for i, r in enumerate(("ann", "bob"))])
    stale = cache.get(RiderKey("race-1", "ann"))
    assert stale is not None
    # Another environment (after a reshard) writes ann's second 1 meanwhile.
    aws.invoke([kinesis_record(reading("ann", 1), 5)])
    cache.put(stale)

    # This environment still holds ann at version 1: her write conflicts, bob's does not.
    batch = [kinesis_record(reading(r, 2), 10 + i) for i, r in enumerate(("ann", "bob"))]
    assert aws.invoke(batch) == {"batchItemFailures": []}

    if aws.mode == "transaction":
        # creations; ann; ann and bob, cancelled on ann's condition; bob; ann merged again
        assert aws.faults.calls["TransactWriteItems"] == 5
    else:  # ann: a first write that conflicts, then the merged one; bob: one write
        assert (aws.faults.calls["TransactWriteItems"], aws.faults.calls["PutItem"]) == (1, 4)
    assert aws.standings() == {
        "ann": (3 * points(90, 50), 3, 2),
        "bob": (2 * points(90, 50), 2, 2),
    }
    ann = aws.standing("ann")
    assert ann is not None
    assert ann.version == 3


def test_a_throttled_rider_creation_fails_only_new_riders(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 0), 1)])
    batch = [kinesis_record(reading("ann", 1), 2), kinesis_record(reading("bob", 0), 3)]
    aws.faults.fail("TransactWriteItems", contains="RIDER#bob")

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": batch[1]["kinesis"]["sequenceNumber"]}]
    }
    aws.invoke(redeliver_after_failure(batch, response))
    assert aws.standings() == {"ann": (2 * points(90, 50), 2, 1), "bob": (points(90, 50), 1, 0)}
    assert aws.race().riders == 2


def test_a_throttled_race_record_update_retries_without_double_counting(aws: Aws) -> None:
    batch = [kinesis_record(reading("ann", s), s) for s in range(3)]
    aws.faults.fail("UpdateItem", contains="lastReadingAt")

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": batch[0]["kinesis"]["sequenceNumber"]}]
    }
    aws.invoke(redeliver_after_failure(batch, response))
    assert aws.standings() == {"ann": (3 * points(90, 50), 3, 2)}
    race = aws.race()
    assert (race.riders, race.starts_at, race.last_reading_at) == (1, RACE_START, NOW)


def test_a_write_that_took_effect_but_answered_an_error_counts_once(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 0), 1)])
    batch = [kinesis_record(reading("ann", s), 1 + s) for s in (1, 2)]
    # Every attempt reaches the table; the first answers 500 after writing, and the SDK's
    # retries then find the version already moved on.
    operation = "PutItem" if aws.mode == "item" else "TransactWriteItems"
    aws.faults.lose_response(operation, contains="RIDER#ann", times=1)

    response = aws.invoke(batch)

    assert response == {"batchItemFailures": []}
    assert aws.standings() == {"ann": (3 * points(90, 50), 3, 2)}
    standing = aws.standing("ann")
    assert standing is not None
    assert standing.version == 2


def test_a_rider_creation_that_took_effect_but_answered_an_error_counts_the_rider_once(
    aws: Aws,
) -> None:
    batch = [kinesis_record(reading("ann", 0), 1), kinesis_record(reading("bob", 0), 2)]
    aws.faults.lose_response("TransactWriteItems", times=4)  # the SDK gives up

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": batch[0]["kinesis"]["sequenceNumber"]},
            {"itemIdentifier": batch[1]["kinesis"]["sequenceNumber"]},
        ]
    }
    assert aws.invoke(redeliver_after_failure(batch, response)) == {"batchItemFailures": []}
    assert aws.standings() == {"ann": (points(90, 50), 1, 0), "bob": (points(90, 50), 1, 0)}
    assert aws.race().riders == 2


def test_names_and_classes_come_from_the_entries(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 5), 1), kinesis_record(reading("cid", 2), 2)])

    ann, cid = aws.standing("ann"), aws.standing("cid")
    assert ann is not None
    assert cid is not None
    assert (ann.name, ann.class_id, cid.name, cid.class_id) == ("Ann Rider", 2, "Cid Rider", 1)


def test_a_final_delivered_three_times_finishes_the_rider_once(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", s), s) for s in range(2)])
    final = reading("ann", 2, event="final")

    for attempt in range(3):
        assert aws.invoke([kinesis_record(final, 10 + attempt)]) == {"batchItemFailures": []}

    ann = aws.standing("ann")
    assert ann is not None
    assert (ann.points, ann.seconds, ann.final_second, ann.version) == (3 * ANN_0, 3, 2, 2)
    assert (aws.race().riders, aws.race().finished) == (1, 1)
    assert aws.dead_letters() == []


def test_a_crowd_finishing_together_is_counted_once_in_transactions_of_at_most_100(
    aws_items: Aws,
) -> None:
    """Finishing riders are written in transactions whatever the write mode (the deployed
    one here), as new riders are."""
    aws = aws_items
    riders = [f"r{i:03d}" for i in range(105)]
    aws.enter(*riders)
    aws.clock.past_refresh()
    aws.invoke([kinesis_record(reading(r, 0), i) for i, r in enumerate(riders)])
    finals = [kinesis_record(reading(r, 1, event="final"), 200 + i) for i, r in enumerate(riders)]
    # The first transaction takes effect but answers an error: the SDK sends it again, it is
    # cancelled on the versions it already moved, and those riders are merged again from what
    # is stored (their final second set): counted finished once.
    aws.faults.lose_response("TransactWriteItems", times=1)
    aws.faults.calls.clear()

    assert aws.invoke(finals) == {"batchItemFailures": []}

    race = aws.race()
    assert (race.riders, race.finished) == (105, 105)
    # 105 finishing standings and the race's count: 99 + 1 and 6 + 1 actions (the SDK's
    # second attempt of the lost one is inside its request), and no other write of a rider.
    assert aws.faults.calls["TransactWriteItems"] == 2
    assert aws.faults.calls.get("PutItem", 0) == 0
    assert {aws.standings()[r] for r in riders} == {(2 * ANN_0, 2, 1)}


def test_the_processor_never_creates_a_race_record(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 0), 1)])  # race-1's card is cached now
    aws.ddb.delete_item(TableName=STANDINGS, Key=_key(keys.race_key("race-1")))
    batch = [kinesis_record(reading("ann", 1), 2), kinesis_record(reading("bob", 0), 3)]

    response = aws.invoke(batch)

    # bob's creation would count him in a race record that is gone: not written, retried (the
    # next card read finds no race, and his readings become dead letters); ann's update is
    # written, and no update recreates the record.
    assert response == {
        "batchItemFailures": [{"itemIdentifier": batch[1]["kinesis"]["sequenceNumber"]}]
    }
    assert aws.book.get_race("race-1") is None
    assert sorted(aws.standings()) == ["ann"]
    aws.clock.past_refresh()
    assert aws.invoke(redeliver_after_failure(batch, response)) == {"batchItemFailures": []}
    assert [x["reason"] for x in aws.dead_letters()] == ["unknown race: no race race-1"]
    assert aws.book.get_race("race-1") is None


def _key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in key.items()}
