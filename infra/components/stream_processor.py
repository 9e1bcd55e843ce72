"""The stream processor: its function, the Kinesis event source mapping, and its grants (it
reads races and entries and counts readings; placing riders is the race closer's)."""

from __future__ import annotations

from typing import Final

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.common import removal_policy
from infra.components.function import PythonFunction
from infra.components.storage import grant_item_actions
from infra.config import DEAD_LETTER_SCHEME_SQS, BreakawayConfig, EventSourceConfig
from infra.nag import acknowledge, iam5_resource, imported
from shared import names
from shared.races import DEFAULT_FUTURE_SLACK_S

FUNCTION_NAME: Final = "stream_processor"


@jsii.implements(lambda_.IEventSourceDlq)
class S3WriteOnFailureDestination:
    """The S3 on-failure destination with only what Lambda needs to write it (s3:PutObject on
    the objects, s3:ListBucket on the bucket); CDK's S3OnFailureDestination grants read/write."""

    def __init__(self, bucket: s3.IBucket) -> None:
        self._bucket = bucket

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        iam.Grant.add_to_principal(
            grantee=target_handler,
            actions=["s3:PutObject"],
            resource_arns=[self._bucket.arn_for_objects("*")],
        )
        iam.Grant.add_to_principal(
            grantee=target_handler,
            actions=["s3:ListBucket"],
            resource_arns=[self._bucket.bucket_arn],
        )
        return lambda_.DlqDestinationConfig(destination=self._bucket.bucket_arn)


def event_source(
    stream: kinesis.IStream, es: EventSourceConfig, on_failure: s3.IBucket
) -> sources.KinesisEventSource:
    """The Kinesis event source mapping, every setting from typed config."""
    return sources.KinesisEventSource(
        stream,
        starting_position=lambda_.StartingPosition(es.starting_position),
        batch_size=es.batch_size,
        max_batching_window=Duration.seconds(es.max_batching_window_seconds),
        parallelization_factor=es.parallelization_factor,
        bisect_batch_on_error=es.bisect_on_error,
        retry_attempts=es.retry_attempts,
        max_record_age=(
            None if es.max_record_age_seconds == -1 else Duration.seconds(es.max_record_age_seconds)
        ),
        report_batch_item_failures=es.report_batch_item_failures,
        on_failure=S3WriteOnFailureDestination(on_failure),
        metrics_config=lambda_.MetricsConfig(metrics=[lambda_.MetricType.EVENT_COUNT]),
    )


class StreamProcessing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        stream: kinesis.IStream,
        standings: dynamodb.ITable,
        dead_letters: sqs.IQueue,
        on_failure: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.processor = PythonFunction(
            self,
            "Processor",
            function_name=FUNCTION_NAME,
            description="Scores telemetry from Kinesis into DynamoDB, exactly once in effect",
            config=config.processor,
            environment={
                names.ENV_STANDINGS_TABLE: standings.table_name,
                names.ENV_DEAD_LETTER_TARGET: f"{DEAD_LETTER_SCHEME_SQS}:{dead_letters.queue_url}",
                names.ENV_LIVE_TTL_SECONDS: str(config.live_ttl_seconds),
                names.ENV_FUTURE_SLACK_S: str(DEFAULT_FUTURE_SLACK_S),
                "POWERTOOLS_SERVICE_NAME": names.POWERTOOLS_SERVICE_PROCESSOR,
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
            },
            layer_arn=config.powertools_layer_arn,
            log_retention_days=config.log_retention_days,
            removal_policy=removal_policy(config),
        )
        fn = self.processor.function
        # shared/dynamodb.py: standings by key (cache misses), one write per rider, the race
        # record's counters; shared/race_store.py: race records by key (BatchGetItem) and a
        # race's entries (Query on the table, not an index). No scan, no delete.
        grant_item_actions(fn, standings, "BatchGetItem", "Query", "PutItem", "UpdateItem")
        dead_letters.grant_send_messages(fn)
        self.event_source = event_source(stream, config.event_source, on_failure)
        fn.add_event_source(self.event_source)

        acknowledge(
            self.processor.role,
            iam5_resource(imported(Stack.of(on_failure), on_failure.bucket_arn) + "/*"),
            "s3:PutObject on the objects of the on-failure bucket only: Lambda names each "
            "object itself when a batch is discarded.",
        )
