"""The stream processor against moto: tables, a dead-letter queue, IoT data, Kinesis events."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ProcessorSettings
from local.lambda_context import LambdaContext
from shared import items, keys
from shared.contract import Telemetry
from shared.dynamodb import WRITE_MODES, WriteMode
from shared.standings import FinalResult, RaceRecord, Standing
from shared.tables import create_tables
from tests.support.faults import FaultInjector

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
STANDINGS = "standings"
IDEMPOTENCY = "idempotency"
DLQ = "dead-letters"
IOT_DATA = "data-ats.iot.us-east-1.amazonaws.com"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


RECORD_TEMPLATE = fixture("kinesis_batch.json")["Records"][0]


def reading(
    rider: str,
    second: int,
    cadence: int = 90,
    resistance: int = 50,
    *,
    race: str = "race-1",
    class_id: int = 1,
    event: str = "update",
    name: str | None = None,
) -> Telemetry:
    return Telemetry(
        v=1,
        event_id=f"{race}-{rider}-{second}",
        race_id=race,
        rider_id=rider,
        name=name or rider.title(),
        class_id=class_id,
        second=second,
        cadence=cadence,
        resistance=resistance,
        device_timestamp=1_763_800_000_000 + second * 1000,
        event=event,  # type: ignore[arg-type]
    )


def kinesis_record(
    payload: Telemetry | bytes | str, sequence: int, shard: str = "shardId-000000000000"
) -> dict[str, Any]:
    """A record in the shape Lambda delivers, built on the fixture's first record."""
    record = copy.deepcopy(RECORD_TEMPLATE)
    if isinstance(payload, Telemetry):
        data = base64.b64encode(payload.to_json()).decode()
        record["kinesis"]["partitionKey"] = payload.rider_id
    elif isinstance(payload, bytes):
        data = base64.b64encode(payload).decode()
    else:
        data = payload
    seq = f"4959033827149025660855969253836157109592157598913{sequence:07d}"
    record["kinesis"]["data"] = data
    record["kinesis"]["sequenceNumber"] = seq
    record["eventID"] = f"{shard}:{seq}"
    return record


def redeliver_after_failure(
    records: Sequence[dict[str, Any]], response: dict[str, Any]
) -> list[dict[str, Any]]:
    """What Lambda delivers next after a partial batch response: every record from the lowest
    reported sequence number on (an unknown or empty identifier fails the whole batch)."""
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    if not failed:
        return []
    sequences = [r["kinesis"]["sequenceNumber"] for r in records]
    if any(f not in sequences for f in failed):
        return list(records)
    lowest = min(failed, key=int)
    return list(records[sequences.index(lowest) :])


def event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def LambdaContextStub() -> LambdaContext:
    """The context Lambda passes, as the local stack builds it."""
    return LambdaContext(function_name="breakaway-stream-processor", region=REGION)


@dataclass
class Aws:
    ddb: Any
    sqs: Any
    queue_url: str
    faults: FaultInjector
    mode: WriteMode

    def invoke(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One invocation of the deployed entry point, as Lambda makes it."""
        response: dict[str, Any] = processor_handler.handler(event(records), LambdaContextStub())
        return response

    def standing(self, rider: str, race: str = "race-1") -> Standing | None:
        got = self.ddb.get_item(TableName=STANDINGS, Key=_key(keys.standing_key(race, rider)))
        return items.standing_from_item(got["Item"]) if "Item" in got else None

    def standings(self, race: str = "race-1") -> dict[str, tuple[int, int, int]]:
        """riderId -> (points, seconds, lastSecond) for every standing of the race."""
        out = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName=STANDINGS):
            for item in page["Items"]:
                if item["sk"]["S"] == keys.SK_STANDING and item["raceId"]["S"] == race:
                    s = items.standing_from_item(item)
                    out[s.rider_id] = (s.points, s.seconds, s.last_second)
        return out

    def race(self, race: str = "race-1") -> RaceRecord:
        got = self.ddb.get_item(TableName=STANDINGS, Key=_key(keys.race_key(race)))
        return items.race_from_item(got["Item"])

    def result(self, rider: str, race: str = "race-1") -> FinalResult | None:
        got = self.ddb.get_item(TableName=STANDINGS, Key=_key(keys.result_key(race, rider)))
        return items.result_from_item(got["Item"]) if "Item" in got else None

    def dead_letters(self) -> list[dict[str, Any]]:
        letters = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return sorted(letters, key=lambda m: m["sequence_number"])
            letters.extend(json.loads(m["Body"]) for m in got["Messages"])

    @staticmethod
    def notifications() -> list[tuple[str, dict[str, Any]]]:
        backend = iotdata_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [(topic, json.loads(payload)) for topic, payload in backend.published_payloads]


def _key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in key.items()}


def settings(queue_url: str, mode: WriteMode = "item") -> ProcessorSettings:
    return ProcessorSettings(
        standings_writes=mode,
        standings_table=STANDINGS,
        idempotency_table=IDEMPOTENCY,
        dead_letter_target=f"sqs:{queue_url}",
        notify_target="iot",
        iot_data_endpoint=IOT_DATA,
        live_ttl_seconds=3600,
    )


def _aws(mode: WriteMode) -> Iterator[Aws]:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        faults = FaultInjector()
        faults.attach(session.events)
        ddb = session.client("dynamodb")
        sqs = session.client("sqs")
        create_tables(ddb, STANDINGS, IDEMPOTENCY)
        queue_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        runtime = processor_handler.build_runtime(settings(queue_url, mode), session)
        processor_handler.install(runtime)
        try:
            yield Aws(ddb=ddb, sqs=sqs, queue_url=queue_url, faults=faults, mode=mode)
        finally:
            processor_handler.install(None)


@pytest.fixture(params=WRITE_MODES)
def aws(request: pytest.FixtureRequest) -> Iterator[Aws]:
    """Moto with the tables, the dead-letter queue, and the processor's runtime installed,
    once for each way of sending standings (``STANDINGS_WRITES``)."""
    yield from _aws(request.param)


@pytest.fixture
def aws_items() -> Iterator[Aws]:
    """As ``aws``, sending one PutItem per rider (the deployed default)."""
    yield from _aws("item")


@pytest.fixture
def aws_transactions() -> Iterator[Aws]:
    """As ``aws``, sending standings in transactions of 100 (the local stack's setting)."""
    yield from _aws("transaction")
