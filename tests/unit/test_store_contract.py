"""The standings store's write contract, shared by the DynamoDB and in-memory adapters: writes
on the expected version only, riders and finishes counted once in the race record, which
must exist (moto checks the DynamoDB adapter the same way)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.dynamodb import DynamoStandingsStore
from shared.memory import InMemoryRaceStore, InMemoryStandingsStore
from shared.ports import RaceActivity, StandingsStore, WriteStatus
from shared.race_store import DynamoRaceStore
from shared.races import NewRace, Race
from shared.standings import merge
from shared.tables import create_tables
from tests.unit.test_merge import ANN, final, r

RACE = Race.new(NewRace(race_id="r1", name="R1", starts_at=1_000, duration_s=600), created_at=1)


def test_a_standing_must_carry_its_next_version() -> None:
    stale = replace(merge(None, [r(0)], now_ms=1, entry=ANN).standing, version=0)

    with pytest.raises(ValueError, match="next version"):
        DynamoStandingsStore(client=None, table_name="t", ttl_seconds=60).save([stale])  # type: ignore[arg-type]


def test_the_store_names_the_write_modes_it_knows() -> None:
    with pytest.raises(ValueError, match=r"write_mode must be one of \('item', 'transaction'\)"):
        DynamoStandingsStore(client=None, table_name="t", ttl_seconds=60, write_mode="bulk")  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "item", "transaction"])
def stores(request: pytest.FixtureRequest) -> Iterator[tuple[StandingsStore, Any]]:
    """A standings store and the race book on the same table, ``r1`` created."""
    if request.param == "memory":
        book = InMemoryRaceStore()
        book.create_race(RACE)
        yield InMemoryStandingsStore(book), book
        return
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(ddb, "standings", "idempotency")
        dynamo_book = DynamoRaceStore(ddb, "standings")
        dynamo_book.create_race(RACE)
        yield DynamoStandingsStore(ddb, "standings", 60, write_mode=request.param), dynamo_book


def test_writes_take_only_on_the_expected_version(stores: tuple[StandingsStore, Any]) -> None:
    store, book = stores
    first = merge(None, [r(0)], now_ms=1, entry=ANN).standing
    second = merge(first, [r(1)], now_ms=2, entry=ANN).standing

    assert [w.status for w in store.save([first])] == [WriteStatus.OK]
    assert [w.status for w in store.save([first])] == [WriteStatus.CONFLICT]
    assert [w.status for w in store.save([second])] == [WriteStatus.OK]
    conflict = store.save([second])[0]
    assert (conflict.status, conflict.current) == (WriteStatus.CONFLICT, second)
    race = book.get_race("r1")
    assert (race.riders, race.class_counts[2], race.finished) == (1, 1, 0)


def test_a_finish_is_counted_with_the_write_that_sets_it_once(
    stores: tuple[StandingsStore, Any],
) -> None:
    store, book = stores
    first = merge(None, [r(0)], now_ms=1, entry=ANN).standing
    store.save([first])
    finishing = merge(first, [final(1)], now_ms=2, entry=ANN)
    assert finishing.finishes

    assert [w.status for w in store.save([finishing.standing], [first.key])] == [WriteStatus.OK]
    # The same write again (a replay from a stale copy): a conflict, nothing counted twice.
    assert [w.status for w in store.save([finishing.standing], [first.key])] == [
        WriteStatus.CONFLICT
    ]

    race = book.get_race("r1")
    assert (race.riders, race.finished) == (1, 1)


def test_a_rider_new_and_finished_in_one_write_is_counted_both_ways(
    stores: tuple[StandingsStore, Any],
) -> None:
    store, book = stores
    m = merge(None, [r(0), final(1)], now_ms=1, entry=ANN)

    assert [w.status for w in store.save([m.standing], [m.standing.key])] == [WriteStatus.OK]

    race = book.get_race("r1")
    assert (race.riders, race.class_counts[2], race.finished) == (1, 1, 1)


def test_nothing_is_counted_in_a_race_that_does_not_exist(
    stores: tuple[StandingsStore, Any],
) -> None:
    store, book = stores
    elsewhere = merge(None, [r(0).model_copy(update={"race_id": "r9"})], now_ms=1, entry=ANN)

    [result] = store.save([elsewhere.standing])
    store.record_activity([RaceActivity("r9", 5_000)])

    assert result.status is WriteStatus.TRANSIENT
    assert book.get_race("r9") is None


def test_last_reading_at_only_moves_forward(stores: tuple[StandingsStore, Any]) -> None:
    store, book = stores

    store.record_activity([RaceActivity("r1", 5_000)])
    store.record_activity([RaceActivity("r1", 4_000)])

    race = book.get_race("r1")
    assert (race.last_reading_at, race.starts_at) == (5_000, 1_000)
