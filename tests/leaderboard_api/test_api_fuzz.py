"""Fuzz the leaderboard API with schemathesis, from the openapi.json the API serves itself.

The handler runs behind local/aws/api_gateway.py on 127.0.0.1 (a free port) against moto with a
seeded race. Every operation gets positive cases (valid by the schema: random ids, and the
seeded race so that 200s are fuzzed too) and negative cases (invalid by the schema); every
response must pass schemathesis' checks: no 5xx, status code, content type, headers and body
as documented. At least 500 cases in all.
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
from schemathesis.specs.openapi.checks import positive_data_acceptance

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import LocalApiGateway
from tests.leaderboard_api.helpers import TIES, Db

MIN_CASES = 500
EXCLUDED_CHECKS = [positive_data_acceptance]
"""A cursor is an opaque string in the schema, and only cursors the API issued are accepted:
any other schema-valid string gets the documented 400 (asserted exactly in the handler tests).
Every other check runs: no 5xx, documented status codes, content type, headers, body schema,
and invalid data rejected."""
PLAN: dict[str, list[tuple[GenerationMode, dict[str, str], int]]] = {
    "/races": [(GenerationMode.POSITIVE, {}, 70), (GenerationMode.NEGATIVE, {}, 50)],
    "/races/{raceId}": [
        (GenerationMode.POSITIVE, {}, 50),
        (GenerationMode.POSITIVE, {"raceId": "race-1"}, 20),
        (GenerationMode.NEGATIVE, {}, 40),
    ],
    "/races/{raceId}/leaderboard": [
        (GenerationMode.POSITIVE, {}, 50),
        (GenerationMode.POSITIVE, {"raceId": "race-1"}, 50),
        (GenerationMode.NEGATIVE, {}, 60),
        (GenerationMode.NEGATIVE, {"raceId": "race-1"}, 30),
    ],
    "/races/{raceId}/riders/{riderId}": [
        (GenerationMode.POSITIVE, {}, 40),
        (GenerationMode.POSITIVE, {"raceId": "race-1"}, 30),
        (GenerationMode.POSITIVE, {"raceId": "race-1", "riderId": "rider-02"}, 10),
        (GenerationMode.NEGATIVE, {}, 40),
    ],
}


@pytest.fixture
def gateway(ties: Db) -> Iterator[LocalApiGateway]:
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
    operations = {op.path: op for op in found}
    assert sorted(operations) == sorted(PLAN)
    statuses: dict[int, int] = {}
    total = 0
    started = time.monotonic()

    for path, runs in PLAN.items():
        for mode, fixed, examples in runs:
            strategy = operations[path].as_strategy(mode, path_parameters=fixed or None)

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
    for code in (200, 400, 404, 422):
        assert statuses.get(code, 0) > 0, statuses
    print(f"schemathesis: {total} cases in {elapsed:.1f}s, statuses {sorted(statuses.items())}")
