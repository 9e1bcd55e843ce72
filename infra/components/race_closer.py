"""Finishing, off the stream's hot path: the finish queue the stream processor sends finishing
riders to (with its dead-letter queue), and the race finisher that reads it, ranks, stores and
announces the results."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.common import removal_policy, secure_queue
from infra.components.function import PythonFunction
from infra.components.iot import topic_arn, topic_arn_as_nag_reports
from infra.components.storage import grant_index_queries, grant_item_actions
from infra.config import (
    NOTIFY_TARGET_IOT,
    SQS_DEFAULT_RETENTION_DAYS,
    SQS_MAX_RETENTION_DAYS,
    BreakawayConfig,
    FinishingConfig,
)
from infra.nag import acknowledge, iam5_resource
from shared import keys, names

FUNCTION_NAME: Final = "race_finisher"
RESULT_TOPIC_FILTER: Final = names.RESULT_TOPIC.format(race_id="+", rider_id="+")


class FinishQueue(Construct):
    """Stateful: the finish queue and its dead-letter queue. A finish waiting in the queue is
    work the stream has already counted and will not send again, so the queues live with the
    data and outlive a redeploy of the app stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: BreakawayConfig) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = secure_queue(
            self, "DeadLetters", config, retention_days=SQS_MAX_RETENTION_DAYS
        )
        self.queue = secure_queue(
            self,
            "Queue",
            config,
            visibility_timeout=Duration.seconds(config.finish_visibility_timeout_seconds),
            retention_days=SQS_DEFAULT_RETENTION_DAYS,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters,
                max_receive_count=config.finishing.max_receive_count,
            ),
        )


def finish_event_source(queue: sqs.IQueue, finishing: FinishingConfig) -> sources.SqsEventSource:
    """The SQS event source mapping of the race finisher, every setting from typed config; it
    grants the function consume on the queue."""
    return sources.SqsEventSource(
        queue,
        batch_size=finishing.batch_size,
        max_batching_window=Duration.seconds(finishing.max_batching_window_seconds),
        max_concurrency=finishing.max_concurrency,
        report_batch_item_failures=True,
    )


class RaceFinishing(Construct):
    """The race finisher: its function, the finish queue's event source mapping and its grants
    (the standings and idempotency tables, the result topics, the IoT endpoint lookup)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        finish_queue: sqs.IQueue,
        standings: dynamodb.ITable,
        idempotency: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.finisher = PythonFunction(
            self,
            "Finisher",
            function_name=FUNCTION_NAME,
            description="Ranks, stores and announces finishing riders from the finish queue",
            config=config.finisher,
            environment={
                names.ENV_STANDINGS_TABLE: standings.table_name,
                names.ENV_IDEMPOTENCY_TABLE: idempotency.table_name,
                names.ENV_NOTIFY_TARGET: NOTIFY_TARGET_IOT,
                names.ENV_LIVE_TTL_SECONDS: str(config.live_ttl_seconds),
                names.ENV_IDEMPOTENCY_TTL_SECONDS: str(config.idempotency_ttl_seconds),
                "POWERTOOLS_SERVICE_NAME": names.POWERTOOLS_SERVICE_FINISHER,
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
            },
            layer_arn=config.powertools_layer_arn,
            log_retention_days=config.log_retention_days,
            removal_policy=removal_policy(config),
            wildcard_reason=(
                "iot:DescribeEndpoint (the race finisher finds the account's IoT data endpoint "
                "once per cold start) and X-Ray tracing support no resource-level permissions."
            ),
        )
        fn = self.finisher.function
        # Ranks from the ranking indexes; results and the race's finished count in
        # transactions (PutItem, UpdateItem); Powertools' idempotency layer reads, writes,
        # updates and deletes its own records.
        grant_index_queries(fn, standings, keys.INDEX_OVERALL, keys.INDEX_CLASS)
        grant_item_actions(fn, standings, "PutItem", "UpdateItem")
        grant_item_actions(fn, idempotency, "GetItem", "PutItem", "UpdateItem", "DeleteItem")
        self.result_topics = topic_arn(RESULT_TOPIC_FILTER)
        iam.Grant.add_to_principal(
            grantee=fn, actions=["iot:Publish"], resource_arns=[self.result_topics]
        )
        iam.Grant.add_to_principal(
            grantee=fn, actions=["iot:DescribeEndpoint"], resource_arns=["*"]
        )
        self.event_source = finish_event_source(finish_queue, config.finishing)
        fn.add_event_source(self.event_source)

        role = self.finisher.role
        acknowledge(
            role,
            iam5_resource(topic_arn_as_nag_reports(RESULT_TOPIC_FILTER)),
            "iot:Publish on the result topic pattern only: race and rider ids are known at run "
            "time, one topic per rider result.",
        )
