"""API benchmark: what a leaderboard read costs in DynamoDB requests and items, and in CPU.

(a) Reads, against moto, for a 1,000-rider race (6 classes): every DynamoDB call the handler
    makes is counted per operation with a botocore hook, with the items it returned (Query,
    GetItem, BatchGetItem) or evaluated (COUNT queries: ``ScannedCount``), and the read
    request units they would cost on DynamoDB (estimated from item sizes: 0.5 per 4 KB per
    request, eventually consistent). Baseline: reading the whole race (what a scan or an
    unsharded "query everything, sort in Lambda" reads). moto's latencies are moto's, not
    DynamoDB's.
(b) The shard merge at 10,000 riders, in memory (the read port faked, sharded like the
    index): rows read per page against the riders in the race.
(c) CPU: the handler path (Powertools resolver, validation, ranking, response model,
    serialisation) for a leaderboard page with the read port in memory, per request, with the
    page computed and served from the one-second page cache; and the same requests over HTTP
    through local/apigw (keep-alive), requests per second.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import threading
import time
from collections import Counter
from typing import Any

import boto3
import requests
from moto import mock_aws

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import LocalApiGateway, LocalContext
from shared import keys
from shared import leaderboard as board
from shared.leaderboard_dynamodb import DynamoLeaderboardReader
from shared.tables import create_tables
from tests.api.helpers import STANDINGS, Db, MemoryReader, event, standing

RIDERS = 1_000
BIG_RIDERS = 10_000


def _field(n: int, race: str) -> list[Any]:
    rng = random.Random(42)
    return [
        standing(f"r{i:05d}", rng.randrange(0, 400_000), rng.randint(1, 6), race=race)
        for i in range(n)
    ]


READ_UNIT_BYTES = 4096
INDEX_ENTRY_BYTES = 250
"""For COUNT queries (no items come back): the typical size of a ranking-index entry."""


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers ~ 1 byte per 2 digits + 1)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        ((kind, v),) = value.items()
        if kind == "S":
            total += len(v.encode())
        elif kind == "N":
            total += (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
        elif kind == "B":
            total += len(v)
        else:
            total += 1
    return total


def read_units(size: int) -> float:
    """Eventually consistent: half a read request unit per 4 KB read, at least half."""
    return 0.5 * max(1, math.ceil(size / READ_UNIT_BYTES))


class Counting:
    """Every DynamoDB call: per operation, items read, and the read units they cost."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items = 0
        self.read_units = 0.0
        self._lock = threading.Lock()  # the reader queries shards from a thread pool

    def after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self._count(model, parsed)

    def _count(self, model: Any, parsed: dict[str, Any]) -> None:
        self.calls[model.name] += 1
        if model.name == "Query":
            found = parsed.get("Items")
            scanned = int(parsed.get("ScannedCount", parsed.get("Count", 0)))
            self.items += scanned
            size = (
                sum(item_bytes(i) for i in found)
                if found is not None
                else scanned * INDEX_ENTRY_BYTES
            )
            self.read_units += read_units(size)
        elif model.name == "GetItem":
            item = parsed.get("Item")
            self.items += 1 if item else 0
            self.read_units += read_units(item_bytes(item) if item else 0)
        elif model.name == "BatchGetItem":
            for found in parsed.get("Responses", {}).values():
                self.items += len(found)
                self.read_units += sum(read_units(item_bytes(i)) for i in found)

    def reset(self) -> None:
        self.calls.clear()
        self.items = 0
        self.read_units = 0.0


def _reads_against_moto() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    out: dict[str, Any] = {"riders": RIDERS, "rank_shards": keys.RANK_SHARDS}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, STANDINGS, "idempotency")
        field = _field(RIDERS, "bench")
        Db(client).put_race("bench", field)
        counter = Counting()
        client.meta.events.register("after-call.dynamodb", counter.after_call)
        reader = DynamoLeaderboardReader(client, STANDINGS)
        original = api.reader
        api.reader = lambda: reader  # type: ignore[assignment]
        try:
            cases = {
                "leaderboard_top10": ("/races/bench/leaderboard", {"limit": "10"}),
                "leaderboard_top100": ("/races/bench/leaderboard", {"limit": "100"}),
                "leaderboard_class3_top10": (
                    "/races/bench/leaderboard",
                    {"limit": "10", "classId": "3"},
                ),
                "rider_first": (f"/races/bench/riders/{_top(field).rider_id}", {}),
                "rider_median": (f"/races/bench/riders/{_median(field).rider_id}", {}),
                "races": ("/races", {}),
            }
            for name, (path, query) in cases.items():
                counter.reset()
                started = time.perf_counter()
                reply = api.handler(event(path, query), LocalContext())
                elapsed = time.perf_counter() - started
                assert reply["statusCode"] == 200, reply
                out[name] = {
                    "dynamodb_calls": dict(counter.calls),
                    "items_read": counter.items,
                    "items_read_vs_whole_race": round(counter.items / RIDERS, 3),
                    "read_units_estimated": counter.read_units,
                    "moto_ms": round(elapsed * 1000, 1),
                }
        finally:
            api.reader = original
    return out


def _top(field: list[Any]) -> Any:
    return min(field, key=board.sort_key)


def _median(field: list[Any]) -> Any:
    return sorted(field, key=board.sort_key)[len(field) // 2]


def _merge_at_scale() -> dict[str, Any]:
    field = _field(BIG_RIDERS, "race-1")
    out: dict[str, Any] = {"riders": BIG_RIDERS}
    for limit in (10, 100):
        reader = MemoryReader(field)
        page = board.leaderboard(reader, "race-1", None, limit)
        assert len(page.entries) == limit
        walked = MemoryReader(field)
        cursor: str | None = None
        pages = 0
        while True:
            p = board.leaderboard(walked, "race-1", None, limit, cursor)
            pages += 1
            cursor = p.next_cursor
            if cursor is None:
                break
        out[f"top{limit}"] = {
            "rows_read": reader.rows_read,
            "queries": reader.queries,
            "rows_read_per_row_shown": round(reader.rows_read / limit, 2),
            "full_walk_rows_read_per_rider": round(walked.rows_read / BIG_RIDERS, 2),
            "full_walk_pages": pages,
        }
    return out


def _median_us(fn: Any, n: int = 300) -> int:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1e6)


def _cpu() -> dict[str, Any]:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    reader = MemoryReader(_field(RIDERS, "race-1"))
    original_reader, original_pages = api.reader, api.PAGES
    api.reader = lambda: reader  # type: ignore[assignment]
    out: dict[str, Any] = {}
    top10 = event("/races/race-1/leaderboard", {"limit": "10"})
    bad = event("/races/race-1/leaderboard", {"limit": "0"})
    try:
        api.PAGES = board.PageCache(0.0)  # every request computes its page
        out["handler_top10_uncached_us_median"] = _median_us(
            lambda: api.handler(top10, LocalContext())
        )
        out["handler_422_us_median"] = _median_us(lambda: api.handler(bad, LocalContext()))
        api.PAGES = board.PageCache(3600.0)
        out["handler_top10_cached_us_median"] = _median_us(
            lambda: api.handler(top10, LocalContext())
        )
        api.PAGES = board.PageCache(0.0)
        with LocalApiGateway(api.handler) as gw, requests.Session() as session:
            url = gw.url + "races/race-1/leaderboard?limit=10"
            for _ in range(20):
                session.get(url)
            n = 500
            started = time.perf_counter()
            for _ in range(n):
                assert session.get(url).status_code == 200
            out["local_gateway_uncached_requests_per_s"] = round(
                n / (time.perf_counter() - started)
            )
    finally:
        api.reader, api.PAGES = original_reader, original_pages
    return out


def run() -> dict[str, Any]:
    load = os.getloadavg()[0]
    return {
        "reads_moto_1000_riders": _reads_against_moto(),
        "merge_in_memory_10000_riders": _merge_at_scale(),
        "cpu": _cpu(),
        "load_average": round(load, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
