"""The deployed entry points build themselves from the environment at cold start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from functions.race_finisher import handler as finisher_handler
from functions.race_finisher.config import FinisherSettings
from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ConfigError, ProcessorSettings
from shared import items, keys
from shared.tables import create_tables
from tests.stream_processor.conftest import LambdaContextStub, fixture

FINISH_EVENT = Path(__file__).parents[1] / "race_finisher" / "fixtures" / "sqs_finish_event.json"
PROCESSOR_BASE = {
    "STANDINGS_TABLE": "standings",
    "DEAD_LETTER_TARGET": "sqs:https://sqs.us-east-1.amazonaws.com/1/q",
    "FINISH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/finishes",
}
FINISHER_BASE = {"STANDINGS_TABLE": "standings", "IDEMPOTENCY_TABLE": "idempotency"}


@pytest.fixture
def cold() -> Iterator[None]:
    processor_handler.install(None)
    finisher_handler.install(None)
    yield
    processor_handler.install(None)
    finisher_handler.install(None)


def test_a_cold_start_reads_the_environment_and_processes(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="dead-letter-bucket")
        create_tables(boto3.client("dynamodb"), "standings", "idempotency")
        queue = boto3.client("sqs").create_queue(QueueName="finishes")["QueueUrl"]
        monkeypatch.setenv("STANDINGS_TABLE", "standings")
        monkeypatch.setenv("DEAD_LETTER_TARGET", "s3:dead-letter-bucket/poison")
        monkeypatch.setenv("FINISH_QUEUE_URL", queue)

        response = processor_handler.handler(fixture("kinesis_poison.json"), LambdaContextStub())

        assert response == {"batchItemFailures": []}
        [obj] = s3.list_objects_v2(Bucket="dead-letter-bucket")["Contents"]
        assert obj["Key"] == (
            "poison/date=2025-11-22/shardId-000000000000/"
            "49590338271490256608559692538361571095921575989136580101.jsonl"
        )
        body = s3.get_object(Bucket="dead-letter-bucket", Key=obj["Key"])["Body"].read()
        assert len(body.decode().splitlines()) == 3


def test_the_finisher_cold_starts_from_the_environment_and_finishes(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_tables(ddb, "standings", "idempotency")
        monkeypatch.setenv("STANDINGS_TABLE", "standings")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("NOTIFY_TARGET", "none")

        event = json.loads(FINISH_EVENT.read_text())
        response = finisher_handler.handler(event, LambdaContextStub("breakaway-race-finisher"))

        assert response == {"batchItemFailures": []}
        found = {}
        for rider in ("ann", "bob"):
            key = {k: {"S": v} for k, v in keys.result_key("race-1", rider).items()}
            result = items.result_from_item(ddb.get_item(TableName="standings", Key=key)["Item"])
            found[rider] = (result.points, result.rank_overall, result.rank_class)
        # Nobody else rides race-1 in the table: each ranks first overall and in class.
        assert found == {"ann": (43125, 1, 1), "bob": (28750, 1, 1)}


def test_a_cold_start_without_configuration_says_what_to_set(cold: None) -> None:
    with pytest.raises(ConfigError) as caught:
        processor_handler.handler(fixture("kinesis_batch.json"), LambdaContextStub())

    assert str(caught.value) == (
        "stream processor configuration: STANDINGS_TABLE: Field required; "
        "DEAD_LETTER_TARGET: Field required; FINISH_QUEUE_URL: Field required"
    )
    with pytest.raises(ConfigError) as caught:
        finisher_handler.handler(json.loads(FINISH_EVENT.read_text()), LambdaContextStub())

    assert str(caught.value) == (
        "race finisher configuration: STANDINGS_TABLE: Field required; "
        "IDEMPOTENCY_TABLE: Field required"
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
            {"FINISH_QUEUE_URL": "finishes"},
            "FINISH_QUEUE_URL: String should match pattern",
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOTIFY_TARGET": "email"}, "NOTIFY_TARGET: Input should be 'iot', 'log' or 'none'"),
        (
            {"LIVE_TTL_SECONDS": "10"},
            "LIVE_TTL_SECONDS: Input should be greater than or equal to 60 (got '10')",
        ),
    ],
)
def test_bad_finisher_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FinisherSettings.from_env({**FINISHER_BASE, **env})

    assert str(caught.value).startswith(f"race finisher configuration: {message}")


def test_standings_are_sent_one_put_each_unless_configured() -> None:
    assert ProcessorSettings.from_env(PROCESSOR_BASE).standings_writes == "item"
    chosen = ProcessorSettings.from_env({**PROCESSOR_BASE, "STANDINGS_WRITES": "transaction"})
    assert chosen.standings_writes == "transaction"
