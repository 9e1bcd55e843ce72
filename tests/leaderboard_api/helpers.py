"""Helpers of the leaderboard API tests: moto tables, seeded standings, REST proxy events.

Events are the JSON fixtures (API Gateway REST, Lambda proxy integration, stage ``prod``);
``event()`` re-targets a fixture at another path/query the way API Gateway would fill it in.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.leaderboard_api import handler as api
from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from local.aws.api_gateway import LocalContext, match_resource
from shared import items, names
from shared.dynamodb import DEFAULT_CLIENT_CONFIG
from shared.routes import RESOURCE_TEMPLATES
from shared.standings import RaceRecord, Standing
from shared.tables import create_tables
from tests.support.faults import FaultInjector

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
STANDINGS = "standings"
IDEMPOTENCY = "idempotency"
EXPIRES = 4_102_444_800  # 2100-01-01: moto's TTL never deletes anyway


RESOURCES = RESOURCE_TEMPLATES


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def event(
    path: str,
    query: Mapping[str, str | list[str]] | None = None,
    *,
    base: str = "rest_leaderboard.json",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A fixture re-targeted: path, resource and path parameters, stage path, query maps."""
    e = copy.deepcopy(fixture(base))
    multi = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    resource, path_parameters = match_resource(path, RESOURCES)
    e["path"] = path
    e["resource"] = resource
    e["requestContext"]["resourcePath"] = resource
    e["requestContext"]["path"] = f"/{e['requestContext']['stage']}{path}"
    e["pathParameters"] = path_parameters
    e["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} or None
    e["multiValueQueryStringParameters"] = multi or None
    for name, value in (headers or {}).items():
        e["headers"][name] = value
        e["multiValueHeaders"][name] = [value]
    return e


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


def invoke(e: dict[str, Any]) -> Reply:
    raw = api.handler(e, LocalContext())
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    for k, vs in (raw.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = ",".join(vs)
    text = raw.get("body") or ""
    is_json = headers.get("content-type", "").startswith("application/json")
    return Reply(int(raw["statusCode"]), headers, json.loads(text) if is_json else text, raw)


def get(path: str, query: Mapping[str, str | list[str]] | None = None, **kwargs: Any) -> Reply:
    return invoke(event(path, query, **kwargs))


def standing(
    rider: str,
    points: int,
    class_id: int = 1,
    *,
    race: str = "race-1",
    seconds: int = 10,
    last_second: int = 9,
    name: str | None = None,
) -> Standing:
    return Standing(
        race_id=race,
        rider_id=rider,
        name=name or f"Rider {rider}",
        class_id=class_id,
        points=points,
        seconds=seconds,
        last_second=last_second,
        counted=(1 << seconds) - 1,
        version=1,
        updated_at=1_795_374_300_000,
        last_device_ts=1_795_374_299_000,
    )


class Db:
    def __init__(self, client: Any) -> None:
        self.client = client

    def put_race(
        self,
        race_id: str,
        standings: Sequence[Standing],
        *,
        started_at: int = 1_795_374_000_000,
        last_reading_at: int = 1_795_374_299_000,
        finished: int = 0,
    ) -> RaceRecord:
        counts = Counter(s.class_id for s in standings)
        record = RaceRecord(
            race_id=race_id,
            started_at=started_at,
            last_reading_at=last_reading_at,
            riders=len(standings),
            class_counts=dict(counts),
            finished=finished,
        )
        self.client.put_item(TableName=STANDINGS, Item=items.race_item(record, EXPIRES))
        self.put_standings(standings)
        return record

    def put_standings(self, standings: Sequence[Standing]) -> None:
        puts = [{"PutRequest": {"Item": items.standing_item(s, EXPIRES)}} for s in standings]
        for i in range(0, len(puts), 25):
            request = {STANDINGS: puts[i : i + 25]}
            while request:
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    monkeypatch.setenv(names.ENV_STANDINGS_TABLE, STANDINGS)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client, STANDINGS, IDEMPOTENCY)
        api.install(None)  # the first request cold-starts from the environment
        yield Db(client)
    api.install(None)


TIES = [
    standing("rider-01", 9000, 1, name="Ana"),
    standing("rider-02", 8000, 2, name="Bo"),
    standing("rider-03", 8000, 1, name="Cy"),
    standing("rider-04", 7000, 2, name="Di"),
    standing("rider-05", 6000, 2, name="Ed"),
    standing("rider-06", 6000, 3, name="Flo"),
]
"""Overall ranks 1, 2, 2, 4, 5, 5; class 2 ranks 1, 2, 3."""


@pytest.fixture
def ties(db: Db) -> Db:
    db.put_race("race-1", TIES)
    return db


@pytest.fixture
def faults(ties: Db) -> Iterator[FaultInjector]:
    """The handler's reader on a client whose chosen calls fail (before reaching moto)."""
    injector = FaultInjector()
    client = boto3.client("dynamodb", region_name="us-east-1", config=DEFAULT_CLIENT_CONFIG)
    injector.attach(client.meta.events)
    api.install(api.Runtime(DynamoLeaderboardReader(client, STANDINGS)))
    try:
        yield injector
    finally:
        api.install(None)
