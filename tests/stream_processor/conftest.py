"""The stream processor against moto: the table and the dead-letter queue, races created and
riders entered first (as an organiser does, through the race book), Kinesis events in the shape
Lambda delivers, and the processor's clock in the test's hands."""

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

from functions.stream_processor import handler as processor_handler
from functions.stream_processor.config import ProcessorSettings
from local.aws.lambda_runtime import LambdaContext
from shared import items, keys
from shared.contract import Telemetry
from shared.dynamodb import WRITE_MODES, WriteMode
from shared.race_store import DynamoRaceStore
from shared.races import RACE_REFRESH_S, Entry, NewRace, Race
from shared.standings import Standing
from shared.tables import create_tables
from tests.support.faults import FaultInjector

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
STANDINGS = "standings"
IDEMPOTENCY = "idempotency"
DLQ = "dead-letters"

RACE_START = 1_763_800_000_000
"""When the tests' races start (epoch ms): the fixtures' device clocks start there too."""
RACE_DURATION_S = 3 * 3600
NOW = RACE_START + 600_000
"""The processor's clock when a test begins: ten minutes into the race."""
ROSTER: dict[str, tuple[str, int]] = {
    "ann": ("Ann Rider", 2),
    "bob": ("Bob Rider", 3),
    "cid": ("Cid Rider", 1),
    "dee": ("Dee Rider", 4),
    "cat": ("Cat Rider", 5),
}
"""Who is entered in ``race-1`` (name, class) before a test begins (the fixtures' riders)."""


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
    event: str = "update",
    device: str | None = None,
    event_id: str | None = None,
) -> Telemetry:
    """A v2 reading: no name, no class (those are the entry's)."""
    return Telemetry(
        v=2,
        event_id=event_id or f"{race}-{rider}-{second}",
        race_id=race,
        rider_id=rider,
        second=second,
        cadence=cadence,
        resistance=resistance,
        device_timestamp=RACE_START + second * 1000,
        event=event,
        device_id=device,
    )


def new_race(
    race_id: str = "race-1",
    *,
    starts_at: int = RACE_START,
    duration_s: int = RACE_DURATION_S,
    grace_s: int = 30,
) -> Race:
    request = NewRace(
        race_id=race_id,
        name=f"Race {race_id}",
        starts_at=starts_at,
        duration_s=duration_s,
        grace_s=grace_s,
    )
    return Race.new(request, created_at=starts_at - 86_400_000)


def entry(rider: str, class_id: int | None = None, device: str | None = None) -> Entry:
    name, roster_class = ROSTER.get(rider, (rider.title(), 1))
    return Entry(rider_id=rider, name=name, class_id=class_id or roster_class, device_id=device)


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


class Clock:
    """The processor's clock, moved by the test (epoch ms)."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms

    def past_refresh(self) -> None:
        """Far enough on that every cached race card is read again."""
        self.advance(RACE_REFRESH_S * 1000)


@dataclass
class Aws:
    ddb: Any
    sqs: Any
    queue_url: str
    faults: FaultInjector
    mode: WriteMode
    clock: Clock
    book: DynamoRaceStore

    def invoke(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One invocation of the deployed entry point, as Lambda makes it."""
        response: dict[str, Any] = processor_handler.handler(event(records), LambdaContextStub())
        return response

    def enter(
        self,
        *riders: str,
        race: str = "race-1",
        class_id: int | None = None,
        device: str | None = None,
    ) -> None:
        self.book.enter(race, [entry(r, class_id, device) for r in riders], self.clock.now)

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

    def race(self, race: str = "race-1") -> Race:
        found = self.book.get_race(race)
        assert found is not None
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return sorted(letters, key=lambda m: m["sequence_number"])
            letters.extend(json.loads(m["Body"]) for m in got["Messages"])


def _key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in key.items()}


def settings(queue_url: str, mode: WriteMode = "item") -> ProcessorSettings:
    return ProcessorSettings(
        standings_writes=mode,
        standings_table=STANDINGS,
        dead_letter_target=f"sqs:{queue_url}",
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
        clock = Clock()
        book = DynamoRaceStore(ddb, STANDINGS)
        for race in ("race-1", "race-2"):
            book.create_race(new_race(race))
        book.enter("race-1", [entry(r) for r in ROSTER], RACE_START - 60_000)
        queue_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        runtime = processor_handler.build_runtime(settings(queue_url, mode), session, clock)
        processor_handler.install(runtime)
        faults.calls.clear()  # the set-up is not the processor's
        try:
            yield Aws(
                ddb=ddb,
                sqs=sqs,
                queue_url=queue_url,
                faults=faults,
                mode=mode,
                clock=clock,
                book=book,
            )
        finally:
            processor_handler.install(None)


@pytest.fixture(params=WRITE_MODES)
def aws(request: pytest.FixtureRequest) -> Iterator[Aws]:
    """Moto with the table, the queue, ``race-1`` (the roster entered) and ``race-2`` (nobody
    entered), and the processor's runtime installed on the test's clock, once for each way of
    sending standings (``STANDINGS_WRITES``)."""
    yield from _aws(request.param)


@pytest.fixture
def aws_items() -> Iterator[Aws]:
    """As ``aws``, sending one PutItem per rider (the deployed default)."""
    yield from _aws("item")


@pytest.fixture
def aws_transactions() -> Iterator[Aws]:
    """As ``aws``, sending standings in transactions of 100 (the local stack's setting)."""
    yield from _aws("transaction")
