"""The local Lambda event source mapping for Kinesis: poll every shard, invoke the handler.

What AWS documents for a Kinesis event source mapping, and what this does:

- one poller per shard, one batch in flight per shard (ParallelizationFactor 1), so a shard's
  records reach the function in order;
- a batch is sent when ``batch_size`` records are buffered or ``maximum_batching_window_s`` has
  passed since the first buffered record (window 0: as soon as GetRecords returns records);
- the event is Lambda's Kinesis event (``Records[].kinesis.data`` base64, ``eventID``
  ``shardId-...:sequenceNumber``, ...), the context a Lambda context;
- success: the handler returns normally and, with ``ReportBatchItemFailures``, reports an empty
  or null ``batchItemFailures`` (or returns nothing). The checkpoint moves past the batch;
- partial failure (``ReportBatchItemFailures``): the checkpoint is the lowest reported sequence
  number and every record from it on is delivered again. An ``itemIdentifier`` that is empty,
  null or not a sequence number of the batch fails the whole batch;
- function error (the handler raises): the whole batch is retried; with
  ``bisect_batch_on_function_error`` it is split in two first, and splitting does not consume
  retry attempts. With both options, a partial failure splits the batch at the reported record
  and only the rest is retried;
- ``maximum_retry_attempts`` (-1: until the records expire) and ``maximum_record_age_s``
  (-1: no limit): records past either are discarded and, with an on-failure destination, an
  invocation record is sent there (S3: with the batch's records as ``payload``; SQS: metadata
  only), then the shard moves on.
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
from datetime import UTC, datetime
from typing import Any, Literal

from local.aws.lambda_runtime import ACCOUNT_ID, LambdaContext, function_arn

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
KinesisRecord = dict[str, Any]
"""A record as GetRecords returns it through boto3 (Data bytes, SequenceNumber, ...)."""

CONDITION_RETRIES = "RetryAttemptsExhausted"
CONDITION_AGE = "RecordAgeExceeded"


@dataclass(frozen=True)
class MappingConfig:
    """The event source mapping's settings (names as in CreateEventSourceMapping)."""

    function_name: str
    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = True
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: float = -1
    on_failure_destination: str | None = None
    """``s3:<bucket>`` or ``sqs:<queue url>``."""
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    poll_interval_s: float = 0.25
    """How long an empty shard waits before the next GetRecords (4 calls/s, under the 5/s
    shard limit)."""
    retry_delay_s: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be 1-10000")
        if not 0 <= self.maximum_batching_window_s <= 300:
            raise ValueError("maximum_batching_window_s must be 0-300")
        if self.maximum_retry_attempts < -1 or self.maximum_retry_attempts > 10_000:
            raise ValueError("maximum_retry_attempts must be -1 or 0-10000")
        if self.maximum_record_age_s != -1 and self.maximum_record_age_s < 0:
            raise ValueError("maximum_record_age_s must be -1 or >= 0")
        dest = self.on_failure_destination
        if dest is not None and not dest.startswith(("s3:", "sqs:")):
            raise ValueError("on_failure_destination must be s3:<bucket> or sqs:<queue url>")


@dataclass
class MappingStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    records_delivered: int = 0
    records_discarded: int = 0
    iterator_ages_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=200_000)
    )


def _arrival(record: KinesisRecord) -> float:
    ts = record["ApproximateArrivalTimestamp"]
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def lambda_record(
    record: KinesisRecord, shard_id: str, stream_arn: str, region: str
) -> dict[str, Any]:
    """One record of Lambda's Kinesis event, from one GetRecords record."""
    seq = record["SequenceNumber"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": seq,
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": round(_arrival(record), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT_ID}:role/breakaway-local-processor",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


@dataclass(frozen=True)
class Outcome:
    """An invocation's result: ``failed_from`` is None on success, else the index from which
    the records must be delivered again; ``error`` is set on a function error."""

    failed_from: int | None
    error: str | None = None
    response: Any = None


def interpret_response(response: Any, sequence_numbers: list[str]) -> int | None:
    """Where a ``ReportBatchItemFailures`` response puts the checkpoint (None: all succeeded).

    Success: a null or empty response, a null or empty ``batchItemFailures``. Otherwise the
    lowest reported sequence number; an empty, null or unknown ``itemIdentifier`` (or a
    malformed list) fails the whole batch (index 0).
    """
    if not response:
        return None
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        return 0
    positions = {seq: i for i, seq in enumerate(sequence_numbers)}
    lowest: int | None = None
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in positions:
            return 0
        index = positions[ident]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


class ShardPoller:
    """Reads one shard and delivers its batches in order, with the mapping's error handling."""

    def __init__(self, mapping: EventSourceMapping, shard_id: str) -> None:
        self.mapping = mapping
        self.shard_id = shard_id
        self.thread = threading.Thread(target=self._run, name=f"esm-{shard_id}", daemon=True)
        self.idle = False
        """True when the last GetRecords found nothing and nothing is buffered or in flight."""

    # --- reading ------------------------------------------------------------------------
    def _run(self) -> None:
        m = self.mapping
        cfg = m.config
        try:
            iterator = m.kinesis.get_shard_iterator(
                StreamName=m.stream_name,
                ShardId=self.shard_id,
                ShardIteratorType=cfg.starting_position,
            )["ShardIterator"]
        except Exception:
            log.exception("esm %s: cannot get a shard iterator", self.shard_id)
            return
        buffer: list[KinesisRecord] = []
        first_at: float | None = None
        while not m.stopping.is_set():
            got = 0
            if len(buffer) < cfg.batch_size:
                try:
                    resp = m.kinesis.get_records(
                        ShardIterator=iterator, Limit=min(10_000, cfg.batch_size - len(buffer))
                    )
                except Exception as exc:
                    if m.stopping.is_set():
                        return
                    log.warning("esm %s: GetRecords failed: %s", self.shard_id, exc)
                    m.stopping.wait(cfg.poll_interval_s)
                    continue
                iterator = resp["NextShardIterator"]
                got = len(resp["Records"])
                if got:
                    buffer.extend(resp["Records"])
                    if first_at is None:
                        first_at = time.monotonic()
            if not buffer:
                self.idle = True
                m.stopping.wait(cfg.poll_interval_s)
                continue
            self.idle = False
            assert first_at is not None
            waited = time.monotonic() - first_at
            if len(buffer) < cfg.batch_size and waited < cfg.maximum_batching_window_s:
                pause = cfg.maximum_batching_window_s - waited
                if not got:
                    m.stopping.wait(min(cfg.poll_interval_s, pause))
                continue
            batch, buffer = buffer[: cfg.batch_size], buffer[cfg.batch_size :]
            first_at = time.monotonic() if buffer else None
            self.deliver(batch)

    # --- delivering ---------------------------------------------------------------------
    def deliver(self, batch: list[KinesisRecord]) -> None:
        """Deliver one batch until every record succeeded or was discarded."""
        m = self.mapping
        cfg = m.config
        work: collections.deque[tuple[list[KinesisRecord], int]] = collections.deque([(batch, 0)])
        while work:
            if m.stopping.is_set():
                return
            records, retries = work.popleft()
            if cfg.maximum_record_age_s >= 0:
                now = m.clock()
                expired = [r for r in records if now - _arrival(r) > cfg.maximum_record_age_s]
                if expired:
                    self.discard(expired, CONDITION_AGE, retries)
                    records = [r for r in records if now - _arrival(r) <= cfg.maximum_record_age_s]
                if not records:
                    continue
            outcome = m.invoke(self.shard_id, records)
            if outcome.failed_from is None:
                continue
            if (
                outcome.error is not None
                and cfg.bisect_batch_on_function_error
                and len(records) > 1
            ):
                middle = len(records) // 2
                work.appendleft((records[middle:], retries))
                work.appendleft((records[:middle], retries))
                continue
            failed = records[outcome.failed_from :]
            if cfg.maximum_retry_attempts >= 0 and retries >= cfg.maximum_retry_attempts:
                self.discard(failed, CONDITION_RETRIES, retries, outcome)
                continue
            m.stopping.wait(cfg.retry_delay_s)
            work.appendleft((failed, retries + 1))

    def discard(
        self,
        records: list[KinesisRecord],
        condition: str,
        retries: int,
        outcome: Outcome | None = None,
    ) -> None:
        m = self.mapping
        m.stats.records_discarded += len(records)
        log.warning(
            "esm %s: discarding %d records (%s), sequence numbers %s..%s",
            self.shard_id,
            len(records),
            condition,
            records[0]["SequenceNumber"],
            records[-1]["SequenceNumber"],
        )
        if m.config.on_failure_destination:
            m.send_on_failure(self.shard_id, records, condition, retries + 1, outcome)


class EventSourceMapping:
    """A Kinesis event source mapping running in threads of this process."""

    def __init__(
        self,
        *,
        kinesis: Any,
        stream_name: str,
        handler: Handler | None = None,
        environment_factory: Callable[[str], Handler] | None = None,
        config: MappingConfig,
        region: str,
        s3: Any = None,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        if (handler is None) == (environment_factory is None):
            raise ValueError("give the mapping a handler or an environment factory, not both")
        if environment_factory is None:
            assert handler is not None
            only: Handler = handler
            environment_factory = lambda _shard: only  # noqa: E731
        self.environment_factory = environment_factory
        """Makes the environment a shard's invocations go to (on first use): one per shard runs
        shards in parallel as Lambda does; a plain ``handler`` serves every shard."""
        self.environments: dict[str, Handler] = {}
        self.config = config
        self.region = region
        self.s3 = s3
        self.sqs = sqs
        self.clock = clock
        self.stats = MappingStats()
        self.stopping = threading.Event()
        description = kinesis.describe_stream_summary(StreamName=stream_name)
        self.stream_arn: str = description["StreamDescriptionSummary"]["StreamARN"]
        self.function_arn = function_arn(config.function_name, region)
        self.pollers: list[ShardPoller] = []

    def start(self) -> None:
        shards = self.kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        self.pollers = [ShardPoller(self, s["ShardId"]) for s in shards]
        for poller in self.pollers:
            poller.thread.start()

    @property
    def idle(self) -> bool:
        """Every shard read to its end and every batch delivered."""
        return all(p.idle for p in self.pollers)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for poller in self.pollers:
            poller.thread.join(timeout)

    def event(self, shard_id: str, records: list[KinesisRecord]) -> dict[str, Any]:
        return {
            "Records": [lambda_record(r, shard_id, self.stream_arn, self.region) for r in records]
        }

    def _handler_for(self, shard_id: str) -> Handler:
        found = self.environments.get(shard_id)
        if found is None:
            found = self.environments[shard_id] = self.environment_factory(shard_id)
        return found

    def invoke(self, shard_id: str, records: list[KinesisRecord]) -> Outcome:
        """Invoke the handler with one batch (synchronously, as the mapping does)."""
        event = self.event(shard_id, records)
        context = LambdaContext(self.config.function_name, self.region)
        self.stats.invocations += 1
        self.stats.iterator_ages_s.append(max(0.0, self.clock() - _arrival(records[-1])))
        try:
            response = self._handler_for(shard_id)(event, context)
            response = json.loads(json.dumps(response)) if response is not None else None
        except Exception as exc:
            self.stats.function_errors += 1
            log.warning("esm %s: function error: %s: %s", shard_id, type(exc).__name__, exc)
            return Outcome(failed_from=0, error=f"{type(exc).__name__}: {exc}")
        if not self.config.report_batch_item_failures:
            self.stats.records_delivered += len(records)
            return Outcome(failed_from=None, response=response)
        failed_from = interpret_response(response, [r["SequenceNumber"] for r in records])
        if failed_from is not None:
            self.stats.partial_failures += 1
        self.stats.records_delivered += len(records) if failed_from is None else failed_from
        return Outcome(failed_from=failed_from, response=response)

    def invocation_record(
        self,
        shard_id: str,
        records: list[KinesisRecord],
        condition: str,
        invoke_count: int,
        outcome: Outcome | None,
    ) -> dict[str, Any]:
        """The on-failure invocation record (the shape Lambda sends to a destination)."""

        def iso(ts: float) -> str:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
                f"{int(ts * 1000) % 1000:03d}Z"
            )

        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome is not None and outcome.error is not None:
            response_context["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": iso(self.clock()),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso(_arrival(records[0])),
                "approximateArrivalOfLastRecord": iso(_arrival(records[-1])),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }

    def send_on_failure(
        self,
        shard_id: str,
        records: list[KinesisRecord],
        condition: str,
        invoke_count: int,
        outcome: Outcome | None,
    ) -> None:
        dest = self.config.on_failure_destination
        assert dest is not None
        body = self.invocation_record(shard_id, records, condition, invoke_count, outcome)
        try:
            if dest.startswith("s3:"):
                body["payload"] = json.dumps(self.event(shard_id, records))
                now = datetime.fromtimestamp(self.clock(), UTC)
                key = (
                    f"aws/lambda/{self.config.uuid}/{shard_id}/{now:%Y/%m/%d}/"
                    f"{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
                )
                self.s3.put_object(
                    Bucket=dest.removeprefix("s3:"), Key=key, Body=json.dumps(body).encode()
                )
            else:
                self.sqs.send_message(
                    QueueUrl=dest.removeprefix("sqs:"), MessageBody=json.dumps(body)
                )
        except Exception:
            log.exception("esm %s: cannot write to the on-failure destination %s", shard_id, dest)
