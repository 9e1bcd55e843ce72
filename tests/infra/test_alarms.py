"""Every alarm watches a metric that exists: its namespace, name, dimensions and statistic as AWS
documents them (issue 16, item 8). An alarm on a misspelt metric or a dimension the service
does not publish is valid CloudFormation that never fires; only the documentation can say.

Sources (AWS documentation, by page):

* LAMBDA_METRICS: "Types of metrics for Lambda functions" (Lambda Developer Guide,
  monitoring-metrics-types.html). Invocation metrics (``Errors``, ``Throttles``,
  ``DestinationDeliveryFailures``: "for asynchronous invocation and supported event source
  mappings, the number of times that Lambda attempts to send an event to a destination but
  fails"), viewed with ``Sum``, by ``FunctionName``; ``IteratorAge`` (performance metric, stream
  event source mappings, ``Maximum``); event source mapping metrics
  (``OnFailureDestinationDeliveredEventCount``, ``DroppedEventCount``: records dropped on
  expiry or retry exhaustion, not sent to an on-failure destination), by
  ``EventSourceMappingUUID``, ``Sum``, published only with the mapping's ``EventCount``
  metrics config (asserted below).
* SQS_METRICS: "Available CloudWatch metrics for Amazon SQS" (SQS Developer Guide):
  ``ApproximateNumberOfMessagesVisible``, ``ApproximateAgeOfOldestMessage`` by ``QueueName``;
  ``Maximum`` is among their relevant statistics.
* FIREHOSE_METRICS: "Data delivery CloudWatch metrics" (Amazon Data Firehose Developer Guide):
  ``DeliveryToS3.DataFreshness``, seconds, by ``DeliveryStreamName``; the guide's best
  practices alarm on it against the buffering limit.
* APIGW_METRICS: "Amazon API Gateway dimensions and metrics" (API Gateway Developer Guide):
  ``5XXError`` ("the Sum statistic represents this metric"), ``Latency`` (milliseconds), by
  ``ApiName`` (alone, or with ``Stage``...).
* DYNAMODB_METRICS: "DynamoDB Metrics and dimensions" (DynamoDB Developer Guide):
  ``ReadThrottleEvents``/``WriteThrottleEvents``, ``Sum``, by ``TableName`` (the table only) or
  ``TableName`` + ``GlobalSecondaryIndexName`` (an index).
* The IoT rule's errors are this app's own metric, from a metric filter on the rule's error
  log group: its namespace and name are the filter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from infra.components.observability import NO_SUBSCRIBER
from shared import keys
from tests.infra.helpers import Assembly, exported, function_by_handler

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

LAMBDA_METRICS = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html"
SQS_METRICS = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "sqs-available-cloudwatch-metrics.html"
)
FIREHOSE_METRICS = (
    "https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html"
)
APIGW_METRICS = (
    "https://docs.aws.amazon.com/apigateway/latest/developerguide/"
    "api-gateway-metrics-and-dimensions.html"
)
DYNAMODB_METRICS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html"
)
OWN_METRIC = "infra/components/iot.py (metric filter on the rule's error log group)"

PROCESSOR = "functions.stream_processor.handler.handler"
CLOSER = "functions.race_closer.handler.handler"
API = "functions.leaderboard_api.handler.handler"


@dataclass(frozen=True)
class Documented:
    alarm: str
    namespace: str
    metric: str
    statistic: str
    dimension: str
    """``FunctionName``, ``QueueName``, ``EventSourceMappingUUID``, ``DeliveryStreamName``,
    ``ApiName`` or ``""`` (none)."""
    of: str
    """Which resource the dimension names: a handler, a queue's logical id part, or ``""``."""
    source: str


DOCUMENTED = [
    Documented(
        "IteratorAge", "AWS/Lambda", "IteratorAge", "Maximum", "FunctionName", PROCESSOR,
        LAMBDA_METRICS,
    ),
    *(
        Documented(
            f"{label}{metric}", "AWS/Lambda", metric, "Sum", "FunctionName", handler,
            LAMBDA_METRICS,
        )
        for label, handler in (("Processor", PROCESSOR), ("Closer", CLOSER), ("Api", API))
        for metric in ("Errors", "Throttles")
    ),
    Documented(
        "DeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "QueueName",
        "PoisonRecords", SQS_METRICS,
    ),
    Documented(
        "CloseDeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum",
        "QueueName", "RaceClosesDeadLetters", SQS_METRICS,
    ),
    Documented(
        "OnFailureRecords", "AWS/Lambda", "OnFailureDestinationDeliveredEventCount", "Sum",
        "EventSourceMappingUUID", PROCESSOR, LAMBDA_METRICS,
    ),
    Documented(
        "OnFailureDeliveryFailures", "AWS/Lambda", "DestinationDeliveryFailures", "Sum",
        "FunctionName", PROCESSOR, LAMBDA_METRICS,
    ),
    Documented(
        "CloseDeliveryFailures", "AWS/Lambda", "DestinationDeliveryFailures", "Sum",
        "FunctionName", CLOSER, LAMBDA_METRICS,
    ),
    Documented(
        "DroppedRecords", "AWS/Lambda", "DroppedEventCount", "Sum", "EventSourceMappingUUID",
        PROCESSOR, LAMBDA_METRICS,
    ),
    Documented("IotRuleErrors", "Breakaway/dev", "IotRuleErrors", "Sum", "", "", OWN_METRIC),
    Documented(
        "ArchiveFreshness", "AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum",
        "DeliveryStreamName", "", FIREHOSE_METRICS,
    ),
    Documented("Api5xx", "AWS/ApiGateway", "5XXError", "Sum", "ApiName", "", APIGW_METRICS),
    Documented(
        "ApiLatencyP99", "AWS/ApiGateway", "Latency", "p99", "ApiName", "", APIGW_METRICS
    ),
]  # fmt: skip


def _alarms(dev: Assembly) -> dict[str, dict[str, Any]]:
    """Alarm properties by the construct id given in observability.py."""
    alarms = dev.resources("App", "AWS::CloudWatch::Alarm")
    return {lid.removeprefix("Observability")[:-8]: a["Properties"] for lid, a in alarms.items()}


def _queue_name(dev: Assembly, contains: str) -> dict[str, Any]:
    (lid,) = [lid for lid in dev.resources("Data", "AWS::SQS::Queue") if contains in lid]
    return {"Fn::GetAtt": [lid, "QueueName"]}


def _expected_dimensions(dev: Assembly, doc: Documented) -> list[dict[str, Any]]:
    if doc.dimension == "":
        return []
    if doc.dimension == "FunctionName":
        function_id, _ = function_by_handler(dev, doc.of)
        value: Any = {"Ref": function_id}
    elif doc.dimension == "EventSourceMappingUUID":
        function_id, _ = function_by_handler(dev, doc.of)
        (esm_id,) = [
            lid
            for lid, esm in dev.resources("App", "AWS::Lambda::EventSourceMapping").items()
            if esm["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        value = {"Ref": esm_id}
    elif doc.dimension == "DeliveryStreamName":
        (stream_id,) = dev.resources("App", "AWS::KinesisFirehose::DeliveryStream")
        value = {"Ref": stream_id}
    elif doc.dimension == "ApiName":
        value = dev.one("App", "AWS::ApiGateway::RestApi")["Properties"]["Name"]
    else:
        raise AssertionError(doc.dimension)
    return [{"Name": doc.dimension, "Value": value}]


def test_the_template_has_exactly_the_documented_alarms(dev: Assembly) -> None:
    assert set(_alarms(dev)) == {d.alarm for d in DOCUMENTED} | {"DynamoDbThrottles"}


@pytest.mark.parametrize("doc", DOCUMENTED, ids=[d.alarm for d in DOCUMENTED])
def test_alarm_watches_the_documented_metric(dev: Assembly, doc: Documented) -> None:
    props = _alarms(dev)[doc.alarm]
    assert (props["Namespace"], props["MetricName"]) == (doc.namespace, doc.metric), doc.source
    statistic = props.get("Statistic") or props.get("ExtendedStatistic")
    assert statistic == doc.statistic, doc.source
    dimensions = props.get("Dimensions", [])
    if doc.dimension == "QueueName":
        ((dimension),) = dimensions
        assert dimension["Name"] == "QueueName", doc.source
        assert exported(dev, dimension["Value"]) == _queue_name(dev, doc.of)
    else:
        assert dimensions == _expected_dimensions(dev, doc), doc.source


def test_the_mapping_publishes_its_event_count_metrics(dev: Assembly) -> None:
    """``OnFailureDestinationDeliveredEventCount`` and ``DroppedEventCount`` exist only for a
    mapping whose metrics config includes ``EventCount`` (LAMBDA_METRICS)."""
    function_id, _ = function_by_handler(dev, PROCESSOR)
    (esm,) = [
        esm["Properties"]
        for esm in dev.resources("App", "AWS::Lambda::EventSourceMapping").values()
        if esm["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert esm["MetricsConfig"] == {"Metrics": ["EventCount"]}
    assert "OnFailure" in esm["DestinationConfig"]


def test_iot_rule_errors_alarm_watches_the_rule_error_filter(dev: Assembly) -> None:
    (metric_filter,) = dev.resources("App", "AWS::Logs::MetricFilter").values()
    (transformation,) = metric_filter["Properties"]["MetricTransformations"]
    props = _alarms(dev)["IotRuleErrors"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        props["Namespace"],
        props["MetricName"],
    )
    assert "Dimensions" not in transformation
    assert transformation["MetricValue"] == "1"  # one log event per failed message: Sum counts


def test_dynamodb_throttles_sum_the_documented_table_and_index_metrics(dev: Assembly) -> None:
    """DYNAMODB_METRICS: ``TableName`` alone counts the table's events, not its indexes'; an
    index's are under ``TableName`` + ``GlobalSecondaryIndexName``."""
    props = _alarms(dev)["DynamoDbThrottles"]
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    stats = [m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m]
    (standings,) = [
        lid for lid in dev.resources("Data", "AWS::DynamoDB::Table") if "Standings" in lid
    ]
    watched = []
    for stat in stats:
        metric = stat["Metric"]
        assert (metric["Namespace"], stat["Stat"]) == ("AWS/DynamoDB", "Sum")
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert exported(dev, dims.pop("TableName")) == {"Ref": standings}
        watched.append((metric["MetricName"], dims.get("GlobalSecondaryIndexName", "")))
    assert sorted(watched) == sorted(
        [
            ("ReadThrottleEvents", ""),
            ("WriteThrottleEvents", ""),
            ("WriteThrottleEvents", keys.INDEX_RECENT),
        ]
    )
    ids = [m["Id"] for m in props["Metrics"] if "MetricStat" in m]
    assert sorted(expression["Expression"].split(" + ")) == sorted(f"FILL({i}, 0)" for i in ids)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deploy_says_no_one_is_notified_by_default(synths: Any, env: str) -> None:
    assembly: Assembly = getattr(synths, env)
    outputs = assembly.template("App")["Outputs"]
    (topic_id,) = assembly.resources("App", "AWS::SNS::Topic")
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    assert outputs["AlarmSubscribers"]["Value"] == NO_SUBSCRIBER
    assert not assembly.resources("App", "AWS::SNS::Subscription")


def test_an_email_in_the_config_is_subscribed_and_said() -> None:
    from aws_cdk.assertions import Template

    from infra.application import build_app
    from tests.infra.helpers import cdk_context

    context = cdk_context("dev")
    context["breakaway:environments"]["dev"] = {"alarms": {"email": "ops@example.com"}}
    _, _, app_stack = build_app(context=context)
    template = Template.from_stack(app_stack).to_json()
    (subscription,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription"
    ]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")
    assert template["Outputs"]["AlarmSubscribers"]["Value"].startswith("email:ops@example.com")
