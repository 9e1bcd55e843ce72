"""The standings store's write contract, shared by the DynamoDB and in-memory adapters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.dynamodb import DynamoStandingsStore
from shared.memory import InMemoryStandingsStore
from shared.ports import WriteStatus
from shared.standings import merge
from tests.unit.test_merge import r


def test_a_standing_must_carry_its_next_version() -> None:
    stale = replace(merge(None, [r(0)], now_ms=1).standing, version=0)

    with pytest.raises(ValueError, match="next version"):
        DynamoStandingsStore(client=None, table_name="t", ttl_seconds=60).save([stale])  # type: ignore[arg-type]


def test_the_fake_store_writes_only_on_the_expected_version() -> None:
    store = InMemoryStandingsStore()
    first = merge(None, [r(0)], now_ms=1).standing
    second = merge(first, [r(1)], now_ms=2).standing

    assert [w.status for w in store.save([first])] == [WriteStatus.OK]
    assert [w.status for w in store.save([first])] == [WriteStatus.CONFLICT]
    assert [w.status for w in store.save([second])] == [WriteStatus.OK]
    conflict = store.save([second])[0]
    assert (conflict.status, conflict.current) == (WriteStatus.CONFLICT, second)
    assert store.race("r1") is not None
    assert store.race("r1").riders == 1  # type: ignore[union-attr]


def test_the_store_names_the_write_modes_it_knows() -> None:
    with pytest.raises(ValueError, match=r"write_mode must be one of \('item', 'transaction'\)"):
        DynamoStandingsStore(client=None, table_name="t", ttl_seconds=60, write_mode="bulk")  # type: ignore[arg-type]
