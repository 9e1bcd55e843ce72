"""The telemetry Kinesis stream: on-demand or provisioned, encrypted, retention by config."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct

from infra.components.common import removal_policy
from infra.config import BreakawayConfig


class TelemetryStream(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: BreakawayConfig) -> None:
        super().__init__(scope, construct_id)
        shards = config.stream.shard_count
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_mode=kinesis.StreamMode.ON_DEMAND
            if shards is None
            else kinesis.StreamMode.PROVISIONED,
            shard_count=shards,
            retention_period=Duration.hours(config.stream.retention_hours),
            encryption=kinesis.StreamEncryption.MANAGED,
            removal_policy=removal_policy(config),
        )
