"""Sizes from the project's own code: a reading, a standing item, a ranking-index entry, and
what closing a race reads and writes (an entry, a page of placings, an announcement, a
personal best, a result in a rider's history, a class's records).

The reading is :class:`shared.contract.Telemetry` as the simulator shapes it, the standing is
:func:`shared.items.standing_item`, the index projection is :mod:`shared.keys`, entries and
placings pages are :func:`shared.items.entry_item` and :func:`shared.items.placings_item`, the
history's items :func:`shared.items.best_item`, :func:`shared.items.result_item` and
:func:`shared.items.records_item`, an announcement is the closer's own payload, and DynamoDB's
size rules turn each item into bytes and request units. Nothing here is assumed but the
idempotency record's bookkeeping attributes, which are Powertools' defaults.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Final

from functions.race_closer.adapters import announcement
from functions.race_closer.config import ANNOUNCE_KEY_PREFIX
from infra.capacity.facts import DDB_INDEX_ITEM_OVERHEAD, DDB_WRITE_UNIT_BYTES
from infra.config import IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE
from shared import keys
from shared.contract import CONTRACT_VERSION, EVENT_UPDATE, Telemetry
from shared.history import RECORDS_KEPT, Best, ClassRecords, RaceRef, RiderResult
from shared.items import (
    best_item,
    entry_item,
    placings_item,
    race_item,
    records_item,
    result_item,
    standing_item,
)
from shared.placings import OVERALL, Placing
from shared.races import EnteredRider, Entry, NewRace, Race
from shared.scoring import points
from shared.standings import Standing

SAMPLE_RACE_ID: Final = "race-2026-11-22-1900"
SAMPLE_RIDER_ID: Final = "rider-04217"
SAMPLE_START_MS: Final = 1_795_374_000_000
SAMPLE_NAME: Final = "Priya K."
SAMPLE_CLASS: Final = 3
SAMPLE_DEVICE_ID: Final = "bike-04217"
IDEMPOTENCY_HASH_CHARS: Final = 32
"""Powertools keys a record ``{prefix}#{md5 hex of the key's JSON}``."""
IDEMPOTENCY_BOOKKEEPING: Final = {"status": "COMPLETED", "in_progress_expiration": 10**12}
"""Powertools' other attributes of a completed record (its defaults), beside the key, the
expiry and the stored answer (``data``)."""


def sample_reading() -> Telemetry:
    """A realistic reading as the stream carries it: the simulator's id shapes (uuid5 event id,
    ``rider-NNNNN``) and the device id the IoT rule writes from the topic."""
    return Telemetry(
        v=CONTRACT_VERSION,
        event_id="9b1e2f4c-7d3a-5e6b-8c9d-0a1b2c3d4e5f",
        race_id=SAMPLE_RACE_ID,
        rider_id=SAMPLE_RIDER_ID,
        second=1_799,
        cadence=96,
        resistance=44,
        device_timestamp=SAMPLE_START_MS + 1_799_000,
        event=EVENT_UPDATE,
        device_id=SAMPLE_DEVICE_ID,
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
        name=SAMPLE_NAME,
        class_id=SAMPLE_CLASS,
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


# --- closing a race --------------------------------------------------------------------------
def sample_entry() -> EnteredRider:
    return EnteredRider(
        Entry(
            rider_id=SAMPLE_RIDER_ID,
            name=SAMPLE_NAME,
            class_id=SAMPLE_CLASS,
            device_id=SAMPLE_DEVICE_ID,
        )
    )


def race_bytes() -> int:
    """A race record with every counter at a 10,000-rider race's width."""
    request = NewRace(
        race_id=SAMPLE_RACE_ID, name="Evening Crit", starts_at=SAMPLE_START_MS, duration_s=3_600
    )
    race = Race.new(request, created_at=SAMPLE_START_MS)
    counts = {c: 1_667 for c in range(1, 7)}
    stamp = SAMPLE_START_MS + 3_630_000
    race = replace(
        race,
        entrants=10_000,
        entries_version=101,
        closed_at=stamp,
        riders=10_000,
        class_counts=counts,
        finished=9_600,
        last_reading_at=stamp,
    )
    return item_bytes(race_item(race))


def entry_bytes() -> int:
    return item_bytes(entry_item(SAMPLE_RACE_ID, sample_entry(), SAMPLE_START_MS))


def sample_placing(rank: int) -> Placing:
    """A ranked rider's placing with six-digit points, as a 10,000-rider race has them."""
    return Placing(
        rank=rank,
        rider_id=f"rider-{rank:05d}",
        name=SAMPLE_NAME,
        class_id=SAMPLE_CLASS,
        points=123_456,
        seconds=3_599,
        outcome="ranked",
        rank_overall=rank,
        rank_class=rank,
    )


def placings_page_bytes(rows: int = keys.PLACINGS_PER_ITEM) -> int:
    """A stored page of placings (ranks of five digits)."""
    page = [sample_placing(10_000 - i) for i in range(rows)]
    return item_bytes(placings_item(SAMPLE_RACE_ID, OVERALL, 99, 10_000, page))


def announcement_bytes() -> int:
    payload = announcement(SAMPLE_RACE_ID, sample_placing(9_999))
    return len(json.dumps(payload, separators=(",", ":")).encode())


def idempotency_record_bytes() -> int:
    """A completed announcement's record: key, expiry, bookkeeping and the stored answer."""
    payload = announcement(SAMPLE_RACE_ID, sample_placing(9_999))
    record = {
        IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{ANNOUNCE_KEY_PREFIX}#" + "0" * IDEMPOTENCY_HASH_CHARS},
        IDEMPOTENCY_TTL_ATTRIBUTE: {"N": str(SAMPLE_START_MS // 1000)},
        "status": {"S": str(IDEMPOTENCY_BOOKKEEPING["status"])},
        "in_progress_expiration": {"N": str(IDEMPOTENCY_BOOKKEEPING["in_progress_expiration"])},
        "data": {"S": json.dumps(payload)},
    }
    return item_bytes(record)


def sample_race_ref() -> RaceRef:
    return RaceRef(SAMPLE_RACE_ID, "Evening Crit", SAMPLE_START_MS, 3_600)


def sample_best(rider_id: str = SAMPLE_RIDER_ID) -> Best:
    """A personal best with six-digit points, as a 10,000-rider hour has them."""
    return Best(rider_id, SAMPLE_NAME, SAMPLE_CLASS, 123_456, 3_599, sample_race_ref())


def best_bytes() -> int:
    """A rider's personal best item (one per rider, class and race length)."""
    return item_bytes(best_item(sample_best()))


def result_bytes() -> int:
    """A race in a rider's history (ranks of five and four digits)."""
    result = RiderResult(
        SAMPLE_RIDER_ID, SAMPLE_NAME, sample_race_ref(), SAMPLE_CLASS, 9_999, 1_667, 123_456,
        3_599, personal_best=False, record=False,
    )  # fmt: skip
    return item_bytes(result_item(result))


def records_bytes() -> int:
    """A class's records item, full: ``RECORDS_KEPT`` rows of five-digit rider numbers."""
    rows = tuple(sample_best(f"rider-{i:05d}") for i in range(RECORDS_KEPT))
    return item_bytes(records_item(ClassRecords(SAMPLE_CLASS, 3_600, rows, version=10_000)))
