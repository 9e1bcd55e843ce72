"""The IoT substitution-template evaluator behind the rule bridge's partition key."""

from __future__ import annotations

import re

import pytest

from local.template import MessageContext, TemplateError, render
from shared.names import RULE_PARTITION_KEY, telemetry_topic

TOPIC = telemetry_topic("race-7", "rider_42")
MSG = MessageContext(
    topic=TOPIC, payload=b'{"raceId":"race-7","a":{"b":3}}', client_id="bike-1", timestamp_ms=1234
)


def test_rule_partition_key_is_the_rider_id_from_the_topic() -> None:
    assert TOPIC == "breakaway/races/race-7/riders/rider_42/telemetry"
    assert render(RULE_PARTITION_KEY, MSG) == "rider_42"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${topic()}", TOPIC),
        ("${topic(1)}", "breakaway"),
        ("${topic(3)}", "race-7"),
        ("${topic(6)}", "telemetry"),
        ("${ topic( 5 ) }", "rider_42"),
        ("${raceId}", "race-7"),
        ("${a.b}", "3"),
        ("${clientid()}", "bike-1"),
        ("${timestamp()}", "1234"),
        ("k-${topic(3)}/${topic(5)}", "k-race-7/rider_42"),
        ("plain", "plain"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, MSG) == expected


def test_newuuid_is_a_fresh_uuid_each_time() -> None:
    first, second = render("${newuuid()}", MSG), render("${newuuid()}", MSG)
    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert first != second


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("${topic(7)}", "has no level 7"),
        ("${topic(0)}", "has no level 0"),
        ("${missing}", "no such attribute"),
        ("${a.c}", "no such attribute"),
        ("${nope()}", "unsupported function nope()"),
        ("${1+1}", "unsupported expression"),
    ],
)
def test_unresolvable_reference_is_an_error(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(reason)):
        render(template, MSG)


def test_attribute_of_a_non_json_payload_is_an_error() -> None:
    with pytest.raises(TemplateError, match="not JSON"):
        render("${raceId}", MessageContext(topic=TOPIC, payload=b"\x00binary"))
