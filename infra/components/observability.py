"""The dashboard and the alarms (to an SNS topic), thresholds from config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import BreakawayConfig

GTE: Final = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class Monitored:
    """What the dashboard and alarms watch."""

    processor: lambda_.IFunction
    event_source_mapping_id: str
    finisher: lambda_.IFunction
    finish_queue: sqs.IQueue
    finish_dead_letters: sqs.IQueue
    api_function: lambda_.IFunction
    api: apigw.RestApi
    dead_letters: sqs.IQueue
    iot_rule_errors: cloudwatch.Metric
    delivery_stream: firehose.IDeliveryStream
    standings: dynamodb.ITable
    index_names: tuple[str, ...]


def function_widget(title: str, fn: lambda_.IFunction, period: Duration) -> cloudwatch.GraphWidget:
    """A function's dashboard graph: invocations, errors and throttles; p99 duration right."""
    return cloudwatch.GraphWidget(
        title=title,
        left=[
            fn.metric_invocations(period=period),
            fn.metric_errors(period=period),
            fn.metric_throttles(period=period),
        ],
        right=[fn.metric_duration(period=period, statistic="p99")],
        width=8,
    )


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        watched: Monitored,
    ) -> None:
        super().__init__(scope, construct_id)
        thresholds = config.alarms
        period = Duration.seconds(thresholds.period_seconds)
        self.topic = sns.Topic(self, "Alarms", display_name="Breakaway alarms", enforce_ssl=True)
        if thresholds.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(thresholds.email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(name: str, metric: cloudwatch.IMetric, threshold: float, what: str) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=GTE,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=what,
            )
            created.add_alarm_action(actions.SnsAction(self.topic))
            self.alarms[name] = created

        w = watched
        iterator_age = w.processor.metric(
            "IteratorAge", statistic="Maximum", period=Duration.minutes(1)
        )
        alarm(
            "IteratorAge",
            iterator_age,
            thresholds.iterator_age_ms,
            "The stream processor is falling behind the stream",
        )
        for label, fn in (
            ("Processor", w.processor),
            ("Finisher", w.finisher),
            ("Api", w.api_function),
        ):
            alarm(
                f"{label}Errors",
                fn.metric_errors(period=period, statistic="Sum"),
                thresholds.function_errors,
                f"{label} function errors",
            )
            alarm(
                f"{label}Throttles",
                fn.metric_throttles(period=period, statistic="Sum"),
                thresholds.function_throttles,
                f"{label} function throttles",
            )
        dead_letters = w.dead_letters.metric_approximate_number_of_messages_visible(
            period=period, statistic="Maximum"
        )
        alarm(
            "DeadLetters",
            dead_letters,
            thresholds.dead_letters_visible,
            "Poison records are waiting in the dead-letter queue",
        )
        finish_age = w.finish_queue.metric_approximate_age_of_oldest_message(
            period=period, statistic="Maximum"
        )
        alarm(
            "FinishQueueAge",
            finish_age,
            thresholds.finish_queue_age_seconds,
            "Finishing riders are waiting in the finish queue: the race finisher is behind or "
            "failing (results and announcements are late)",
        )
        finish_dead_letters = w.finish_dead_letters.metric_approximate_number_of_messages_visible(
            period=period, statistic="Maximum"
        )
        alarm(
            "FinishDeadLetters",
            finish_dead_letters,
            thresholds.dead_letters_visible,
            "Finish messages ran out of receives and wait in the finish dead-letter queue: "
            "those riders have no stored result until the messages are redriven",
        )
        on_failure = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="OnFailureDestinationDeliveredEventCount",
            dimensions_map={"EventSourceMappingUUID": w.event_source_mapping_id},
            statistic="Sum",
            period=period,
        )
        alarm(
            "OnFailureRecords",
            on_failure,
            thresholds.on_failure_records,
            "Batches exhausted their retries or age and went to the on-failure bucket",
        )
        alarm(
            "IotRuleErrors",
            w.iot_rule_errors.with_(period=period),
            thresholds.iot_rule_errors,
            "The IoT rule failed to put messages to Kinesis (see the rule error log group)",
        )
        freshness = w.delivery_stream.metric(
            "DeliveryToS3.DataFreshness", statistic="Maximum", period=period
        )
        alarm(
            "ArchiveFreshness",
            freshness,
            thresholds.firehose_freshness_seconds,
            "Firehose is late delivering the archive to S3",
        )
        throttle_metrics: dict[str, cloudwatch.IMetric] = {}
        for i, metric_name in enumerate(("ReadThrottleEvents", "WriteThrottleEvents")):
            throttle_metrics[f"t{i}"] = w.standings.metric(
                metric_name, statistic="Sum", period=period
            )
            for j, index in enumerate(w.index_names):
                if metric_name == "ReadThrottleEvents":
                    continue
                throttle_metrics[f"g{j}"] = cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=metric_name,
                    dimensions_map={
                        "TableName": w.standings.table_name,
                        "GlobalSecondaryIndexName": index,
                    },
                    statistic="Sum",
                    period=period,
                )
        throttles = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({k}, 0)" for k in throttle_metrics),
            using_metrics=throttle_metrics,
            label="DynamoDB throttle events (table and indexes)",
            period=period,
        )
        alarm(
            "DynamoDbThrottles",
            throttles,
            thresholds.dynamodb_throttles,
            "DynamoDB throttled the standings table or one of its indexes",
        )
        alarm(
            "Api5xx",
            w.api.metric_server_error(period=period, statistic="Sum"),
            thresholds.api_5xx,
            "The API answered 5xx",
        )
        latency = w.api.metric_latency(period=period, statistic="p99")
        alarm(
            "ApiLatencyP99",
            latency,
            thresholds.api_p99_latency_ms,
            "API p99 latency is high",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Iterator age (ms)", left=[iterator_age], width=8),
            function_widget("Processor", w.processor, period),
            cloudwatch.GraphWidget(
                title="Dead letters and on-failure", left=[dead_letters, on_failure], width=8
            ),
        )
        self.dashboard.add_widgets(
            function_widget("Race finisher", w.finisher, period),
            cloudwatch.GraphWidget(
                title="Finish queue: oldest message (s)", left=[finish_age], width=8
            ),
            cloudwatch.GraphWidget(
                title="Finish dead letters", left=[finish_dead_letters], width=8
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="IoT rule errors", left=[w.iot_rule_errors], width=8),
            cloudwatch.GraphWidget(title="Archive freshness (s)", left=[freshness], width=8),
            cloudwatch.GraphWidget(title="DynamoDB throttles", left=[throttles], width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and 5xx",
                left=[w.api.metric_count(period=period), w.api.metric_server_error(period=period)],
                width=12,
            ),
            cloudwatch.GraphWidget(title="API latency p99 (ms)", left=[latency], width=12),
        )
        self.dashboard.add_widgets(
            *[
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(self.alarms.values()), width=24
                )
            ]
        )
