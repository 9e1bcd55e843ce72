"""The stream processor end to end against moto, with events in the shape Lambda sends."""

from __future__ import annotations

import json
from typing import Any

from shared import keys
from shared.scoring import points
from shared.standings import RiderKey
from tests.stream_processor.conftest import (
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
    assert (race.riders, race.class_counts[2], race.class_counts[3]) == (2, 1, 1)
    assert (race.started_at, race.last_reading_at) == (1_763_800_000_000, 1_763_800_001_000)


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


def test_name_and_class_follow_the_newest_second(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 5, name="Ann B", class_id=4), 1)])
    aws.invoke([kinesis_record(reading("ann", 2, name="Ann A", class_id=2), 2)])

    standing = aws.standing("ann")
    assert standing is not None
    assert (standing.name, standing.class_id, standing.last_second) == ("Ann B", 4, 5)


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
    assert reasons[0].startswith("data: not valid base64")
    assert reasons[1].startswith("reading: Invalid JSON: EOF while parsing")
    assert reasons[2] == "cadence: Input should be less than or equal to 200 (got 250)"
    assert {x["event_source_arn"] for x in letters} == {
        "arn:aws:kinesis:us-east-1:123456789012:stream/breakaway-telemetry"
    }


def test_oversized_reading_is_a_dead_letter(aws: Aws) -> None:
    big = b'{"v":1,"name":"' + b"x" * 1100 + b'"}'

    assert aws.invoke([kinesis_record(big, 1)]) == {"batchItemFailures": []}

    [letter] = aws.dead_letters()
    assert letter["reason"] == "data: reading is 1117 bytes, the limit is 1024"


def test_an_unavailable_dead_letter_queue_retries_the_poison_records(aws: Aws) -> None:
    records = fixture("kinesis_poison.json")["Records"]
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    response = aws.invoke(records)

    # Nothing is lost: the poison records are retried (checkpoint at the lowest) ...
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["kinesis"]["sequenceNumber"] for r in records[1:4]]
    # ... and the good ones were applied; their replay will count nothing.
    assert aws.standings() == {"ann": (ANN_0, 1, 0), "bob": (BOB_1, 1, 1)}


def test_a_final_delivered_three_times_gives_one_result_and_one_notification(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("bob", s, 70, 40, class_id=3), s) for s in range(3)])
    final = reading("ann", 2, 90, 50, class_id=3, event="final")
    aws.invoke([kinesis_record(reading("ann", s, 90, 50, class_id=3), 10 + s) for s in range(2)])

    for attempt in range(3):
        assert aws.invoke([kinesis_record(final, 20 + attempt)]) == {"batchItemFailures": []}
    assert aws.result("ann") is None  # the race finisher has not run yet
    messages = aws.finish_messages()
    assert len(messages) == 3  # each delivery hands ann over again

    assert aws.finish(messages) == {"batchItemFailures": []}  # the three, in one batch
    result = aws.result("ann")
    assert result is not None
    assert (result.points, result.seconds, result.rank_overall, result.rank_class) == (
        3 * points(90, 50),
        3,
        1,
        1,
    )
    assert aws.notifications() == [
        (
            "breakaway/races/race-1/riders/ann/result",
            {
                "raceId": "race-1",
                "riderId": "ann",
                "name": "Ann",
                "classId": 3,
                "points": 3 * points(90, 50),
                "seconds": 3,
                "lastSecond": 2,
                "rankOverall": 1,
                "rankClass": 1,
                "finishedAt": result.finished_at,
            },
        )
    ]
    assert aws.race().finished == 1


def test_rank_at_finish_counts_riders_ahead_overall_and_in_class(aws: Aws) -> None:
    riders = {"a": (120, 90, 1), "b": (100, 80, 2), "c": (100, 80, 1), "d": (60, 20, 1)}
    aws.invoke(
        [
            kinesis_record(reading(r, 0, cad, res, class_id=cls), i)
            for i, (r, (cad, res, cls)) in enumerate(riders.items())
        ]
    )
    aws.invoke([kinesis_record(reading("d", 1, 0, 0, class_id=1, event="final"), 10)])
    aws.finish()

    result = aws.result("d")
    assert result is not None
    assert (result.rank_overall, result.rank_class) == (4, 3)
    assert aws.result("a") is None


def test_records_of_two_races_update_both_race_records(aws: Aws) -> None:
    aws.invoke(
        [
            kinesis_record(reading("ann", 0, race="race-1", class_id=1), 1),
            kinesis_record(reading("ann", 0, race="race-2", class_id=6), 2),
            kinesis_record(reading("bob", 0, race="race-2", class_id=6), 3),
        ]
    )

    assert aws.race("race-1").riders == 1
    assert (aws.race("race-2").riders, aws.race("race-2").class_counts[6]) == (2, 2)


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
    assert (race.riders, race.started_at, race.last_reading_at) == (
        1,
        1_763_800_000_000,
        1_763_800_002_000,
    )


def test_a_failed_notification_is_retried_and_sent_once(aws: Aws) -> None:
    final = reading("ann", 0, event="final")
    aws.faults.fail("Publish", code="ThrottlingException")
    assert aws.invoke([kinesis_record(final, 1)]) == {"batchItemFailures": []}
    (message,) = aws.finish_messages()

    first = aws.finish([message])

    assert first == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert aws.notifications() == []
    assert aws.finish() == {"batchItemFailures": []}  # the message, visible again
    assert aws.race().finished == 1
    assert [topic for topic, _ in aws.notifications()] == [
        "breakaway/races/race-1/riders/ann/result"
    ]


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


def test_riders_finishing_together_are_ranked_with_one_read_of_each_ranking(aws: Aws) -> None:
    # (cadence, resistance, class): ties on points overall and inside class 2.
    riders = {
        "a": (120, 90, 1),
        "b": (100, 80, 2),
        "c": (100, 80, 2),
        "d": (100, 80, 1),
        "e": (60, 20, 2),
        "f": (200, 100, 1),
    }
    finals = [
        kinesis_record(reading(r, 0, cad, res, class_id=cls, event="final"), i)
        for i, (r, (cad, res, cls)) in enumerate(riders.items())
    ]
    assert aws.invoke(finals) == {"batchItemFailures": []}
    aws.faults.calls.clear()

    assert aws.finish() == {"batchItemFailures": []}

    ranks = {}
    for r in riders:
        result = aws.result(r)
        assert result is not None
        ranks[r] = (result.rank_overall, result.rank_class)
    assert ranks == {
        "f": (1, 1),
        "a": (2, 2),
        "b": (3, 1),
        "c": (3, 1),
        "d": (3, 3),
        "e": (6, 3),
    }
    # One query per overall ranking-index shard (the class ranks are counted from the same
    # entries): not per rider, not per class.
    assert aws.faults.calls["Query"] == 52
    assert len(aws.notifications()) == 6
    assert aws.race().finished == 6


def test_a_crowd_finishing_together_is_stored_in_transactions_and_counted_once(
    aws: Aws,
) -> None:
    riders = [f"r{i:03d}" for i in range(150)]
    finals = [kinesis_record(reading(r, 0, event="final"), i) for i, r in enumerate(riders)]
    assert aws.invoke(finals) == {"batchItemFailures": []}
    # The first results transaction takes effect but answers an error: the SDK sends it
    # again, it is cancelled on the stored results, and they come back as stored.
    aws.faults.lose_response("TransactWriteItems", contains="RESULT", times=1)
    aws.faults.calls.clear()

    assert aws.finish() == {"batchItemFailures": []}

    assert aws.race().finished == 150
    assert sorted(p["riderId"] for _, p in aws.notifications()) == riders
    # 150 results in transactions of 99 (+ the finish count): 2 requests, not 150 result
    # writes (the SDK's second attempt of the lost one is inside its request).
    assert aws.faults.calls["TransactWriteItems"] == 2
    assert aws.faults.injected == 1
    results = [aws.result(r) for r in riders]
    assert [r.rank_overall if r else None for r in results] == [1] * 150  # all tied


def test_announcements_retried_after_a_failure_leave_every_result_counted_once(
    aws: Aws,
) -> None:
    riders = ["ann", "bob", "cat"]
    finals = [kinesis_record(reading(r, 0, event="final"), i) for i, r in enumerate(riders)]
    assert aws.invoke(finals) == {"batchItemFailures": []}
    aws.faults.fail("Publish", contains="bob", code="ThrottlingException")
    (message,) = aws.finish_messages()

    first = aws.finish([message])

    assert first == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert aws.race().finished == 3
    stored = aws.result("cat")
    assert aws.finish() == {"batchItemFailures": []}
    assert aws.race().finished == 3
    assert sorted(p["riderId"] for _, p in aws.notifications()) == riders
    assert aws.result("cat") == stored  # stored once: the replay's ranks and time are not


def test_a_race_record_written_after_it_vanished_is_whole(aws_items: Aws) -> None:
    from shared.dynamodb import DynamoStandingsStore

    aws_items.invoke([kinesis_record(reading("ann", 5), 1)])
    aws_items.ddb.delete_item(
        TableName=STANDINGS, Key={k: {"S": v} for k, v in keys.race_key("race-1").items()}
    )
    store = DynamoStandingsStore(aws_items.ddb, STANDINGS, 3600, clock=lambda: 1_000)

    store._set_started(  # what record_activity does when a later reading is already there
        {k: {"S": v} for k, v in keys.race_key("race-1").items()}, "race-1", 1_763_800_000_000
    )

    race = aws_items.race()
    assert (race.race_id, race.started_at) == ("race-1", 1_763_800_000_000)


def test_the_processor_hands_finishing_riders_over_without_reading_the_ranking(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading(r, 0), i) for i, r in enumerate(("ann", "bob"))])
    aws.faults.calls.clear()

    final = kinesis_record(reading("ann", 1, 100, 60, event="final"), 10)
    assert aws.invoke([final, kinesis_record(reading("bob", 1), 11)]) == {"batchItemFailures": []}

    assert aws.faults.calls.get("Query", 0) == 0
    assert aws.faults.calls["SendMessage"] == 1
    (message,) = aws.finish_messages()
    assert json.loads(message["Body"]) == {
        "v": 1,
        "finishes": [
            {
                "raceId": "race-1",
                "riderId": "ann",
                "name": "Ann",
                "classId": 1,
                "points": points(90, 50) + points(100, 60),
                "seconds": 2,
                "lastSecond": 1,
                "finishedAt": json.loads(message["Body"])["finishes"][0]["finishedAt"],
            }
        ],
    }


def test_a_failed_hand_over_retries_the_final_and_finishes_the_rider_once(aws: Aws) -> None:
    batch = [
        kinesis_record(reading("ann", 0), 1),
        kinesis_record(reading("ann", 1, event="final"), 2),
        kinesis_record(reading("bob", 0), 3),
    ]
    aws.faults.fail("SendMessage", contains="finishes", code="ServiceUnavailable")

    response = aws.invoke(batch)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": batch[1]["kinesis"]["sequenceNumber"]}]
    }
    assert aws.finish_messages() == []
    assert aws.invoke(redeliver_after_failure(batch, response)) == {"batchItemFailures": []}
    assert aws.finish() == {"batchItemFailures": []}
    assert aws.standings() == {
        "ann": (2 * points(90, 50), 2, 1),
        "bob": (points(90, 50), 1, 0),
    }
    assert (aws.race().riders, aws.race().finished) == (2, 1)
    assert [p["riderId"] for _, p in aws.notifications()] == ["ann"]


def test_a_malformed_finish_message_is_retried_alone(aws: Aws) -> None:
    aws.invoke([kinesis_record(reading("ann", 0, event="final"), 1)])
    aws.sqs.send_message(QueueUrl=aws.finish_queue_url, MessageBody='{"v":1,"finishes":[{}]}')
    messages = aws.finish_messages()
    bad = next(m for m in messages if '"finishes":[{}]' in m["Body"])

    response = aws.finish(messages)

    # Reported, so SQS keeps it: after the queue's receives run out, its dead-letter queue.
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["MessageId"]}]}
    assert [p["riderId"] for _, p in aws.notifications()] == ["ann"]
    assert aws.race().finished == 1
