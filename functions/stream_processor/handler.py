"""Kinesis -> DynamoDB stream processor (Lambda entry point: ``handler``).

Thin: Powertools wiring, then one call. Parsing happens in the batch processor (the
contract), the counting rules and the merge in :mod:`functions.stream_processor.logic`,
persistence behind the ports (standings, the race book, dead letters).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.stream_processor.adapters import S3DeadLetters, SqsDeadLetters
from functions.stream_processor.batch import TelemetryBatchProcessor, record_letter
from functions.stream_processor.config import ProcessorSettings
from functions.stream_processor.logic import BatchOutcome, StreamProcessor
from shared import names
from shared.dynamodb import DEFAULT_CLIENT_CONFIG, DynamoStandingsStore
from shared.ports import DeadLetterSink
from shared.race_store import DynamoRaceStore
from shared.warm import Warm

logger = Logger(service=names.POWERTOOLS_SERVICE_PROCESSOR)
tracer = Tracer(service=names.POWERTOOLS_SERVICE_PROCESSOR)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.POWERTOOLS_SERVICE_PROCESSOR)

LOGGED_FAILURES: Final = 10
"""At most this many retried records are named in one warning (their count always is)."""
MAX_LOGGED_ID: Final = 256
"""Kinesis partition keys are at most 256 characters; a record the parser model refused may
carry anything where an id should be, so what is logged of it is cut to this."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    batch: TelemetryBatchProcessor


def publish_metrics(outcome: BatchOutcome[Any]) -> None:
    metrics.add_metric(name="ReadingsApplied", unit=MetricUnit.Count, value=outcome.applied)
    metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="RidersWritten", unit=MetricUnit.Count, value=outcome.riders_written)
    metrics.add_metric(name="WriteConflicts", unit=MetricUnit.Count, value=outcome.conflicts)
    metrics.add_metric(name="RidersFinished", unit=MetricUnit.Count, value=outcome.finished)
    metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=len(outcome.failed))
    if outcome.lag_count:
        lag_max = outcome.lag_max_ms
        metrics.add_metric(name="EndToEndLagMax", unit=MetricUnit.Milliseconds, value=lag_max)
        lag_mean = outcome.lag_total_ms / outcome.lag_count
        metrics.add_metric(name="EndToEndLagMean", unit=MetricUnit.Milliseconds, value=lag_mean)
    publish_dead_letters(outcome)
    if outcome.dead_lettered or outcome.failed:
        logger.warning(
            "batch had dead-lettered or retried records",
            extra={
                "dead_lettered": outcome.dead_lettered,
                "dead_letters": {r.value: n for r, n in outcome.dead_letters.items()},
                "retried_total": len(outcome.failed),
                "retried": [
                    {**record_ids(handle), "reason": reason}
                    for handle, reason in outcome.failed[:LOGGED_FAILURES]
                ],
            },
        )


def publish_dead_letters(outcome: BatchOutcome[Any]) -> None:
    """``DeadLetters`` with a ``Reason`` dimension, one metric per reason present in the batch.
    A dimension set of its own, so each goes out in an EMF blob of its own (Powertools'
    ``single_metric``, as its documentation says for a metric with different dimensions).
    ``single_metric`` prints whatever ``POWERTOOLS_METRICS_DISABLED`` says, so the switch every
    other metric obeys is asked here, through Powertools' own reading of it."""
    if is_metrics_disabled():
        return
    for refusal, count in sorted(outcome.dead_letters.items(), key=lambda rc: rc[0].value):
        with single_metric(
            name="DeadLetters",
            unit=MetricUnit.Count,
            value=count,
            namespace=names.METRICS_NAMESPACE,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="service", value=names.POWERTOOLS_SERVICE_PROCESSOR)
            metric.add_dimension(name="Reason", value=refusal.value)


def record_ids(handle: KinesisStreamRecord) -> dict[str, str]:
    """Which record failed, never what it carried: a payload may hold anything, and the logs
    are kept longer and read more widely than the dead-letter queue that holds it. ``handle``
    is Powertools' view of the record as Lambda delivered it (any part may be missing)."""
    raw: Any = handle.raw_event
    kinesis = raw.get("kinesis")
    kinesis = kinesis if isinstance(kinesis, dict) else {}
    return {
        "eventId": str(raw.get("eventID", ""))[:MAX_LOGGED_ID],
        "sequenceNumber": str(kinesis.get("sequenceNumber", ""))[:MAX_LOGGED_ID],
        "partitionKey": str(kinesis.get("partitionKey", ""))[:MAX_LOGGED_ID],
    }


def build_runtime(
    settings: ProcessorSettings,
    session: boto3.session.Session | None = None,
    clock_ms: Callable[[], int] = now_ms,
) -> Runtime:
    """Wire the adapters the settings name (clients honour AWS_ENDPOINT_URL: the local stack).
    ``clock_ms`` is the processor's clock, the only one readings are judged by."""
    session = session or boto3.session.Session()
    ddb = session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG)
    store = DynamoStandingsStore(
        ddb,
        settings.standings_table,
        settings.live_ttl_seconds,
        write_mode=settings.standings_writes,
    )
    dead_letters: DeadLetterSink
    if settings.dead_letter_kind == "sqs":
        dead_letters = SqsDeadLetters(session.client("sqs"), settings.dead_letter_location)
    else:
        bucket, _, prefix = settings.dead_letter_location.partition("/")
        dead_letters = S3DeadLetters(session.client("s3"), bucket, prefix or "dead-letters")
    races = DynamoRaceStore(ddb, settings.standings_table)
    logic: StreamProcessor[KinesisStreamRecord] = StreamProcessor(
        store, races, dead_letters, clock_ms, record_letter, slack_s=settings.future_slack_s
    )
    return Runtime(TelemetryBatchProcessor(logic, publish_metrics))


GC_YOUNG_THRESHOLD: Final = 50_000
"""Allocations between two collections of the youngest generation (Python's default: 700)."""


def settle_heap() -> None:
    """Move what the cold start built (modules, SDK service models, clients, schemas) out of the
    garbage collector's way: it lives as long as the environment, and without this every full
    collection during a batch walks it again. And collect the youngest generation less often: a
    batch allocates several objects per record (the reading, its delivery, Powertools' record
    view), none of them in a cycle, all freed by reference counting when the batch ends, so a
    collection every 700 allocations looked for cycles that are never there. Measured: see
    docs/benchmarks.md (processor)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def cold_start() -> Runtime:
    """The runtime, built from the environment (validated) on the first invocation."""
    runtime = build_runtime(ProcessorSettings.from_env())
    settle_heap()
    return runtime


warm: Warm[Runtime] = Warm(cold_start)
install = warm.install
"""Use a runtime for the next invocations (tests, benchmarks, the local stack)."""
runtime = warm.get
"""The warm runtime (built on the first invocation)."""


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    response = process_partial_response(
        event=event, record_handler=rt.batch.collect, processor=rt.batch, context=context
    )
    return dict(response)
