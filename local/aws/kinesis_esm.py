"""Lambda's event source mapping for Kinesis, locally: poll every shard, invoke the handler.

What every mapping does (batching, invoking, partial batch responses, stopping) is in
:mod:`local.aws.lambda_esm`. What AWS documents for a Kinesis mapping, and what this does:

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

Unlike Lambda: no ParallelizationFactor above 1, no tumbling windows, no filter criteria, no
enhanced fan-out consumer, no resharding (the shards are listed once, at start), and
``AT_TIMESTAMP`` is not a starting position.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from local.aws.lambda_esm import Batch, EventSourceMapping, MappingConfig, MappingStats, Poller
from local.aws.lambda_esm import reported_failures as _reported_failures
from local.aws.lambda_runtime import ACCOUNT_ID, Handler

log = logging.getLogger(__name__)

KinesisRecord = dict[str, Any]
"""A record as GetRecords returns it through boto3 (Data bytes, SequenceNumber, ...)."""

CONDITION_RETRIES = "RetryAttemptsExhausted"
CONDITION_AGE = "RecordAgeExceeded"


@dataclass(frozen=True, kw_only=True)
class KinesisMappingConfig(MappingConfig):
    """The Kinesis mapping's settings (names as in CreateEventSourceMapping)."""

    batch_size: int = 100
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: float = -1
    on_failure_destination: str | None = None
    """``s3:<bucket>`` or ``sqs:<queue url>``."""
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    poll_interval_s: float = 0.25
    """How long an empty shard waits before the next GetRecords (4 calls/s, under the 5/s
    shard limit)."""
    retry_delay_s: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.maximum_retry_attempts < -1 or self.maximum_retry_attempts > 10_000:
            raise ValueError("maximum_retry_attempts must be -1 or 0-10000")
        if self.maximum_record_age_s != -1 and self.maximum_record_age_s < 0:
            raise ValueError("maximum_record_age_s must be -1 or >= 0")
        dest = self.on_failure_destination
        if dest is not None and not dest.startswith(("s3:", "sqs:")):
            raise ValueError("on_failure_destination must be s3:<bucket> or sqs:<queue url>")


@dataclass
class KinesisMappingStats(MappingStats):
    records_delivered: int = 0
    records_discarded: int = 0
    iterator_ages_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=200_000)
    )
    """Per invocation: the age of the batch's last record (Lambda's IteratorAge)."""


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
    """Where a ``ReportBatchItemFailures`` response puts the checkpoint (None: all succeeded):
    the lowest failed sequence number's index, 0 if the response fails the whole batch."""
    failed = _reported_failures(response, sequence_numbers)
    return min(failed) if failed else None


class ShardPoller(Poller[KinesisRecord]):
    """Reads one shard and delivers its batches in order, with the mapping's error handling."""

    mapping: KinesisEventSourceMapping

    def __init__(self, mapping: KinesisEventSourceMapping, shard_id: str) -> None:
        cfg = mapping.config
        super().__init__(mapping, shard_id, Batch(cfg.batch_size, cfg.maximum_batching_window_s))
        self.shard_id = shard_id
        self.iterator = ""

    # --- reading ------------------------------------------------------------------------
    def begin(self) -> bool:
        m = self.mapping
        try:
            self.iterator = m.kinesis.get_shard_iterator(
                StreamName=m.stream_name,
                ShardId=self.shard_id,
                ShardIteratorType=m.config.starting_position,
            )["ShardIterator"]
        except Exception:
            log.exception("esm %s: cannot get a shard iterator", self.shard_id)
            return False
        return True

    def fetch(self) -> int | None:
        m = self.mapping
        if self.batch.room <= 0:
            return 0
        try:
            resp = m.kinesis.get_records(
                ShardIterator=self.iterator, Limit=min(10_000, self.batch.room)
            )
        except Exception as exc:
            if not m.stopping.is_set():
                log.warning("esm %s: GetRecords failed: %s", self.shard_id, exc)
            return None
        self.iterator = resp["NextShardIterator"]
        self.batch.add(resp["Records"])
        return len(resp["Records"])

    # --- delivering ---------------------------------------------------------------------
    def deliver(self, records: list[KinesisRecord]) -> None:
        """Deliver one batch until every record succeeded or was discarded."""
        m = self.mapping
        cfg = m.config
        work: collections.deque[tuple[list[KinesisRecord], int]] = collections.deque([(records, 0)])
        while work:
            if m.stopping.is_set():
                return
            batch, retries = work.popleft()
            batch = self._drop_expired(batch, retries)
            if not batch:
                continue
            outcome = m.invoke(self.shard_id, batch)
            if outcome.failed_from is None:
                continue
            if outcome.error is not None and cfg.bisect_batch_on_function_error and len(batch) > 1:
                middle = len(batch) // 2
                work.appendleft((batch[middle:], retries))
                work.appendleft((batch[:middle], retries))
                continue
            failed = batch[outcome.failed_from :]
            if cfg.maximum_retry_attempts >= 0 and retries >= cfg.maximum_retry_attempts:
                self.discard(failed, CONDITION_RETRIES, retries, outcome)
                continue
            m.stopping.wait(cfg.retry_delay_s)
            work.appendleft((failed, retries + 1))

    def _drop_expired(self, records: list[KinesisRecord], retries: int) -> list[KinesisRecord]:
        """The records not past the maximum record age; the others are discarded."""
        max_age = self.mapping.config.maximum_record_age_s
        if max_age < 0:
            return records
        now = self.mapping.clock()
        expired = [r for r in records if now - _arrival(r) > max_age]
        if expired:
            self.discard(expired, CONDITION_AGE, retries)
        return [r for r in records if now - _arrival(r) <= max_age]

    def discard(
        self,
        records: list[KinesisRecord],
        condition: str,
        retries: int,
        outcome: Outcome | None = None,
    ) -> None:
        m = self.mapping
        m.count(records_discarded=len(records))
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


class KinesisEventSourceMapping(EventSourceMapping[KinesisRecord, KinesisMappingStats]):
    """A Kinesis event source mapping running in threads of this process: one poller a shard."""

    config: KinesisMappingConfig

    def __init__(
        self,
        *,
        kinesis: Any,
        stream_name: str,
        handler: Handler | None = None,
        environment_factory: Callable[[str], Handler] | None = None,
        config: KinesisMappingConfig,
        region: str,
        s3: Any = None,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            handler=handler,
            environment_factory=environment_factory,  # one per shard: shards run in parallel
            config=config,
            stats=KinesisMappingStats(),
            region=region,
            clock=clock,
        )
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.s3 = s3
        self.sqs = sqs
        description = kinesis.describe_stream_summary(StreamName=stream_name)
        self.stream_arn: str = description["StreamDescriptionSummary"]["StreamARN"]

    def make_pollers(self) -> list[Poller[KinesisRecord]]:
        shards = self.kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        return [ShardPoller(self, s["ShardId"]) for s in shards]

    def event(self, shard_id: str, records: list[KinesisRecord]) -> dict[str, Any]:
        return {
            "Records": [lambda_record(r, shard_id, self.stream_arn, self.region) for r in records]
        }

    def invoke(self, shard_id: str, records: list[KinesisRecord]) -> Outcome:
        """Invoke the handler with one batch (synchronously, as the mapping does)."""
        self.stats.iterator_ages_s.append(max(0.0, self.clock() - _arrival(records[-1])))
        sequence_numbers = [r["SequenceNumber"] for r in records]
        result = self.call(shard_id, self.event(shard_id, records), sequence_numbers)
        failed_from = min(result.failed) if result.failed else None
        if result.error is None:
            self.count(records_delivered=len(records) if failed_from is None else failed_from)
        return Outcome(failed_from=failed_from, error=result.error, response=result.response)

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
