"""Adapters of the processor's side ports: dead-letter stores and finish notifiers."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared import names
from shared.ports import DeadLetter, TransientError
from shared.standings import FinalResult

SQS_BATCH = 10


def letter_body(letter: DeadLetter) -> str:
    return json.dumps({"v": 1, **asdict(letter)}, separators=(",", ":"))


class SqsDeadLetters:
    """One SQS message per dead letter (SendMessageBatch, 10 a call; failed entries resent)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, letters: Sequence[DeadLetter]) -> None:
        for start in range(0, len(letters), SQS_BATCH):
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": letter_body(letter),
                    "MessageAttributes": {
                        "reason": {"DataType": "String", "StringValue": letter.reason[:256]},
                    },
                }
                for i, letter in enumerate(letters[start : start + SQS_BATCH])
            ]
            for attempt in range(4):
                try:
                    response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
                except (ClientError, BotoCoreError) as exc:
                    raise TransientError(f"SQS dead-letter queue: {exc}") from exc
                failed = {f["Id"] for f in response.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise TransientError(f"SQS dead-letter queue kept failing {len(entries)} entries")


class S3DeadLetters:
    """One JSON-lines object per batch, at a key derived from the batch, so a retry overwrites
    the same object instead of adding a second copy."""

    def __init__(self, client: Any, bucket: str, prefix: str = "dead-letters") -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def key_for(self, letters: Sequence[DeadLetter]) -> str:
        first = letters[0]
        day = datetime.fromtimestamp(first.approximate_arrival, UTC).strftime("%Y-%m-%d")
        return f"{self._prefix}/date={day}/{first.shard_id}/{first.sequence_number}.jsonl"

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        body = "".join(letter_body(letter) + "\n" for letter in letters).encode()
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self.key_for(letters),
                Body=body,
                ContentType="application/x-ndjson",
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"S3 dead-letter bucket: {exc}") from exc


def result_payload(result: FinalResult) -> bytes:
    return json.dumps(
        {
            "raceId": result.race_id,
            "riderId": result.rider_id,
            "name": result.name,
            "classId": result.class_id,
            "points": result.points,
            "seconds": result.seconds,
            "lastSecond": result.last_second,
            "rankOverall": result.rank_overall,
            "rankClass": result.rank_class,
            "finishedAt": result.finished_at,
        },
        separators=(",", ":"),
    ).encode()


class IotNotifier:
    """Publishes the result on ``breakaway/races/{raceId}/riders/{riderId}/result`` (QoS 1)."""

    def __init__(self, client: Any) -> None:
        self._iot = client

    def publish(self, result: FinalResult) -> None:
        try:
            self._iot.publish(
                topic=names.result_topic(result.race_id, result.rider_id),
                qos=1,
                payload=result_payload(result),
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"IoT publish: {exc}") from exc


class LogNotifier:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def publish(self, result: FinalResult) -> None:
        self._logger.info("rider finished", extra={"result": asdict(result)})


class NoNotifier:
    def publish(self, result: FinalResult) -> None:
        return None
