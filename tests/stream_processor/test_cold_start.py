"""The deployed entry points build themselves from the environment at cold start."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ConfigError, ProcessorSettings
from shared.race_store import DynamoRaceStore
from shared.races import DEFAULT_FUTURE_SLACK_S
from shared.tables import create_tables
from tests.stream_processor.conftest import LambdaContextStub, entry, fixture, new_race

PROCESSOR_BASE = {
    "STANDINGS_TABLE": "standings",
    "DEAD_LETTER_TARGET": "sqs:https://sqs.us-east-1.amazonaws.com/1/q",
}


@pytest.fixture
def cold() -> Iterator[None]:
    processor_handler.install(None)
    yield
    processor_handler.install(None)


def test_a_cold_start_reads_the_environment_and_processes(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="dead-letter-bucket")
        ddb = boto3.client("dynamodb")
        create_tables(ddb, "standings", "idempotency")
        book = DynamoRaceStore(ddb, "standings")
        now = time.time_ns() // 1_000_000  # the deployed processor's clock is the real one
        book.create_race(new_race(starts_at=now - 60_000, duration_s=600))
        book.enter("race-1", [entry("ann"), entry("bob")], now)
        monkeypatch.setenv("STANDINGS_TABLE", "standings")
        monkeypatch.setenv("DEAD_LETTER_TARGET", "s3:dead-letter-bucket/poison")

        response = processor_handler.handler(fixture("kinesis_poison.json"), LambdaContextStub())

        assert response == {"batchItemFailures": []}
        race = book.get_race("race-1")
        assert race is not None
        assert (race.riders, race.class_counts[2], race.class_counts[3]) == (2, 1, 1)
        [obj] = s3.list_objects_v2(Bucket="dead-letter-bucket")["Contents"]
        assert obj["Key"] == (
            "poison/date=2025-11-22/shardId-000000000000/"
            "49590338271490256608559692538361571095921575989136580101.jsonl"
        )
        body = s3.get_object(Bucket="dead-letter-bucket", Key=obj["Key"])["Body"].read()
        assert len(body.decode().splitlines()) == 3


def test_a_cold_start_without_configuration_says_what_to_set(cold: None) -> None:
    with pytest.raises(ConfigError) as caught:
        processor_handler.handler(fixture("kinesis_batch.json"), LambdaContextStub())

    assert str(caught.value) == (
        "stream processor configuration: STANDINGS_TABLE: Field required; "
        "DEAD_LETTER_TARGET: Field required"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DEAD_LETTER_TARGET": "kafka:topic"},
            "DEAD_LETTER_TARGET: Value error, must be 'sqs:<queue url>' or "
            "'s3:<bucket>[/<prefix>]' (got 'kafka:topic')",
        ),
        (
            {"FUTURE_SLACK_S": "301"},
            "FUTURE_SLACK_S: Input should be less than or equal to 300 (got '301')",
        ),
        (
            {"FUTURE_SLACK_S": "-1"},
            "FUTURE_SLACK_S: Input should be greater than or equal to 0 (got '-1')",
        ),
        (
            {"LIVE_TTL_SECONDS": "10"},
            "LIVE_TTL_SECONDS: Input should be greater than or equal to 60 (got '10')",
        ),
        (
            {"STANDINGS_WRITES": "batch"},
            "STANDINGS_WRITES: Input should be 'item' or 'transaction'",
        ),
    ],
)
def test_bad_processor_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ProcessorSettings.from_env({**PROCESSOR_BASE, **env})

    assert str(caught.value).startswith(f"stream processor configuration: {message}")


def test_standings_are_sent_one_put_each_unless_configured() -> None:
    assert ProcessorSettings.from_env(PROCESSOR_BASE).standings_writes == "item"
    chosen = ProcessorSettings.from_env({**PROCESSOR_BASE, "STANDINGS_WRITES": "transaction"})
    assert chosen.standings_writes == "transaction"


def test_the_future_slack_is_five_seconds_unless_configured() -> None:
    assert ProcessorSettings.from_env(PROCESSOR_BASE).future_slack_s == DEFAULT_FUTURE_SLACK_S == 5
    assert ProcessorSettings.from_env({**PROCESSOR_BASE, "FUTURE_SLACK_S": "0"}).future_slack_s == 0
    chosen = ProcessorSettings.from_env({**PROCESSOR_BASE, "FUTURE_SLACK_S": "300"})
    assert chosen.future_slack_s == 300
