"""Finish-queue (SQS) -> results and announcements: the race finisher (entry point ``handler``).

Thin: Powertools wiring, then one call. Each SQS message is parsed by the batch processor
against the finish message (a message that does not parse is reported as failed and, after
the queue's receives run out, lands in its dead-letter queue); the logic, in
:mod:`functions.race_finisher.logic`, finishes the whole batch at once; the messages it reports
become ``batchItemFailures``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from functions.race_finisher.adapters import IotNotifier, LogNotifier, NoNotifier
from functions.race_finisher.config import FinisherSettings
from functions.race_finisher.logic import Announcer, FinishOutcome, RaceFinisher
from shared import names
from shared.dynamodb import DEFAULT_CLIENT_CONFIG, DynamoStandingsStore
from shared.finishing import Finish, FinishMessage
from shared.ports import Notifier, TransientError
from shared.standings import FinalResult
from shared.warm import Warm

logger = Logger(service=names.POWERTOOLS_SERVICE_FINISHER)
tracer = Tracer(service=names.POWERTOOLS_SERVICE_FINISHER)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.POWERTOOLS_SERVICE_FINISHER)

FINISH_KEY = "[race_id, rider_id]"
"""A rider finishes once: the idempotency key is the rider, whatever the ranks computed."""
LOGGED_FAILURES = 10
"""At most this many retried messages are named in one warning (their count always is)."""
ANNOUNCE_WORKERS = 8
"""A batch's finishing riders are announced this many at a time: each is an idempotency record,
a notification and the record's completion, requests that wait on the network, not the CPU."""


class FinishRecord(SqsRecordModel):
    """The parser model of one SQS record: Powertools' model, its body the finish message."""

    body: Json[FinishMessage]


class FinishBatchProcessor(BatchProcessor):
    """Powertools' SQS batch processor, collecting the batch's messages for one call of the
    logic after the per-record loop."""

    def __init__(
        self,
        logic: RaceFinisher[FinishRecord],
        on_outcome: Callable[[FinishOutcome[Any]], None] = lambda _: None,
    ) -> None:
        super().__init__(
            event_type=EventType.SQS,
            model=FinishRecord,
            raise_on_entire_batch_failure=False,
        )
        self.logic = logic
        self.on_outcome = on_outcome
        self._messages: list[tuple[FinishRecord, tuple[Finish, ...]]] = []

    def collect(self, record: FinishRecord) -> None:
        """The record handler: a parsed message joins the batch."""
        self._messages.append((record, record.body.finishes))

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        self._messages = []

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        outcome = self.logic.finish(self._messages)
        for record, reason in outcome.failed:
            try:
                raise RetryableMessageError(reason)
            except RetryableMessageError:
                self.failure_handler(record=record, exception=sys.exc_info())
        self.on_outcome(outcome)
        return results


class RetryableMessageError(Exception):
    """Why a message is reported in ``batchItemFailures`` (logged by Powertools)."""


def publish_metrics(outcome: FinishOutcome[Any]) -> None:
    metrics.add_metric(name="RidersFinished", unit=MetricUnit.Count, value=outcome.finished)
    metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=len(outcome.failed))
    if outcome.failed:
        # The message id and the reason, never the body (the riders' standings as counted).
        logger.warning(
            "finish messages retried",
            extra={
                "retried_total": len(outcome.failed),
                "retried": [
                    {"messageId": str(getattr(record, "messageId", "")), "reason": reason}
                    for record, reason in outcome.failed[:LOGGED_FAILURES]
                ],
            },
        )


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    batch: FinishBatchProcessor
    idempotency: IdempotencyConfig


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


def build_notifier(settings: FinisherSettings, session: boto3.session.Session) -> Notifier:
    if settings.notify_target == "iot":
        endpoint = (
            settings.iot_data_endpoint
            or session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")[
                "endpointAddress"
            ]
        )
        url = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
        return IotNotifier(session.client("iot-data", endpoint_url=url))
    if settings.notify_target == "log":
        return LogNotifier(logger)
    return NoNotifier()


def build_runtime(
    settings: FinisherSettings, session: boto3.session.Session | None = None
) -> Runtime:
    """Wire the adapters the settings name (clients honour AWS_ENDPOINT_URL: the local stack)."""
    session = session or boto3.session.Session()
    ddb = session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG)  # one client: thread-safe
    store = DynamoStandingsStore(ddb, settings.standings_table, settings.live_ttl_seconds)
    config = IdempotencyConfig(
        event_key_jmespath=FINISH_KEY, expires_after_seconds=settings.idempotency_ttl_seconds
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=ddb)
    announce = idempotent_announcer(build_notifier(settings, session), persistence, config)
    announcing = ThreadPoolExecutor(ANNOUNCE_WORKERS, thread_name_prefix="announce")
    logic: RaceFinisher[FinishRecord] = RaceFinisher(store, announce, announce_map=announcing.map)
    return Runtime(FinishBatchProcessor(logic, publish_metrics), config)


def cold_start() -> Runtime:
    """The runtime, built from the environment (validated) on the first invocation."""
    return build_runtime(FinisherSettings.from_env())


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
    rt.idempotency.register_lambda_context(context)
    response = process_partial_response(
        event=event, record_handler=rt.batch.collect, processor=rt.batch, context=context
    )
    return dict(response)
