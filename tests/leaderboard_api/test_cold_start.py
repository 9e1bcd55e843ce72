"""The API's entry point builds itself from the environment at cold start, validated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.leaderboard_api import handler as api
from functions.leaderboard_api.adapters import (
    CloseTarget,
    DynamoLeaderboardReader,
    EventBridgeCloseScheduler,
)
from functions.leaderboard_api.config import ApiSettings, ConfigError, CorsSettings
from local.aws.api_gateway import LocalContext
from shared import names
from shared.race_store import DynamoRaceStore
from tests.leaderboard_api.helpers import ENVIRONMENT, TARGET, Db, fixture


@pytest.fixture
def cold() -> Iterator[None]:
    api.install(None)
    yield
    api.install(None)


def test_a_cold_start_reads_the_environment_and_serves(ties: Db, cold: None) -> None:
    raw = api.handler(fixture("rest_leaderboard.json"), LocalContext())

    assert raw["statusCode"] == 200
    runtime = api.warm.value
    assert runtime is not None
    assert isinstance(runtime.reader, DynamoLeaderboardReader)
    assert isinstance(runtime.book, DynamoRaceStore)
    assert isinstance(runtime.scheduler, EventBridgeCloseScheduler)
    assert runtime.scheduler._target == TARGET


def test_the_settings_name_where_closes_are_scheduled() -> None:
    settings = ApiSettings.from_env(ENVIRONMENT)

    assert (
        CloseTarget(
            settings.schedule_group,
            settings.closer_arn,
            settings.scheduler_role_arn,
            settings.schedule_dlq_arn,
        )
        == TARGET
    )


def test_a_cold_start_without_configuration_says_what_to_set(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(ConfigError) as caught:
        api.handler(fixture("rest_leaderboard.json"), LocalContext())

    assert str(caught.value) == (
        "leaderboard API configuration: STANDINGS_TABLE: Field required; SCHEDULE_GROUP: Field "
        "required; CLOSER_FUNCTION_ARN: Field required; SCHEDULER_ROLE_ARN: Field required; "
        "SCHEDULE_DEAD_LETTER_ARN: Field required"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"STANDINGS_TABLE": "x"},
            "STANDINGS_TABLE: String should have at least 3 characters (got 'x')",
        ),
        ({"STANDINGS_TABLE": "t" * 256}, "STANDINGS_TABLE: String should have at most 255"),
        (
            {"SCHEDULE_GROUP": "race closes"},
            "SCHEDULE_GROUP: String should match pattern '^[0-9A-Za-z_.-]{1,64}$' "
            "(got 'race closes')",
        ),
        (
            {"CLOSER_FUNCTION_ARN": "breakaway-race-closer"},
            "CLOSER_FUNCTION_ARN: String should match pattern",
        ),
        (
            {"SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:user/someone"},
            "SCHEDULER_ROLE_ARN: String should match pattern",
        ),
        (
            {"SCHEDULE_DEAD_LETTER_ARN": "https://sqs.us-east-1.amazonaws.com/1/q"},
            "SCHEDULE_DEAD_LETTER_ARN: String should match pattern",
        ),
    ],
)
def test_bad_api_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiSettings.from_env(ENVIRONMENT | env)

    assert str(caught.value).startswith(f"leaderboard API configuration: {message}")


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        (None, []),
        ("", []),
        ("*", ["*"]),
        (
            " https://a.example.com , https://b.example.com,",
            ["https://a.example.com", "https://b.example.com"],
        ),
    ],
)
def test_cors_origins_are_one_a_star_or_a_list(value: str | None, origins: list[str]) -> None:
    env = {} if value is None else {names.ENV_CORS_ORIGIN: value}

    assert CorsSettings.from_env(env).cors_origins == origins
