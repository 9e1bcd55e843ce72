"""Where records that cannot succeed are kept: the processor's dead-letter queue (poison
records, with payload and reason) and the event source mapping's on-failure bucket (whole
batches that exhausted their retries or age)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.buckets import SecureBucket
from infra.components.common import secure_queue
from infra.config import SQS_MAX_RETENTION_DAYS, BreakawayConfig
from infra.nag import acknowledge


class DeadLetters(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = secure_queue(
            self, "PoisonRecords", config, retention_days=SQS_MAX_RETENTION_DAYS
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter store for poison Kinesis records, written by "
            "the stream processor; nothing consumes it automatically, so it needs no DLQ.",
        )
        self.on_failure_bucket = SecureBucket(
            self,
            "OnFailure",
            access_logs=access_logs,
            log_prefix="on-failure/",
            retain=config.retain_data,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(config.failure_retention_days))
            ],
        ).bucket
