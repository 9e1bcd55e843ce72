"""Kinesis -> DynamoDB stream processor (Lambda entry point: ``handler``).

Thin: Powertools wiring, then one call. Parsing happens in the batch processor (the parser
model), the logic in :mod:`functions.stream_processor.logic`, persistence behind the ports.
"""

from __future__ import annotations

import gc
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.stream_processor.adapters import (
    IotNotifier,
    LogNotifier,
    NoNotifier,
    S3DeadLetters,
    SqsDeadLetters,
)
from functions.stream_processor.batch import TelemetryBatchProcessor
from functions.stream_processor.config import ProcessorSettings
from functions.stream_processor.logic import Announcer, BatchOutcome, StreamProcessor
from shared import names
from shared.dynamodb import DEFAULT_CLIENT_CONFIG, DynamoStandingsStore
from shared.ports import DeadLetterSink, Notifier, TransientError
from shared.standings import FinalResult

logger = Logger(service=names.POWERTOOLS_SERVICE_PROCESSOR)
tracer = Tracer(service=names.POWERTOOLS_SERVICE_PROCESSOR)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.POWERTOOLS_SERVICE_PROCESSOR)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    batch: TelemetryBatchProcessor
    idempotency: IdempotencyConfig | None


def publish_metrics(outcome: BatchOutcome[Any]) -> None:
    metrics.add_metric(name="ReadingsApplied", unit=MetricUnit.Count, value=outcome.applied)
    metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="RidersWritten", unit=MetricUnit.Count, value=outcome.riders_written)
    metrics.add_metric(name="WriteConflicts", unit=MetricUnit.Count, value=outcome.conflicts)
    metrics.add_metric(name="RidersFinished", unit=MetricUnit.Count, value=outcome.finished)
    metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=len(outcome.failed))
    if outcome.lags_ms:
        lag_max = max(outcome.lags_ms)
        metrics.add_metric(name="EndToEndLagMax", unit=MetricUnit.Milliseconds, value=lag_max)
        lag_mean = fmean(outcome.lags_ms)
        metrics.add_metric(name="EndToEndLagMean", unit=MetricUnit.Milliseconds, value=lag_mean)
    if outcome.dead_lettered or outcome.failed:
        logger.warning(
            "batch had poison or retried records",
            extra={"dead_lettered": outcome.dead_lettered, "retried": outcome.failed[:10]},
        )


FINISH_KEY = "[race_id, rider_id]"
"""A rider finishes once: the idempotency key is the rider, whatever the ranks computed."""
ANNOUNCE_WORKERS = 8
"""A batch's finishing riders are announced this many at a time: each is an idempotency record,
a notification and the record's completion, requests that wait on the network, not the CPU."""


def idempotent_announcer(
    notifier: Notifier,
    persistence: DynamoDBPersistenceLayer,
    config: IdempotencyConfig,
) -> Announcer:
    """Announce a rider's stored result exactly once: the Powertools idempotency utility keyed
    on the rider. The result itself is stored exactly once by ``put_results`` (a condition),
    so a retry after a failed notification announces the stored result."""

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="result", persistence_store=persistence, config=config
    )
    def announce(result: dict[str, Any]) -> dict[str, Any]:
        notifier.publish(FinalResult(**result))
        return result

    def call(result: FinalResult) -> object:
        try:
            return announce(result=asdict(result))
        except (IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError) as exc:
            raise TransientError(f"idempotency: {exc}") from exc

    return call


def build_runtime(
    settings: ProcessorSettings, session: boto3.session.Session | None = None
) -> Runtime:
    """Wire the adapters the settings name (clients honour AWS_ENDPOINT_URL: the local stack)."""
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
    notifier: Notifier
    if settings.notify_target == "iot":
        endpoint = (
            settings.iot_data_endpoint
            or session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")[
                "endpointAddress"
            ]
        )
        url = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
        notifier = IotNotifier(session.client("iot-data", endpoint_url=url))
    elif settings.notify_target == "log":
        notifier = LogNotifier(logger)
    else:
        notifier = NoNotifier()
    config = IdempotencyConfig(
        event_key_jmespath=FINISH_KEY, expires_after_seconds=settings.idempotency_ttl_seconds
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table,
        boto3_client=session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG),
    )
    announce = idempotent_announcer(notifier, persistence, config)
    announcing = ThreadPoolExecutor(ANNOUNCE_WORKERS, thread_name_prefix="announce")
    logic: StreamProcessor[Any] = StreamProcessor(
        store, dead_letters, announce, now_ms, announce_map=announcing.map
    )
    return Runtime(TelemetryBatchProcessor(logic, publish_metrics), config)


_runtime: Runtime | None = None


def settle_heap() -> None:
    """Move what the cold start built (modules, SDK service models, clients, schemas) out of the
    garbage collector's way: it lives as long as the environment, and without this every full
    collection during a batch walks it again. Measured: see docs/benchmarks.md (processor)."""
    gc.collect()
    gc.freeze()


def install(runtime: Runtime | None) -> None:
    """Use this runtime for the next invocations (tests, benchmarks, the local stack)."""
    global _runtime  # noqa: PLW0603 - the execution environment's warm state
    _runtime = runtime


def runtime() -> Runtime:
    """The warm runtime, built from the environment (validated) on the first invocation."""
    if _runtime is None:
        install(build_runtime(ProcessorSettings.from_env()))
        settle_heap()
    assert _runtime is not None
    return _runtime


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    if rt.idempotency is not None:
        rt.idempotency.register_lambda_context(context)
    response = process_partial_response(
        event=event, record_handler=rt.batch.collect, processor=rt.batch, context=context
    )
    return dict(response)
