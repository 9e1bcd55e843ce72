"""API benchmark: what a leaderboard read costs in DynamoDB requests and items, and in CPU.

(a) Reads, against moto, for a running 1,000-rider race (6 classes) and a closed one with its
    placings (the live ranking's build, leaderboard pages, riders, races listings, results
    pages): every DynamoDB call the handler makes is counted per operation with a botocore
    hook, with the items it returned, and the read request units they would cost on DynamoDB
    (``shared.dynamodb.read_units`` on the items' sizes: per item by key, per result for a
    Query, strongly consistent or not as asked). Baseline: reading the whole race. moto's
    latencies are moto's, not DynamoDB's.
(b) The live ranking at 1,000 and 10,000 riders, from the items its codecs produce: the read
    units of a rider lookup for every rider (the worst is
    ``rider_lookup_read_units_10000_riders``), of the worst page of 100, and the read and write
    units of one build (what the capacity model charges once a second per watched race).
(c) CPU: the handler path (Powertools resolver, validation, ranking, response model,
    serialisation) for a leaderboard page with the read port in memory, per request, with the
    page computed and served from the one-second page cache; and the same requests over HTTP
    through local/aws/api_gateway (keep-alive), requests per second.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import replace
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
    InMemoryLiveStore,
    race_of,
)
from local.aws.api_gateway import LocalApiGateway, LocalContext, build_event
from shared import items
from shared.dynamodb import item_size, read_units, write_units
from shared.history_store import DynamoHistoryStore
from shared.live_store import DynamoLiveStore
from shared.memory import InMemoryHistoryStore, InMemoryRaceStore
from shared.placings import Tally, compute_placings
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import EnteredRider, Entry
from shared.ranking import chunk_of, index_page, rank_live
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


def _entry(s: Standing) -> EnteredRider:
    return EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id))


def _put_race(client: Any, race_id: str, standings: list[Standing]) -> None:
    """The race record (running now), its riders' entries and standings, written straight into
    the table."""
    record = race_of(race_id, standings, starts_at=now_ms() - 60_000)
    client.put_item(TableName=STANDINGS, Item=items.race_item(record))
    puts = [{"PutRequest": {"Item": items.standing_item(s, EXPIRES)}} for s in standings]
    puts += [{"PutRequest": {"Item": items.entry_item(race_id, _entry(s), 1)}} for s in standings]
    for i in range(0, len(puts), 25):
        request = {STANDINGS: puts[i : i + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")


def _put_closed_race(client: Any, race_id: str, standings: list[Standing]) -> None:
    """A race closed as the closer closes it: its placings stored, then ``closed``."""
    book = DynamoRaceStore(client, STANDINGS)
    client.put_item(TableName=STANDINGS, Item=items.race_item(race_of(race_id, standings)))
    entries = [_entry(s) for s in standings]
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


class Counting:
    """Every DynamoDB call: per operation, items read, and the read units they cost
    (``shared.dynamodb.read_units``: per item by key, a key not found at the minimum; per
    result for a Query; consistent as the request asked). Sized as the items come back: a
    projection's items are smaller than what DynamoDB charges for (the whole items), which
    ``_live_at`` counts for a build's entries."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items = 0
        self.read_units = 0.0
        self._lock = threading.Lock()  # builds read standings from a thread pool
        self._asked = threading.local()

    def params(self, params: dict[str, Any], **_: Any) -> None:
        self._asked.params = params

    def after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        params: dict[str, Any] = getattr(self._asked, "params", {})
        with self._lock:
            self._count(model.name, params, parsed)

    def _count(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation in ("GetItem", "Query"):
            found = [parsed["Item"]] if "Item" in parsed else parsed.get("Items", [])
            self.items += len(found)
            size = sum(item_size(i) for i in found)
            self.read_units += read_units(size, consistent=bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, wanted in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                consistent = bool(wanted.get("ConsistentRead"))
                self.items += len(found)
                self.read_units += sum(
                    read_units(item_size(i), consistent=consistent) for i in found
                )
                missing = len(wanted["Keys"]) - len(found)
                self.read_units += missing * read_units(0, consistent=consistent)

    def reset(self) -> None:
        self.calls.clear()
        self.items = 0
        self.read_units = 0.0


def _measure(counter: Counting, path: str, query: dict[str, str]) -> dict[str, Any]:
    counter.reset()
    started = time.perf_counter()
    reply = api.handler(event(path, query), LocalContext())
    elapsed = time.perf_counter() - started
    assert reply["statusCode"] == 200, reply
    return {
        "dynamodb_calls": dict(counter.calls),
        "items_read": counter.items,
        "items_read_vs_whole_race": round(counter.items / RIDERS, 3),
        "read_units_estimated": counter.read_units,
        "moto_ms": round(elapsed * 1000, 1),
    }


def _reads_against_moto() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    out: dict[str, Any] = {"riders": RIDERS}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, STANDINGS, "idempotency")
        field = _field(RIDERS, "bench")
        _put_race(client, "bench", field)
        _put_closed_race(client, "closed", _field(RIDERS, "closed"))
        counter = Counting()
        client.meta.events.register("provide-client-params.dynamodb", counter.params)
        client.meta.events.register("after-call.dynamodb", counter.after_call)
        api.install(
            api.Runtime(
                reader=DynamoLeaderboardReader(client, STANDINGS),
                book=DynamoRaceStore(client, STANDINGS),
                scheduler=InMemoryCloseScheduler(),
                history=DynamoHistoryStore(client, STANDINGS),
                live=DynamoLiveStore(client, STANDINGS),
            )
        )
        try:
            # The first request builds the live ranking (the race has readings, no build):
            # what one request a second pays for every race watched.
            out["live_build"] = _measure(counter, "/races/bench/riders/r00000", {})
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
                out[name] = _measure(counter, path, query)
        finally:
            api.install(None)
    return out


def _order(s: Standing) -> tuple[int, str]:
    return (-s.points, s.rider_id)


def _top(field: list[Standing]) -> Standing:
    return min(field, key=_order)


def _median(field: list[Standing]) -> Standing:
    return sorted(field, key=_order)[len(field) // 2]


def _live_at(riders: int) -> dict[str, Any]:
    """The live ranking of a race of ``riders`` (6 classes, a standing of a rider an hour into
    the race), in read and write units from the sizes of the items the codecs produce."""
    field = [
        replace(s, counted=(1 << 3600) - 1, seconds=3600, last_second=3599)
        for s in _field(riders, "bench")
    ]
    built_at = now_ms()
    ranking = rank_live("bench", field, built_at)
    race_item = items.race_item(race_of("bench", field))
    head_item = items.live_head_item(ranking)
    chunk_items = [
        items.live_chunk_item("bench", built_at, n, c) for n, c in enumerate(ranking.chunks())
    ]
    index_items = [
        items.live_index_item("bench", built_at, n, p) for n, p in enumerate(ranking.rider_index())
    ]
    race_and_head = read_units(item_size(race_item) + item_size(head_item), consistent=False)
    chunk_units = [read_units(item_size(i), consistent=True) for i in chunk_items]
    index_units = [read_units(item_size(i), consistent=True) for i in index_items]
    lookups = [
        race_and_head
        + index_units[index_page(row.rider_id, ranking.index_pages)]
        + chunk_units[chunk_of(position)]
        for position, row in enumerate(ranking.rows)
    ]
    pages = [race_and_head + sum(chunk_units[n : n + 2]) for n in range(len(chunk_units))]
    standing_reads = sum(
        read_units(item_size(items.standing_item(s, EXPIRES)), consistent=False) for s in field
    )
    entries = sum(item_size(items.entry_item("bench", _entry(s), 1)) for s in field)
    head_units = write_units(item_size(head_item))
    return {
        "rider_lookup_read_units_worst": max(lookups),
        "rider_lookup_read_units_mean": round(statistics.mean(lookups), 2),
        "page_of_100_read_units_worst": max(pages),
        "chunk_bytes_max": max(item_size(i) for i in chunk_items),
        "index_page_bytes_max": max(item_size(i) for i in index_items),
        "head_bytes": item_size(head_item),
        # A build: the race and head (one Query), the lease and the head (two updates), the
        # standings (BatchGetItem, eventually consistent, by whole item size: a projection
        # does not lower what a read costs), the chunks and index pages (BatchWriteItem).
        "build_read_units": race_and_head + standing_reads,
        "build_read_units_entries_when_changed": read_units(entries, consistent=True),
        "build_write_units": sum(write_units(item_size(i)) for i in chunk_items + index_items)
        + 2 * head_units,
        "standing_write_units": write_units(item_size(items.standing_item(field[0], EXPIRES))),
    }


def _live_ranking() -> dict[str, Any]:
    small, big = _live_at(RIDERS), _live_at(BIG_RIDERS)
    return {
        "rider_lookup_read_units_10000_riders": big["rider_lookup_read_units_worst"],
        "live_build_read_units_1000_riders": small["build_read_units"],
        "live_build_write_units_1000_riders": small["build_write_units"],
        "live_build_read_units_10000_riders": big["build_read_units"],
        "live_build_write_units_10000_riders": big["build_write_units"],
        "standing_write_units": big["standing_write_units"],
        "live_1000_riders": small,
        "live_10000_riders": big,
    }


def _median_us(fn: Any, n: int = 300) -> int:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1e6)


def runtime(live: InMemoryLiveStore) -> api.Runtime:
    """The handler on the in-memory ports, the build's chunks kept as in AWS."""
    return api.Runtime(
        reader=InMemoryLeaderboardReader(),
        book=InMemoryRaceStore(),
        scheduler=InMemoryCloseScheduler(),
        history=InMemoryHistoryStore(),
        live=board.BuildCache(live),
    )


def _cpu() -> dict[str, Any]:
    """The handler's CPU per page, every request computing its page from a stored build (its
    head read, its chunk kept: the build itself is a second's work once per race, not per
    request)."""
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    live = InMemoryLiveStore.of(_field(RIDERS, "race-1"))
    out: dict[str, Any] = {}
    top10 = event("/races/race-1/leaderboard", {"limit": "10"})
    bad = event("/races/race-1/leaderboard", {"limit": "0"})
    try:
        api.install(runtime(live))
        out["handler_top10_uncached_us_median"] = _median_us(
            lambda: api.handler(top10, LocalContext())
        )
        out["handler_422_us_median"] = _median_us(lambda: api.handler(bad, LocalContext()))
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
        **_live_ranking(),
        "cpu": _cpu(),
        "load_average": round(load, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
