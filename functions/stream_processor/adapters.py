"""Adapters of the processor's side port: the dead-letter stores."""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from shared.ports import DeadLetter, TransientError
from shared.retry import Backoff, resend

SQS_BATCH = 10
SQS_MESSAGE_BUDGET: Final = 256 * 1024
"""Bytes per message and per SendMessageBatch (bodies and attributes together): SQS's limit for
both, and the smallest maximum message size a queue can be set to allow (up to 1 MiB), so the
letters fit whatever the queue's setting."""
SEND_BACKOFF: Final = Backoff(attempts=4, base_s=0.05)


def letter_body(letter: DeadLetter, budget: int = SQS_MESSAGE_BUDGET) -> str:
    """The letter as JSON; a payload that would not fit ``budget`` bytes is cut to fit, and
    the letter says so, with the whole record's size and SHA-256 (to find it in the archive)."""
    whole = json.dumps({"v": 1, **asdict(letter)}, separators=(",", ":"))
    if len(whole.encode()) <= budget:
        return whole
    try:
        raw = binascii.a2b_base64(letter.payload, strict_mode=True)
    except binascii.Error:
        raw = letter.payload.encode()
    fields: dict[str, Any] = {
        "v": 1,
        **asdict(letter),
        "payload": "",
        "payload_truncated": True,
        "payload_bytes": len(raw),
        "payload_sha256": hashlib.sha256(raw).hexdigest(),
    }
    room = budget - len(json.dumps(fields, separators=(",", ":")).encode())
    fields["payload"] = letter.payload[: max(room, 0)]  # base64: one byte a character
    return json.dumps(fields, separators=(",", ":"))


def _entry_bytes(entry: dict[str, Any]) -> int:
    size = len(entry["MessageBody"].encode())
    for name, value in entry["MessageAttributes"].items():
        size += len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
    return size


def _entry(i: int, letter: DeadLetter) -> dict[str, Any]:
    attributes = {"reason": {"DataType": "String", "StringValue": letter.reason[:256]}}
    entry: dict[str, Any] = {"Id": str(i), "MessageBody": "", "MessageAttributes": attributes}
    entry["MessageBody"] = letter_body(letter, SQS_MESSAGE_BUDGET - _entry_bytes(entry))
    return entry


def _by_size(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive entries in batches of at most 10 and at most the budget in bytes."""
    batches: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        n = _entry_bytes(entry)
        if not batches or len(batches[-1]) == SQS_BATCH or size + n > SQS_MESSAGE_BUDGET:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += n
    return batches


class SqsDeadLetters:
    """One SQS message per dead letter, sent in batches sized by count and bytes (failed
    entries resent); a letter too large for a message goes with its payload cut."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, letters: Sequence[DeadLetter]) -> None:
        entries = [_entry(i, letter) for i, letter in enumerate(letters)]
        for batch in _by_size(entries):
            resend(self._send_batch, batch, SEND_BACKOFF, what="SQS dead-letter queue")

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
