"""The telemetry Kinesis stream: on-demand or provisioned, encrypted, retention by config."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct

from infra.config import BreakawayConfig
from infra.nag import acknowledge


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
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "Server-side encryption with the AWS managed key aws/kinesis: no per-key monthly "
            "cost, and the IoT rule, Lambda and Firehose need no key policy grants.",
        )
