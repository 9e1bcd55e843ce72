"""The API's entry point builds itself from the environment at cold start, validated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.leaderboard_api import handler as api
from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from functions.leaderboard_api.config import ApiSettings, ConfigError, CorsSettings
from local.aws.api_gateway import LocalContext
from shared import names
from tests.leaderboard_api.helpers import Db, fixture


@pytest.fixture
def cold() -> Iterator[None]:
    api.install(None)
    yield
    api.install(None)


def test_a_cold_start_reads_the_environment_and_serves(cold: None, ties: Db) -> None:
    raw = api.handler(fixture("rest_leaderboard.json"), LocalContext())

    assert raw["statusCode"] == 200
    runtime = api.warm.value
    assert runtime is not None
    assert isinstance(runtime.reader, DynamoLeaderboardReader)


def test_a_cold_start_without_configuration_says_what_to_set(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(names.ENV_STANDINGS_TABLE, raising=False)

    with pytest.raises(ConfigError) as caught:
        api.handler(fixture("rest_leaderboard.json"), LocalContext())

    assert str(caught.value) == "leaderboard API configuration: STANDINGS_TABLE: Field required"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"STANDINGS_TABLE": "x"},
            "STANDINGS_TABLE: String should have at least 3 characters (got 'x')",
        ),
        ({"STANDINGS_TABLE": "t" * 256}, "STANDINGS_TABLE: String should have at most 255"),
    ],
)
def test_bad_api_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiSettings.from_env(env)

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
