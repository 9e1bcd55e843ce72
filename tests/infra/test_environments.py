"""The production environment differs from dev where it must, and only there."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared import names
from tests.infra.helpers import Assembly, Synths, joined

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def stateful(assembly: Assembly) -> dict[str, dict[str, Any]]:
    kinds = (
        "AWS::Kinesis::Stream",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::Scheduler::ScheduleGroup",
    )
    return {
        lid: r for lid, r in assembly.template("Data")["Resources"].items() if r["Type"] in kinds
    }


def test_stack_names(dev: Assembly, prod: Assembly) -> None:
    assert sorted(dev.stacks) == ["Breakaway-Dev-App", "Breakaway-Dev-Data"]
    assert sorted(prod.stacks) == [
        "Breakaway-Prod-App",
        "Breakaway-Prod-Data",
        "Breakaway-Prod-Edge",
    ]


def test_prod_stream_is_provisioned_with_longer_retention(dev: Assembly, prod: Assembly) -> None:
    stream = prod.one("Data", "AWS::Kinesis::Stream")["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["ShardCount"] == 20
    assert stream["RetentionPeriodHours"] == 168
    assert dev.one("Data", "AWS::Kinesis::Stream")["Properties"]["RetentionPeriodHours"] == 24


def test_prod_retains_data_and_protects_tables(dev: Assembly, prod: Assembly) -> None:
    prod_resources = stateful(prod)
    dev_resources = stateful(dev)
    assert sorted(prod_resources) == sorted(dev_resources)
    # stream, 2 tables, 4 buckets, 2 queues, the schedule group (every pending race's close)
    assert len(prod_resources) == 10
    for lid, resource in prod_resources.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (
            "Retain",
            "Retain",
        ), lid
        assert dev_resources[lid]["DeletionPolicy"] == "Delete", lid
    for table in prod.resources("Data", "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
    for table in dev.resources("Data", "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is False
    # Dev empties its buckets on destroy; prod never deletes objects.
    assert len(dev.resources("Data", "Custom::S3AutoDeleteObjects")) == 4
    assert prod.resources("Data", "Custom::S3AutoDeleteObjects") == {}


def test_prod_data_stack_has_termination_protection(dev: Assembly, prod: Assembly) -> None:
    def protected(assembly: Assembly) -> dict[str, bool]:
        return {
            name: bool(art["properties"].get("terminationProtection", False))
            for name, art in assembly.manifest()["artifacts"].items()
            if art["type"] == "aws:cloudformation:stack"
        }

    assert protected(prod) == {
        "Breakaway-Prod-Data": True,
        "Breakaway-Prod-App": False,
        "Breakaway-Prod-Edge": False,  # a web ACL: nothing to lose
    }
    assert protected(dev) == {"Breakaway-Dev-Data": False, "Breakaway-Dev-App": False}


def kinesis_event_source(assembly: Assembly) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r["Properties"]
        for r in assembly.resources("App", "AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" in r["Properties"]
    ]
    (esm,) = found
    return esm


def test_prod_scales_processing_and_api(dev: Assembly, prod: Assembly) -> None:
    prod_esm = kinesis_event_source(prod)
    dev_esm = kinesis_event_source(dev)
    assert (dev_esm["ParallelizationFactor"], prod_esm["ParallelizationFactor"]) == (2, 4)
    ignored = {
        "ParallelizationFactor",
        "DestinationConfig",
        "EventSourceArn",
        "FunctionName",
        "Tags",
    }
    assert {k: v for k, v in prod_esm.items() if k not in ignored} == {
        k: v for k, v in dev_esm.items() if k not in ignored
    }
    settings = prod.one("App", "AWS::ApiGateway::Stage")["Properties"]["MethodSettings"][0]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (1000, 2000)


def test_prod_keeps_logs_longer(prod: Assembly) -> None:
    retention = sorted(
        g["Properties"]["RetentionInDays"]
        for g in prod.resources("App", "AWS::Logs::LogGroup").values()
    )
    assert retention == [90] * 6  # three functions, API access, Firehose, IoT errors


def test_prod_archive_is_kept_two_years(prod: Assembly) -> None:
    buckets = prod.resources("Data", "AWS::S3::Bucket")
    (archive,) = [b for lid, b in buckets.items() if lid.startswith("Archive")]
    (rule,) = archive["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 730


# --- Two environments in one account and region -------------------------------------------------
SCOPED_NAMES = {
    "AWS::ApiGateway::Stage/StageName": "a stage name is unique within its API",
    "AWS::CloudWatch::Alarm/MetricName": "a metric is told apart by namespace and dimensions",
    "AWS::CloudWatch::Alarm/Dimensions/Name": "a dimension's name; its value is a reference",
    "AWS::CloudWatch::Alarm/Metrics/MetricStat/Metric/MetricName": "as MetricName above",
    "AWS::CloudWatch::Alarm/Metrics/MetricStat/Metric/Dimensions/Name": "as Dimensions above",
    "AWS::DynamoDB::Table/KeySchema/AttributeName": "an attribute of this table",
    "AWS::DynamoDB::Table/AttributeDefinitions/AttributeName": "an attribute of this table",
    "AWS::DynamoDB::Table/TimeToLiveSpecification/AttributeName": "an attribute of this table",
    "AWS::DynamoDB::Table/GlobalSecondaryIndexes/IndexName": "an index of this table",
    "AWS::DynamoDB::Table/GlobalSecondaryIndexes/KeySchema/AttributeName": "as above",
    "AWS::Glue::Table/TableInput/Name": "a table of the environment's own database",
    "AWS::Athena::NamedQuery/Name": "a query of the environment's own workgroup",
    "AWS::Glue::Table/TableInput/PartitionKeys/Name": "a column of that table",
    "AWS::Glue::Table/TableInput/StorageDescriptor/Columns/Name": "a column of that table",
    "AWS::IAM::Policy/PolicyName": "an inline policy is named within its role",
    "AWS::KinesisFirehose::DeliveryStream/ExtendedS3DestinationConfiguration/"
    "ProcessingConfiguration/Processors/Parameters/ParameterName": "a processor's option",
    "AWS::Logs::MetricFilter/MetricTransformations/MetricName": "in the environment's namespace",
}
"""Literal ``*Name`` properties that dev and prod may share: each names something inside a
resource that is itself the environment's own."""


def literal_names(assembly: Assembly) -> dict[tuple[str, str], str]:
    """(property path, literal value) -> logical id, for every ``*Name``/``*Namespace`` property
    whose value is a literal string, in both stacks of the environment."""
    found: dict[tuple[str, str], str] = {}

    def walk(node: Any, path: str, lid: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, path, lid)
        elif isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}/{key}"
                if key.endswith(("Name", "Namespace")) and isinstance(value, str):
                    found[here, value] = lid
                walk(value, here, lid)

    for template in assembly.stacks.values():
        for lid, resource in template["Resources"].items():
            walk(resource.get("Properties", {}), resource["Type"], lid)
    return found


def test_dev_and_prod_share_no_physical_name(dev: Assembly, prod: Assembly) -> None:
    """Both environments deploy into one account and region: a name they share is either a
    ResourceAlreadyExists on the second deploy (the IoT rule) or one metric feeding both
    environments' alarms (the API's name, a custom namespace)."""
    dev_names, prod_names = literal_names(dev), literal_names(prod)
    shared = {
        (path, value): dev_names[path, value]
        for path, value in set(dev_names) & set(prod_names)
        if path not in SCOPED_NAMES and not value.startswith("AWS/")
    }
    assert shared == {}
    # The walk does see the names that must differ.
    assert ("AWS::IoT::TopicRule/RuleName", names.rule_name("dev")) in dev_names
    assert ("AWS::IoT::TopicRule/RuleName", names.rule_name("prod")) in prod_names
    assert ("AWS::ApiGateway::RestApi/Name", names.api_name("prod")) in prod_names
    assert ("AWS::Glue::Database/DatabaseInput/Name", "breakaway_prod") in prod_names


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_names_follow_the_environment(env: str, synths: Synths) -> None:
    assembly: Assembly = getattr(synths, env)
    rule = assembly.one("App", "AWS::IoT::TopicRule")["Properties"]
    assert rule["RuleName"] == names.rule_name(env) == f"breakaway_{env}_telemetry_to_kinesis"
    policy = assembly.one("App", "AWS::IoT::Policy")["Properties"]["PolicyDocument"]
    publish = [joined(r) for r in policy["Statement"][1]["Resource"]]
    assert publish[1].endswith(
        f":topic/$aws/rules/{rule['RuleName']}/breakaway/devices/"
        "${iot:Connection.Thing.ThingName}/telemetry"
    )
    (metric_filter,) = assembly.resources("App", "AWS::Logs::MetricFilter").values()
    (transformation,) = metric_filter["Properties"]["MetricTransformations"]
    assert transformation["MetricNamespace"] == f"Breakaway/{env}"
    alarms = assembly.resources("App", "AWS::CloudWatch::Alarm")
    (iot_alarm,) = [a for lid, a in alarms.items() if "IotRuleErrors" in lid]
    assert iot_alarm["Properties"]["Namespace"] == f"Breakaway/{env}"
    topic = assembly.one("App", "AWS::SNS::Topic")["Properties"]
    assert topic["DisplayName"] == f"Breakaway alarms ({env})"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_api_is_named_per_environment_and_its_alarms_watch_it(env: str, synths: Synths) -> None:
    assembly: Assembly = getattr(synths, env)
    api = assembly.one("App", "AWS::ApiGateway::RestApi")["Properties"]
    assert api["Name"] == names.api_name(env) == f"breakaway-{env}-leaderboard"
    alarms = assembly.resources("App", "AWS::CloudWatch::Alarm")
    watched = {
        lid: props["Properties"]["Dimensions"]
        for lid, props in alarms.items()
        if props["Properties"].get("Namespace") == "AWS/ApiGateway"
    }
    assert len(watched) == 2  # 5xx and p99 latency
    for lid, dimensions in watched.items():
        assert {"Name": "ApiName", "Value": api["Name"]} in dimensions, lid


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_glue_database_is_named_per_environment_and_is_an_output(
    env: str, synths: Synths
) -> None:
    assembly: Assembly = getattr(synths, env)
    database_id, database = next(iter(assembly.resources("App", "AWS::Glue::Database").items()))
    name = database["Properties"]["DatabaseInput"]["Name"]
    assert name == names.glue_database_name(env) == f"breakaway_{env}"
    assert "-" not in name  # Athena would need it quoted
    tables = assembly.resources("App", "AWS::Glue::Table").values()
    assert {t["Properties"]["TableInput"]["Name"] for t in tables} == {
        names.GLUE_TABLE,
        names.GLUE_ENTRIES_TABLE,
    }
    assert all(t["Properties"]["DatabaseName"] == {"Ref": database_id} for t in tables)
    output = assembly.template("App")["Outputs"][names.OUTPUT_GLUE_DATABASE]
    assert output["Value"] == {"Ref": database_id}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_races_close_in_the_environments_own_group_by_its_own_closer(
    env: str, synths: Synths
) -> None:
    """Both are named (pending schedules outlive the app stack and name the closer by ARN):
    each environment's, and valid where they go."""
    assembly: Assembly = getattr(synths, env)
    group = assembly.one("Data", "AWS::Scheduler::ScheduleGroup")["Properties"]["Name"]
    assert group == names.schedule_group_name(env) == f"breakaway-{env}-race-closes"
    assert re.fullmatch(r"[0-9a-zA-Z_.-]{1,64}", group)  # CreateScheduleGroup
    (closer,) = [
        r["Properties"]
        for r in assembly.resources("App", "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "functions.race_closer.handler.handler"
    ]
    assert closer["FunctionName"] == names.closer_function_name(env)
    assert closer["FunctionName"] == f"breakaway-{env}-race-closer"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", closer["FunctionName"])  # Lambda
    api_env = next(
        r["Properties"]["Environment"]["Variables"]
        for r in assembly.resources("App", "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "functions.leaderboard_api.handler.handler"
    )
    assert api_env[names.ENV_SCHEDULE_GROUP] == group
