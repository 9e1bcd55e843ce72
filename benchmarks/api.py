"""API benchmark: what a leaderboard read costs in DynamoDB requests and items, and in CPU.

(a) Reads, against moto, for a running 1,000-rider race (6 classes) and a closed one with its
    placings (leaderboard pages, riders, races listings, results pages): every DynamoDB call
    the handler makes is counted per operation with a botocore hook, with the items it
    returned (Query, GetItem, BatchGetItem) or evaluated (COUNT queries: ``ScannedCount``), and
    the read request units they would cost on DynamoDB (estimated from item sizes: 0.5 per 4 KB
    per request, eventually consistent). Baseline: reading the whole race (what a scan or an
    unsharded "query everything, sort in Lambda" reads). moto's latencies are moto's, not
    DynamoDB's.
(b) The shard merge at 10,000 riders, in memory (the read port faked, sharded like the
    index): rows read per page against the riders in the race.
(c) CPU: the handler path (Powertools resolver, validation, ranking, response model,
    serialisation) for a leaderboard page with the read port in memory, per request, with the
    page computed and served from the one-second page cache; and the same requests over HTTP
    through local/aws/api_gateway (keep-alive), requests per second.
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
from urllib.parse import urlencode

import boto3
import requests
from moto import mock_aws

from functions.leaderboard_api import handler as api
from functions.leaderboard_api import logic as board
from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from functions.leaderboard_api.memory import (
    InMemoryCloseScheduler,
    InMemoryLeaderboardReader,
    race_of,
)
from local.aws.api_gateway import LocalApiGateway, LocalContext, build_event
from shared import items, keys
from shared.history_store import DynamoHistoryStore
from shared.memory import InMemoryHistoryStore, InMemoryRaceStore
from shared.placings import Tally, compute_placings
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import EnteredRider, Entry
from shared.routes import RESOURCE_TEMPLATES
from shared.standings import Standing
from shared.tables import create_tables

RIDERS = 1_000
BIG_RIDERS = 10_000
STANDINGS = "standings"
EXPIRES = 4_102_444_800  # 2100-01-01: moto's TTL never deletes anyway


def _standing(rider: str, points: int, class_id: int, race: str) -> Standing:
    return Standing(
        race_id=race,
        rider_id=rider,
        name=f"Rider {rider}",
        class_id=class_id,
        points=points,
        seconds=10,
        last_second=9,
        counted=(1 << 10) - 1,
        version=1,
        updated_at=1_795_374_300_000,
        last_device_ts=1_795_374_299_000,
    )


def _field(n: int, race: str) -> list[Standing]:
    rng = random.Random(42)
    return [
        _standing(f"r{i:05d}", rng.randrange(0, 400_000), rng.randint(1, 6), race) for i in range(n)
    ]


def _put_race(client: Any, race_id: str, standings: list[Standing]) -> None:
    """The race record (running now) and its riders' standings, written straight into the
    table."""
    record = race_of(race_id, standings, starts_at=now_ms() - 60_000)
    client.put_item(TableName=STANDINGS, Item=items.race_item(record))
    puts = [{"PutRequest": {"Item": items.standing_item(s, EXPIRES)}} for s in standings]
    for i in range(0, len(puts), 25):
        request = {STANDINGS: puts[i : i + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")


def _put_closed_race(client: Any, race_id: str, standings: list[Standing]) -> None:
    """A race closed as the closer closes it: its placings stored, then ``closed``."""
    book = DynamoRaceStore(client, STANDINGS)
    client.put_item(TableName=STANDINGS, Item=items.race_item(race_of(race_id, standings)))
    entries = [
        EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id))
        for s in standings
    ]
    tallies = {s.rider_id: Tally(s.points, s.seconds) for s in standings}
    book.mark_closing(race_id)
    book.store_placings(race_id, compute_placings(entries, tallies))
    book.mark_closed(race_id, now_ms())


GATEWAY_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate, br",
    "CloudFront-Forwarded-Proto": "https",
    "CloudFront-Viewer-Country": "IE",
    "Host": "api.example.com",
    "Origin": "https://leaderboard.example.com",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
    "Via": "2.0 f0e1d2c3b4a5968778695a4b3c2d1e0f.cloudfront.net (CloudFront)",
    "X-Amzn-Trace-Id": "Root=1-6921c6a0-0123456789abcdef01234567",
    "X-Forwarded-For": "203.0.113.7, 130.176.98.140",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Proto": "https",
}
"""What a browser's request carries through CloudFront to API Gateway, as the handler sees it."""


def event(path: str, query: dict[str, str]) -> dict[str, Any]:
    """The REST proxy event API Gateway sends for ``GET path?query`` (stage ``prod``)."""
    target = f"{path}?{urlencode(query)}" if query else path
    return build_event(
        "GET",
        target,
        list(GATEWAY_HEADERS.items()),
        b"",
        source_ip="203.0.113.7",
        stage="prod",
        host="api.example.com",
        resources=RESOURCE_TEMPLATES,
    )


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
        _put_race(client, "bench", field)
        _put_closed_race(client, "closed", _field(RIDERS, "closed"))
        counter = Counting()
        client.meta.events.register("after-call.dynamodb", counter.after_call)
        api.install(
            api.Runtime(
                reader=DynamoLeaderboardReader(client, STANDINGS),
                book=DynamoRaceStore(client, STANDINGS),
                scheduler=InMemoryCloseScheduler(),
                history=DynamoHistoryStore(client, STANDINGS),
            )
        )
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
                "races_running": ("/races", {"status": "running"}),
                "results_top100": ("/races/closed/results", {"limit": "100"}),
                "results_class3_top10": ("/races/closed/results", {"limit": "10", "classId": "3"}),
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
            api.install(None)
    return out


def _top(field: list[Any]) -> Any:
    return min(field, key=board.sort_key)


def _median(field: list[Any]) -> Any:
    return sorted(field, key=board.sort_key)[len(field) // 2]


def _merge_at_scale() -> dict[str, Any]:
    field = _field(BIG_RIDERS, "race-1")
    out: dict[str, Any] = {"riders": BIG_RIDERS}
    for limit in (10, 100):
        reader = InMemoryLeaderboardReader(field)
        page = board.leaderboard(reader, "race-1", None, limit)
        assert len(page.entries) == limit
        walked = InMemoryLeaderboardReader(field)
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


def runtime(reader: InMemoryLeaderboardReader, page_ttl_s: float) -> api.Runtime:
    """The handler on the in-memory read port, pages cached for ``page_ttl_s``."""
    return api.Runtime(
        reader=reader,
        book=InMemoryRaceStore(),
        scheduler=InMemoryCloseScheduler(),
        history=InMemoryHistoryStore(),
        pages=board.PageCache(page_ttl_s),
    )


def _cpu() -> dict[str, Any]:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    reader = InMemoryLeaderboardReader(_field(RIDERS, "race-1"))
    out: dict[str, Any] = {}
    top10 = event("/races/race-1/leaderboard", {"limit": "10"})
    bad = event("/races/race-1/leaderboard", {"limit": "0"})
    try:
        api.install(runtime(reader, 0.0))  # every request computes its page
        out["handler_top10_uncached_us_median"] = _median_us(
            lambda: api.handler(top10, LocalContext())
        )
        out["handler_422_us_median"] = _median_us(lambda: api.handler(bad, LocalContext()))
        api.install(runtime(reader, 3600.0))
        out["handler_top10_cached_us_median"] = _median_us(
            lambda: api.handler(top10, LocalContext())
        )
        api.install(runtime(reader, 0.0))
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
        api.install(None)
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
