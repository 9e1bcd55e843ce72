"""The stream processor and the race finisher against moto: tables, the dead-letter and finish
queues, IoT data; Kinesis events for the processor, SQS events for the finisher."""

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

from functions.race_finisher import handler as finisher_handler
from functions.race_finisher.config import FinisherSettings
from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ProcessorSettings
from local.aws.lambda_runtime import LambdaContext
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
FINISHES = "finishes"
IOT_DATA = "data-ats.iot.us-east-1.amazonaws.com"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


RECORD_TEMPLATE = fixture("kinesis_batch.json")["Records"][0]
SQS_RECORD_TEMPLATE = json.loads(
    (Path(__file__).parents[1] / "race_finisher" / "fixtures" / "sqs_finish_event.json").read_text()
)["Records"][0]


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


def LambdaContextStub(function_name: str = "breakaway-stream-processor") -> LambdaContext:
    """The context Lambda passes, as the local stack builds it."""
    return LambdaContext(function_name=function_name, region=REGION)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage message (fixture's shape)."""
    record = copy.deepcopy(SQS_RECORD_TEMPLATE)
    record.update(
        messageId=message["MessageId"],
        receiptHandle=message["ReceiptHandle"],
        body=message["Body"],
        md5OfBody=message["MD5OfBody"],
        eventSourceARN=queue_arn,
    )
    record["attributes"] = {**record["attributes"], **message.get("Attributes", {})}
    return record


@dataclass
class Aws:
    ddb: Any
    sqs: Any
    queue_url: str
    finish_queue_url: str
    faults: FaultInjector
    mode: WriteMode

    def invoke(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One invocation of the deployed entry point, as Lambda makes it."""
        response: dict[str, Any] = processor_handler.handler(event(records), LambdaContextStub())
        return response

    def finish_messages(self) -> list[dict[str, Any]]:
        """Every message waiting in the finish queue (each received once: hidden for 30 s)."""
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.finish_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            )
            if not got.get("Messages"):
                return messages
            messages.extend(got["Messages"])

    def finish(self, messages: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """One invocation of the race finisher with what waits in the finish queue, then what
        Lambda's SQS event source does: delete the messages not reported as failed, and (as
        their visibility timeout would) make the failed ones visible again."""
        messages = self.finish_messages() if messages is None else messages
        arn = self.sqs.get_queue_attributes(
            QueueUrl=self.finish_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        context = LambdaContextStub("breakaway-race-finisher")
        response: dict[str, Any] = finisher_handler.handler(
            event([sqs_record(m, arn) for m in messages]), context
        )
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.finish_queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self.sqs.delete_message(
                    QueueUrl=self.finish_queue_url, ReceiptHandle=m["ReceiptHandle"]
                )
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


def settings(queue_url: str, finish_queue_url: str, mode: WriteMode = "item") -> ProcessorSettings:
    return ProcessorSettings(
        standings_writes=mode,
        standings_table=STANDINGS,
        dead_letter_target=f"sqs:{queue_url}",
        finish_queue_url=finish_queue_url,
        live_ttl_seconds=3600,
    )


def finisher_settings() -> FinisherSettings:
    return FinisherSettings(
        standings_table=STANDINGS,
        idempotency_table=IDEMPOTENCY,
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
        finish_queue_url = sqs.create_queue(QueueName=FINISHES)["QueueUrl"]
        runtime = processor_handler.build_runtime(
            settings(queue_url, finish_queue_url, mode), session
        )
        processor_handler.install(runtime)
        finisher_handler.install(finisher_handler.build_runtime(finisher_settings(), session))
        try:
            yield Aws(
                ddb=ddb,
                sqs=sqs,
                queue_url=queue_url,
                finish_queue_url=finish_queue_url,
                faults=faults,
                mode=mode,
            )
        finally:
            processor_handler.install(None)
            finisher_handler.install(None)


@pytest.fixture(params=WRITE_MODES)
def aws(request: pytest.FixtureRequest) -> Iterator[Aws]:
    """Moto with the tables, the queues, and the processor's and finisher's runtimes installed,
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
