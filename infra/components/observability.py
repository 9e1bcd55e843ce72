"""The dashboard and the alarms (to an SNS topic), thresholds from config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Annotations, CfnOutput, Duration
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
from shared import names

GTE: Final = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
OUTPUT_ALARM_TOPIC: Final = "AlarmTopicArn"
OUTPUT_ALARM_SUBSCRIBERS: Final = "AlarmSubscribers"
NO_SUBSCRIBER: Final = (
    "NONE: no one is notified of an alarm. Set alarms.email in cdk.json "
    "(breakaway:environments) and redeploy, or subscribe to AlarmTopicArn."
)


@dataclass(frozen=True)
class Monitored:
    """What the dashboard and alarms watch."""

    processor: lambda_.IFunction
    event_source_mapping_id: str
    closer: lambda_.IFunction
    close_dead_letters: sqs.IQueue
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


def dynamodb_throttles(
    table: dynamodb.ITable, index_names: tuple[str, ...], period: Duration
) -> cloudwatch.MathExpression:
    """The standings table's read and write throttle events plus each index's write throttle
    events, summed into one series (missing data counts as none). Index writes are watched
    because a throttled index throttles the writes to its table."""
    summed: dict[str, cloudwatch.IMetric] = {
        "t0": table.metric("ReadThrottleEvents", statistic="Sum", period=period),
        "t1": table.metric("WriteThrottleEvents", statistic="Sum", period=period),
    }
    for j, index in enumerate(index_names):
        summed[f"g{j}"] = cloudwatch.Metric(
            namespace="AWS/DynamoDB",
            metric_name="WriteThrottleEvents",
            dimensions_map={"TableName": table.table_name, "GlobalSecondaryIndexName": index},
            statistic="Sum",
            period=period,
        )
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({k}, 0)" for k in summed),
        using_metrics=summed,
        label="DynamoDB throttle events (table and indexes)",
        period=period,
    )


def mapping_metric(name: str, mapping_id: str, period: Duration) -> cloudwatch.Metric:
    """One of the event source mapping's own metrics (``AWS/Lambda``, by
    ``EventSourceMappingUUID``, published because its metrics config has ``EventCount``)."""
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name=name,
        dimensions_map={"EventSourceMappingUUID": mapping_id},
        statistic="Sum",
        period=period,
    )


def closer_metric(name: str, period: Duration) -> cloudwatch.Metric:
    """One of the race closer's own metrics (Powertools EMF: the namespace and the service
    dimension the handler sets)."""
    return cloudwatch.Metric(
        namespace=names.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": names.POWERTOOLS_SERVICE_CLOSER},
        statistic="Sum",
        period=period,
    )


@dataclass(frozen=True)
class Signals:
    """The metrics that both an alarm and a dashboard graph show, built once so that the graph
    plots exactly what the alarm evaluates."""

    iterator_age: cloudwatch.IMetric
    dead_letters: cloudwatch.IMetric
    close_dead_letters: cloudwatch.IMetric
    close_delivery_failures: cloudwatch.IMetric
    on_failure: cloudwatch.IMetric
    delivery_failures: cloudwatch.IMetric
    dropped: cloudwatch.IMetric
    freshness: cloudwatch.IMetric
    throttles: cloudwatch.IMetric
    api_latency: cloudwatch.IMetric

    @classmethod
    def of(cls, w: Monitored, period: Duration) -> Signals:
        """Each signal at the alarm period but the iterator age, which is read per minute so
        that a processor falling behind raises its alarm within a minute."""
        return cls(
            iterator_age=w.processor.metric(
                "IteratorAge", statistic="Maximum", period=Duration.minutes(1)
            ),
            dead_letters=w.dead_letters.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            ),
            close_dead_letters=w.close_dead_letters.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            ),
            # The closer is invoked asynchronously (by its schedules) only: every failure
            # counted here is a failed close its on-failure destination refused.
            close_delivery_failures=w.closer.metric(
                "DestinationDeliveryFailures", statistic="Sum", period=period
            ),
            on_failure=mapping_metric(
                "OnFailureDestinationDeliveredEventCount", w.event_source_mapping_id, period
            ),
            # Per function (an invocation metric): the processor is invoked by its mapping
            # only, so every failure counted here is the on-failure bucket refusing a batch.
            delivery_failures=w.processor.metric(
                "DestinationDeliveryFailures", statistic="Sum", period=period
            ),
            dropped=mapping_metric("DroppedEventCount", w.event_source_mapping_id, period),
            freshness=w.delivery_stream.metric(
                "DeliveryToS3.DataFreshness", statistic="Maximum", period=period
            ),
            throttles=dynamodb_throttles(w.standings, w.index_names, period),
            api_latency=w.api.metric_latency(period=period, statistic="p99"),
        )


class Observability(Construct):
    """One SNS topic that every alarm notifies, the alarms (each fires at ``>=`` its threshold
    from ``AlarmConfig``; missing data is not breaching) and one dashboard. The alarms are
    created in a fixed order: the dashboard's alarm status widget lists them in that order."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        watched: Monitored,
    ) -> None:
        super().__init__(scope, construct_id)
        self._thresholds = config.alarms
        self._period = Duration.seconds(self._thresholds.period_seconds)
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"Breakaway alarms ({config.env_name})", enforce_ssl=True
        )
        if self._thresholds.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(self._thresholds.email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        signals = Signals.of(watched, self._period)
        self._processing_alarms(watched, signals)
        self._waiting_record_alarms(signals)
        self._lost_record_alarms(signals)
        self._delivery_alarms(watched, signals)
        self._alarm(
            "DynamoDbThrottles",
            signals.throttles,
            self._thresholds.dynamodb_throttles,
            "DynamoDB throttled the standings table or one of its indexes",
        )
        self._api_alarms(watched, signals)
        self.dashboard = self._dashboard(watched, signals)
        self._say_who_is_notified()

    def _say_who_is_notified(self) -> None:
        """The topic's ARN and its subscriber as outputs, so that ``cdk deploy`` ends by saying
        whether anyone will hear of an alarm: by default no one does."""
        email = self._thresholds.email
        CfnOutput(
            self, OUTPUT_ALARM_TOPIC, value=self.topic.topic_arn, description="Every alarm"
        ).override_logical_id(OUTPUT_ALARM_TOPIC)
        CfnOutput(
            self,
            OUTPUT_ALARM_SUBSCRIBERS,
            value=f"email:{email} (confirm the message SNS sends)" if email else NO_SUBSCRIBER,
            description="Who the alarm topic notifies",
        ).override_logical_id(OUTPUT_ALARM_SUBSCRIBERS)
        if not email:
            Annotations.of(self).add_info(f"Alarm topic: {NO_SUBSCRIBER}")

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, what: str) -> None:
        """Every alarm is alike but for its metric and threshold: one evaluation period, so it
        fires on the first bad period, and quiet when nothing is reported (an idle race)."""
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

    def _processing_alarms(self, w: Monitored, signals: Signals) -> None:
        """The stream processor falling behind, and any function erring or being throttled:
        the leaderboard goes stale before anything else shows it."""
        t = self._thresholds
        self._alarm(
            "IteratorAge",
            signals.iterator_age,
            t.iterator_age_ms,
            "The stream processor is falling behind the stream",
        )
        for label, fn in (
            ("Processor", w.processor),
            ("Closer", w.closer),
            ("Api", w.api_function),
        ):
            self._alarm(
                f"{label}Errors",
                fn.metric_errors(period=self._period, statistic="Sum"),
                t.function_errors,
                f"{label} function errors",
            )
            self._alarm(
                f"{label}Throttles",
                fn.metric_throttles(period=self._period, statistic="Sum"),
                t.function_throttles,
                f"{label} function throttles",
            )

    def _waiting_record_alarms(self, signals: Signals) -> None:
        """Records parked where none should be: each is a reading missing from the leaderboard,
        or a race without its placings, until someone redrives it."""
        t = self._thresholds
        self._alarm(
            "DeadLetters",
            signals.dead_letters,
            t.dead_letters_visible,
            "Poison records are waiting in the dead-letter queue",
        )
        self._alarm(
            "CloseDeadLetters",
            signals.close_dead_letters,
            t.dead_letters_visible,
            "A race close failed: its schedule could not invoke the closer, or the closer failed "
            "all of Lambda's retries. The race has no stored placings (or unannounced riders) "
            "until the message is redriven to the closer",
        )
        self._alarm(
            "OnFailureRecords",
            signals.on_failure,
            t.on_failure_records,
            "Batches exhausted their retries or age and went to the on-failure bucket",
        )

    def _lost_record_alarms(self, signals: Signals) -> None:
        """Batches the mapping gave up on that did not reach the on-failure bucket, and failed
        closes that did not reach the close dead-letter queue: Lambda could not write them there
        (a delivery failure) and dropped them. They are lost, not parked: nothing else says
        so."""
        t = self._thresholds
        self._alarm(
            "OnFailureDeliveryFailures",
            signals.delivery_failures,
            t.on_failure_records,
            "Lambda could not write a discarded batch to the on-failure bucket: its records "
            "are lost unless the stream still holds them",
        )
        self._alarm(
            "CloseDeliveryFailures",
            signals.close_delivery_failures,
            t.on_failure_records,
            "Lambda could not write a failed race close to the close dead-letter queue: that "
            "race has no stored placings (or unannounced riders) and nothing will retry it",
        )
        self._alarm(
            "DroppedRecords",
            signals.dropped,
            t.on_failure_records,
            "The event source mapping dropped records after their retries or age ran out "
            "without delivering them to the on-failure bucket: they are lost",
        )

    def _delivery_alarms(self, w: Monitored, signals: Signals) -> None:
        """The two managed hops with no function of ours to fail loudly: the IoT rule into
        Kinesis, and Firehose into the archive bucket."""
        self._alarm(
            "IotRuleErrors",
            w.iot_rule_errors.with_(period=self._period),
            self._thresholds.iot_rule_errors,
            "The IoT rule failed to put messages to Kinesis (see the rule error log group)",
        )
        self._alarm(
            "ArchiveFreshness",
            signals.freshness,
            self._thresholds.firehose_freshness_seconds,
            "Firehose is late delivering the archive to S3",
        )

    def _api_alarms(self, w: Monitored, signals: Signals) -> None:
        """What a spectator sees: server errors and slow answers from the leaderboard API."""
        self._alarm(
            "Api5xx",
            w.api.metric_server_error(period=self._period, statistic="Sum"),
            self._thresholds.api_5xx,
            "The API answered 5xx",
        )
        self._alarm(
            "ApiLatencyP99",
            signals.api_latency,
            self._thresholds.api_p99_latency_ms,
            "API p99 latency is high",
        )

    def _dashboard(self, w: Monitored, signals: Signals) -> cloudwatch.Dashboard:
        """One row per stage (processing, closing, delivery and storage, the API), then the
        status of every alarm, so one page shows where a race's data is held up."""
        period = self._period
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Iterator age (ms)", left=[signals.iterator_age], width=8),
            function_widget("Processor", w.processor, period),
            cloudwatch.GraphWidget(
                title="Dead letters, on-failure and lost",
                left=[
                    signals.dead_letters,
                    signals.on_failure,
                    signals.delivery_failures,
                    signals.dropped,
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            function_widget("Race closer", w.closer, period),
            cloudwatch.GraphWidget(
                title="Races closed and riders announced",
                left=[closer_metric(name, period) for name in ("RacesClosed", "RidersPlaced")],
                right=[closer_metric(n, period) for n in ("Announced", "AnnouncementsFailed")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Race closes failed (dead letters)",
                left=[signals.close_dead_letters],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="IoT rule errors", left=[w.iot_rule_errors], width=8),
            cloudwatch.GraphWidget(
                title="Archive freshness (s)", left=[signals.freshness], width=8
            ),
            cloudwatch.GraphWidget(title="DynamoDB throttles", left=[signals.throttles], width=8),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and 5xx",
                left=[w.api.metric_count(period=period), w.api.metric_server_error(period=period)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency p99 (ms)", left=[signals.api_latency], width=12
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24
            )
        )
        return dashboard
