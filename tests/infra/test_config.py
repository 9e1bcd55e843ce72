"""The typed configuration: defaults, cdk.json overrides, and refusals with a clear message."""

from __future__ import annotations

import json

import pytest

from infra.config import (
    CONTEXT_KEY,
    BreakawayConfig,
    ConfigError,
    EventSourceConfig,
    load_config,
)
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


def test_prod_overrides_from_cdk_json() -> None:
    prod = load_config("prod", environments())
    assert prod.stream.shard_count == 4
    assert prod.stream.retention_hours == 168
    assert prod.event_source.parallelization_factor == 4
    assert prod.event_source.batch_size == 1000  # untouched keys keep their defaults
    assert prod.retain_data is True
    assert prod.deletion_protection is True
    assert prod.stack_env == "Prod"


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
        ({"archive": {"buffering_interval_seconds": 30}}, "buffering_interval_seconds must be"),
        ({"archive": {"buffering_size_mib": 32}}, "buffering_size_mib must be 64-128"),
        ({"log_retention_days": 10}, "log_retention_days must be one of"),
        ({"stream": {"shard_count": 0}}, "shard_count must be null"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("x1", {"x1": overrides})
