"""Adapters of the processor's side ports: dead-letter stores and the finish queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.finishing import Finish, encode
from shared.ports import DeadLetter, TransientError
from shared.retry import Backoff, resend

SQS_BATCH = 10
SEND_BACKOFF: Final = Backoff(attempts=4, base_s=0.05)


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
            resend(self._send_batch, entries, SEND_BACKOFF, what="SQS dead-letter queue")

    def _send_batch(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries SendMessageBatch reported as failed (it answers 200 for the others)."""
        try:
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"SQS dead-letter queue: {exc}") from exc
        failed = {f["Id"] for f in response.get("Failed", [])}
        return [e for e in entries if e["Id"] in failed]


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


class SqsFinishQueue:
    """The finish queue: one message per batch's finishing riders (more only past
    ``MAX_FINISHES_PER_MESSAGE``), each sent with SendMessage (the SDK retries throttling)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, finishes: Sequence[Finish]) -> None:
        for body in encode(finishes):
            try:
                self._sqs.send_message(QueueUrl=self._url, MessageBody=body)
            except (ClientError, BotoCoreError) as exc:
                raise TransientError(f"SQS finish queue: {exc}") from exc
