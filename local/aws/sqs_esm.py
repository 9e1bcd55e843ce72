"""The local Lambda event source mapping for SQS: poll a queue, invoke the handler, delete.

What AWS documents for an SQS event source mapping (standard queue), and what this does:

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
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.aws.lambda_runtime import LambdaContext, function_arn

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
SqsMessage = dict[str, Any]
"""A message as ReceiveMessage returns it through boto3 (MessageId, ReceiptHandle, Body,
MD5OfBody, Attributes, MessageAttributes)."""

MAX_RECEIVE = 10
"""ReceiveMessage's MaxNumberOfMessages limit; also DeleteMessageBatch's entry limit."""
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's payload limit for a synchronous invocation (6 MB): a batch's event stays within."""
_EVENT_OVERHEAD = len('{"Records":[]}')


@dataclass(frozen=True)
class SqsMappingConfig:
    """The event source mapping's settings (names as in CreateEventSourceMapping)."""

    function_name: str
    batch_size: int = 10
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = True
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
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1-10000, got {self.batch_size}")
        if not 0 <= self.maximum_batching_window_s <= 300:
            raise ValueError(
                f"maximum_batching_window_s must be 0-300, got {self.maximum_batching_window_s}"
            )
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
class SqsMappingStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    """Invocations whose response left some or all messages in the queue (without an error)."""
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
    """The messageIds a ``ReportBatchItemFailures`` response keeps in the queue ([]: none).

    Success: a null or empty response, a null or empty ``batchItemFailures``. Otherwise the
    reported messageIds; an empty, null, missing or unknown ``itemIdentifier`` (or a
    ``batchItemFailures`` that is not a list) fails the whole batch (every id).
    """
    if not response or not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures")
    if not failures:
        return []
    if not isinstance(failures, list):
        return list(message_ids)
    known = set(message_ids)
    reported: set[str] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in known:
            return list(message_ids)
        reported.add(ident)
    return [i for i in message_ids if i in reported]


@dataclass(frozen=True)
class SqsOutcome:
    """An invocation's result: ``failed_message_ids`` are the messages to leave in the queue
    (all of them on a function error); ``error`` is set on a function error."""

    failed_message_ids: tuple[str, ...]
    error: str | None = None
    response: Any = None


@dataclass(frozen=True)
class _Buffered:
    message: SqsMessage
    size: int


class SqsPoller:
    """One poller: receives messages into its buffer and delivers one batch at a time."""

    def __init__(self, mapping: SqsEventSourceMapping, name: str) -> None:
        self.mapping = mapping
        self.name = name
        self.thread = threading.Thread(target=self._run, name=f"sqs-esm-{name}", daemon=True)
        self.idle = False
        """True when the last ReceiveMessage returned nothing and nothing is buffered or in
        flight."""
        self.buffer: list[_Buffered] = []
        self.first_at: float | None = None

    def _run(self) -> None:
        try:
            self._poll()
        except Exception:
            log.exception("sqs esm %s: poller failed", self.name)
        finally:
            left = [b.message for b in self.buffer]
            self.buffer = []
            self.first_at = None
            if left:
                self.mapping.release(left)

    def _window_left(self) -> float:
        if self.first_at is None:
            return self.mapping.config.maximum_batching_window_s
        waited = time.monotonic() - self.first_at
        return max(0.0, self.mapping.config.maximum_batching_window_s - waited)

    def _poll(self) -> None:
        m = self.mapping
        cfg = m.config
        while not m.stopping.is_set():
            wait = cfg.wait_time_s
            if self.buffer:  # long-poll no further than the window's end
                wait = min(wait, int(self._window_left()))
            got = self._receive(wait)
            if got is None:
                m.stopping.wait(cfg.error_delay_s)
                continue
            if not self.buffer:
                self.idle = True
                if wait == 0:
                    m.stopping.wait(cfg.poll_interval_s)
                continue
            if not self._ready():
                if not got and wait == 0:
                    m.stopping.wait(min(cfg.poll_interval_s, self._window_left()))
                continue
            if m.stopping.is_set():
                return  # not sent yet: released by _run
            m.deliver(self._take(), self.name)

    def _receive(self, wait: int) -> int | None:
        """One ReceiveMessage into the buffer: how many messages came (None: the call failed)."""
        m = self.mapping
        room = m.config.batch_size - len(self.buffer)
        try:
            resp = m.sqs.receive_message(
                QueueUrl=m.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, room),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:
            if not m.stopping.is_set():
                log.warning("sqs esm %s: ReceiveMessage failed: %s", self.name, exc)
            return None
        messages: list[SqsMessage] = resp.get("Messages", [])
        if messages:
            self.idle = False
            if self.first_at is None:
                self.first_at = time.monotonic()
            for msg in messages:
                size = record_size(lambda_record(msg, m.queue_arn, m.region))
                self.buffer.append(_Buffered(msg, size))
        return len(messages)

    def _ready(self) -> bool:
        cfg = self.mapping.config
        return (
            len(self.buffer) >= cfg.batch_size
            or _EVENT_OVERHEAD + sum(b.size for b in self.buffer) > MAX_PAYLOAD_BYTES
            or self._window_left() <= 0
        )

    def _take(self) -> list[SqsMessage]:
        """The next batch: the buffer's first messages, up to batch_size and the payload limit."""
        cfg = self.mapping.config
        total = _EVENT_OVERHEAD
        n = 0
        for b in self.buffer[: cfg.batch_size]:
            if n and total + b.size > MAX_PAYLOAD_BYTES:
                break
            total += b.size
            n += 1
        batch = [b.message for b in self.buffer[:n]]
        self.buffer = self.buffer[n:]
        self.first_at = time.monotonic() if self.buffer else None
        return batch


class SqsEventSourceMapping:
    """An SQS event source mapping running in threads of this process."""

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
        self.sqs = sqs
        self.queue_url = queue_url
        if (handler is None) == (environment_factory is None):
            raise ValueError("give the mapping a handler or an environment factory, not both")
        if environment_factory is None:
            assert handler is not None
            only: Handler = handler
            environment_factory = lambda _poller: only  # noqa: E731
        self.environment_factory = environment_factory
        """Makes the environment a poller's invocations go to (on first use): one per poller
        runs ``maximum_concurrency`` invocations in parallel as Lambda does; a plain
        ``handler`` serves every poller."""
        self.environments: dict[str, Handler] = {}
        self.config = config
        self.region = region
        self.clock = clock
        self.stats = SqsMappingStats()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn: str = attrs["Attributes"]["QueueArn"]
        self.function_arn = function_arn(config.function_name, region)
        self.pollers: list[SqsPoller] = []

    def start(self) -> None:
        self.pollers = [
            SqsPoller(self, f"poller-{i}") for i in range(self.config.maximum_concurrency)
        ]
        for poller in self.pollers:
            poller.thread.start()

    @property
    def idle(self) -> bool:
        """No batch buffered or in flight, and every poller's last ReceiveMessage returned
        nothing (messages still invisible after a failure do not count)."""
        return bool(self.pollers) and all(p.idle for p in self.pollers)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling: returns once every poller has finished its batch in flight (deleted
        in full) and its ReceiveMessage (at most ``wait_time_s``), or after ``timeout``."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for poller in self.pollers:
            poller.thread.join(max(0.0, deadline - time.monotonic()))

    def event(self, messages: list[SqsMessage]) -> dict[str, Any]:
        return {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}

    def _handler_for(self, poller: str) -> Handler:
        with self._lock:
            found = self.environments.get(poller)
            if found is None:
                found = self.environments[poller] = self.environment_factory(poller)
        return found

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def invoke(self, messages: list[SqsMessage], poller: str = "direct") -> SqsOutcome:
        """Invoke the handler with one batch (synchronously, as the mapping does); deletes
        nothing (see :meth:`deliver`)."""
        event = self.event(messages)
        context = LambdaContext(self.config.function_name, self.region)
        sent = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        with self._lock:
            self.stats.invocations += 1
            if all(sent):
                self.stats.message_ages_s.append(max(0.0, self.clock() - min(sent) / 1000))
        ids = [m["MessageId"] for m in messages]
        try:
            response = self._handler_for(poller)(event, context)
            response = json.loads(json.dumps(response)) if response is not None else None
        except Exception as exc:
            self._count(function_errors=1)
            log.warning("sqs esm %s: function error: %s: %s", poller, type(exc).__name__, exc)
            return SqsOutcome(tuple(ids), error=f"{type(exc).__name__}: {exc}")
        if not self.config.report_batch_item_failures:
            self._count(messages_delivered=len(messages))
            return SqsOutcome((), response=response)
        failed = failed_items(response, ids)
        if failed:
            self._count(partial_failures=1)
        self._count(messages_delivered=len(messages) - len(failed))
        return SqsOutcome(tuple(failed), response=response)

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
        self._count(messages_deleted=deleted)
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
