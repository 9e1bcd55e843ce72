"""Sizes from the project's own code: a reading, a standing item, the live ranking's items, the
API's answers, and what closing a race reads and writes (an entry, a page of placings, an
announcement, a personal best, a result in a rider's history, a class's records).

The reading is :class:`shared.contract.Telemetry` as the simulator shapes it, the standing is
:func:`shared.items.standing_item`, the live ranking's head, chunks and rider-index pages are
the codecs of :mod:`shared.items` over :func:`shared.ranking.rank_live`, the answers are the
API's response models (:mod:`functions.leaderboard_api.models`), entries and placings pages are
:func:`shared.items.entry_item` and :func:`shared.items.placings_item`, the history's items
:func:`shared.items.best_item`, :func:`shared.items.result_item` and
:func:`shared.items.records_item`, an announcement is the closer's own payload, and DynamoDB's
size rules turn each item into bytes and request units. Nothing here is assumed but the
idempotency record's bookkeeping attributes (Powertools' defaults) and the cursor's length.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Any, Final

from functions.leaderboard_api import models
from functions.race_closer.adapters import announcement
from functions.race_closer.config import ANNOUNCE_KEY_PREFIX
from infra.capacity.facts import (
    CLOUDFRONT_COMPRESS_MIN_BYTES,
    DDB_WRITE_UNIT_BYTES,
    SAMPLE_RACES_LISTED,
)
from infra.config import IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE
from shared import keys
from shared.contract import CLASS_IDS, CONTRACT_VERSION, EVENT_UPDATE, Telemetry
from shared.history import RECORDS_KEPT, Best, ClassRecords, RaceRef, RiderResult
from shared.items import (
    best_item,
    entry_item,
    live_chunk_item,
    live_head_item,
    live_index_item,
    placings_item,
    race_item,
    records_item,
    result_item,
    standing_item,
)
from shared.placings import OVERALL, Placing
from shared.races import EnteredRider, Entry, NewRace, Race
from shared.ranking import ROWS_PER_CHUNK, LiveRanking, index_pages, rank_live
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
RETIRED_INDEX_ATTRIBUTES: Final = ("rankPk", "classRankPk", "rankSk")
"""The ranking indexes' keys, which the live ranking snapshot retires (docs/capacity.md): not
part of a standing's size. Once the codec no longer writes them, leaving them out is a no-op."""
SAMPLE_CURSOR_CHARS: Final = 40
"""Assumed: the length of a page's ``nextCursor`` (an opaque URL-safe token)."""


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


def live_standing_item(s: Standing, expires_at: int) -> dict[str, Any]:
    """The stored standing without the retired ranking-index keys."""
    item = standing_item(s, expires_at=expires_at)
    return {k: v for k, v in item.items() if k not in RETIRED_INDEX_ATTRIBUTES}


def standing_bytes(second: int) -> int:
    return item_bytes(live_standing_item(sample_standing(second), SAMPLE_START_MS // 1000))


def mean_standing_write_units(race_seconds: int) -> float:
    """Mean WRUs of a standing write over a race: the bitmap grows a byte every 8 seconds, and a
    put costs one unit per started KB of the larger of the old and new item."""
    base = standing_bytes(race_seconds - 1) - ((race_seconds - 1) // 8 + 1)
    total = sum(math.ceil((base + s // 8 + 1) / DDB_WRITE_UNIT_BYTES) for s in range(race_seconds))
    return total / race_seconds


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


# --- the live ranking snapshot (shared.ranking) ------------------------------------------------
SAMPLE_FIRST_NAMES: Final = (
    "Priya", "Tomasz", "Ana", "Kwame", "Lena", "Mateo", "Yuki", "Sofia", "Arjun", "Chloe",
    "Emeka", "Ines", "Lars", "Mei", "Noah", "Olga", "Rafael", "Sanna", "Tariq", "Zoe",
)  # fmt: skip
"""Names shaped as the simulator enters them (a first name and an initial), so that the
answers compress as real ones do rather than as one repeated name would."""


def sample_field(riders: int, race_seconds: int) -> list[Standing]:
    """A race's standings at its last second: the sample's bitmap and clock, names, classes
    and points drawn (seeded) as a field of riders spreads."""
    base = sample_standing(race_seconds - 1)
    rng = random.Random(riders)
    return [
        replace(
            base,
            rider_id=f"rider-{i:05d}",
            name=f"{rng.choice(SAMPLE_FIRST_NAMES)} {chr(ord('A') + rng.randrange(26))}.",
            class_id=rng.choice(CLASS_IDS),
            points=rng.randint(base.points // 2, base.points),
        )
        for i in range(riders)
    ]


@cache
def sample_ranking(riders: int, race_seconds: int) -> LiveRanking:
    return rank_live(SAMPLE_RACE_ID, sample_field(riders, race_seconds), SAMPLE_START_MS)


def live_head_bytes(riders: int = 1, race_seconds: int = 3_600) -> int:
    """The race's head naming a build of this many riders (it carries each chunk's class
    counts, so it grows with the race)."""
    return item_bytes(live_head_item(sample_ranking(riders, race_seconds)))


def live_build_write_units(riders: int, race_seconds: int) -> int:
    """Write units of one build: every chunk, every rider-index page, and the head."""
    r = sample_ranking(riders, race_seconds)
    chunks = [live_chunk_item(r.race_id, r.built_at, n, rows) for n, rows in enumerate(r.chunks())]
    pages = [
        live_index_item(r.race_id, r.built_at, n, positions)
        for n, positions in enumerate(r.rider_index())
    ]
    return sum(write_units(item_bytes(i)) for i in [*chunks, *pages, live_head_item(r)])


def live_chunk_bytes(riders: int, race_seconds: int) -> int:
    """The first (fullest) chunk of a build."""
    r = sample_ranking(riders, race_seconds)
    return item_bytes(live_chunk_item(r.race_id, r.built_at, 0, r.chunks()[0]))


def live_index_page_bytes(riders: int, race_seconds: int) -> int:
    """The largest rider-index page of a build."""
    r = sample_ranking(riders, race_seconds)
    return max(
        item_bytes(live_index_item(r.race_id, r.built_at, n, positions))
        for n, positions in enumerate(r.rider_index())
    )


def live_index_pages(riders: int) -> int:
    return index_pages(riders)


def live_chunks(riders: int) -> int:
    return max(1, math.ceil(riders / ROWS_PER_CHUNK))


def write_units(size: int) -> int:
    return max(1, math.ceil(size / DDB_WRITE_UNIT_BYTES))


TRANSACTION_UNIT_FACTOR: Final = 2
"""A write in ``TransactWriteItems`` costs twice a plain write's units (DynamoDB pricing)."""


def put_write_units(puts: Iterable[tuple[str, int, bool]]) -> list[int]:
    """Units of each put of ``(key, item bytes, in a transaction)``, in order: a put costs the
    larger of the stored item and the new one, per started KB, twice that in a transaction."""
    stored: dict[str, int] = {}
    units = []
    for key, size, in_transaction in puts:
        kb = write_units(max(size, stored.get(key, 0)))
        units.append(kb * (TRANSACTION_UNIT_FACTOR if in_transaction else 1))
        stored[key] = size
    return units


# --- the API's answers, as a viewer receives them ----------------------------------------------
def board_json(riders: int, race_seconds: int, limit: int) -> bytes:
    """A leaderboard page of ``limit`` rows, as :class:`models.Leaderboard` serializes it."""
    rows = sample_ranking(riders, race_seconds).rows[:limit]
    page = models.Leaderboard(
        race_id=SAMPLE_RACE_ID,
        class_id=None,
        as_of=SAMPLE_START_MS + race_seconds * 1000,
        entries=[
            models.Entry(
                rank=r.rank_overall,
                rider_id=r.rider_id,
                name=r.name,
                class_id=r.class_id,
                points=r.points,
                seconds=r.seconds,
                last_second=r.last_second,
                finished=r.finished,
            )
            for r in rows
        ],
        next_cursor="c" * SAMPLE_CURSOR_CHARS,
    )
    return page.model_dump_json().encode()


def races_json(listed: int = SAMPLE_RACES_LISTED) -> bytes:
    """A race list of ``listed`` races, as :class:`models.Races` serializes it."""
    request = NewRace(
        race_id=SAMPLE_RACE_ID, name="Evening Crit", starts_at=SAMPLE_START_MS, duration_s=3_600
    )
    listing = []
    for i in range(listed):
        starts = SAMPLE_START_MS - i * 86_400_000
        one = request.model_copy(update={"race_id": f"race-{i:04d}-evening", "starts_at": starts})
        race = replace(Race.new(one, created_at=starts), entrants=1_000, riders=1_000)
        listing.append(models.Race.of(race, SAMPLE_START_MS))
    body = models.Races(races=listing, next_cursor="c" * SAMPLE_CURSOR_CHARS)
    return body.model_dump_json().encode()


def sent_bytes(body: bytes) -> int:
    """The body as CloudFront sends it: gzip-compressed from CloudFront's minimum size up (gzip
    level 6 stands in for CloudFront's; browsers that take Brotli get less)."""
    if len(body) < CLOUDFRONT_COMPRESS_MIN_BYTES:
        return len(body)
    return len(gzip.compress(body, compresslevel=6, mtime=0))
