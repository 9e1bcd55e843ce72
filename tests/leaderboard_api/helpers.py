"""Helpers of the leaderboard API tests: moto tables and schedules, seeded races, standings and
placings, REST proxy events, a fake clock.

Events are the JSON fixtures (API Gateway REST, Lambda proxy integration, stage ``prod``; the
organiser's are IAM-authorised, signed by an IAM user); ``event()`` re-targets a fixture at
another path/query/body the way API Gateway would fill it in.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.leaderboard_api import handler as api
from functions.leaderboard_api.adapters import (
    CloseTarget,
    DynamoLeaderboardReader,
    EventBridgeCloseScheduler,
)
from functions.leaderboard_api.config import ApiSettings
from local.aws.api_gateway import LocalContext, match_resource
from shared import items, keys, names
from shared.contract import CLASS_IDS
from shared.dynamodb import DEFAULT_CLIENT_CONFIG, item_size, read_units
from shared.history_store import DynamoHistoryStore
from shared.live_store import DynamoLiveStore
from shared.placings import Placings
from shared.race_store import DynamoRaceStore
from shared.races import EnteredRider, Entry, Race, StoredState
from shared.routes import RESOURCE_TEMPLATES
from shared.standings import Standing
from shared.tables import create_tables
from tests.support.faults import FaultInjector

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
STANDINGS = "standings"
IDEMPOTENCY = "idempotency"
EXPIRES = 4_102_444_800  # 2100-01-01: moto's TTL never deletes anyway
NOW = 1_795_374_300_000
"""The tests' clock: 2026-11-22T19:05:00Z, five minutes into race-1."""
STARTS = 1_795_374_000_000
"""race-1's start (2026-11-22T19:00:00Z)."""
SCHEDULE_GROUP = "breakaway-test-race-closes"
CLOSER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:breakaway-race-closer"
SCHEDULER_ROLE_ARN = "arn:aws:iam::123456789012:role/breakaway-race-closes"
SCHEDULE_DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:breakaway-race-closes-dead-letters"
ENVIRONMENT = {
    names.ENV_STANDINGS_TABLE: STANDINGS,
    names.ENV_SCHEDULE_GROUP: SCHEDULE_GROUP,
    names.ENV_CLOSER_ARN: CLOSER_ARN,
    names.ENV_SCHEDULER_ROLE_ARN: SCHEDULER_ROLE_ARN,
    names.ENV_SCHEDULE_DLQ_ARN: SCHEDULE_DLQ_ARN,
}
TARGET = CloseTarget(SCHEDULE_GROUP, CLOSER_ARN, SCHEDULER_ROLE_ARN, SCHEDULE_DLQ_ARN)


class Clock:
    """Epoch milliseconds that move only when a test moves them."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


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
    body: Any = None,
) -> dict[str, Any]:
    """A fixture re-targeted: path, resource and path parameters, stage path, query maps, and
    the body (JSON-encoded unless it is a string) when given."""
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
    if body is not None:
        e["body"] = body if isinstance(body, str) else json.dumps(body)
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


def post(path: str, body: Any = None, **kwargs: Any) -> Reply:
    """An organiser's signed POST (the ``rest_create_race.json`` request, re-targeted)."""
    base = event(path, base="rest_create_race.json", **kwargs)
    base["body"] = None if body is None else body if isinstance(body, str) else json.dumps(body)
    return invoke(base)


def standing(
    rider: str,
    points: int,
    class_id: int = 1,
    *,
    race: str = "race-1",
    seconds: int = 10,
    last_second: int = 9,
    name: str | None = None,
    final_second: int = -1,
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
        final_second=final_second,
    )


def entered(s: Standing) -> EnteredRider:
    """The entry a standing's rider was entered with."""
    return EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id))


def class_counts(standings: Sequence[Standing]) -> dict[int, int]:
    """Riders per class, every class (as a race record stores them)."""
    counts = Counter(s.class_id for s in standings)
    return {c: counts.get(c, 0) for c in CLASS_IDS}


def race(
    race_id: str,
    standings: Sequence[Standing] = (),
    *,
    starts_at: int = STARTS,
    duration_s: int = 3_600,
    grace_s: int = 30,
    state: StoredState = "open",
    entrants: int | None = None,
    last_reading_at: int = 1_795_374_299_000,
    finished: int = 0,
    name: str | None = None,
) -> Race:
    """A race record with these standings' counters (running at ``NOW`` unless told)."""
    return Race(
        race_id=race_id,
        name=name or f"Race {race_id}",
        starts_at=starts_at,
        duration_s=duration_s,
        grace_s=grace_s,
        closes_at=starts_at + 1000 * (duration_s + grace_s),
        state=state,
        entrants=len(standings) if entrants is None else entrants,
        entries_version=1 if standings else 0,
        riders=len(standings),
        class_counts=class_counts(standings),
        finished=finished,
        last_reading_at=last_reading_at,
    )


class Db:
    def __init__(self, client: Any, scheduler: Any, clock: Clock) -> None:
        self.client = client
        self.scheduler = scheduler
        self.clock = clock
        self.book = DynamoRaceStore(client, STANDINGS)

    def put_race(self, race_id: str, standings: Sequence[Standing] = (), **fields: Any) -> Race:
        """A race record written as it is (the organiser's and processor's writes bypassed),
        and its riders' entries and standings."""
        record = race(race_id, standings, **fields)
        self.client.put_item(TableName=STANDINGS, Item=items.race_item(record))
        self.put_standings(standings, entered_now=False)
        return record

    def put_standings(self, standings: Sequence[Standing], *, entered_now: bool = True) -> None:
        """These standings, and their riders' entries (a build reads the entered riders; an
        execution environment reads them again when the race's ``entriesVersion`` moves, as
        every entry the organiser adds moves it: ``entered_now``)."""
        puts = [{"PutRequest": {"Item": items.standing_item(s, EXPIRES)}} for s in standings]
        puts += [
            {"PutRequest": {"Item": items.entry_item(s.race_id, entered(s), 1)}} for s in standings
        ]
        for i in range(0, len(puts), 25):
            request = {STANDINGS: puts[i : i + 25]}
            while request:
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
        for race_id in {s.race_id for s in standings} if entered_now else ():
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.update_item(
                    TableName=STANDINGS,
                    Key={k: {"S": v} for k, v in keys.race_key(race_id).items()},
                    UpdateExpression="ADD entriesVersion :one",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )

    def reading(self, race_id: str, at: int) -> None:
        """A reading of the race counted at ``at``: its record's ``lastReadingAt``, as the
        processor moves it."""
        self.client.update_item(
            TableName=STANDINGS,
            Key={k: {"S": v} for k, v in keys.race_key(race_id).items()},
            UpdateExpression="SET lastReadingAt = :at",
            ExpressionAttributeValues={":at": {"N": str(at)}},
        )

    def close(self, race_id: str, placings: Placings) -> None:
        """Close a race as the closer does: its placings stored, then ``closed``."""
        self.book.mark_closing(race_id)
        self.book.store_placings(race_id, placings)
        self.book.mark_closed(race_id, self.clock())

    def schedule(self, race_id: str) -> dict[str, Any]:
        """GetSchedule of a race's close (moto)."""
        found: dict[str, Any] = self.scheduler.get_schedule(
            Name=names.close_schedule_name(race_id), GroupName=SCHEDULE_GROUP
        )
        return found


def runtime_on(client: Any, scheduler: Any, clock: Clock) -> api.Runtime:
    """The handler's runtime on these clients and this clock."""
    return api.Runtime(
        reader=DynamoLeaderboardReader(client, STANDINGS),
        book=DynamoRaceStore(client, STANDINGS),
        scheduler=EventBridgeCloseScheduler(scheduler, TARGET),
        history=DynamoHistoryStore(client, STANDINGS),
        live=DynamoLiveStore(client, STANDINGS),
        clock=clock,
    )


class SentRequests:
    """Every Scheduler request the handler sends, as it sends them: (operation, parameters)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, copy.deepcopy(params)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sent(db: Db) -> SentRequests:
    """The handler's Scheduler client, recorded (requests still reach moto)."""
    recorder = SentRequests()
    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.meta.events.register("provide-client-params.scheduler", recorder)
    api.install(runtime_on(db.client, scheduler, db.clock))
    return recorder


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Db]:
    """moto with the tables and the schedule group; the handler built from the environment as
    a cold start builds it, on the tests' clock."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client, STANDINGS, IDEMPOTENCY)
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
        api.install(replace(api.build_runtime(ApiSettings.from_env()), clock=clock))
        yield Db(client, scheduler, clock)
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
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    injector.attach(client.meta.events)
    injector.attach(scheduler.meta.events)
    api.install(runtime_on(client, scheduler, ties.clock))
    try:
        yield injector
    finally:
        api.install(None)


class ReadUnits:
    """The read units of every DynamoDB call a client makes, by DynamoDB's rules
    (:func:`shared.dynamodb.read_units`) on the sizes of the items it returns: per item for
    ``GetItem`` and ``BatchGetItem`` (a key not found costs the minimum), per result for
    ``Query``; strongly consistent or not as the request asked. Calls per operation too."""

    def __init__(self, client: Any) -> None:
        self.units = 0.0
        self.calls: Counter[str] = Counter()
        self._asked = threading.local()
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb", self._params)
        client.meta.events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        self.units = 0.0
        self.calls.clear()

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._asked.params = params

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        params: dict[str, Any] = getattr(self._asked, "params", {})
        units = 0.0
        if model.name in ("GetItem", "Query"):
            found = [parsed["Item"]] if "Item" in parsed else parsed.get("Items", [])
            size = sum(item_size(i) for i in found)
            units = read_units(size, consistent=bool(params.get("ConsistentRead")))
        elif model.name == "BatchGetItem":
            for table, wanted in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                consistent = bool(wanted.get("ConsistentRead"))
                units += sum(read_units(item_size(i), consistent=consistent) for i in found)
                units += (len(wanted["Keys"]) - len(found)) * read_units(0, consistent=consistent)
        with self._lock:
            self.calls[model.name] += 1
            self.units += units
