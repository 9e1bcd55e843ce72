"""The deployed entry point builds itself from the environment at cold start."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ConfigError, ProcessorSettings
from shared.tables import create_tables
from tests.processor.conftest import LambdaContextStub, fixture


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
        create_tables(boto3.client("dynamodb"), "standings", "idempotency")
        monkeypatch.setenv("STANDINGS_TABLE", "standings")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("DEAD_LETTER_TARGET", "s3:dead-letter-bucket/poison")
        monkeypatch.setenv("NOTIFY_TARGET", "none")

        response = processor_handler.handler(fixture("kinesis_poison.json"), LambdaContextStub())

        assert response == {"batchItemFailures": []}
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
        "IDEMPOTENCY_TABLE: Field required; DEAD_LETTER_TARGET: Field required"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DEAD_LETTER_TARGET": "kafka:topic"},
            "DEAD_LETTER_TARGET: Value error, must be 'sqs:<queue url>' or "
            "'s3:<bucket>[/<prefix>]' (got 'kafka:topic')",
        ),
        ({"NOTIFY_TARGET": "email"}, "NOTIFY_TARGET: Input should be 'iot', 'log' or 'none'"),
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
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    base = {
        "STANDINGS_TABLE": "standings",
        "IDEMPOTENCY_TABLE": "idempotency",
        "DEAD_LETTER_TARGET": "sqs:https://sqs.us-east-1.amazonaws.com/1/q",
    }
    with pytest.raises(ConfigError) as caught:
        ProcessorSettings.from_env({**base, **env})

    assert str(caught.value).startswith(f"stream processor configuration: {message}")


def test_standings_are_sent_one_put_each_unless_configured() -> None:
    base = {
        "STANDINGS_TABLE": "standings",
        "IDEMPOTENCY_TABLE": "idempotency",
        "DEAD_LETTER_TARGET": "sqs:https://sqs.us-east-1.amazonaws.com/1/q",
    }

    assert ProcessorSettings.from_env(base).standings_writes == "item"
    chosen = ProcessorSettings.from_env({**base, "STANDINGS_WRITES": "transaction"})
    assert chosen.standings_writes == "transaction"
