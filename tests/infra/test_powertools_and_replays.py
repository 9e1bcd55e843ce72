"""The Powertools release is pinned where the lock pins it, the layer can be named where its
public parameter does not exist, and an announcement outlives every way a close comes back."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import version

import pytest

from functions.race_closer.config import CloserSettings
from infra.config import (
    CONTEXT_KEY,
    POWERTOOLS_LAYER_PARAMETER,
    POWERTOOLS_LAYER_REGIONS,
    POWERTOOLS_VERSION,
    SCHEDULE_MAX_EVENT_AGE_SECONDS,
    SQS_MAX_RETENTION_DAYS,
    BreakawayConfig,
    FunctionConfig,
    load_config,
)
from shared import names
from tests.infra.helpers import CDK_JSON, REPO, Assembly, function_by_handler

DAY = 24 * 3600


def locked_version(lock_text: str, package: str) -> str:
    lock = tomllib.loads(lock_text)
    (entry,) = [p for p in lock["package"] if p["name"] == package]
    return str(entry["version"])


def test_the_layer_parameter_names_the_release_the_lock_pins() -> None:
    lock = (REPO / "uv.lock").read_text()
    assert locked_version(lock, "aws-lambda-powertools") == POWERTOOLS_VERSION
    assert version("aws-lambda-powertools") == POWERTOOLS_VERSION  # what the tests ran on
    assert POWERTOOLS_LAYER_PARAMETER.endswith(f"/{POWERTOOLS_VERSION}")
    assert "latest" not in POWERTOOLS_LAYER_PARAMETER


def test_the_lock_check_sees_a_difference() -> None:
    lock = (REPO / "uv.lock").read_text()
    bumped = lock.replace(
        f'name = "aws-lambda-powertools"\nversion = "{POWERTOOLS_VERSION}"',
        'name = "aws-lambda-powertools"\nversion = "3.99.0"',
    )
    assert locked_version(bumped, "aws-lambda-powertools") == "3.99.0" != POWERTOOLS_VERSION


def test_the_layer_regions_are_thirty_commercial_regions_with_the_readme_naming_them() -> None:
    assert len(POWERTOOLS_LAYER_REGIONS) == len(set(POWERTOOLS_LAYER_REGIONS)) == 30
    readme = (REPO / "README.md").read_text()
    assert all(f"`{region}`" in readme for region in POWERTOOLS_LAYER_REGIONS)
    assert "powertools_layer_arn" in readme


def test_a_layer_arn_in_the_config_replaces_the_public_parameter() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from infra.components.function import PythonFunction

    arn = "arn:aws:lambda:me-south-1:123456789012:layer:Powertools:7"
    app = App()
    stack = Stack(app, "LayerProbe")
    PythonFunction(
        stack,
        "Probe",
        function_name="leaderboard_api",
        config=FunctionConfig(memory_mb=128, timeout_seconds=3),
        environment={},
        log_retention_days=1,
        removal_policy=__import__("aws_cdk").RemovalPolicy.DESTROY,
        description="probe",
        layer_arn=arn,
    )
    template = Template.from_stack(stack).to_json()
    (fn,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert fn["Properties"]["Layers"] == [arn]
    defaults = [p.get("Default", "") for p in template.get("Parameters", {}).values()]
    assert not any(str(d).startswith("/aws/service/powertools/") for d in defaults)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_announcements_are_remembered_longer_than_any_redelivered_close(env: str) -> None:
    environments = json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY]
    config = load_config(env, environments)
    ttl = config.idempotency_ttl_seconds
    retries = SCHEDULE_MAX_EVENT_AGE_SECONDS + config.closing.max_event_age_seconds
    assert ttl > retries + SQS_MAX_RETENTION_DAYS * DAY  # retried, then redriven from the DLQ
    # A day of the scheduler's retries, 6 h of Lambda's, 14 days in the DLQ, a day to redrive.
    assert ttl == 16 * DAY + 6 * 3600


def test_lambda_retrying_a_close_for_less_long_remembers_for_less_long() -> None:
    from dataclasses import replace

    config = BreakawayConfig()
    config = replace(config, closing=replace(config.closing, max_event_age_seconds=3600))
    assert config.idempotency_ttl_seconds == 16 * DAY + 3600


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
@pytest.mark.parametrize("which", ["dev", "prod"])
def test_the_deployed_closer_is_told_how_long_to_remember(
    which: str, dev: Assembly, prod: Assembly
) -> None:
    assembly = {"dev": dev, "prod": prod}[which]
    environments = json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY]
    expected = load_config(which, environments).idempotency_ttl_seconds
    _, fn = function_by_handler(assembly, "functions.race_closer.handler.handler")
    variables = fn["Properties"]["Environment"]["Variables"]
    assert variables[names.ENV_IDEMPOTENCY_TTL_SECONDS] == str(expected)
    settings = CloserSettings.from_env(
        {
            names.ENV_STANDINGS_TABLE: "standings",
            names.ENV_IDEMPOTENCY_TABLE: "idempotency",
            names.ENV_IDEMPOTENCY_TTL_SECONDS: variables[names.ENV_IDEMPOTENCY_TTL_SECONDS],
        }
    )
    assert settings.idempotency_ttl_seconds == expected
