"""Only readings that could really have happened count: each rule end to end, against moto.

Every reading goes through the deployed entry point with the processor's clock in the test's
hands. A refused reading is a dead letter whose reason names the rule, never a batch failure:
the shard moves on. Riders of ``race-1`` (the roster: ann, bob, cid, dee, cat) are entered
before each test; the race started ten minutes before the clock's start (``NOW``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.contract import V1_REFUSED
from shared.races import RACE_REFRESH_S
from shared.scoring import points
from tests.stream_processor.conftest import (
    NOW,
    RACE_START,
    Aws,
    kinesis_record,
    new_race,
    reading,
)

ONE = points(90, 50)


@pytest.fixture
def aws(aws_items: Aws) -> Aws:
    """The rules do not depend on how standings are sent: the deployed mode only."""
    return aws_items


def reasons(aws: Aws) -> list[str]:
    return [letter["reason"] for letter in aws.dead_letters()]


def test_a_reading_for_an_unknown_race_is_a_dead_letter_and_creates_nothing(aws: Aws) -> None:
    record = kinesis_record(reading("ann", 0, race="race-9"), 1)

    assert aws.invoke([record]) == {"batchItemFailures": []}

    [letter] = aws.dead_letters()
    assert letter["reason"] == "unknown race: no race race-9"
    assert (letter["payload"], letter["sequence_number"]) == (
        record["kinesis"]["data"],
        record["kinesis"]["sequenceNumber"],
    )
    assert aws.standings("race-9") == {}
    assert aws.book.get_race("race-9") is None


def test_a_reading_for_a_closed_race_is_a_dead_letter(aws: Aws) -> None:
    assert aws.book.mark_closed("race-1", NOW - 1) is True

    assert aws.invoke([kinesis_record(reading("ann", 3), 1)]) == {"batchItemFailures": []}

    closes_at = new_race().closes_at
    assert reasons(aws) == [f"race closed: race race-1 closed at {closes_at}"]
    assert aws.standings() == {}


def test_readings_count_until_closes_at_by_the_processors_clock(aws: Aws) -> None:
    race = new_race("short", starts_at=NOW - 60_000, duration_s=60, grace_s=30)
    aws.book.create_race(race)
    aws.enter("ann", race="short")
    aws.clock.now = race.closes_at - 1  # a late reading in the last millisecond of grace

    assert aws.invoke([kinesis_record(reading("ann", 59, race="short"), 1)]) == {
        "batchItemFailures": []
    }
    aws.clock.now = race.closes_at
    assert aws.invoke([kinesis_record(reading("ann", 58, race="short"), 2)]) == {
        "batchItemFailures": []
    }

    assert aws.standings("short") == {"ann": (ONE, 1, 59)}
    assert reasons(aws) == [f"race closed: race short closed at {race.closes_at}"]


def test_an_early_close_applies_once_the_cached_card_is_read_again(aws: Aws) -> None:
    aws.book.create_race(new_race("sprint", grace_s=0))
    aws.enter("ann", race="sprint")
    assert aws.invoke([kinesis_record(reading("ann", 0, race="sprint"), 1)]) == {
        "batchItemFailures": []
    }  # the card is read at NOW
    closed = aws.book.close_early("sprint", NOW + 500)  # no grace: closes at once
    assert closed.closes_at == NOW + 500

    aws.clock.now = NOW + RACE_REFRESH_S * 1000 - 1  # the copy, read at NOW, is still used
    aws.invoke([kinesis_record(reading("ann", 1, race="sprint"), 2)])
    aws.clock.now = NOW + RACE_REFRESH_S * 1000  # read again: the close applies
    aws.invoke([kinesis_record(reading("ann", 2, race="sprint"), 3)])

    assert aws.standings("sprint") == {"ann": (2 * ONE, 2, 1)}
    assert reasons(aws) == [f"race closed: race sprint closed at {NOW + 500}"]


def test_a_rider_not_entered_is_a_dead_letter(aws: Aws) -> None:
    batch = [kinesis_record(reading("zed", 0), 1), kinesis_record(reading("ann", 0), 2)]

    assert aws.invoke(batch) == {"batchItemFailures": []}

    assert reasons(aws) == ["rider not entered: zed is not entered in race race-1"]
    assert aws.standings() == {"ann": (ONE, 1, 0)}


def test_seconds_at_and_past_the_duration_are_dead_letters(aws: Aws) -> None:
    race = new_race("short", starts_at=NOW - 70_000, duration_s=60, grace_s=30)
    aws.book.create_race(race)
    aws.enter("ann", race="short")
    batch = [kinesis_record(reading("ann", s, race="short"), s) for s in (59, 60, 61)]

    assert aws.invoke(batch) == {"batchItemFailures": []}

    assert aws.standings("short") == {"ann": (ONE, 1, 59)}
    assert reasons(aws) == [
        "second out of range: 60 is not below the race's 60 seconds",
        "second out of range: 61 is not below the race's 60 seconds",
    ]


def test_a_second_from_the_future_is_a_dead_letter_past_the_slack_exactly(aws: Aws) -> None:
    # 600.999 s into the race: the race clock reads 600 (whole seconds begun), slack 5 s.
    aws.clock.now = RACE_START + 600_999
    batch = [kinesis_record(reading("ann", s), s) for s in (599, 605, 606, 10_799)]

    assert aws.invoke(batch) == {"batchItemFailures": []}

    assert aws.standings() == {"ann": (2 * ONE, 2, 605)}
    assert reasons(aws) == [
        "from the future: second 606 arrived 600 s into the race (slack 5 s)",
        "from the future: second 10799 arrived 600 s into the race (slack 5 s)",
    ]


def test_a_reading_before_the_start_counts_only_within_the_slack(aws: Aws) -> None:
    aws.book.create_race(new_race("later", starts_at=NOW + 3_000))
    aws.enter("ann", race="later")
    batch = [kinesis_record(reading("ann", s, race="later"), s) for s in (0, 1, 2)]

    assert aws.invoke(batch) == {"batchItemFailures": []}

    # 3 s before the start the race clock reads -3: seconds up to -3 + 5 = 2 count.
    assert aws.standings("later") == {"ann": (3 * ONE, 3, 2)}
    assert reasons(aws) == []


def test_only_the_entered_device_counts_for_a_rider_that_names_one(aws: Aws) -> None:
    aws.enter("eve", device="bike-7")
    batch = [
        kinesis_record(reading("eve", 0, device="bike-8"), 1),
        kinesis_record(reading("eve", 1), 2),
        kinesis_record(reading("eve", 2, device="bike-7"), 3),
        kinesis_record(reading("ann", 0, device="bike-8"), 4),  # ann's entry names no device
    ]

    assert aws.invoke(batch) == {"batchItemFailures": []}

    assert aws.standings() == {"eve": (ONE, 1, 2), "ann": (ONE, 1, 0)}
    assert reasons(aws) == [
        "wrong device: eve rides on bike-7, the reading came from bike-8",
        "wrong device: eve rides on bike-7, the reading came from no device",
    ]


def test_seconds_after_the_final_second_are_dead_letters_in_any_order(aws: Aws) -> None:
    # The final comes after second 101 in the batch: 101 is refused all the same.
    first = [
        kinesis_record(reading("ann", 101), 1),
        kinesis_record(reading("ann", 100, event="final"), 2),
        kinesis_record(reading("ann", 99), 3),
    ]
    assert aws.invoke(first) == {"batchItemFailures": []}
    later = [
        kinesis_record(reading("ann", 102), 4),  # after the final: refused
        kinesis_record(reading("ann", 50), 5),  # late, before it: counts
        kinesis_record(reading("ann", 100, event="final"), 6),  # resent: a duplicate
    ]
    assert aws.invoke(later) == {"batchItemFailures": []}

    assert aws.standings() == {"ann": (3 * ONE, 3, 100)}
    ann = aws.standing("ann")
    assert ann is not None
    assert ann.final_second == 100
    assert reasons(aws) == [
        "after final: second 101 comes after ann's final second 100",
        "after final: second 102 comes after ann's final second 100",
    ]
    assert aws.race().finished == 1


def test_a_v1_reading_is_a_dead_letter_that_says_so(aws: Aws) -> None:
    v1 = {
        "v": 1,
        "eventId": "e-1",
        "raceId": "race-1",
        "riderId": "ann",
        "name": "Mallory",
        "classId": 6,
        "second": 0,
        "cadence": 90,
        "resistance": 50,
        "deviceTimestamp": RACE_START,
        "event": "update",
    }

    assert aws.invoke([kinesis_record(json.dumps(v1).encode(), 1)]) == {"batchItemFailures": []}

    assert reasons(aws) == [f"contract v1: {V1_REFUSED}"]
    assert aws.standings() == {}


def test_dead_letters_are_counted_per_reason_in_one_metric(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.enter("eve", device="bike-7")
    batch = [
        kinesis_record(reading("ann", 0, race="race-9"), 1),
        kinesis_record(reading("bob", 0, race="race-9"), 2),
        kinesis_record(reading("zed", 0), 3),
        kinesis_record(reading("eve", 0, device="bike-8"), 4),
        kinesis_record(reading("ann", 9_000), 5),
        kinesis_record(reading("ann", 0), 6),
        kinesis_record(b"not json", 7),
    ]
    capsys.readouterr()

    assert aws.invoke(batch) == {"batchItemFailures": []}

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    emf = [b for b in blobs if "_aws" in b]
    per_reason = {
        b["Reason"]: b["DeadLetters"]
        for b in emf
        if [m["Name"] for m in b["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["DeadLetters"]
    }
    assert per_reason == {
        "UnknownRace": [2.0],
        "NotEntered": [1.0],
        "WrongDevice": [1.0],
        "FromTheFuture": [1.0],
        "InvalidReading": [1.0],
    }
    dimensions = {
        tuple(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) for b in emf if "Reason" in b
    }
    assert dimensions == {("service", "Reason")}
    (totals,) = [b for b in emf if "DeadLettered" in b]
    assert (totals["DeadLettered"], totals["ReadingsApplied"]) == ([6.0], [1.0])
    assert aws.standings() == {"ann": (ONE, 1, 0)}


def test_refused_readings_cost_no_request_per_reading(aws: Aws) -> None:
    """Two hundred readings, half refused: the requests are per batch, not per reading."""
    batch: list[dict[str, Any]] = []
    for s in range(40):
        for i, rider in enumerate(("ann", "bob", "zed", "yan", "xia")):
            batch.append(kinesis_record(reading(rider, s), 10 * s + i))
    aws.faults.calls.clear()

    assert aws.invoke(batch) == {"batchItemFailures": []}

    # The race card: one BatchGetItem of the record, one Query of the entries. The standings:
    # one BatchGetItem (riders new to this environment), one transaction creating ann and bob
    # with the race's counts, one UpdateItem of lastReadingAt. The dead letters: 120 in 12
    # SendMessageBatch of 10.
    assert dict(aws.faults.calls) == {
        "BatchGetItem": 2,
        "Query": 1,
        "TransactWriteItems": 1,
        "UpdateItem": 1,
        "SendMessageBatch": 12,
    }
    assert len(aws.dead_letters()) == 120


def test_a_refused_readings_letter_carries_the_record_as_it_arrived(aws: Aws) -> None:
    """The letter carries the record's data exactly as it arrived (base64)."""
    refused = reading("zed", 0, event_id="zed-e1")
    record = kinesis_record(refused, 1)

    aws.invoke([record])

    [letter] = aws.dead_letters()
    assert base64.b64decode(letter["payload"]) == refused.to_json()
    assert letter["partition_key"] == "zed"


def test_no_dead_letter_metric_is_printed_when_metrics_are_off(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POWERTOOLS_METRICS_DISABLED`` (the local stack's quiet mode) turns off every metric,
    the per-reason ones too: Powertools' ``single_metric`` does not read it by itself."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    batch = [kinesis_record(reading("ann", 0, race="race-9"), 1)]
    capsys.readouterr()

    assert aws.invoke(batch) == {"batchItemFailures": []}

    assert "DeadLetters" not in capsys.readouterr().out
