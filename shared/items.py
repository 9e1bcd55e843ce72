"""The item codec: standings, race records, entries and placings to and from DynamoDB's wire format.

Low-level (``{"S": ...}``) attribute values, so the same functions serve the boto3 client in
the adapter, test fixtures and the local stack. Key layout lives in :mod:`shared.keys`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from shared import keys
from shared.contract import CLASS_IDS
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.placings import Placing
from shared.races import EnteredRider, Entry, Race, StoredState
from shared.ranking import BUILD_TTL_S, LiveHead, LiveRanking, LiveRow
from shared.standings import Standing

Item = dict[str, Any]


def wire_key(key: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A key of :mod:`shared.keys` in DynamoDB's wire form (string attributes)."""
    return {name: {"S": value} for name, value in key.items()}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def bitmap_bytes(counted: int) -> bytes:
    return counted.to_bytes((counted.bit_length() + 7) // 8, "little")


def bitmap_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def standing_item(s: Standing, expires_at: int) -> Item:
    """The whole stored item of a standing at ``s.version`` (no index keys: one write unit)."""
    return {
        **wire_key(keys.standing_key(s.race_id, s.rider_id)),
        "raceId": _s(s.race_id),
        "riderId": _s(s.rider_id),
        "name": _s(s.name),
        "classId": _n(s.class_id),
        "points": _n(s.points),
        "seconds": _n(s.seconds),
        "lastSecond": _n(s.last_second),
        "counted": {"B": bitmap_bytes(s.counted)},
        "updatedAt": _n(s.updated_at),
        "lastDeviceTs": _n(s.last_device_ts),
        "finalSecond": _n(s.final_second),
        "ver": _n(s.version),
        keys.TTL_ATTRIBUTE: _n(expires_at),
    }


def _int(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value is not None else default


def standing_from_item(item: Mapping[str, Any]) -> Standing:
    counted = item.get("counted")
    return Standing(
        race_id=item["raceId"]["S"],
        rider_id=item["riderId"]["S"],
        name=item["name"]["S"],
        class_id=_int(item, "classId"),
        points=_int(item, "points"),
        seconds=_int(item, "seconds"),
        last_second=_int(item, "lastSecond", -1),
        counted=bitmap_int(bytes(counted["B"])) if counted else 0,
        version=_int(item, "ver"),
        updated_at=_int(item, "updatedAt"),
        last_device_ts=_int(item, "lastDeviceTs"),
        final_second=_int(item, "finalSecond", -1),
    )


def race_from_item(item: Mapping[str, Any]) -> Race:
    return Race(
        race_id=item["raceId"]["S"],
        name=item["name"]["S"],
        starts_at=_int(item, "startsAt"),
        duration_s=_int(item, "durationS"),
        grace_s=_int(item, "graceS"),
        closes_at=_int(item, "closesAt"),
        state=cast(StoredState, item.get("state", {}).get("S", "open")),
        entrants=_int(item, "entrants"),
        entries_version=_int(item, "entriesVersion"),
        created_at=_int(item, "createdAt"),
        closed_at=_int(item, "closedAt"),
        riders=_int(item, "riders"),
        class_counts={c: _int(item, keys.class_count_attribute(c)) for c in CLASS_IDS},
        finished=_int(item, "finished"),
        last_reading_at=_int(item, "lastReadingAt"),
    )


def race_item(r: Race) -> Item:
    """A whole race record (created by ``POST /races``; the counters move by update
    expressions afterwards). No TTL: races are kept."""
    return {
        **wire_key(keys.race_key(r.race_id)),
        "raceId": _s(r.race_id),
        "name": _s(r.name),
        keys.INDEX_RECENT_PK: _s(keys.RECENT_RACES_PARTITION),
        keys.INDEX_RECENT_SK: _n(r.starts_at),
        "durationS": _n(r.duration_s),
        "graceS": _n(r.grace_s),
        "closesAt": _n(r.closes_at),
        "state": _s(r.state),
        "entrants": _n(r.entrants),
        "entriesVersion": _n(r.entries_version),
        "createdAt": _n(r.created_at),
        "closedAt": _n(r.closed_at),
        "riders": _n(r.riders),
        **{keys.class_count_attribute(c): _n(r.class_counts.get(c, 0)) for c in CLASS_IDS},
        "finished": _n(r.finished),
        "lastReadingAt": _n(r.last_reading_at),
    }


def entry_item(race_id: str, e: EnteredRider, updated_at: int) -> Item:
    item: Item = {
        **wire_key(keys.entry_key(race_id, e.rider_id)),
        "raceId": _s(race_id),
        "riderId": _s(e.rider_id),
        "name": _s(e.entry.name),
        "classId": _n(e.entry.class_id),
        "disqualified": {"BOOL": e.disqualified},
        "updatedAt": _n(updated_at),
    }
    if e.entry.device_id is not None:
        item["deviceId"] = _s(e.entry.device_id)
    return item


def entry_from_item(item: Mapping[str, Any]) -> EnteredRider:
    device = item.get("deviceId")
    return EnteredRider(
        entry=Entry(
            rider_id=item["riderId"]["S"],
            name=item["name"]["S"],
            class_id=_int(item, "classId"),
            device_id=device["S"] if device else None,
        ),
        disqualified=bool(item.get("disqualified", {}).get("BOOL", False)),
    )


_PLACING_FIELDS = (
    "rank",
    "rider_id",
    "name",
    "class_id",
    "points",
    "seconds",
    "outcome",
    "rank_overall",
    "rank_class",
    "personal_best",
    "record",
)


def placings_item(race_id: str, scope: str, page: int, total: int, rows: Sequence[Placing]) -> Item:
    """One stored page of placings: the rows as compact JSON arrays (field order
    ``_PLACING_FIELDS``), and how many placings the scope holds in all."""
    body = json.dumps(
        [[getattr(p, f) for f in _PLACING_FIELDS] for p in rows], separators=(",", ":")
    )
    return {
        **wire_key(keys.placings_key(race_id, scope, page)),
        "raceId": _s(race_id),
        "scope": _s(scope),
        "page": _n(page),
        "total": _n(total),
        "rows": _s(body),
    }


def placings_from_item(item: Mapping[str, Any]) -> tuple[list[Placing], int]:
    """The rows of a stored page, and the scope's total. Pages stored before the personal-best
    and record flags existed have nine fields a row; the flags default to false."""
    rows = [Placing(*row) for row in json.loads(item["rows"]["S"])]
    return rows, _int(item, "total")


# --- history, personal bests and records (shared.history) ---------------------------------------
def _race_ref_attrs(race: RaceRef) -> Item:
    return {
        "raceId": _s(race.race_id),
        "raceName": _s(race.name),
        "startsAt": _n(race.starts_at),
        "durationS": _n(race.duration_s),
    }


def _race_ref(item: Mapping[str, Any]) -> RaceRef:
    return RaceRef(
        race_id=item["raceId"]["S"],
        name=item["raceName"]["S"],
        starts_at=_int(item, "startsAt"),
        duration_s=_int(item, "durationS"),
    )


def result_item(r: RiderResult) -> Item:
    """A race in a rider's history (kept: no TTL)."""
    return {
        **wire_key(keys.result_key(r.rider_id, r.race.starts_at, r.race.race_id)),
        **_race_ref_attrs(r.race),
        "riderId": _s(r.rider_id),
        "name": _s(r.name),
        "classId": _n(r.class_id),
        "rankOverall": _n(r.rank_overall),
        "rankClass": _n(r.rank_class),
        "points": _n(r.points),
        "seconds": _n(r.seconds),
        "personalBest": {"BOOL": r.personal_best},
        "record": {"BOOL": r.record},
    }


def result_from_item(item: Mapping[str, Any]) -> RiderResult:
    return RiderResult(
        rider_id=item["riderId"]["S"],
        name=item["name"]["S"],
        race=_race_ref(item),
        class_id=_int(item, "classId"),
        rank_overall=_int(item, "rankOverall"),
        rank_class=_int(item, "rankClass"),
        points=_int(item, "points"),
        seconds=_int(item, "seconds"),
        personal_best=bool(item["personalBest"]["BOOL"]),
        record=bool(item["record"]["BOOL"]),
    )


def best_item(b: Best) -> Item:
    """A rider's personal best in a class over races of one length."""
    return {
        **wire_key(keys.best_key(b.rider_id, b.class_id, b.duration_s)),
        **_race_ref_attrs(b.race),
        "riderId": _s(b.rider_id),
        "name": _s(b.name),
        "classId": _n(b.class_id),
        "points": _n(b.points),
        "seconds": _n(b.seconds),
    }


def best_from_item(item: Mapping[str, Any]) -> Best:
    return Best(
        rider_id=item["riderId"]["S"],
        name=item["name"]["S"],
        class_id=_int(item, "classId"),
        points=_int(item, "points"),
        seconds=_int(item, "seconds"),
        race=_race_ref(item),
    )


_BEST_FIELDS = ("rider_id", "name", "points", "seconds")


def records_item(r: ClassRecords) -> Item:
    """The records of a class and race length: the rows as compact JSON arrays (rider id, name,
    points, seconds, race id, race name, startsAt), at ``version``."""
    body = json.dumps(
        [
            [getattr(b, f) for f in _BEST_FIELDS] + [b.race.race_id, b.race.name, b.race.starts_at]
            for b in r.rows
        ],
        separators=(",", ":"),
    )
    return {
        **wire_key(keys.records_key(r.class_id, r.duration_s)),
        "classId": _n(r.class_id),
        "durationS": _n(r.duration_s),
        "rows": _s(body),
        "ver": _n(r.version),
    }


def records_from_item(item: Mapping[str, Any]) -> ClassRecords:
    class_id, duration_s = _int(item, "classId"), _int(item, "durationS")
    rows = tuple(
        Best(
            rider, name, class_id, points, seconds, RaceRef(race_id, race_name, starts, duration_s)
        )
        for rider, name, points, seconds, race_id, race_name, starts in json.loads(
            item["rows"]["S"]
        )
    )
    return ClassRecords(class_id, duration_s, rows, _int(item, "ver"))


# --- the live ranking (shared.ranking) -----------------------------------------------------------
_LIVE_FIELDS = (
    "rider_id",
    "name",
    "class_id",
    "points",
    "seconds",
    "last_second",
    "final_second",
    "rank_overall",
    "rank_class",
)


def live_head_attributes(h: LiveHead) -> Item:
    """What a head says of its build (no keys, no lease): what publishing a build sets."""
    return {
        "raceId": _s(h.race_id),
        "builtAt": _n(h.built_at),
        "riders": _n(h.riders),
        "indexPages": _n(h.index_pages),
        **{keys.class_count_attribute(c): _n(h.class_totals.get(c, 0)) for c in CLASS_IDS},
        "chunkClasses": _s(json.dumps(h.chunk_classes, separators=(",", ":"))),
    }


def live_head_item(r: LiveRanking) -> Item:
    """The race's live-ranking head naming build ``r.built_at`` (its sizes and class totals),
    its lease free."""
    return {
        **wire_key(keys.live_head_key(r.race_id)),
        **live_head_attributes(r.head()),
        "leaseUntil": _n(0),
    }


def live_head_from_item(item: Mapping[str, Any]) -> LiveHead:
    return LiveHead(
        race_id=item["raceId"]["S"],
        built_at=_int(item, "builtAt"),
        riders=_int(item, "riders"),
        index_pages=_int(item, "indexPages", 1),
        class_totals={c: _int(item, keys.class_count_attribute(c)) for c in CLASS_IDS},
        lease_until=_int(item, "leaseUntil"),
        chunk_classes=tuple(
            tuple(counts) for counts in json.loads(item.get("chunkClasses", {}).get("S", "[]"))
        ),
    )


def live_chunk_item(race_id: str, built_at: int, chunk: int, rows: Sequence[LiveRow]) -> Item:
    """One chunk of a build: its rows as compact JSON arrays (field order ``_LIVE_FIELDS``)."""
    body = json.dumps([[getattr(r, f) for f in _LIVE_FIELDS] for r in rows], separators=(",", ":"))
    return {
        **wire_key(keys.live_chunk_key(race_id, built_at, chunk)),
        "rows": _s(body),
        keys.TTL_ATTRIBUTE: _n(built_at // 1000 + BUILD_TTL_S),
    }


def live_chunk_from_item(item: Mapping[str, Any]) -> list[LiveRow]:
    return [LiveRow(*row) for row in json.loads(item["rows"]["S"])]


def live_index_item(race_id: str, built_at: int, page: int, positions: Mapping[str, int]) -> Item:
    """One rider-index page of a build: rider id -> position in the overall order."""
    body = json.dumps(positions, separators=(",", ":"))
    return {
        **wire_key(keys.live_index_key(race_id, built_at, page)),
        "positions": _s(body),
        keys.TTL_ATTRIBUTE: _n(built_at // 1000 + BUILD_TTL_S),
    }


def live_index_from_item(item: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in json.loads(item["positions"]["S"]).items()}
