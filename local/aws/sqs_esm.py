"""Lambda's event source mapping for SQS, locally: poll a queue, invoke the handler, delete.

What every mapping does (batching, invoking, partial batch responses, stopping) is in
:mod:`local.aws.lambda_esm`. What AWS documents for an SQS mapping (standard queue), and what
this does:

- pollers long-poll the queue with ReceiveMessage (up to 10 messages a call, every system
  attribute and message attribute); ``maximum_concurrency`` pollers run at once, each invoking
  the function synchronously with one batch at a time;
- a batch is sent when ``batch_size`` messages are buffered, when ``maximum_batching_window_s``
  has passed since the first buffered message (window 0: with what one ReceiveMessage
  returned), or when the event would pass Lambda's 6 MB invocation payload limit (the
  messages that do not fit start the next batch). A ``batch_size`` above 10 needs a window of
  at least 1 s;
- the event is Lambda's SQS event (``Records[].messageId``, ``receiptHandle``, ``body``,
  ``attributes`` as SQS returned them, ``messageAttributes`` with lowerCamelCase keys and
  base64 binary values, ``md5OfBody``, ``eventSource`` ``aws:sqs``, ``eventSourceARN``,
  ``awsRegion``), the context a Lambda context, a fresh one for every invocation;
- success: the handler returns normally and reports no failures (nothing, ``{}``, an empty or
  null ``batchItemFailures``): every message of the batch is deleted (DeleteMessageBatch, 10
  at a time);
- partial failure (``ReportBatchItemFailures``): the messages whose ``messageId`` is an
  ``itemIdentifier`` of ``batchItemFailures`` stay in the queue, the others are deleted. An
  ``itemIdentifier`` that is empty, null, missing or not a message of the batch (or a
  ``batchItemFailures`` that is not a list) fails the whole batch: nothing is deleted. Without
  ``ReportBatchItemFailures`` the response is ignored;
- function error (the handler raises): nothing is deleted. The messages stay invisible until
  their visibility timeout expires and are then received again, with a higher
  ``ApproximateReceiveCount``; after the queue's ``maxReceiveCount`` receives SQS moves them
  to the dead-letter queue. Both are SQS's own doing: the mapping only refrains from deleting;
- :meth:`SqsEventSourceMapping.stop` lets a batch in flight finish and be deleted in full;
  messages buffered but not yet sent to the function are made visible again at once.

Unlike Lambda: no FIFO queues (message groups), no filter criteria, no scaling of the pollers
with the backlog (``maximum_concurrency`` pollers run from the start), and the long poll is
``wait_time_s`` (Lambda's is 20 s).
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.aws.lambda_esm import Batch, EventSourceMapping, MappingConfig, MappingStats, Poller
from local.aws.lambda_esm import reported_failures as _reported_failures
from local.aws.lambda_runtime import Handler

log = logging.getLogger(__name__)

SqsMessage = dict[str, Any]
"""A message as ReceiveMessage returns it through boto3 (MessageId, ReceiptHandle, Body,
MD5OfBody, Attributes, MessageAttributes)."""

MAX_RECEIVE = 10
"""ReceiveMessage's MaxNumberOfMessages limit; also DeleteMessageBatch's entry limit."""
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's payload limit for a synchronous invocation (6 MB): a batch's event stays within."""
_EVENT_OVERHEAD = len('{"Records":[]}')


@dataclass(frozen=True, kw_only=True)
class SqsMappingConfig(MappingConfig):
    """The SQS mapping's settings (names as in CreateEventSourceMapping)."""

    batch_size: int = 10
    maximum_concurrency: int = 1
    """How many batches may be in flight at once: one poller thread each, invoking
    synchronously (AWS: ``ScalingConfig.MaximumConcurrency``, 2-1000; locally 1 is allowed)."""
    wait_time_s: int = 1
    """ReceiveMessage's long-poll wait (Lambda uses 20 s; short here so that stop is prompt)."""
    poll_interval_s: float = 0.05
    """The pause after an empty ReceiveMessage that did not long-poll (``wait_time_s`` 0, or
    the batching window's last second)."""
    error_delay_s: float = 1.0
    """The pause after a failed ReceiveMessage."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size > MAX_RECEIVE and self.maximum_batching_window_s < 1:
            raise ValueError(
                "a batch_size above 10 requires maximum_batching_window_s of at least 1 s "
                f"(got batch_size {self.batch_size}, window {self.maximum_batching_window_s})"
            )
        if not 1 <= self.maximum_concurrency <= 1000:
            raise ValueError(f"maximum_concurrency must be 1-1000, got {self.maximum_concurrency}")
        if not 0 <= self.wait_time_s <= 20:
            raise ValueError(f"wait_time_s must be 0-20 (ReceiveMessage), got {self.wait_time_s}")
        if self.poll_interval_s < 0 or self.error_delay_s < 0:
            raise ValueError("poll_interval_s and error_delay_s must be >= 0")


@dataclass
class SqsMappingStats(MappingStats):
    messages_delivered: int = 0
    """Messages the function processed successfully (the ones the mapping deletes)."""
    messages_deleted: int = 0
    """Messages DeleteMessageBatch reported deleted."""
    message_ages_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=200_000)
    )
    """Per invocation: the age of the batch's oldest message (from its SentTimestamp)."""


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's event has it, from ReceiveMessage's form
    (``StringValue``/``BinaryValue`` bytes/``DataType`` -> lowerCamelCase, binary base64)."""
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
    out["dataType"] = value["DataType"]
    return out


def lambda_record(message: SqsMessage, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from one ReceiveMessage message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: lambda_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def record_size(record: dict[str, Any]) -> int:
    """The bytes a record adds to the event's JSON (with its separating comma)."""
    return len(json.dumps(record, separators=(",", ":")).encode()) + 1


def failed_items(response: Any, message_ids: list[str]) -> list[str]:
    """The messageIds a ``ReportBatchItemFailures`` response keeps in the queue ([]: none;
    every id if the response fails the whole batch), in batch order."""
    return [message_ids[i] for i in _reported_failures(response, message_ids)]


@dataclass(frozen=True)
class SqsOutcome:
    """An invocation's result: ``failed_message_ids`` are the messages to leave in the queue
    (all of them on a function error); ``error`` is set on a function error."""

    failed_message_ids: tuple[str, ...]
    error: str | None = None
    response: Any = None


class SqsPoller(Poller[SqsMessage]):
    """One poller: receives messages into its batch and delivers one batch at a time."""

    mapping: SqsEventSourceMapping

    def __init__(self, mapping: SqsEventSourceMapping, name: str) -> None:
        cfg = mapping.config
        batch: Batch[SqsMessage] = Batch(
            cfg.batch_size,
            cfg.maximum_batching_window_s,
            max_bytes=MAX_PAYLOAD_BYTES,
            size_of=lambda msg: record_size(lambda_record(msg, mapping.queue_arn, mapping.region)),
            overhead_bytes=_EVENT_OVERHEAD,
        )
        super().__init__(mapping, name, batch)
        self._wait = 0

    @property
    def error_delay_s(self) -> float:
        return self.mapping.config.error_delay_s

    def waited_in_fetch(self) -> bool:
        return self._wait > 0

    def fetch(self) -> int | None:
        """One ReceiveMessage, long-polling no further than the window's end."""
        m = self.mapping
        self._wait = m.config.wait_time_s
        if self.batch:
            self._wait = min(self._wait, int(self.batch.window_left()))
        try:
            resp = m.sqs.receive_message(
                QueueUrl=m.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, self.batch.room),
                WaitTimeSeconds=self._wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:
            if not m.stopping.is_set():
                log.warning("sqs esm %s: ReceiveMessage failed: %s", self.name, exc)
            return None
        messages: list[SqsMessage] = resp.get("Messages", [])
        self.batch.add(messages)
        return len(messages)

    def deliver(self, records: list[SqsMessage]) -> None:
        self.mapping.deliver(records, self.name)

    def end(self) -> None:
        left = self.batch.drain()
        if left:
            self.mapping.release(left)


class SqsEventSourceMapping(EventSourceMapping[SqsMessage, SqsMappingStats]):
    """An SQS event source mapping running in threads of this process: ``maximum_concurrency``
    pollers, each (with an ``environment_factory``) with an execution environment of its own."""

    log_name = "sqs esm"
    config: SqsMappingConfig

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        handler: Handler | None = None,
        environment_factory: Callable[[str], Handler] | None = None,
        config: SqsMappingConfig,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            handler=handler,
            environment_factory=environment_factory,
            config=config,
            stats=SqsMappingStats(),
            region=region,
            clock=clock,
        )
        self.sqs = sqs
        self.queue_url = queue_url
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn: str = attrs["Attributes"]["QueueArn"]

    def make_pollers(self) -> list[Poller[SqsMessage]]:
        return [SqsPoller(self, f"poller-{i}") for i in range(self.config.maximum_concurrency)]

    @property
    def idle(self) -> bool:
        """No batch buffered or in flight, and every poller's last ReceiveMessage returned
        nothing (messages still invisible after a failure do not count)."""
        return bool(self.pollers) and super().idle

    def event(self, messages: list[SqsMessage]) -> dict[str, Any]:
        return {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}

    def invoke(self, messages: list[SqsMessage], poller: str = "direct") -> SqsOutcome:
        """Invoke the handler with one batch (synchronously, as the mapping does); deletes
        nothing (see :meth:`deliver`)."""
        sent = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        if all(sent):
            self.stats.message_ages_s.append(max(0.0, self.clock() - min(sent) / 1000))
        ids = [m["MessageId"] for m in messages]
        result = self.call(poller, self.event(messages), ids)
        failed = tuple(ids[i] for i in result.failed)
        if result.error is None:
            self.count(messages_delivered=len(messages) - len(failed))
        return SqsOutcome(failed, error=result.error, response=result.response)

    def deliver(self, messages: list[SqsMessage], poller: str = "direct") -> SqsOutcome:
        """Invoke the handler with one batch, then delete every message it did not fail."""
        outcome = self.invoke(messages, poller)
        keep = set(outcome.failed_message_ids)
        self.delete([m for m in messages if m["MessageId"] not in keep])
        return outcome

    def delete(self, messages: list[SqsMessage]) -> int:
        """DeleteMessageBatch, 10 at a time: how many were deleted."""
        deleted = 0
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            try:
                resp = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                log.warning("sqs esm: DeleteMessageBatch failed: %s", exc)
                continue
            for failure in resp.get("Failed", []):
                log.warning(
                    "sqs esm: cannot delete %s: %s",
                    chunk[int(failure["Id"])]["MessageId"],
                    failure.get("Message", failure.get("Code")),
                )
            deleted += len(resp.get("Successful", []))
        self.count(messages_deleted=deleted)
        return deleted

    def release(self, messages: list[SqsMessage]) -> None:
        """Make received messages that were never sent to the function visible again."""
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                log.warning("sqs esm: cannot release %d messages: %s", len(chunk), exc)
