"""Template assertions on what matters, with exact values, on the dev environment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.components.archive import DATE_PARTITION
from infra.components.leaderboard_api import ROUTES
from infra.config import POWERTOOLS_LAYER_PARAMETER
from shared import keys, names
from tests.infra.helpers import (
    Assembly,
    as_list,
    exported,
    function_by_handler,
    function_grants,
    import_of,
    joined,
    logical_id_of,
    role_statements,
)

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

PROCESSOR_HANDLER = "functions.stream_processor.handler.handler"
CLOSER_HANDLER = "functions.race_closer.handler.handler"
API_HANDLER = "functions.leaderboard_api.handler.handler"
ARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"


def data_id(dev: Assembly, type_: str) -> str:
    (lid,) = dev.resources("Data", type_)
    return lid


def data_ids(dev: Assembly, type_: str, contains: str) -> str:
    (lid,) = [lid for lid in dev.resources("Data", type_) if contains in lid]
    return lid


def queue_id(dev: Assembly, contains: str) -> str:
    """``PoisonRecords`` (the processor's dead letters), ``RaceClosesDeadLetters`` (the race
    closes that failed)."""
    return data_ids(dev, "AWS::SQS::Queue", contains)


def event_source_mapping(dev: Assembly, handler: str) -> tuple[str, dict[str, Any]]:
    """The event source mapping (logical id, properties) that invokes the function."""
    function_id, _ = function_by_handler(dev, handler)
    (found,) = [
        (lid, esm["Properties"])
        for lid, esm in dev.resources("App", "AWS::Lambda::EventSourceMapping").items()
        if esm["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return found


# --- Ingest -------------------------------------------------------------------------------------


def test_stream_is_on_demand_encrypted_with_one_day_retention(dev: Assembly) -> None:
    stream = dev.one("Data", "AWS::Kinesis::Stream")["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in stream
    assert stream["RetentionPeriodHours"] == 24
    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}


def test_iot_rule_sql_partition_key_and_error_action(dev: Assembly) -> None:
    rule = dev.one("App", "AWS::IoT::TopicRule")["Properties"]
    assert rule["RuleName"] == names.rule_name("dev") == "breakaway_dev_telemetry_to_kinesis"
    payload = rule["TopicRulePayload"]
    # The contract's fields one by one (never the payload's deviceId) and the topic's device.
    assert (
        payload["Sql"]
        == names.RULE_SQL
        == (
            "SELECT v, eventId, raceId, riderId, second, cadence, resistance, deviceTimestamp, "
            "event, topic(3) AS deviceId FROM 'breakaway/devices/+/telemetry'"
        )
    )
    assert payload["AwsIotSqlVersion"] == names.RULE_SQL_VERSION == "2016-03-23"
    assert payload["RuleDisabled"] is False
    (action,) = payload["Actions"]
    kinesis = action["Kinesis"]
    # a substitution template reads the incoming payload: its riderId
    assert kinesis["PartitionKey"] == names.RULE_PARTITION_KEY == "${riderId}"
    assert exported(dev, kinesis["StreamName"]) == {"Ref": data_id(dev, "AWS::Kinesis::Stream")}
    # The error action keeps the whole error message (topic, client id, base64 payload).
    logs = payload["ErrorAction"]["CloudwatchLogs"]
    assert logs["BatchMode"] is False
    error_group = logical_id_of(logs["LogGroupName"])
    assert dev.template("App")["Resources"][error_group]["Properties"]["RetentionInDays"] == 30
    (metric_filter,) = dev.resources("App", "AWS::Logs::MetricFilter").values()
    assert metric_filter["Properties"]["LogGroupName"] == {"Ref": error_group}
    assert metric_filter["Properties"]["MetricTransformations"] == [
        {
            "DefaultValue": 0,
            "MetricName": "IotRuleErrors",
            "MetricNamespace": names.env_metrics_namespace("dev"),
            "MetricValue": "1",
        }
    ]


def test_iot_rule_role_can_only_put_to_the_stream_and_write_its_error_log(dev: Assembly) -> None:
    rule = dev.one("App", "AWS::IoT::TopicRule")["Properties"]["TopicRulePayload"]
    role_id = logical_id_of(rule["Actions"][0]["Kinesis"]["RoleArn"])
    statements = role_statements(dev, "App", role_id)
    actions = sorted(a for s in statements for a in as_list(s["Action"]))
    assert actions == [
        "kinesis:ListShards",
        "kinesis:PutRecord",
        "kinesis:PutRecords",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]


def test_iot_policy_connects_as_itself_and_publishes_on_its_own_topic_only(dev: Assembly) -> None:
    document = dev.one("App", "AWS::IoT::Policy")["Properties"]["PolicyDocument"]
    connect, publish = document["Statement"]
    rendered = {
        "Version": document["Version"],
        "Statement": [
            connect | {"Resource": joined(connect["Resource"])},
            publish | {"Resource": [joined(r) for r in publish["Resource"]]},
        ],
    }
    assert rendered == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": ARN + "client/${iot:Connection.Thing.ThingName}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "PublishOwnTelemetryOnly",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [
                    ARN + "topic/breakaway/devices/${iot:Connection.Thing.ThingName}/telemetry",
                    ARN + "topic/$aws/rules/breakaway_dev_telemetry_to_kinesis/"
                    "breakaway/devices/${iot:Connection.Thing.ThingName}/telemetry",
                ],
            },
        ],
    }


# --- Processing ---------------------------------------------------------------------------------


def test_event_source_mapping_settings(dev: Assembly) -> None:
    # The processor's, on the stream: the only one (the closer is invoked by its schedules).
    assert len(dev.resources("App", "AWS::Lambda::EventSourceMapping")) == 1
    _, esm = event_source_mapping(dev, PROCESSOR_HANDLER)
    assert exported(dev, esm["EventSourceArn"]) == {
        "Fn::GetAtt": [data_id(dev, "AWS::Kinesis::Stream"), "Arn"]
    }
    assert esm["StartingPosition"] == "TRIM_HORIZON"
    assert esm["BatchSize"] == 1000
    assert esm["MaximumBatchingWindowInSeconds"] == 1
    assert esm["ParallelizationFactor"] == 2
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["MaximumRetryAttempts"] == 5
    assert esm["MaximumRecordAgeInSeconds"] == 3600
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["MetricsConfig"] == {"Metrics": ["EventCount"]}
    destination = esm["DestinationConfig"]["OnFailure"]["Destination"]
    on_failure_bucket = data_ids(dev, "AWS::S3::Bucket", "OnFailure")
    assert exported(dev, destination) == {"Fn::GetAtt": [on_failure_bucket, "Arn"]}


def _function_basics(dev: Assembly, handler: str) -> dict[str, Any]:
    _, fn = function_by_handler(dev, handler)
    props: dict[str, Any] = fn["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    (layer,) = props["Layers"]
    parameter = dev.template("App")["Parameters"][layer["Ref"]]
    assert parameter == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": POWERTOOLS_LAYER_PARAMETER,
    }
    assert POWERTOOLS_LAYER_PARAMETER == "/aws/service/powertools/python/arm64/python3.13/3.37.0"
    log_group = logical_id_of(props["LoggingConfig"]["LogGroup"])
    assert dev.template("App")["Resources"][log_group]["Properties"]["RetentionInDays"] == 14
    role = dev.template("App")["Resources"][logical_id_of(props["Role"])]
    assert "ManagedPolicyArns" not in role["Properties"]
    return props


def test_processor_function_and_environment(dev: Assembly) -> None:
    props = _function_basics(dev, PROCESSOR_HANDLER)
    assert (props["MemorySize"], props["Timeout"]) == (1024, 60)
    env = props["Environment"]["Variables"]
    # What functions/stream_processor/config.py reads; placing riders is the race closer's.
    assert set(env) == {
        names.ENV_STANDINGS_TABLE,
        names.ENV_DEAD_LETTER_TARGET,
        names.ENV_LIVE_TTL_SECONDS,
        names.ENV_FUTURE_SLACK_S,
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    standings = data_ids(dev, "AWS::DynamoDB::Table", "Standings")
    assert exported(dev, env[names.ENV_STANDINGS_TABLE]) == {"Ref": standings}
    prefix, queue_url = env[names.ENV_DEAD_LETTER_TARGET]["Fn::Join"][1]
    assert prefix == "sqs:"
    # A queue's Ref is its URL.
    assert exported(dev, queue_url) == {"Ref": queue_id(dev, "PoisonRecords")}
    assert env[names.ENV_LIVE_TTL_SECONDS] == "604800"
    assert env[names.ENV_FUTURE_SLACK_S] == "5"
    assert env["POWERTOOLS_SERVICE_NAME"] == names.POWERTOOLS_SERVICE_PROCESSOR
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == names.METRICS_NAMESPACE


def test_processor_grants(dev: Assembly) -> None:
    grants = function_grants(dev, PROCESSOR_HANDLER)
    assert grants["xray:PutTraceSegments"] == ["*"]
    poison = import_of(dev, queue_id(dev, "PoisonRecords"), "Arn")
    assert grants["sqs:SendMessage"] == [poison]
    # Send only, and only to its dead-letter queue: nobody here reads a queue.
    assert sorted(a for a in grants if a.startswith("sqs:")) == [
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    ]
    assert grants["s3:PutObject"][0].endswith("/*")
    assert len(grants["s3:PutObject"]) == 1
    assert len(grants["s3:ListBucket"]) == 1
    # The exact DynamoDB actions and resources: tests/infra/test_grants.py.
    idempotency = import_of(dev, data_ids(dev, "AWS::DynamoDB::Table", "Idempotency"), "Arn")
    assert not [a for a, rs in grants.items() if idempotency in rs]
    # Announcing results is the race closer's: no IoT at all.
    assert not [a for a in grants if a.startswith("iot:")]
    assert "kinesis:GetRecords" in grants
    wildcard_resources = sorted(a for a, rs in grants.items() if "*" in rs)
    assert wildcard_resources == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    # Nothing else: no S3 reads or deletes, no stream writes, no IAM.
    assert not [a for a in grants if a.startswith(("s3:Get", "s3:Delete", "iam:"))]
    assert not [a for a in grants if a.startswith("kinesis:Put")]


def test_closer_function_and_environment(dev: Assembly) -> None:
    props = _function_basics(dev, CLOSER_HANDLER)
    assert (props["MemorySize"], props["Timeout"]) == (1024, 600)
    # A fixed name: every pending race's schedule targets it by ARN.
    assert props["FunctionName"] == names.closer_function_name("dev") == "breakaway-dev-race-closer"
    env = props["Environment"]["Variables"]
    # What functions/race_closer/config.py reads; no IOT_DATA_ENDPOINT: it is looked up.
    assert set(env) == {
        names.ENV_STANDINGS_TABLE,
        names.ENV_IDEMPOTENCY_TABLE,
        names.ENV_NOTIFY_TARGET,
        names.ENV_IDEMPOTENCY_TTL_SECONDS,
        names.ENV_ARCHIVE_BUCKET,
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    standings = data_ids(dev, "AWS::DynamoDB::Table", "Standings")
    idempotency = data_ids(dev, "AWS::DynamoDB::Table", "Idempotency")
    assert exported(dev, env[names.ENV_STANDINGS_TABLE]) == {"Ref": standings}
    assert exported(dev, env[names.ENV_IDEMPOTENCY_TABLE]) == {"Ref": idempotency}
    assert env[names.ENV_NOTIFY_TARGET] == "iot"
    # A day of scheduler retries, 6 h of Lambda's, 14 days in the dead letters, a day more.
    assert env[names.ENV_IDEMPOTENCY_TTL_SECONDS] == str(86_400 + 21_600 + 14 * 86_400 + 86_400)
    assert env["POWERTOOLS_SERVICE_NAME"] == names.POWERTOOLS_SERVICE_CLOSER == "race-closer"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == names.METRICS_NAMESPACE


def test_closer_is_invoked_only_by_its_schedules_and_retried_into_the_dead_letters(
    dev: Assembly,
) -> None:
    function_id, _ = function_by_handler(dev, CLOSER_HANDLER)
    # Scheduler invokes it asynchronously: Lambda retries a failed close twice within 6 h,
    # then hands the event to the dead-letter queue the schedules use.
    (config,) = dev.resources("App", "AWS::Lambda::EventInvokeConfig").values()
    props = dict(config["Properties"])
    destination = props.pop("DestinationConfig")
    assert props == {
        "FunctionName": {"Ref": function_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21_600,
    }
    assert list(destination) == ["OnFailure"]
    assert exported(dev, destination["OnFailure"]["Destination"]) == {
        "Fn::GetAtt": [queue_id(dev, "RaceClosesDeadLetters"), "Arn"]
    }
    # No event source mapping and no resource policy: only the scheduler's role invokes it.
    for kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission"):
        invokers = dev.resources("App", kind).values()
        assert not [r for r in invokers if function_id in json.dumps(r["Properties"])], kind


def test_the_closer_has_time_to_wait_for_its_race_and_close_the_largest(dev: Assembly) -> None:
    """The time pieces a close depends on that the template holds: an invocation up to
    ``MAX_EARLY_S`` early waits for its race, then closes it; at the design's largest race
    that must still fit the timeout (the close's own time from the capacity model, which a
    moto test holds to the requests really sent)."""
    from functions.race_closer.logic import MAX_EARLY_S
    from infra.capacity.model import class_split, close_of
    from infra.config import BreakawayConfig

    _, props = function_by_handler(dev, CLOSER_HANDLER)
    close = close_of(class_split(keys.DESIGN_MAX_RIDERS_PER_RACE), 3_600, BreakawayConfig())
    assert MAX_EARLY_S + close.duration < props["Properties"]["Timeout"] == 600
    # Lambda's retries of a failed close outlast a close: a retry can always start.
    (config,) = dev.resources("App", "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["MaximumEventAgeInSeconds"] > 600


def test_closer_grants(dev: Assembly) -> None:
    grants = function_grants(dev, CLOSER_HANDLER)
    assert grants["iot:Publish"] == [ARN + "topic/breakaway/races/*/riders/*/result"]
    assert grants["iot:DescribeEndpoint"] == ["*"]
    assert sorted(a for a in grants if a.startswith("iot:")) == [
        "iot:DescribeEndpoint",
        "iot:Publish",
    ]
    dead_letters = import_of(dev, queue_id(dev, "RaceClosesDeadLetters"), "Arn")
    sqs = {a: rs for a, rs in grants.items() if a.startswith("sqs:")}
    assert sqs == {  # the on-failure destination's send grant, on the dead letters only
        "sqs:SendMessage": [dead_letters],
        "sqs:GetQueueAttributes": [dead_letters],
        "sqs:GetQueueUrl": [dead_letters],
    }
    # The exact DynamoDB actions and resources: tests/infra/test_grants.py.
    # s3: PutObject of the races' cards only (tests/infra/test_archive_queries.py).
    assert {a.split(":")[0] for a in grants} == {"dynamodb", "iot", "logs", "s3", "sqs", "xray"}
    wildcard_resources = sorted(a for a, rs in grants.items() if "*" in rs)
    assert wildcard_resources == [
        "iot:DescribeEndpoint",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]


# --- Scheduling: one schedule per race, created by the API ---------------------------------------


def test_the_schedule_group_is_named_per_environment_in_the_data_stack(dev: Assembly) -> None:
    # Deleting a group deletes its schedules: it lives with the data, not the app.
    assert not dev.resources("App", "AWS::Scheduler::ScheduleGroup")
    group = dev.one("Data", "AWS::Scheduler::ScheduleGroup")
    assert group["Properties"]["Name"] == names.schedule_group_name("dev")
    assert group["Properties"]["Name"] == "breakaway-dev-race-closes"
    # Schedules are created at run time, one per race: none in the templates.
    assert not dev.resources("Data", "AWS::Scheduler::Schedule")
    assert not dev.resources("App", "AWS::Scheduler::Schedule")


def _scheduler_role(dev: Assembly) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (lid, r)
        for lid, r in dev.resources("Data", "AWS::IAM::Role").items()
        if "SchedulerRole" in lid
    ]
    return found


def test_the_scheduler_role_is_trusted_by_scheduler_for_this_account_and_group(
    dev: Assembly,
) -> None:
    _, role = _scheduler_role(dev)
    group_id = data_id(dev, "AWS::Scheduler::ScheduleGroup")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": {"Ref": "AWS::AccountId"},
                    "aws:SourceArn": {"Fn::GetAtt": [group_id, "Arn"]},
                }
            },
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]


def test_the_scheduler_role_may_invoke_the_closer_and_send_to_the_dead_letters_only(
    dev: Assembly,
) -> None:
    role_id, _ = _scheduler_role(dev)
    statements = role_statements(dev, "Data", role_id)
    rendered = [
        (s["Effect"], s["Action"], joined(s["Resource"]), s.get("Condition")) for s in statements
    ]
    assert rendered == [
        (
            "Allow",
            "lambda:InvokeFunction",
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
            + names.closer_function_name("dev"),
            None,
        ),
        (
            "Allow",
            "sqs:SendMessage",
            "${" + queue_id(dev, "RaceClosesDeadLetters") + ".Arn}",
            None,
        ),
    ]


def test_the_api_is_told_how_to_schedule_a_race(dev: Assembly) -> None:
    """The target (the closer), the role and the dead-letter queue a race's schedule names; the
    time (``at(...)`` of the race's close) is the API's, at run time."""
    _, api = function_by_handler(dev, API_HANDLER)
    env = api["Properties"]["Environment"]["Variables"]
    closer_id, _ = function_by_handler(dev, CLOSER_HANDLER)
    role_id, _ = _scheduler_role(dev)
    assert env[names.ENV_SCHEDULE_GROUP] == "breakaway-dev-race-closes"
    assert env[names.ENV_CLOSER_ARN] == {"Fn::GetAtt": [closer_id, "Arn"]}
    assert exported(dev, env[names.ENV_SCHEDULER_ROLE_ARN]) == {"Fn::GetAtt": [role_id, "Arn"]}
    assert exported(dev, env[names.ENV_SCHEDULE_DLQ_ARN]) == {
        "Fn::GetAtt": [queue_id(dev, "RaceClosesDeadLetters"), "Arn"]
    }


def test_the_api_may_schedule_in_its_group_and_pass_the_role_to_scheduler_only(
    dev: Assembly,
) -> None:
    _, api = function_by_handler(dev, API_HANDLER)
    role_id, _ = _scheduler_role(dev)
    statements = role_statements(dev, "App", logical_id_of(api["Properties"]["Role"]))
    scheduling = [
        (s["Action"], joined(s["Resource"]), s.get("Condition"))
        for s in statements
        if any(a.startswith(("scheduler:", "iam:")) for a in as_list(s["Action"]))
    ]
    assert scheduling == [
        (
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"],
            "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:"
            "schedule/breakaway-dev-race-closes/*",
            None,
        ),
        (
            "iam:PassRole",
            import_of(dev, role_id, "Arn"),
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ),
    ]
    # No schedule is ever deleted by the API (each deletes itself once it has run).
    assert not [s for s in statements if "scheduler:DeleteSchedule" in as_list(s["Action"])]


def test_passing_the_scheduler_role_is_the_only_conditional_grant(dev: Assembly) -> None:
    conditional = [
        (part, statement["Action"], statement["Condition"])
        for part in ("Data", "App")
        for policy in dev.resources(part, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Condition" in statement
    ]
    assert conditional == [
        (
            "App",
            "iam:PassRole",
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )
    ]


def test_api_function_reads_and_writes_only_what_its_routes_need(dev: Assembly) -> None:
    props = _function_basics(dev, API_HANDLER)
    assert (props["MemorySize"], props["Timeout"]) == (512, 10)
    env = props["Environment"]["Variables"]
    assert env[names.ENV_CORS_ORIGIN] == "*"
    assert env["POWERTOOLS_SERVICE_NAME"] == names.POWERTOOLS_SERVICE_API
    standings = data_ids(dev, "AWS::DynamoDB::Table", "Standings")
    assert exported(dev, env[names.ENV_STANDINGS_TABLE]) == {"Ref": standings}
    dynamodb = sorted(a for a in function_grants(dev, API_HANDLER) if a.startswith("dynamodb:"))
    # The reader's reads, the live ranking's builds (a batch write of their chunks, the head's
    # update) and the organiser's writes: races, entries (in transactions, with the race
    # record's update and a disqualification's condition check); no delete, no scan (the
    # resources: tests/infra/test_grants.py).
    assert dynamodb == [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]


def test_no_iam_policy_grants_a_bare_wildcard_action(dev: Assembly) -> None:
    for part in ("Data", "App"):
        for lid, policy in dev.resources(part, "AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in as_list(statement["Action"]):
                    assert action.split(":")[-1] != "*", (lid, action)


# --- Storage ------------------------------------------------------------------------------------


def test_standings_table_follows_the_shared_key_schema(dev: Assembly) -> None:
    table = dev.resources("Data", "AWS::DynamoDB::Table")[
        data_ids(dev, "AWS::DynamoDB::Table", "Standings")
    ]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": keys.PK, "KeyType": "HASH"},
        {"AttributeName": keys.SK, "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["DeletionProtectionEnabled"] is False
    assert table["DeletionPolicy"] == "Delete"
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {
        "pk": "S",
        "sk": "S",
        "racesPk": "S",
        "startsAt": "N",
    }
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert indexes == {
        "RecentRaces": {
            "IndexName": "RecentRaces",
            "KeySchema": [
                {"AttributeName": "racesPk", "KeyType": "HASH"},
                {"AttributeName": "startsAt", "KeyType": "RANGE"},
            ],
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": [
                    "raceId",
                    "name",
                    "durationS",
                    "graceS",
                    "closesAt",
                    "state",
                    "entrants",
                ],
            },
        },
    }


def test_idempotency_table_is_the_powertools_layout(dev: Assembly) -> None:
    props = dev.resources("Data", "AWS::DynamoDB::Table")[
        data_ids(dev, "AWS::DynamoDB::Table", "Idempotency")
    ]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_every_queue_is_encrypted_tls_only(dev: Assembly) -> None:
    queues = dev.resources("Data", "AWS::SQS::Queue")
    assert sorted(queues) == sorted(
        queue_id(dev, part) for part in ("PoisonRecords", "RaceClosesDeadLetters")
    )
    policies = {
        logical_id_of(q): p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.resources("Data", "AWS::SQS::QueuePolicy").values()
        for q in p["Properties"]["Queues"]
    }
    for lid, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, lid
        (deny,) = policies[lid]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The dead-letter queues keep their messages as long as SQS can.
    for part in ("PoisonRecords", "RaceClosesDeadLetters"):
        assert queues[queue_id(dev, part)]["Properties"]["MessageRetentionPeriod"] == 1_209_600


def test_every_bucket_is_private_encrypted_tls_only_with_a_lifecycle(dev: Assembly) -> None:
    buckets = dev.resources("Data", "AWS::S3::Bucket")
    assert len(buckets) == 4  # archive, on-failure, access logs, Athena's query results
    policies = {
        logical_id_of(p["Properties"]["Bucket"]): p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.resources("Data", "AWS::S3::BucketPolicy").values()
    }
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"] == {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        }
        assert props["LifecycleConfiguration"]["Rules"], lid
        deny = policies[lid][0]
        assert (deny["Effect"], deny["Condition"]) == (
            "Deny",
            {"Bool": {"aws:SecureTransport": "false"}},
        )
        if "AccessLogs" not in lid:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {
                "Ref": data_ids(dev, "AWS::S3::Bucket", "AccessLogs")
            }
    archive = buckets[data_ids(dev, "AWS::S3::Bucket", "Archive")]["Properties"]
    assert archive["LifecycleConfiguration"]["Rules"] == [
        {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "ExpirationInDays": 365,
            "Status": "Enabled",
            "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": 30}],
        }
    ]


# --- Archive ------------------------------------------------------------------------------------


def test_firehose_partitions_by_arrival_day_only_gzip(dev: Assembly) -> None:
    stream = dev.one("App", "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    assert stream["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert exported(dev, stream["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]) == {
        "Fn::GetAtt": [data_id(dev, "AWS::Kinesis::Stream"), "Arn"]
    }
    s3 = stream["ExtendedS3DestinationConfiguration"]
    assert exported(dev, s3["BucketARN"]) == {
        "Fn::GetAtt": [data_ids(dev, "AWS::S3::Bucket", "Archive"), "Arn"]
    }
    assert s3["Prefix"] == names.ARCHIVE_FIREHOSE_PREFIX
    assert s3["ErrorOutputPrefix"] == names.ARCHIVE_FIREHOSE_ERROR_PREFIX
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 128}
    # No dynamic partitioning, so no active-partition limit: Firehose's own timestamp only.
    assert "DynamicPartitioningConfiguration" not in s3
    assert s3["ProcessingConfiguration"] == {
        "Enabled": True,
        "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}],
    }
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True


def test_glue_table_projects_the_day_partition_only(dev: Assembly) -> None:
    (table,) = [
        t["Properties"]["TableInput"]
        for t in dev.resources("App", "AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == names.GLUE_TABLE
    ]
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params[f"projection.{DATE_PARTITION}.type"] == "date"
    assert params[f"projection.{DATE_PARTITION}.format"] == "yyyy-MM-dd"
    assert not [
        k for k in params if k.endswith(".type") and k != f"projection.{DATE_PARTITION}.type"
    ]
    template = joined(params["storage.location.template"])
    assert template.startswith("s3://${Import:")
    assert template.endswith("/telemetry/day=${day}/")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["day"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns == {
        "v": "bigint",
        "eventid": "string",
        "raceid": "string",
        "riderid": "string",
        "second": "bigint",
        "cadence": "bigint",
        "resistance": "bigint",
        "devicetimestamp": "bigint",
        "event": "string",
        "deviceid": "string",
    }
    serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.openx.data.jsonserde.JsonSerDe"


# --- API ----------------------------------------------------------------------------------------


def test_api_stage_throttling_logging_tracing(dev: Assembly) -> None:
    stage = dev.one("App", "AWS::ApiGateway::Stage")["Properties"]
    assert stage["StageName"] == "v1"
    # Execution logging off: API Gateway would log into API-Gateway-Execution-Logs_<id>/v1, a
    # group it creates outside the stack, never expiring, left behind by make destroy.
    assert stage["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "LoggingLevel": "OFF",
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 400,
            "ThrottlingRateLimit": 200,
        }
    ]
    assert stage["TracingEnabled"] is True
    access_logs = logical_id_of(stage["AccessLogSetting"]["DestinationArn"])
    group = dev.template("App")["Resources"][access_logs]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 14
    assert group["DeletionPolicy"] == "Delete"
    assert "LogGroupName" not in group["Properties"]


def test_api_access_log_is_json_with_the_reason_of_each_failure(dev: Assembly) -> None:
    """A line as API Gateway writes it (every variable replaced, the quoted one quoted) is one
    JSON object, and it says why a request failed, in place of the execution log."""
    stage = dev.one("App", "AWS::ApiGateway::Stage")["Properties"]
    line = stage["AccessLogSetting"]["Format"].replace(
        "$context.error.messageString", json.dumps('Internal server error "x"')
    )
    line = re.sub(r"\$context\.[\w.]+", "v", line)
    logged = json.loads(line)
    assert logged["errorMessage"] == 'Internal server error "x"'
    assert {
        "requestId",
        "status",
        "resourcePath",
        "responseLatency",
        "integrationStatus",
        "integrationErrorMessage",
        "errorResponseType",
        "xrayTraceId",
    } <= set(logged)
    assert '"status":"$context.status"' in stage["AccessLogSetting"]["Format"]


def _paths(dev: Assembly) -> dict[str, str]:
    """Resource logical id -> full path."""
    resources = dev.resources("App", "AWS::ApiGateway::Resource")
    (api_id,) = dev.resources("App", "AWS::ApiGateway::RestApi")

    def path(lid: str) -> str:
        props = resources[lid]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    paths = {lid: path(lid) for lid in resources}
    paths[api_id] = "/"
    return paths


def test_api_routes_validate_their_parameters(dev: Assembly) -> None:
    paths = _paths(dev)
    (validator_id, validator) = next(
        iter(dev.resources("App", "AWS::ApiGateway::RequestValidator").items())
    )
    assert validator["Properties"]["ValidateRequestParameters"] is True
    gets: dict[str, dict[str, bool]] = {}
    for method in dev.resources("App", "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] != "GET":
            continue
        resource = props["ResourceId"]
        path = "/" if "Fn::GetAtt" in resource else paths[resource["Ref"]]
        assert props["RequestValidatorId"] == {"Ref": validator_id}
        assert props["Integration"]["Type"] == "AWS_PROXY"
        gets[path] = props.get("RequestParameters", {})
    assert gets == {
        "/": {},
        "/openapi.json": {},
        "/swagger": {"method.request.querystring.format": False},
        "/races": {
            "method.request.querystring.status": False,
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        },
        "/races/{raceId}": {"method.request.path.raceId": True},
        "/races/{raceId}/results": {
            "method.request.path.raceId": True,
            "method.request.querystring.classId": False,
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        },
        "/races/{raceId}/leaderboard": {
            "method.request.path.raceId": True,
            "method.request.querystring.classId": False,
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        },
        "/races/{raceId}/riders/{riderId}": {
            "method.request.path.raceId": True,
            "method.request.path.riderId": True,
        },
        "/riders/{riderId}/results": {
            "method.request.path.riderId": True,
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        },
        "/classes/{classId}/records": {
            "method.request.path.classId": True,
            "method.request.querystring.durationS": False,
            "method.request.querystring.limit": False,
        },
        "/{proxy+}": {"method.request.path.proxy": True},
    }
    assert {r.path for r in ROUTES if r.method == "GET"} | {"/{proxy+}"} == set(gets)


def test_api_cors_preflight_uses_the_configured_origin(dev: Assembly) -> None:
    options = [
        m["Properties"]
        for m in dev.resources("App", "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    # every resource: root, the routes' 12 other paths, the 6 on the way to them
    # (/races/{raceId}/riders, /races/{raceId}/entries/{riderId}, /riders, /riders/{riderId},
    # /classes, /classes/{classId}), proxy
    assert len(options) == 20
    for props in options:
        (response,) = props["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == "'*'"
        assert headers["method.response.header.Access-Control-Allow-Methods"] == "'GET,OPTIONS'"


# --- Observability and outputs ------------------------------------------------------------------


def _alarms(dev: Assembly) -> dict[str, dict[str, Any]]:
    alarms = dev.resources("App", "AWS::CloudWatch::Alarm")
    return {lid.removeprefix("Observability")[:-8]: a["Properties"] for lid, a in alarms.items()}


def test_alarms_and_thresholds(dev: Assembly) -> None:
    alarms = _alarms(dev)
    simple = {
        name: (
            p["Namespace"],
            p["MetricName"],
            p.get("Statistic") or p.get("ExtendedStatistic"),
            p["Period"],
            p["Threshold"],
        )
        for name, p in alarms.items()
        if "MetricName" in p
    }
    assert simple == {
        "IteratorAge": ("AWS/Lambda", "IteratorAge", "Maximum", 60, 60000),
        "ProcessorErrors": ("AWS/Lambda", "Errors", "Sum", 300, 1),
        "ProcessorThrottles": ("AWS/Lambda", "Throttles", "Sum", 300, 1),
        "CloserErrors": ("AWS/Lambda", "Errors", "Sum", 300, 1),
        "CloserThrottles": ("AWS/Lambda", "Throttles", "Sum", 300, 1),
        "ApiErrors": ("AWS/Lambda", "Errors", "Sum", 300, 1),
        "ApiThrottles": ("AWS/Lambda", "Throttles", "Sum", 300, 1),
        "DeadLetters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, 1),
        "CloseDeadLetters": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            300,
            1,
        ),
        "OnFailureRecords": (
            "AWS/Lambda",
            "OnFailureDestinationDeliveredEventCount",
            "Sum",
            300,
            1,
        ),
        # Batches lost on the way to the on-failure bucket (issue 16; tests/infra/test_alarms.py)
        "OnFailureDeliveryFailures": ("AWS/Lambda", "DestinationDeliveryFailures", "Sum", 300, 1),
        "CloseDeliveryFailures": ("AWS/Lambda", "DestinationDeliveryFailures", "Sum", 300, 1),
        "DroppedRecords": ("AWS/Lambda", "DroppedEventCount", "Sum", 300, 1),
        "IotRuleErrors": ("Breakaway/dev", "IotRuleErrors", "Sum", 300, 1),
        "ArchiveFreshness": ("AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", 300, 900),
        "Api5xx": ("AWS/ApiGateway", "5XXError", "Sum", 300, 1),
        "ApiLatencyP99": ("AWS/ApiGateway", "Latency", "p99", 300, 1000),
    }
    throttles = alarms["DynamoDbThrottles"]
    assert throttles["Threshold"] == 1
    (expression,) = [m for m in throttles["Metrics"] if "Expression" in m]
    summed = [m["MetricStat"]["Metric"] for m in throttles["Metrics"] if "MetricStat" in m]
    assert expression["Expression"].count("FILL(") == 3
    assert sorted(
        (m["MetricName"], tuple(sorted(d["Name"] for d in m["Dimensions"]))) for m in summed
    ) == sorted(
        [
            ("ReadThrottleEvents", ("TableName",)),
            ("WriteThrottleEvents", ("TableName",)),
            ("WriteThrottleEvents", ("GlobalSecondaryIndexName", "TableName")),
        ]
    )
    (topic_id,) = dev.resources("App", "AWS::SNS::Topic")
    for name, props in alarms.items():
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert props["TreatMissingData"] == "notBreaching", name
        assert props["AlarmActions"] == [{"Ref": topic_id}], name
    assert len(dev.resources("App", "AWS::CloudWatch::Dashboard")) == 1


def test_on_failure_alarm_watches_this_event_source_mapping(dev: Assembly) -> None:
    esm_id, _ = event_source_mapping(dev, PROCESSOR_HANDLER)
    dims = _alarms(dev)["OnFailureRecords"]["Dimensions"]
    assert dims == [{"Name": "EventSourceMappingUUID", "Value": {"Ref": esm_id}}]


@pytest.mark.parametrize(
    ("alarm", "queue"),
    [
        ("DeadLetters", "PoisonRecords"),
        ("CloseDeadLetters", "RaceClosesDeadLetters"),
    ],
)
def test_queue_alarms_watch_their_queue(dev: Assembly, alarm: str, queue: str) -> None:
    (dimension,) = _alarms(dev)[alarm]["Dimensions"]
    assert dimension["Name"] == "QueueName"
    assert exported(dev, dimension["Value"]) == {"Fn::GetAtt": [queue_id(dev, queue), "QueueName"]}


@pytest.mark.parametrize(
    ("alarms", "handler"),
    [
        (("ProcessorErrors", "ProcessorThrottles"), PROCESSOR_HANDLER),
        (("CloserErrors", "CloserThrottles"), CLOSER_HANDLER),
    ],
)
def test_function_alarms_watch_their_function(
    dev: Assembly, alarms: tuple[str, ...], handler: str
) -> None:
    function_id, _ = function_by_handler(dev, handler)
    for alarm in alarms:
        assert _alarms(dev)[alarm]["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": function_id}}
        ], alarm


def test_outputs(dev: Assembly) -> None:
    data = dev.template("Data")["Outputs"]
    assert data[names.OUTPUT_STREAM_NAME]["Value"] == {"Ref": data_id(dev, "AWS::Kinesis::Stream")}
    assert data[names.OUTPUT_ARCHIVE_BUCKET]["Value"] == {
        "Ref": data_ids(dev, "AWS::S3::Bucket", "Archive")
    }
    app = dev.template("App")["Outputs"]
    (policy_id,) = dev.resources("App", "AWS::IoT::Policy")
    assert app[names.OUTPUT_IOT_POLICY]["Value"] == {"Ref": policy_id}
    (database_id,) = dev.resources("App", "AWS::Glue::Database")
    assert app[names.OUTPUT_GLUE_DATABASE]["Value"] == {"Ref": database_id}
    assert joined(app[names.OUTPUT_API_URL]["Value"]).startswith("https://${Leaderboard")
    assert sorted(dev.stacks) == ["Breakaway-Dev-App", "Breakaway-Dev-Data"]


def test_basic_ingest_topics_follow_the_config() -> None:
    from infra.components.iot import telemetry_publish_topics

    own = "breakaway/devices/${iot:Connection.Thing.ThingName}/telemetry"
    assert telemetry_publish_topics(None) == [own]
    assert telemetry_publish_topics("breakaway_qa_telemetry_to_kinesis") == [
        own,
        "$aws/rules/breakaway_qa_telemetry_to_kinesis/" + own,
    ]
