"""Closer benchmark: closing a 10,000-rider race in one invocation of the race closer.

The deployed entry point (``functions.race_closer.handler.handler``), with the runtime it builds
at a cold start, against moto in this process (DynamoDB, the Powertools idempotency table, IoT
data): the race is due, its riders entered (some disqualified), their standings stored (some
never rode; points drawn so that many tie). Measured: the invocation's wall and CPU seconds, and
every request it sends, by service, operation and table (a botocore ``before-call`` hook), then
the same for the same close delivered again; the requests by operation beside the capacity
model's count for the same riders (:func:`infra.capacity.model.close_requests`: they must be
equal). Checked: the stored overall placings against a ranking computed here from the drawn
standings, every rider announced exactly once, and the close's weighing (the riders' first race:
a result and a personal best for each ranked rider, the top of each class in its records).

Moto answers in-process, so its own CPU is in the figures: they say that one invocation does it
and how many requests it takes; the capacity model turns the requests into Lambda time with its
stated DynamoDB latencies.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import boto3
from moto import mock_aws
from moto.iotdata.models import iotdata_backends

from functions.race_closer import handler
from functions.race_closer.config import CloserSettings
from infra.capacity.model import close_requests
from infra.config import BreakawayConfig
from local.aws.lambda_runtime import ACCOUNT_ID, LambdaContext
from shared import items, keys
from shared.contract import CLASS_IDS
from shared.history import RECORDS_KEPT
from shared.placings import OVERALL, Placing
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import CloseRace, EnteredRider, Entry, NewRace, Race
from shared.standings import Standing
from shared.tables import create_tables

RIDERS = 10_000
RACE = "bench-close"
STANDINGS = "standings"
IDEMPOTENCY = "idempotency"
REGION = "us-east-1"
DNS_FRACTION = 0.02
DSQ_FRACTION = 0.01


class RequestCounter:
    """Counts every request a session's clients send: ``service operation [table]``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        key = f"{service} {model.name}"
        body = params.get("body") or b""
        if service == "dynamodb" and body:
            request = json.loads(body)
            tables = [request["TableName"]] if "TableName" in request else []
            tables += sorted(request.get("RequestItems", {}))
            key += "".join(f" {t}" for t in tables)
        self.counts[key] += 1


def _race(rng: random.Random) -> tuple[Race, list[EnteredRider], dict[str, tuple[int, int]]]:
    """A race due now, its entries, and the (points, seconds) of each rider that rode."""
    duration_s, grace_s = 3600, 30
    starts_at = now_ms() - 1000 * (duration_s + grace_s + 10)
    race = Race.new(
        NewRace(race_id=RACE, name="Benchmark", starts_at=starts_at, duration_s=duration_s),
        created_at=starts_at - 3_600_000,
    )
    entries = [
        EnteredRider(
            Entry(rider_id=f"r{i:05d}", name=f"Rider {i}", class_id=1 + i % 6),
            disqualified=rng.random() < DSQ_FRACTION,
        )
        for i in range(RIDERS)
    ]
    rode = {
        e.rider_id: (rng.randrange(0, 3_000) * 10, rng.randrange(1, duration_s))
        for e in entries
        if rng.random() >= DNS_FRACTION
    }
    return race, entries, rode


def _store(ddb: Any, race: Race, entries: list[EnteredRider], rode: dict[str, Any]) -> None:
    race = replace(race, entrants=len(entries), entries_version=1)
    puts = [items.race_item(race)]
    puts += [items.entry_item(RACE, e, race.created_at) for e in entries]
    by_rider = {e.rider_id: e.entry for e in entries}
    for rider, (points, seconds) in rode.items():
        entry = by_rider[rider]
        standing = Standing(
            race_id=RACE,
            rider_id=rider,
            name=entry.name,
            class_id=entry.class_id,
            points=points,
            seconds=seconds,
            last_second=seconds - 1,
            counted=(1 << seconds) - 1,
            version=seconds,
            updated_at=race.ends_at,
            last_device_ts=race.ends_at,
        )
        puts.append(items.standing_item(standing, expires_at=race.ends_at // 1000 + 86_400))
    for i in range(0, len(puts), 25):
        ddb.batch_write_item(
            RequestItems={STANDINGS: [{"PutRequest": {"Item": p}} for p in puts[i : i + 25]]}
        )


def _expected(entries: list[EnteredRider], rode: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(riderId, rank, outcome) of the overall placings, ranked here by hand."""
    ranked = sorted(
        ((e.rider_id, rode[e.rider_id][0]) for e in entries
         if e.rider_id in rode and not e.disqualified),
        key=lambda rp: (-rp[1], rp[0]),
    )  # fmt: skip
    out: list[tuple[Any, ...]] = []
    for i, (rider, points) in enumerate(ranked):
        rank = out[-1][1] if i and ranked[i - 1][1] == points else i + 1
        out.append((rider, rank, "ranked"))
    dns = sorted(e.rider_id for e in entries if e.rider_id not in rode and not e.disqualified)
    dsq = sorted(e.rider_id for e in entries if e.disqualified)
    return out + [(r, None, "DNS") for r in dns] + [(r, None, "DSQ") for r in dsq]


def _invoke(counter: RequestCounter) -> tuple[dict[str, Any], float, float, Counter[str]]:
    counter.counts.clear()
    event = json.loads(CloseRace(race_id=RACE).model_dump_json(by_alias=True))
    context = LambdaContext(function_name="breakaway-race-closer", region=REGION, timeout_s=900)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    response: dict[str, Any] = handler.handler(event, context)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return response, wall, cpu, Counter(counter.counts)


def _model_requests(entries: list[EnteredRider], rode: dict[str, Any]) -> dict[str, int]:
    """The capacity model's count of this close's requests (entered and ranked per class)."""
    ranked = [e for e in entries if e.rider_id in rode and not e.disqualified]
    return close_requests(
        tuple(sum(1 for e in entries if e.entry.class_id == c) for c in CLASS_IDS),
        tuple(sum(1 for e in ranked if e.entry.class_id == c) for c in CLASS_IDS),
    )


def _by_operation(counts: Counter[str]) -> dict[str, int]:
    """``service operation [table]`` counts summed by operation, as the model counts them."""
    out: Counter[str] = Counter()
    for key, n in counts.items():
        out[key.split()[1]] += n
    return dict(sorted(out.items()))


def _history_items(ddb: Any) -> Counter[str]:
    """The items the close kept beyond the race, by kind: results, personal bests, records
    (the records: how many rows each class holds, summed)."""
    kinds: Counter[str] = Counter()
    for page in ddb.get_paginator("scan").paginate(TableName=STANDINGS):
        for item in page["Items"]:
            sk = item[keys.SK]["S"]
            if sk.startswith(keys.SK_RESULT_PREFIX):
                kinds["results"] += 1
            elif sk.startswith(keys.SK_BEST_PREFIX):
                kinds["personal_bests"] += 1
            elif sk == keys.SK_RECORDS:
                kinds["records_rows"] += len(items.records_from_item(item).rows)
    return kinds


def _weighed_exactly(rows: list[Placing], kept: Counter[str]) -> bool:
    """The riders' first race: each ranked rider has a result and a personal best (flagged in
    the placings), and each class's records hold its top riders."""
    ranked = [p for p in rows if p.outcome == "ranked"]
    by_class = Counter(p.class_id for p in ranked)
    return all(p.personal_best for p in ranked) and kept == {
        "results": len(ranked),
        "personal_bests": len(ranked),
        "records_rows": sum(min(RECORDS_KEPT, n) for n in by_class.values()),
    }


def _announce_requests(counts: Counter[str]) -> int:
    return sum(n for k, n in counts.items() if IDEMPOTENCY in k or k.startswith("iot-data "))


def run() -> dict[str, Any]:
    rng = random.Random(15)
    race, entries, rode = _race(rng)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        counter = RequestCounter()
        session.events.register("before-call", counter)
        ddb = session.client("dynamodb")
        create_tables(ddb, STANDINGS, IDEMPOTENCY)
        _store(ddb, race, entries, rode)
        settings = CloserSettings(
            standings_table=STANDINGS,
            idempotency_table=IDEMPOTENCY,
            notify_target="iot",
            iot_data_endpoint="data-ats.iot.us-east-1.amazonaws.com",
            idempotency_ttl_seconds=BreakawayConfig().idempotency_ttl_seconds,
        )
        handler.install(handler.build_runtime(settings, session))
        try:
            response, wall, cpu, counts = _invoke(counter)
            again, wall2, cpu2, counts2 = _invoke(counter)
        finally:
            handler.install(None)
        rows, total = DynamoRaceStore(ddb, STANDINGS).placings_page(RACE, OVERALL, 0, RIDERS) or (
            [],
            0,
        )
        placings_items = sum(
            page["Count"]
            for page in ddb.get_paginator("scan").paginate(
                TableName=STANDINGS,
                FilterExpression="sk = :sk",
                ExpressionAttributeValues={":sk": {"S": keys.SK_PLACINGS}},
                Select="COUNT",
            )
        )
        published = iotdata_backends[ACCOUNT_ID][REGION].published_payloads
        announced = Counter(json.loads(payload)["riderId"] for _, payload in published)
        kept = _history_items(ddb)
    model = _model_requests(entries, rode)
    exact = (
        [(p.rider_id, p.rank, p.outcome) for p in rows] == _expected(entries, rode)
        and total == RIDERS
        and announced == dict.fromkeys((e.rider_id for e in entries), 1)
        and response["status"] == "closed"
        and again["status"] == "closed before"
        and _weighed_exactly(rows, kept)
    )
    return {
        "riders": RIDERS,
        "riders_dns": sum(1 for e in entries if e.rider_id not in rode and not e.disqualified),
        "riders_dsq": sum(1 for e in entries if e.disqualified),
        "close_10000_riders_s": round(wall, 2),
        "close_10000_riders_cpu_s": round(cpu, 2),
        "requests": sum(counts.values()),
        "requests_by_operation": dict(sorted(counts.items())),
        "model_requests_by_operation": model,
        "requests_match_model": _by_operation(counts) == model,
        "history_items": dict(sorted(kept.items())),
        "standings_read_requests": counts[f"dynamodb BatchGetItem {STANDINGS}"],
        # the placings pages and the riders' results (history), 25 items a request
        "batch_write_requests": counts[f"dynamodb BatchWriteItem {STANDINGS}"],
        "placings_items": placings_items,
        "announce_requests": _announce_requests(counts),
        "announce_requests_per_rider": round(_announce_requests(counts) / RIDERS, 3),
        "iot_publishes": counts["iot-data Publish"],
        "duplicate_close_s": round(wall2, 2),
        "duplicate_close_cpu_s": round(cpu2, 2),
        "duplicate_close_requests": sum(counts2.values()),
        "duplicate_close_requests_by_operation": dict(sorted(counts2.items())),
        "duplicate_close_iot_publishes": counts2["iot-data Publish"],
        "lambda_timeout_s": BreakawayConfig().closer.timeout_seconds,
        "exact": exact,
    }
