"""Fuzz the leaderboard API with schemathesis, from the openapi.json the API serves itself.

The handler runs behind local/aws/api_gateway.py on 127.0.0.1 (a free port) against moto (its
DynamoDB and EventBridge Scheduler) with a running race and a closed one, on the tests' clock.
Every operation, the organiser's too, gets positive cases (valid by the schema: random ids and
bodies, and the seeded races so that 200s are fuzzed too) and negative cases (invalid by the
schema); every response must pass schemathesis' checks: no 5xx, status code, content type,
headers and body as documented. At least 700 cases in all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import LocalApiGateway
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.placings import Tally, compute_placings
from shared.races import EnteredRider, Entry
from tests.leaderboard_api.helpers import STANDINGS, TIES, Db

MIN_CASES = 700
EXCLUDED_CHECKS = [positive_data_acceptance, ignored_auth]
"""A cursor is an opaque string in the schema, and only cursors the API issued are accepted:
any other schema-valid string gets the documented 400 (asserted exactly in the handler tests);
a schema-valid race may be refused by the race's state (409) or the clock (422). The organiser's
signature is checked by API Gateway before the handler (tests/infra), and the local stack
needs none. Every other check runs: no 5xx, documented status codes, content type, headers,
body schema, and invalid data rejected."""
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
PLAN: dict[tuple[str, str], list[tuple[GenerationMode, dict[str, str], int]]] = {
    ("GET", "/races"): [(POSITIVE, {}, 70), (NEGATIVE, {}, 50)],
    ("GET", "/races/{raceId}"): [
        (POSITIVE, {}, 30),
        (POSITIVE, {"raceId": "race-1"}, 10),
        (NEGATIVE, {}, 30),
    ],
    ("GET", "/races/{raceId}/leaderboard"): [
        (POSITIVE, {}, 40),
        (POSITIVE, {"raceId": "race-1"}, 50),
        (NEGATIVE, {}, 50),
        (NEGATIVE, {"raceId": "race-1"}, 30),
    ],
    ("GET", "/races/{raceId}/riders/{riderId}"): [
        (POSITIVE, {}, 30),
        (POSITIVE, {"raceId": "race-1"}, 20),
        (POSITIVE, {"raceId": "race-1", "riderId": "rider-02"}, 10),
        (NEGATIVE, {}, 30),
    ],
    ("GET", "/races/{raceId}/results"): [
        (POSITIVE, {}, 20),
        (POSITIVE, {"raceId": "race-1"}, 10),
        (POSITIVE, {"raceId": "done"}, 40),
        (NEGATIVE, {"raceId": "done"}, 30),
    ],
    ("GET", "/riders/{riderId}/results"): [
        (POSITIVE, {}, 20),
        (POSITIVE, {"riderId": "rider-02"}, 20),
        (NEGATIVE, {}, 20),
    ],
    ("GET", "/classes/{classId}/records"): [
        (POSITIVE, {}, 20),
        (POSITIVE, {"classId": "2"}, 20),
        (NEGATIVE, {}, 20),
    ],
    ("POST", "/races"): [(POSITIVE, {}, 40), (NEGATIVE, {}, 40)],
    ("POST", "/races/{raceId}/entries"): [
        (POSITIVE, {}, 10),
        (POSITIVE, {"raceId": "race-1"}, 30),
        (NEGATIVE, {"raceId": "race-1"}, 30),
    ],
    ("POST", "/races/{raceId}/close"): [
        (POSITIVE, {}, 10),
        (POSITIVE, {"raceId": "race-1"}, 5),
        (NEGATIVE, {}, 10),
    ],
    ("POST", "/races/{raceId}/entries/{riderId}/disqualify"): [
        (POSITIVE, {}, 10),
        (POSITIVE, {"raceId": "race-1"}, 10),
        (POSITIVE, {"raceId": "race-1", "riderId": "rider-02"}, 5),
        (NEGATIVE, {}, 10),
    ],
}


def seed_history(store: DynamoHistoryStore) -> None:
    """rider-02's history, and records of class 2 in races of every length the fuzzing is
    likely to ask for (1 s, the largest and a round one), so that those 200s carry rows."""
    for duration in (1, 1_800, 86_400):
        race = RaceRef(f"past-{duration}", "Past", 1_700_000_000_000 + duration, duration)
        result = RiderResult("rider-02", "Bo", race, 2, 2, 1, 8000, duration, True, True)
        store.put_results([result])
        best = Best("rider-02", "Bo", 2, 8000, duration, race)
        assert store.save_records(ClassRecords(2, duration).merged([best]))


@pytest.fixture
def gateway(ties: Db) -> Iterator[LocalApiGateway]:
    entries = [
        EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id)) for s in TIES
    ]
    ties.put_race("done", state="open")
    ties.close("done", compute_placings(entries, {s.rider_id: Tally(s.points, 5) for s in TIES}))
    ties.book.enter("race-1", [e.entry for e in entries], ties.clock())
    seed_history(DynamoHistoryStore(ties.client, STANDINGS))
    with LocalApiGateway(api.handler) as gw:
        yield gw


def test_schemathesis_finds_no_5xx_and_no_schema_breaking_response(
    gateway: LocalApiGateway,
) -> None:
    assert TIES[1].rider_id == "rider-02"
    schema = schemathesis.openapi.from_url(gateway.url + "openapi.json")
    base_url = gateway.url.rstrip("/")
    session = requests.Session()
    found = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = {(op.method.upper(), op.path): op for op in found}
    assert sorted(operations) == sorted(PLAN)
    statuses: dict[int, int] = {}
    total = 0
    started = time.monotonic()

    for key, runs in PLAN.items():
        for mode, fixed, examples in runs:
            strategy = operations[key].as_strategy(mode, path_parameters=fixed or None)

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                nonlocal total
                total += 1
                response = case.call_and_validate(
                    base_url=base_url, session=session, excluded_checks=EXCLUDED_CHECKS
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            run()

    elapsed = time.monotonic() - started
    assert total >= MIN_CASES, (total, statuses)
    assert all(code < 500 for code in statuses), statuses
    # The fuzzing reached the interesting answers, not only 404s.
    # A random startsAt is rarely within the year ahead a race may start in: the 201s of
    # POST /races are the handler tests'.
    for code in (200, 202, 400, 404, 409, 422):
        assert statuses.get(code, 0) > 0, statuses
    print(f"schemathesis: {total} cases in {elapsed:.1f}s, statuses {sorted(statuses.items())}")
