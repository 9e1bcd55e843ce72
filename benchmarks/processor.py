"""Processor benchmark: DynamoDB requests per reading against the Powertools recipe, and CPU.

One stream, delivered as the event source mapping delivers it with a 5 s batching window (one
batch = every rider's readings of 5 seconds), through:

(a) our processor: the real handler path (Powertools batch processor, the counting rules
    checked against the race's card, cached per environment, merge per rider, one conditional
    write per rider per batch), against moto, with the race created and its riders entered
    first, as an organiser does;
(b) the common recipe from the Powertools documentation: ``idempotent_function`` per reading
    keyed on ``eventId`` plus one ``UpdateItem`` per reading, against moto.

DynamoDB requests are counted per operation with a botocore ``before-call`` hook, and the
items the write requests write. Both results
are checked against the ground truth. CPU: our processing over the same batches with the
DynamoDB port replaced by the in-memory fake, next to the bare Powertools batch loop (no model,
no-op handler) measured in the same run as the baseline.

Sizes (``standing_sizes``): the standing items the processor writes over a whole race, one
batch a second as the deployed 1 s window delivers them, captured from its write requests
against moto: the item's size at the race's last second and the mean write units per standing
write, the figures the capacity model's DynamoDB writes come from.
"""

from __future__ import annotations

import base64
import gc
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from moto import mock_aws

from functions.stream_processor.batch import TelemetryBatchProcessor, record_letter
from functions.stream_processor.config import ProcessorSettings
from functions.stream_processor.handler import build_runtime, settle_heap
from functions.stream_processor.logic import StreamProcessor
from shared import items, keys
from shared.contract import Telemetry
from shared.memory import InMemoryRaceStore, InMemoryStandingsStore
from shared.ports import RaceBook
from shared.race_store import DynamoRaceStore
from shared.races import Entry, NewRace, Race
from shared.scoring import ground_truth
from shared.tables import create_tables

RIDERS = 100
SECONDS = 60
WINDOW_S = 5
RESEND_FRACTION = 0.02
"""Producer resends (same payload, new sequence number), as PutRecords retries make."""
CPU_RIDERS = 1_000
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
RACE = "bench-race"
DEVICE_EPOCH_MS = 1_763_800_000_000


def seed_race(book: RaceBook, riders: int, now_ms: int, seconds: int = SECONDS) -> None:
    """The race, running since the stream's seconds began (so none is from the future), and
    every rider entered, as the organiser leaves them before anyone rides."""
    request = NewRace(
        race_id=RACE,
        name="Benchmark",
        starts_at=now_ms - seconds * 1000,
        duration_s=seconds,
        grace_s=3_600,
    )
    book.create_race(Race.new(request, created_at=now_ms))
    entries = [
        Entry(rider_id=rider_id(i), name=f"Rider {i}", class_id=1 + i % 6) for i in range(riders)
    ]
    for start in range(0, riders, 1_000):
        book.enter(RACE, entries[start : start + 1_000], now_ms)


def rider_id(i: int) -> str:
    return f"r{i:05d}"


def readings(riders: int, seconds: int, seed: int = 7) -> list[list[Telemetry]]:
    """Readings per second of race, each second's list in arrival order."""
    rng = random.Random(seed)
    out = []
    for s in range(seconds):
        batch = [
            Telemetry(
                v=2,
                event_id=f"{RACE}-{rider_id(i)}-{s:05d}",
                race_id=RACE,
                rider_id=rider_id(i),
                second=s,
                cadence=rng.randint(60, 120),
                resistance=rng.randint(20, 80),
                device_timestamp=DEVICE_EPOCH_MS + s * 1000,
                event="final" if s == seconds - 1 else "update",
            )
            for i in range(riders)
        ]
        rng.shuffle(batch)
        out.append(batch)
    return out


def kinesis_batches(
    per_second: list[list[Telemetry]],
    seed: int = 11,
    window_s: int = WINDOW_S,
    resend_fraction: float = RESEND_FRACTION,
) -> list[dict[str, Any]]:
    """Events as the ESM delivers them: a window's records (plus producer resends) per batch."""
    rng = random.Random(seed)
    events, sequence = [], 0
    for start in range(0, len(per_second), window_s):
        window = [r for second in per_second[start : start + window_s] for r in second]
        resent = rng.sample(window, int(len(window) * resend_fraction))
        records = []
        for r in window + resent:
            sequence += 1
            seq = f"{49590338271490256608559692538361571095921575989130000000 + sequence}"
            records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r.rider_id,
                        "sequenceNumber": seq,
                        "data": base64.b64encode(r.to_json()).decode(),
                        "approximateArrivalTimestamp": r.device_timestamp / 1000,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"shardId-000000000000:{seq}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/bench",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/bench",
                }
            )
        events.append({"Records": records})
    return events


ITEM_WRITES = "items written"
"""A pseudo-operation in the counts: items written by the write requests (an action of a
``TransactWriteItems`` or an entry of a ``BatchWriteItem`` counts once, like ``PutItem``)."""


def count_requests(session: boto3.session.Session) -> Counter[str]:
    counts: Counter[str] = Counter()

    def hook(model: Any, params: Any, **_: Any) -> None:
        counts[model.name] += 1
        if model.name in WRITE_OPERATIONS:
            body = json.loads(params["body"] or b"{}")
            if "TransactItems" in body:
                counts[ITEM_WRITES] += len(body["TransactItems"])
            elif "RequestItems" in body:
                counts[ITEM_WRITES] += sum(len(v) for v in body["RequestItems"].values())
            else:
                counts[ITEM_WRITES] += 1

    session.events.register("before-call.dynamodb", hook)
    return counts


def stored_truth(ddb: Any, table: str, sk: str = keys.SK_STANDING) -> dict[str, tuple[int, int]]:
    out = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if item["sk"]["S"] == sk:
                if "counted" in item:
                    s = items.standing_from_item(item)
                    out[s.rider_id] = (s.points, s.seconds)
                else:
                    out[item["riderId"]["S"]] = (
                        int(item["points"]["N"]),
                        int(item["seconds"]["N"]),
                    )
    return out


def expected(per_second: list[list[Telemetry]]) -> dict[str, tuple[int, int]]:
    truth = ground_truth(r for second in per_second for r in second)
    return {rider: (score.points, score.seconds) for (_, rider), score in truth.items()}


def run_ours(events: list[dict[str, Any]]) -> tuple[Counter[str], dict[str, tuple[int, int]]]:
    """DynamoDB requests of the processor over the stream, and the standings stored."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        ddb = session.client("dynamodb")
        sqs = session.client("sqs")
        create_tables(ddb, "standings", "idempotency")
        seed_race(DynamoRaceStore(ddb, "standings"), RIDERS, time.time_ns() // 1_000_000)
        queue = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        counts = count_requests(session)  # before the runtime creates its clients
        settings = ProcessorSettings(standings_table="standings", dead_letter_target=f"sqs:{queue}")
        runtime = build_runtime(settings, session)
        counts.clear()  # table creation and set-up are not the stream's
        for event in events:
            response = process_partial_response(event, runtime.batch.collect, runtime.batch)
            assert response == {"batchItemFailures": []}, response
        return Counter(counts), stored_truth(ddb, "standings")


def run_recipe(events: list[dict[str, Any]]) -> tuple[Counter[str], dict[str, tuple[int, int]]]:
    """The Powertools documentation's pattern: an idempotent function per record."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        counts = count_requests(session)
        ddb = session.client("dynamodb")
        create_tables(ddb, "standings", "idempotency")
        counts.clear()
        persistence = DynamoDBPersistenceLayer(
            table_name="idempotency", boto3_client=session.client("dynamodb")
        )
        config = IdempotencyConfig(event_key_jmespath="eventId")

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="reading", persistence_store=persistence, config=config
        )
        def apply(reading: dict[str, Any]) -> None:
            ddb.update_item(
                TableName="standings",
                Key={
                    "pk": {"S": keys.rider_pk(reading["raceId"], reading["riderId"])},
                    "sk": {"S": "RECIPE"},
                },
                UpdateExpression="ADD points :p, seconds :one SET riderId = :r",
                ExpressionAttributeValues={
                    ":p": {"N": str((reading["cadence"] + 35) * (reading["resistance"] + 65))},
                    ":one": {"N": "1"},
                    ":r": {"S": reading["riderId"]},
                },
            )

        processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

        def record_handler(record: Any) -> None:
            apply(reading=record.kinesis.data_as_json())

        for event in events:
            response = process_partial_response(event, record_handler, processor)
            assert response == {"batchItemFailures": []}, response
        return Counter(counts), stored_truth(ddb, "standings", sk="RECIPE")


SIZE_RIDERS = 2
SIZE_SECONDS = 3_600
"""A one-hour race (the model's default), every second of it, as the processor writes it."""


def capture_standings(session: boto3.session.Session) -> list[tuple[dict[str, Any], bool]]:
    """Every standing item the write requests carry, in order, and whether in a transaction."""
    written: list[tuple[dict[str, Any], bool]] = []

    def hook(model: Any, params: Any, **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        if model.name == "PutItem":
            puts = [(body["Item"], False)]
        elif model.name == "TransactWriteItems":
            puts = [(a["Put"]["Item"], True) for a in body["TransactItems"] if "Put" in a]
        else:
            return
        written.extend((item, in_tx) for item, in_tx in puts if item["sk"]["S"] == keys.SK_STANDING)

    session.events.register("before-call.dynamodb", hook)
    return written


def standing_sizes() -> dict[str, Any]:
    """The standing items the processor writes over a one-hour race: their size at the last
    second and the mean write units per standing write."""
    # Imported here: the capacity model's modules would otherwise sit in the heap that the CPU
    # measurement's garbage collections walk.
    from infra.capacity.sizes import item_bytes, put_write_units

    events = kinesis_batches(readings(SIZE_RIDERS, SIZE_SECONDS), window_s=1, resend_fraction=0)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        ddb = session.client("dynamodb")
        create_tables(ddb, "standings", "idempotency")
        seed_race(
            DynamoRaceStore(ddb, "standings"),
            SIZE_RIDERS,
            time.time_ns() // 1_000_000,
            seconds=SIZE_SECONDS,
        )
        queue = session.client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
        written = capture_standings(session)
        settings = ProcessorSettings(standings_table="standings", dead_letter_target=f"sqs:{queue}")
        runtime = build_runtime(settings, session)
        for event in events:
            response = process_partial_response(event, runtime.batch.collect, runtime.batch)
            assert response == {"batchItemFailures": []}, response
    units = put_write_units((item["pk"]["S"], item_bytes(item), tx) for item, tx in written)
    return {
        "riders": SIZE_RIDERS,
        "race_seconds": SIZE_SECONDS,
        "standing_writes": len(written),
        "standing_writes_in_transactions": sum(in_tx for _, in_tx in written),
        "standing_item_bytes_last_second": max(item_bytes(item) for item, _ in written),
        "standing_write_units_mean": round(sum(units) / len(units), 4),
    }


def cpu_per_reading(
    events: list[str], makes: dict[str, Callable[[], Callable[[Any], Any]]], rounds: int = 5
) -> dict[str, float]:
    """Best of ``rounds``: CPU seconds each processing in ``makes`` spends over all events.

    The processings take turns, one run each per round, so that a slow spell of the machine
    slows every one of them alike and their ratio stays what it is (run one after the other,
    the ratio moved by a third between runs of the same code).

    Events are kept as JSON text and decoded one at a time outside the timed part, as the Lambda
    runtime hands a function one decoded event: holding every decoded batch in memory at once
    would make each garbage collection walk a heap no execution environment ever has.
    """
    best = dict.fromkeys(makes, float("inf"))
    for _ in range(rounds):
        for name, make in makes.items():
            invoke = make()
            spent = 0.0
            for text in events:
                event = json.loads(text)
                started = time.process_time()
                invoke(event)
                spent += time.process_time() - started
            best[name] = min(best[name], spent)
    return best


def ours_in_memory() -> Callable[[Any], Any]:
    now = DEVICE_EPOCH_MS + SECONDS * 1000
    races = InMemoryRaceStore()
    seed_race(races, CPU_RIDERS, now)
    logic: StreamProcessor[Any] = StreamProcessor(
        InMemoryStandingsStore(races), races, _NullSink(), lambda: now, record_letter
    )
    batch = TelemetryBatchProcessor(logic)
    settle_heap()  # as the handler does at cold start
    return lambda event: process_partial_response(event, batch.collect, batch)


PYTHON_GC_THRESHOLD = (700, 10, 10)


def bare_powertools_loop() -> Callable[[Any], Any]:
    """Powertools' loop as an untuned function runs it: with Python's default collection
    thresholds (the processor's cold start raises the youngest generation's, process-wide)."""
    gc.set_threshold(*PYTHON_GC_THRESHOLD)
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
    return lambda event: process_partial_response(event, lambda record: None, processor)


class _NullSink:
    def send(self, letters: Any) -> None:
        return None


def writes(counts: Counter[str]) -> int:
    """Write requests."""
    return sum(counts[op] for op in WRITE_OPERATIONS)


def run() -> dict[str, Any]:
    per_second = readings(RIDERS, SECONDS)
    events = kinesis_batches(per_second)
    delivered = sum(len(e["Records"]) for e in events)
    truth = expected(per_second)

    ours, ours_result = run_ours(events)
    recipe, recipe_result = run_recipe(events)

    cpu_batches = kinesis_batches(readings(CPU_RIDERS, SECONDS))
    cpu_readings = sum(len(e["Records"]) for e in cpu_batches)
    cpu_events = [json.dumps(e) for e in cpu_batches]
    del cpu_batches
    cpu = cpu_per_reading(cpu_events, {"ours": ours_in_memory, "loop": bare_powertools_loop})
    ours_cpu, loop_cpu = cpu["ours"], cpu["loop"]

    return {
        "standing_sizes": standing_sizes(),
        "stream": {
            "riders": RIDERS,
            "seconds": SECONDS,
            "window_s": WINDOW_S,
            "batches": len(events),
            "readings_delivered": delivered,
            "producer_resends": delivered - RIDERS * SECONDS,
        },
        "writes_per_reading": round(writes(ours) / delivered, 4),
        "baseline_writes_per_reading": round(writes(recipe) / delivered, 4),
        "item_writes_per_reading": round(ours[ITEM_WRITES] / delivered, 4),
        "baseline_item_writes_per_reading": round(recipe[ITEM_WRITES] / delivered, 4),
        "requests_by_operation": dict(sorted((k, v) for k, v in ours.items() if k != ITEM_WRITES)),
        "baseline_requests_by_operation": dict(
            sorted((k, v) for k, v in recipe.items() if k != ITEM_WRITES)
        ),
        "exact": ours_result == truth,
        "baseline_exact": recipe_result == truth,
        "readings_per_cpu_second": round(cpu_readings / ours_cpu),
        "cpu_stream": {"riders": CPU_RIDERS, "seconds": SECONDS, "readings": cpu_readings},
        "bare_powertools_loop_readings_per_cpu_second": round(cpu_readings / loop_cpu),
        "cpu_ratio_to_bare_loop": round(ours_cpu / loop_cpu, 2),
    }
