"""The typed configuration: defaults, cdk.json overrides, and refusals with a clear message."""

from __future__ import annotations

import json
import re

import pytest

from infra.config import (
    CONTEXT_KEY,
    BreakawayConfig,
    ClosingConfig,
    ConfigError,
    EventSourceConfig,
    FunctionConfig,
    load_config,
)
from shared import names
from tests.infra.helpers import CDK_JSON


def environments() -> dict[str, object]:
    return json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY]  # type: ignore[no-any-return]


def test_dev_is_the_defaults() -> None:
    assert load_config("dev", environments()) == BreakawayConfig(env_name="dev")


def test_event_source_defaults() -> None:
    assert EventSourceConfig() == EventSourceConfig(
        batch_size=1000,
        max_batching_window_seconds=1,
        parallelization_factor=2,
        bisect_on_error=True,
        retry_attempts=5,
        max_record_age_seconds=3600,
        report_batch_item_failures=True,
        starting_position="TRIM_HORIZON",
    )


def test_closing_defaults() -> None:
    config = BreakawayConfig()
    assert config.closing == ClosingConfig(retry_attempts=2, max_event_age_seconds=21_600)
    assert config.closer == FunctionConfig(memory_mb=1024, timeout_seconds=600)


@pytest.mark.parametrize(
    "overrides",
    [
        {"closing": {"retry_attempts": 0, "max_event_age_seconds": 60}},
        {"closing": {"retry_attempts": 2, "max_event_age_seconds": 21_600}},
        {"closer": {"memory_mb": 512, "timeout_seconds": 900}},
    ],
)
def test_closing_limits_are_accepted(overrides: dict[str, dict[str, int]]) -> None:
    load_config("x1", {"x1": overrides})


def test_prod_overrides_from_cdk_json() -> None:
    prod = load_config("prod", environments())
    assert prod.stream.shard_count == 20
    assert prod.stream.retention_hours == 168
    assert prod.event_source.parallelization_factor == 4
    assert prod.event_source.batch_size == 1000  # untouched keys keep their defaults
    assert prod.retain_data is True
    assert prod.deletion_protection is True
    assert names.stack_name(prod.env_name, "Data") == "Breakaway-Prod-Data"


@pytest.mark.parametrize("env", ["Dev", "qa-1", "qa_1", "1qa", ""])
def test_an_environment_name_that_cannot_name_resources_is_refused(env: str) -> None:
    # It goes into the IoT rule's name ([a-zA-Z0-9_] only) and the Glue database's (no hyphen).
    with pytest.raises(ConfigError, match=r"^env must be lowercase letters and digits, starting"):
        load_config(env, {env: {}})


@pytest.mark.parametrize("env", ["dev", "prod", "qa2"])
def test_the_names_of_an_environment_are_valid_where_they_go(env: str) -> None:
    load_config(env, {env: {}})
    rule = names.rule_name(env)
    assert re.fullmatch(r"[a-zA-Z0-9_]{1,128}", rule), rule  # IoT CreateTopicRule
    assert env in rule
    assert names.basic_ingest_topic(rule, "hub-1") == f"$aws/rules/{rule}/" + (
        names.telemetry_topic("hub-1")
    )
    database = names.glue_database_name(env)
    assert re.fullmatch(r"[a-z0-9_]{1,255}", database), database  # Athena: no quoting needed
    assert env in database
    assert env in names.api_name(env)
    assert names.env_metrics_namespace(env) == f"Breakaway/{env}"
    assert names.stack_name(env, "App") == f"Breakaway-{env.capitalize()}-App"


def test_the_local_stack_answers_to_a_rule_of_its_own() -> None:
    assert names.rule_name("local") == names.LOCAL_RULE_NAME
    assert names.LOCAL_RULE_NAME not in {names.rule_name(e) for e in environments()}


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'qa' .*defines: dev, prod"):
        load_config("qa", environments())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stream": {"shards": 2}}, "unknown configuration key 'stream.shards'"),
        ({"event_source": {"batch_size": "100"}}, "event_source.batch_size must be int"),
        ({"retain_data": 1}, "retain_data must be bool"),
        ({"stream": 3}, "stream must be an object"),
        ({"event_source": {"batch_size": 20_000}}, "batch_size must be 1-10000"),
        ({"event_source": {"parallelization_factor": 11}}, "parallelization_factor must be 1-10"),
        ({"event_source": {"max_record_age_seconds": 30}}, "max_record_age_seconds must be -1"),
        ({"archive": {"buffering_interval_seconds": 901}}, "buffering_interval_seconds must be"),
        ({"archive": {"buffering_size_mib": 0}}, "buffering_size_mib must be 1-128"),
        ({"log_retention_days": 10}, "log_retention_days must be one of"),
        ({"stream": {"shard_count": 0}}, "shard_count must be null"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("x1", {"x1": overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"closing": {"retry_attempts": -1}}, "closing.retry_attempts must be 0-2"),
        ({"closing": {"retry_attempts": 3}}, "closing.retry_attempts must be 0-2"),
        (
            {"closing": {"max_event_age_seconds": 59}},
            "closing.max_event_age_seconds must be 60-21600",
        ),
        (
            {"closing": {"max_event_age_seconds": 21_601}},
            "closing.max_event_age_seconds must be 60-21600",
        ),
        (
            {"closer": {"memory_mb": 1024, "timeout_seconds": 901}},
            "closer.timeout_seconds must be at most 900 (Lambda's limit)",
        ),
        ({"closing": {"retry_attempts": "2"}}, "closing.retry_attempts must be int, not '2'"),
        ({"finishing": {"batch_size": 100}}, "unknown configuration key 'finishing'"),
    ],
)
def test_bad_closing_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_config("x1", {"x1": overrides})
