"""The IoT ingest component on its own (a stack holding a stream and it): the rule and the
device policy exactly, with Basic Ingest on and off. The whole app's templates are checked in
test_stacks.py; this synthesizes only what ingest is made of, in a few seconds."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from infra.config import BreakawayConfig
from shared import names
from tests.infra.helpers import JSII_ENV, joined

pytestmark = [pytest.mark.synth]
ARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"
OWN_TOPIC = "breakaway/devices/${iot:Connection.Thing.ThingName}/telemetry"


def synth(basic_ingest: bool) -> dict[str, Any]:
    os.environ.update(JSII_ENV)
    from aws_cdk import App, Stack
    from aws_cdk import aws_kinesis as kinesis
    from aws_cdk.assertions import Template

    from infra.components.iot import IotIngest

    app = App()
    stack = Stack(app, "Ingest")
    stream = kinesis.Stream(stack, "Stream")
    config = replace(BreakawayConfig(env_name="qa"), basic_ingest=basic_ingest)
    IotIngest(stack, "Iot", config=config, stream=stream)
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


@pytest.fixture(scope="module")
def templates() -> dict[bool, dict[str, Any]]:
    return {basic: synth(basic) for basic in (True, False)}


def of_type(template: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = [r for r in template["Resources"].values() if r["Type"] == type_]
    return dict(found["Properties"])


def rendered_policy(template: dict[str, Any]) -> dict[str, Any]:
    document = of_type(template, "AWS::IoT::Policy")["PolicyDocument"]
    connect, publish = document["Statement"]
    return {
        "Version": document["Version"],
        "Statement": [
            connect | {"Resource": joined(connect["Resource"])},
            publish | {"Resource": [joined(r) for r in publish["Resource"]]},
        ],
    }


CONNECT = {
    "Sid": "ConnectAsOwnThing",
    "Effect": "Allow",
    "Action": "iot:Connect",
    "Resource": ARN + "client/${iot:Connection.Thing.ThingName}",
    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
}


def test_a_thing_connects_as_itself_and_publishes_on_its_own_topics_only(
    templates: dict[bool, dict[str, Any]],
) -> None:
    assert rendered_policy(templates[True]) == {
        "Version": "2012-10-17",
        "Statement": [
            CONNECT,
            {
                "Sid": "PublishOwnTelemetryOnly",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [
                    ARN + "topic/" + OWN_TOPIC,
                    ARN + "topic/$aws/rules/breakaway_qa_telemetry_to_kinesis/" + OWN_TOPIC,
                ],
            },
        ],
    }


def test_without_basic_ingest_a_thing_publishes_on_its_plain_topic_only(
    templates: dict[bool, dict[str, Any]],
) -> None:
    assert rendered_policy(templates[False])["Statement"][1]["Resource"] == [
        ARN + "topic/" + OWN_TOPIC
    ]


def test_the_rule_takes_the_device_from_the_topic_and_keys_by_the_payload_s_rider(
    templates: dict[bool, dict[str, Any]],
) -> None:
    rule = of_type(templates[True], "AWS::IoT::TopicRule")
    assert rule["RuleName"] == "breakaway_qa_telemetry_to_kinesis"
    payload = rule["TopicRulePayload"]
    assert (payload["Sql"], payload["AwsIotSqlVersion"]) == (
        "SELECT v, eventId, raceId, riderId, second, cadence, resistance, deviceTimestamp, "
        "event, topic(3) AS deviceId FROM 'breakaway/devices/+/telemetry'",
        "2016-03-23",
    )
    (action,) = payload["Actions"]
    assert action["Kinesis"]["PartitionKey"] == "${riderId}"
    assert payload["ErrorAction"]["CloudwatchLogs"]["BatchMode"] is False


def test_the_rule_selects_every_field_of_the_contract_but_the_device() -> None:
    from shared.contract import Telemetry

    wire = {f.alias for f in Telemetry.model_fields.values()}
    assert set(names.RULE_FIELDS) == wire - {"deviceId"}
    assert names.telemetry_topic("hub-1").split("/")[names.DEVICE_ID_TOPIC_LEVEL - 1] == "hub-1"
