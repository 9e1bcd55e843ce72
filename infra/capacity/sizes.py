"""Sizes from the project's own code: a reading, a standing item, a ranking-index entry.

The reading is :class:`shared.contract.Telemetry` as the simulator shapes it, the standing is
:func:`shared.items.standing_item`, the index projection is :mod:`shared.keys`, and DynamoDB's
size rules turn each item into bytes and request units. Nothing here is assumed.
"""

from __future__ import annotations

import math
from typing import Any, Final

from infra.capacity.facts import DDB_INDEX_ITEM_OVERHEAD, DDB_WRITE_UNIT_BYTES
from shared import keys
from shared.contract import CONTRACT_VERSION, EVENT_UPDATE, Telemetry
from shared.items import standing_item
from shared.scoring import points
from shared.standings import Standing

SAMPLE_RACE_ID: Final = "race-2026-11-22-1900"
SAMPLE_RIDER_ID: Final = "rider-04217"
SAMPLE_START_MS: Final = 1_795_374_000_000


def sample_reading() -> Telemetry:
    """A realistic reading: the simulator's id shapes (uuid5 event id, ``rider-NNNNN``)."""
    return Telemetry(
        v=CONTRACT_VERSION,
        event_id="9b1e2f4c-7d3a-5e6b-8c9d-0a1b2c3d4e5f",
        race_id=SAMPLE_RACE_ID,
        rider_id=SAMPLE_RIDER_ID,
        name="Priya K.",
        class_id=3,
        second=1_799,
        cadence=96,
        resistance=44,
        device_timestamp=SAMPLE_START_MS + 1_799_000,
        event=EVENT_UPDATE,
    )


def attribute_value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's size of one low-level attribute value (numbers: ~1 byte per 2 digits + 1)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    return 1


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: UTF-8 attribute names plus value sizes."""
    return sum(len(name.encode()) + attribute_value_bytes(v) for name, v in item.items())


def sample_standing(second: int) -> Standing:
    """A rider's standing after counting every second up to ``second`` (the largest bitmap)."""
    r = sample_reading()
    return Standing(
        race_id=r.race_id,
        rider_id=r.rider_id,
        name=r.name,
        class_id=r.class_id,
        points=(second + 1) * points(r.cadence, r.resistance),
        seconds=second + 1,
        last_second=second,
        counted=(1 << (second + 1)) - 1,
        version=second + 1,
        updated_at=r.device_timestamp,
        last_device_ts=r.device_timestamp,
    )


def standing_bytes(second: int) -> int:
    return item_bytes(standing_item(sample_standing(second), expires_at=SAMPLE_START_MS // 1000))


def mean_standing_write_units(race_seconds: int) -> float:
    """Mean WRUs of a standing write over a race: the bitmap grows a byte every 8 seconds, and a
    put costs one unit per started KB of the larger of the old and new item."""
    base = standing_bytes(race_seconds - 1) - ((race_seconds - 1) // 8 + 1)
    total = sum(math.ceil((base + s // 8 + 1) / DDB_WRITE_UNIT_BYTES) for s in range(race_seconds))
    return total / race_seconds


def index_entry_bytes(second: int) -> int:
    """A ranking-index entry: its keys, the table's keys, the projection, plus 100 bytes."""
    item = standing_item(sample_standing(second), expires_at=0)
    wanted = {keys.PK, keys.SK, keys.INDEX_OVERALL_PK, keys.INDEX_RANK_SK}
    wanted.update(keys.RANK_INDEX_PROJECTION)
    return item_bytes({k: v for k, v in item.items() if k in wanted}) + DDB_INDEX_ITEM_OVERHEAD
