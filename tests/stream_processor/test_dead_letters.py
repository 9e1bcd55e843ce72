"""The dead-letter queue takes every poison record, whatever its size (moto's SQS).

SendMessageBatch takes at most 10 entries and at most one message's size in all, so dead
letters go out in batches sized by bytes; a letter too large for one message goes out with its
payload cut short, and with its size and SHA-256, so it can still be matched with the record in
the archive (Firehose keeps every record the stream accepted).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.stream_processor.adapters import SQS_MESSAGE_BUDGET, SqsDeadLetters
from shared.ports import DeadLetter


@pytest.fixture
def sqs() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("sqs", region_name="eu-west-1")
        url = client.create_queue(QueueName="dead-letters")["QueueUrl"]
        yield client, url


def letter(size: int, n: int = 0) -> DeadLetter:
    raw = bytes([65 + n % 26]) * size
    return DeadLetter(
        payload=base64.b64encode(raw).decode(),
        reason="reading: payload is too large",
        shard_id="shardId-000000000000",
        sequence_number=f"4960{n:04d}",
        partition_key=f"rider-{n:05d}",
        event_source_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry",
        approximate_arrival=1_765_000_000.0,
    )


def drain(client: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies.extend(json.loads(m["Body"]) for m in got)
        for m in got:
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


class Counting:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.batches: list[int] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        entries = kwargs["Entries"]
        self.batches.append(sum(len(e["MessageBody"]) for e in entries))
        return self.client.send_message_batch(**kwargs)


def test_eight_iot_sized_poison_records_are_all_dead_lettered(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    counting = Counting(client)
    letters = [letter(128 * 1024, n) for n in range(8)]
    SqsDeadLetters(counting, url).send(letters)
    bodies = drain(client, url)
    assert sorted(b["sequence_number"] for b in bodies) == [f"4960{n:04d}" for n in range(8)]
    assert {b["payload"] for b in bodies} == {x.payload for x in letters}  # whole, not cut
    assert all(size <= SQS_MESSAGE_BUDGET for size in counting.batches)
    assert len(counting.batches) == 8  # 171 KB of base64 each: one a batch


def test_small_letters_still_go_ten_a_batch(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    counting = Counting(client)
    SqsDeadLetters(counting, url).send([letter(100, n) for n in range(25)])
    assert len(counting.batches) == 3
    assert len(drain(client, url)) == 25


def test_a_record_too_large_for_any_message_goes_out_cut_with_its_size_and_hash(
    sqs: tuple[Any, str],
) -> None:
    client, url = sqs
    big = letter(800 * 1024)
    raw = base64.b64decode(big.payload)
    SqsDeadLetters(client, url).send([big, letter(10, 1)])
    bodies = {b["sequence_number"]: b for b in drain(client, url)}
    cut = bodies["49600000"]
    assert cut["payload_truncated"] is True
    assert cut["payload_bytes"] == 800 * 1024
    assert cut["payload_sha256"] == hashlib.sha256(raw).hexdigest()
    assert big.payload.startswith(cut["payload"])
    assert len(json.dumps(cut, separators=(",", ":"))) <= SQS_MESSAGE_BUDGET
    assert cut["reason"] == big.reason
    whole = bodies["49600001"]
    assert "payload_truncated" not in whole
    assert whole["payload"] == letter(10, 1).payload
