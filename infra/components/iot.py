"""IoT Core ingest: the topic rule into Kinesis (with an error action that keeps each failed
message and its payload) and the device policy for simulator things.

Contract v2: a thing publishes every rider it carries on its own topic
(``breakaway/devices/<thing name>/telemetry``), the only one its policy allows; the rule
(``shared.names.RULE_SQL``) copies the contract's fields and sets ``deviceId`` from the topic, and
keys the Kinesis record by the payload's ``riderId``."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Aws
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.common import removal_policy, retention
from infra.config import BreakawayConfig
from shared import names

RULE_ERRORS_METRIC: Final = "IotRuleErrors"
THING_NAME_VARIABLE: Final = "${iot:Connection.Thing.ThingName}"


def topic_arn(topic_filter: str) -> str:
    """An IoT policy topic ARN from an MQTT filter: ``+`` (one level) becomes ``*``."""
    return f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}:topic/" + topic_filter.replace(
        "+", "*"
    )


def topic_arn_as_nag_reports(topic_filter: str) -> str:
    """``topic_arn`` as cdk-nag prints it in a finding id."""
    return "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/" + topic_filter.replace(
        "+", "*"
    )


def telemetry_publish_topics(rule: str | None) -> list[str]:
    """The topics a device may publish on: its own telemetry topic (the thing name a policy
    variable), and with Basic Ingest (``rule`` given) that topic's ``$aws/rules/<rule>/...``
    form, which reaches the rule without the message broker. No other: the rule takes the
    reading's ``deviceId`` from the topic, so a device can speak only for itself."""
    topics = [names.telemetry_topic(THING_NAME_VARIABLE)]
    if rule is not None:
        topics.append(names.basic_ingest_topic(rule, THING_NAME_VARIABLE))
    return topics


def device_policy_document(basic_ingest_rule: str | None) -> dict[str, Any]:
    """What a device (a thing) may do: connect only as itself (its client id its thing name,
    with the certificate attached to that thing) and publish only on its own telemetry topic.
    Nothing to subscribe to or receive: the simulator's devices only publish."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": (
                    f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}:client/"
                    + THING_NAME_VARIABLE
                ),
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "PublishOwnTelemetryOnly",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [topic_arn(t) for t in telemetry_publish_topics(basic_ingest_rule)],
            },
        ],
    }


class IotIngest(Construct):
    """Telemetry from devices into the stream. A message the rule fails to put is not lost:
    the error action logs it, payload included, and a metric filter counts it for the alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        stream: kinesis.IStream,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule_name = names.rule_name(config.env_name)
        self.error_logs = logs.LogGroup(
            self,
            "RuleErrors",
            retention=retention(config.failure_retention_days),
            removal_policy=removal_policy(config),
        )
        role = self._rule_role(stream)
        self.rule = self._topic_rule(stream, role)
        self.rule_errors = self._count_rule_errors(names.env_metrics_namespace(config.env_name))
        self.policy = iot.CfnPolicy(
            self,
            "DevicePolicy",
            policy_document=device_policy_document(self.rule_name if config.basic_ingest else None),
        )

    def _rule_role(self, stream: kinesis.IStream) -> iam.Role:
        """The rule's own role: write to this stream, and write (and find) log streams in the
        error log group, nothing else."""
        role = iam.Role(
            self,
            "RuleRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="IoT topic rule: put telemetry to Kinesis, log failed messages",
        )
        stream.grant_write(role)
        self.error_logs.grant_write(role)
        self.error_logs.grant(role, "logs:DescribeLogStreams")
        return role

    def _topic_rule(self, stream: kinesis.IStream, role: iam.IRole) -> iot.CfnTopicRule:
        """Each reading into Kinesis with the device the topic names, keyed by rider id, so one
        rider's readings stay in order on one shard whichever device carries it; the error
        action writes each failed message (a payload without ``riderId`` renders no partition
        key) as its own log event."""
        return iot.CfnTopicRule(
            self,
            "TelemetryRule",
            rule_name=self.rule_name,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=names.RULE_SQL,
                aws_iot_sql_version=names.RULE_SQL_VERSION,
                rule_disabled=False,
                description="Telemetry readings into the Kinesis stream, deviceId from the "
                "topic, keyed by rider id",
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        kinesis=iot.CfnTopicRule.KinesisActionProperty(
                            stream_name=stream.stream_name,
                            partition_key=names.RULE_PARTITION_KEY,
                            role_arn=role.role_arn,
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                        log_group_name=self.error_logs.log_group_name,
                        role_arn=role.role_arn,
                        batch_mode=False,
                    )
                ),
            ),
        )

    def _count_rule_errors(self, namespace: str) -> cloudwatch.Metric:
        """The rule's failures as a metric the alarm can watch: every error-action message is
        one log event in the error log group, so counting its events counts failed messages.
        The namespace is the environment's: a metric filter cannot add a fixed dimension, and
        one shared metric would let one environment's errors raise another's alarm."""
        self.error_logs.add_metric_filter(
            "Count",
            filter_pattern=logs.FilterPattern.all_events(),
            metric_namespace=namespace,
            metric_name=RULE_ERRORS_METRIC,
            metric_value="1",
            default_value=0,
        )
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=RULE_ERRORS_METRIC,
            statistic="Sum",
        )
