"""The stacks: composition only. Stateful resources (data that outlives a deploy) live apart
from stateless ones, so the app stack can be destroyed and redeployed freely."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Environment, Fn, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.archive import Archive
from infra.components.buckets import AccessLogsBucket, SecureBucket
from infra.components.cdn import RateLimitAcl, ViewerCdn
from infra.components.deadletters import DeadLetters
from infra.components.iot import IotIngest
from infra.components.leaderboard_api import LeaderboardApi
from infra.components.observability import Monitored, Observability
from infra.components.race_closer import RaceClosing, RaceScheduling
from infra.components.storage import Storage
from infra.components.stream import TelemetryStream
from infra.components.stream_processor import StreamProcessing
from infra.config import BreakawayConfig
from shared import names


class DataStack(Stack):
    """Stateful: the stream, the tables, the archive, the races' schedules and failure stores."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: BreakawayConfig,
        env: Environment | None = None,
    ) -> None:
        name = names.stack_name(config.env_name, "Data")
        super().__init__(
            scope,
            name,
            stack_name=name,
            env=env,
            description=(
                "Breakaway stateful resources: stream, tables, archive, race schedules, "
                "failure stores"
            ),
            termination_protection=config.deletion_protection,
        )
        self.stream = TelemetryStream(self, "Telemetry", config=config).stream
        self.storage = Storage(self, "Storage", config=config)
        self.access_logs = AccessLogsBucket(
            self,
            "AccessLogs",
            retain=config.retain_data,
            expiration_days=config.failure_retention_days,
        ).bucket
        self.archive_bucket = SecureBucket(
            self,
            "Archive",
            access_logs=self.access_logs,
            log_prefix="archive/",
            retain=config.retain_data,
            lifecycle_rules=[
                s3.LifecycleRule(
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(config.archive.transition_to_ia_days),
                        )
                    ],
                    expiration=Duration.days(config.archive.expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        ).bucket
        self.dead_letters = DeadLetters(
            self, "DeadLetters", config=config, access_logs=self.access_logs
        )
        self.scheduling = RaceScheduling(self, "RaceCloses", config=config)
        CfnOutput(self, names.OUTPUT_STREAM_NAME, value=self.stream.stream_name)
        CfnOutput(self, names.OUTPUT_ARCHIVE_BUCKET, value=self.archive_bucket.bucket_name)


EDGE_REGION = "us-east-1"
"""Where CloudFront's global resources that CloudFormation creates only there live: a web ACL
of scope CLOUDFRONT."""


class EdgeStack(Stack):
    """The viewers' web ACL, in us-east-1 whatever the app's region (docs/decisions.md)."""

    def __init__(
        self, scope: Construct, *, config: BreakawayConfig, account: str | None = None
    ) -> None:
        name = names.stack_name(config.env_name, "Edge")
        super().__init__(
            scope,
            name,
            stack_name=name,
            env=Environment(account=account, region=EDGE_REGION),
            description="Breakaway viewers' web ACL (CloudFront scope, us-east-1)",
        )
        acl = RateLimitAcl(self, "Viewers", env_name=config.env_name, cdn=config.cdn)
        CfnOutput(self, names.OUTPUT_WEB_ACL_ARN, value=acl.arn)

    def web_acl_arn(self, consumer: Stack) -> str:
        """The web ACL's ARN in ``consumer``, whatever its region: ``Fn::GetStackOutput`` reads
        the output across regions at deploy time (a CDK cross-region reference needs both
        regions known at synth, and the app stack is region-agnostic offline)."""
        consumer.add_stack_dependency(self, "the distribution uses the web ACL")
        return Fn.get_stack_output(self.stack_name, names.OUTPUT_WEB_ACL_ARN, EDGE_REGION)


class AppStack(Stack):
    """Stateless: ingest rule, processing, closing, archive delivery, API, viewers' CDN,
    observability."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: BreakawayConfig,
        data: DataStack,
        edge: EdgeStack | None = None,
        env: Environment | None = None,
    ) -> None:
        name = names.stack_name(config.env_name, "App")
        super().__init__(
            scope,
            name,
            stack_name=name,
            env=env,
            description=(
                "Breakaway stateless resources: IoT rule, processor, closer, archive, API, alarms"
            ),
        )
        ingest = IotIngest(self, "Ingest", config=config, stream=data.stream)
        processing = StreamProcessing(
            self,
            "Processing",
            config=config,
            stream=data.stream,
            standings=data.storage.standings,
            dead_letters=data.dead_letters.queue,
            on_failure=data.dead_letters.on_failure_bucket,
        )
        closing = RaceClosing(
            self,
            "Closing",
            config=config,
            dead_letters=data.scheduling.dead_letters,
            standings=data.storage.standings,
            idempotency=data.storage.idempotency,
        )
        archive = Archive(
            self, "Archive", config=config, stream=data.stream, bucket=data.archive_bucket
        )
        api = LeaderboardApi(self, "Leaderboard", config=config, standings=data.storage.standings)
        # The API creates each race's schedule (functions/leaderboard_api): what it needs for it.
        data.scheduling.grant_scheduling(api.handler.function)
        for variable, value in data.scheduling.environment(
            closing.closer.function.function_arn
        ).items():
            api.handler.function.add_environment(variable, value)
        Observability(
            self,
            "Observability",
            config=config,
            watched=Monitored(
                processor=processing.processor.function,
                event_source_mapping_id=processing.event_source.event_source_mapping_id,
                closer=closing.closer.function,
                close_dead_letters=data.scheduling.dead_letters,
                api_function=api.handler.function,
                api=api.api,
                dead_letters=data.dead_letters.queue,
                iot_rule_errors=ingest.rule_errors,
                delivery_stream=archive.delivery_stream,
                standings=data.storage.standings,
                index_names=data.storage.index_names,
            ),
        )
        cdn = ViewerCdn(
            self,
            "Viewers",
            config=config,
            api=api.api,
            web_acl_arn=edge.web_acl_arn(self) if edge else None,
        )
        CfnOutput(self, names.OUTPUT_API_URL, value=api.api.url)
        CfnOutput(self, names.OUTPUT_VIEWER_URL, value=cdn.url)
        CfnOutput(self, names.OUTPUT_IOT_POLICY, value=ingest.policy.ref)
        CfnOutput(self, names.OUTPUT_GLUE_DATABASE, value=archive.database.ref)
