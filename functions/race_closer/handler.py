"""A race's one-time schedule -> final placings, weighed (history, personal bests, class
records), stored and announced: the race closer (entry point ``handler``).

Thin: Powertools wiring, then one call. EventBridge Scheduler invokes the function
asynchronously with the schedule's ``Input``, a :class:`shared.races.CloseRace`; the logic, in
:mod:`functions.race_closer.logic`, closes the race. An invocation that leaves work undone (a
transient failure, or announcements that failed) raises, so that Lambda retries it and, once
the retries run out, hands the event to the on-failure destination (the schedules' dead-letter
queue, alarmed); everything done before is not repeated.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
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

from functions.race_closer.adapters import (
    DynamoTallyReader,
    IotNotifier,
    LogNotifier,
    NoNotifier,
    announcement,
)
from functions.race_closer.config import ANNOUNCE_KEY_PREFIX, WORKERS, CloserSettings
from functions.race_closer.logic import Announcer, CloseOutcome, CloseStatus, RaceCloser
from shared import names
from shared.dynamodb import DEFAULT_CLIENT_CONFIG
from shared.history_store import DynamoHistoryStore
from shared.placings import Placing
from shared.ports import Notifier, TransientError
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import CloseRace
from shared.warm import Warm

logger = Logger(service=names.POWERTOOLS_SERVICE_CLOSER)
tracer = Tracer(service=names.POWERTOOLS_SERVICE_CLOSER)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.POWERTOOLS_SERVICE_CLOSER)

ANNOUNCE_KEY: Final = "[raceId, riderId]"
"""A rider is announced once per race: the idempotency key is the race and the rider."""
LOGGED_FAILURES: Final = 10
"""At most this many failed announcements are named in one warning (their count always is)."""


class CloseIncompleteError(Exception):
    """Announcements failed: the invocation fails so that Lambda retries it (the placings are
    stored; a retry announces the riders not announced yet)."""


def publish_metrics(outcome: CloseOutcome) -> None:
    closed = 1 if outcome.status is CloseStatus.CLOSED else 0
    metrics.add_metric(name="RacesClosed", unit=MetricUnit.Count, value=closed)
    metrics.add_metric(name="RidersPlaced", unit=MetricUnit.Count, value=outcome.placed * closed)
    metrics.add_metric(name="Announced", unit=MetricUnit.Count, value=outcome.announced)
    metrics.add_metric(name="AnnouncementsFailed", unit=MetricUnit.Count, value=len(outcome.failed))
    if outcome.failed:
        logger.warning(
            "announcements failed",
            extra={
                "failed_total": len(outcome.failed),
                "failed": [
                    {"riderId": rider, "reason": reason}
                    for rider, reason in outcome.failed[:LOGGED_FAILURES]
                ],
            },
        )


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    closer: RaceCloser
    idempotency: IdempotencyConfig


def idempotent_announcer(
    notifier: Notifier, persistence: DynamoDBPersistenceLayer, config: IdempotencyConfig
) -> Announcer:
    """Announce a rider's placing once per race and rider: the Powertools idempotency utility
    keyed on both. The placings are stored before any announcement and never change after, so
    a retry announces exactly what a clean close would have."""

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="message",
        persistence_store=persistence,
        config=config,
        key_prefix=ANNOUNCE_KEY_PREFIX,
    )
    def announce(message: dict[str, Any], race_id: str, placing: Placing) -> dict[str, Any]:
        notifier.publish(race_id, placing)
        return message

    def call(race_id: str, placing: Placing) -> object:
        try:
            return announce(
                message=announcement(race_id, placing), race_id=race_id, placing=placing
            )
        except (IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError) as exc:
            raise TransientError(f"idempotency: {exc}") from exc

    return call


def build_notifier(settings: CloserSettings, session: boto3.session.Session) -> Notifier:
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
    settings: CloserSettings, session: boto3.session.Session | None = None
) -> Runtime:
    """Wire the adapters the settings name (clients honour AWS_ENDPOINT_URL: the local stack)."""
    session = session or boto3.session.Session()
    ddb = session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG)  # one client: thread-safe
    config = IdempotencyConfig(
        event_key_jmespath=ANNOUNCE_KEY, expires_after_seconds=settings.idempotency_ttl_seconds
    )
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=ddb)
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="closer")
    closer = RaceCloser(
        DynamoRaceStore(ddb, settings.standings_table),
        DynamoTallyReader(ddb, settings.standings_table, chunk_map=pool.map),
        idempotent_announcer(build_notifier(settings, session), persistence, config),
        history=DynamoHistoryStore(ddb, settings.standings_table),
        clock=now_ms,
        sleep=time.sleep,
        announce_map=pool.map,
        claim_map=pool.map,
    )
    return Runtime(closer, config)


def cold_start() -> Runtime:
    """The runtime, built from the environment (validated) on the first invocation."""
    return build_runtime(CloserSettings.from_env())


warm: Warm[Runtime] = Warm(cold_start)
install = warm.install
"""Use a runtime for the next invocations (tests, benchmarks, the local stack)."""
runtime = warm.get
"""The warm runtime (built on the first invocation)."""


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    rt = runtime()
    rt.idempotency.register_lambda_context(context)
    request = CloseRace.model_validate(event)
    outcome = rt.closer.close(request.race_id)
    publish_metrics(outcome)
    response = outcome.response()
    logger.info("close", extra={"close": response})
    if outcome.failed:
        raise CloseIncompleteError(
            f"race {request.race_id}: {len(outcome.failed)} announcements failed"
        )
    return response
