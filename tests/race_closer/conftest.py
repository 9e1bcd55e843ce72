"""One race for every closer test: its entries and standings, and the placings it must close
with (written out by hand: ties, DNS, DSQ, overall and in each class); and the closer's
handler against moto (DynamoDB, the idempotency table, IoT data), faults at the SDK boundary."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from functions.race_closer import handler
from functions.race_closer.config import CloserSettings
from local.aws.lambda_runtime import LambdaContext
from shared import items, keys
from shared.contract import CLASS_IDS
from shared.placings import OVERALL as OVERALL_SCOPE
from shared.placings import Placing, Tally, class_scope
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import (
    CLOSE_SETTLE_S,
    MAX_ENTRIES_PER_REQUEST,
    EnteredRider,
    Entry,
    NewRace,
    Race,
)
from shared.standings import Standing
from shared.tables import create_tables
from tests.support.faults import FaultInjector

FIXTURES = Path(__file__).parent / "fixtures"
RACE_ID: Final = "race-1"
STARTS_AT: Final = 1_763_800_000_000
DURATION_S: Final = 300
GRACE_S: Final = 30
CLOSES_AT: Final = STARTS_AT + 1000 * (DURATION_S + GRACE_S)
DUE_AT: Final = CLOSES_AT + 5_000
"""``closesAt`` + CLOSE_SETTLE_S."""


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def race(race_id: str = RACE_ID, starts_at: int = STARTS_AT) -> Race:
    request = NewRace(
        race_id=race_id, name="Evening Crit", starts_at=starts_at, duration_s=DURATION_S
    )
    return Race.new(request, created_at=starts_at - 3_600_000)


ENTRIES: Final = (
    Entry(rider_id="ann", name="Ann", class_id=1),
    Entry(rider_id="bob", name="Bob", class_id=2, device_id="bike-7"),
    Entry(rider_id="cat", name="Cat", class_id=1),
    Entry(rider_id="dan", name="Dan", class_id=1),
    Entry(rider_id="eve", name="Eve", class_id=2),
    Entry(rider_id="fay", name="Fay", class_id=3),
    Entry(rider_id="gus", name="Gus", class_id=2),
    Entry(rider_id="hal", name="Hal", class_id=1),
)
DISQUALIFIED: Final = ("hal",)
TALLIES: Final = {
    "ann": Tally(points=900, seconds=300),
    "bob": Tally(points=900, seconds=290),
    "cat": Tally(points=700, seconds=250),
    "dan": Tally(points=700, seconds=260),
    "eve": Tally(points=500, seconds=120),
    "hal": Tally(points=1_000, seconds=300),
    "zed": Tally(points=5_000, seconds=300),
}
"""Standings as counted. fay and gus never rode (DNS); hal is disqualified (DSQ, points kept);
zed has a standing but no entry (not placed)."""


def entered() -> list[EnteredRider]:
    return [EnteredRider(e, e.rider_id in DISQUALIFIED) for e in ENTRIES]


def _p(
    rank: int | None, rider: str, class_id: int, points: int, seconds: int, outcome: str,
    overall: int | None, in_class: int | None, flags: str = "",
) -> Placing:  # fmt: skip
    """A placing; ``flags`` holds ``P`` for a personal best, ``R`` for a class record."""
    return Placing(
        rank,
        rider,
        rider.title(),
        class_id,
        points,
        seconds,
        outcome,  # type: ignore[arg-type]
        overall,
        in_class,
        personal_best="P" in flags,
        record="R" in flags,
    )


PLACINGS: Final = [
    _p(1, "ann", 1, 900, 300, "ranked", 1, 1, "PR"),
    _p(1, "bob", 2, 900, 290, "ranked", 1, 1, "PR"),
    _p(3, "cat", 1, 700, 250, "ranked", 3, 2, "P"),
    _p(3, "dan", 1, 700, 260, "ranked", 3, 2, "P"),
    _p(5, "eve", 2, 500, 120, "ranked", 5, 2, "P"),
    _p(None, "fay", 3, 0, 0, "DNS", None, None),
    _p(None, "gus", 2, 0, 0, "DNS", None, None),
    _p(None, "hal", 1, 1_000, 300, "DSQ", None, None),
]
"""The race closed first (no history yet): every ranked rider sets a personal best, and the
top of each class (ann, bob) the class record; DNS and DSQ riders neither."""
BY_CLASS: Final = {
    1: [
        _p(1, "ann", 1, 900, 300, "ranked", 1, 1, "PR"),
        _p(2, "cat", 1, 700, 250, "ranked", 3, 2, "P"),
        _p(2, "dan", 1, 700, 260, "ranked", 3, 2, "P"),
        _p(None, "hal", 1, 1_000, 300, "DSQ", None, None),
    ],
    2: [
        _p(1, "bob", 2, 900, 290, "ranked", 1, 1, "PR"),
        _p(2, "eve", 2, 500, 120, "ranked", 5, 2, "P"),
        _p(None, "gus", 2, 0, 0, "DNS", None, None),
    ],
    3: [_p(None, "fay", 3, 0, 0, "DNS", None, None)],
    4: [],
    5: [],
    6: [],
}
ANNOUNCED: Final = {
    "ann": {"outcome": "ranked", "rank": 1, "classRank": 1, "points": 900, "seconds": 300,
            "personalBest": True, "record": True},
    "bob": {"outcome": "ranked", "rank": 1, "classRank": 1, "points": 900, "seconds": 290,
            "personalBest": True, "record": True},
    "cat": {"outcome": "ranked", "rank": 3, "classRank": 2, "points": 700, "seconds": 250,
            "personalBest": True, "record": False},
    "dan": {"outcome": "ranked", "rank": 3, "classRank": 2, "points": 700, "seconds": 260,
            "personalBest": True, "record": False},
    "eve": {"outcome": "ranked", "rank": 5, "classRank": 2, "points": 500, "seconds": 120,
            "personalBest": True, "record": False},
    "fay": {"outcome": "DNS", "rank": None, "classRank": None, "points": 0, "seconds": 0,
            "personalBest": False, "record": False},
    "gus": {"outcome": "DNS", "rank": None, "classRank": None, "points": 0, "seconds": 0,
            "personalBest": False, "record": False},
    "hal": {"outcome": "DSQ", "rank": None, "classRank": None, "points": 1000, "seconds": 300,
            "personalBest": False, "record": False},
}  # fmt: skip
"""Each rider's announcement, but for raceId, riderId, name and classId (the entry's)."""


def announced(rider: str, race_id: str = RACE_ID) -> dict[str, Any]:
    """The whole announcement expected for ``rider``."""
    entry = next(e for e in ENTRIES if e.rider_id == rider)
    return {
        "raceId": race_id,
        "riderId": rider,
        "name": entry.name,
        "classId": entry.class_id,
        **ANNOUNCED[rider],
    }


# --- the closer's handler against moto ------------------------------------------------------
STANDINGS: Final = "standings"
IDEMPOTENCY: Final = "idempotency"
IOT_DATA: Final = "data-ats.iot.us-east-1.amazonaws.com"
REGION: Final = "us-east-1"


def settings() -> CloserSettings:
    return CloserSettings(
        standings_table=STANDINGS,
        idempotency_table=IDEMPOTENCY,
        notify_target="iot",
        iot_data_endpoint=IOT_DATA,
    )


def standing(race_id: str, rider_id: str, tally: Tally, class_id: int = 1) -> Standing:
    """A stored standing with this tally (its name and class are not the closer's concern)."""
    return Standing(
        race_id=race_id,
        rider_id=rider_id,
        name=rider_id.title(),
        class_id=class_id,
        points=tally.points,
        seconds=tally.seconds,
        last_second=tally.seconds - 1,
        counted=(1 << tally.seconds) - 1,
        version=tally.seconds,
        updated_at=0,
        last_device_ts=0,
    )


@dataclass
class Aws:
    """Moto with the tables and the closer's runtime installed, faults at the SDK boundary."""

    ddb: Any
    book: DynamoRaceStore
    faults: FaultInjector

    def add_race(
        self,
        race_id: str = RACE_ID,
        entries: Sequence[Entry] = ENTRIES,
        tallies: Mapping[str, Tally] = TALLIES,
        *,
        due_in_ms: int = -1_000,
    ) -> Race:
        """A race due ``due_in_ms`` from now, its riders entered before its start, the
        disqualified ones disqualified, and the standings stored."""
        now = now_ms()
        starts_at = now + due_in_ms - 1000 * (DURATION_S + GRACE_S + CLOSE_SETTLE_S)
        created = race(race_id, starts_at)
        self.book.create_race(created)
        for chunk in range(0, len(entries), MAX_ENTRIES_PER_REQUEST):
            self.book.enter(
                race_id, entries[chunk : chunk + MAX_ENTRIES_PER_REQUEST], starts_at - 1
            )
        for rider in DISQUALIFIED:
            if any(e.rider_id == rider for e in entries):
                self.book.disqualify(race_id, rider)
        puts = [
            items.standing_item(standing(race_id, rider, tally), expires_at=2_000_000_000)
            for rider, tally in tallies.items()
        ]
        for i in range(0, len(puts), 25):
            self.ddb.batch_write_item(
                RequestItems={STANDINGS: [{"PutRequest": {"Item": p}} for p in puts[i : i + 25]]}
            )
        return created

    def close(self, race_id: str = RACE_ID) -> dict[str, Any]:
        """One invocation, as EventBridge Scheduler makes it: the schedule's Input as the event."""
        event = {**fixture("schedule_close_event.json"), "raceId": race_id}
        context = LambdaContext(function_name="breakaway-race-closer", region=REGION)
        response: dict[str, Any] = handler.handler(event, context)
        return response

    def placings(self, race_id: str = RACE_ID) -> dict[str, list[Placing]]:
        """Every stored scope, read back through the race book as the API reads it."""
        out: dict[str, list[Placing]] = {}
        for scope in (OVERALL_SCOPE, *(class_scope(c) for c in CLASS_IDS)):
            page = self.book.placings_page(race_id, scope, 0, 10_000)
            assert page is not None, f"no placings stored for {scope}"
            rows, total = page
            assert len(rows) == total
            out[scope] = rows
        return out

    def placings_items(self, race_id: str = RACE_ID) -> list[dict[str, Any]]:
        """Every stored placings page of the race, by key."""
        got = self.ddb.scan(
            TableName=STANDINGS,
            FilterExpression="begins_with(pk, :p) AND sk = :sk",
            ExpressionAttributeValues={
                ":p": {"S": f"{keys.race_pk(race_id)}#PLACINGS#"},
                ":sk": {"S": keys.SK_PLACINGS},
            },
        )
        return sorted(got["Items"], key=lambda item: str(item["pk"]["S"]))

    @staticmethod
    def announcements() -> list[tuple[str, dict[str, Any]]]:
        backend = iotdata_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [(topic, json.loads(payload)) for topic, payload in backend.published_payloads]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        faults = FaultInjector()
        faults.attach(session.events)
        ddb = session.client("dynamodb")
        create_tables(ddb, STANDINGS, IDEMPOTENCY)
        handler.install(handler.build_runtime(settings(), session))
        try:
            yield Aws(ddb, DynamoRaceStore(ddb, STANDINGS), faults)
        finally:
            handler.install(None)
