"""The item codec: standings, race records and results to and from DynamoDB's wire format.

Low-level (``{"S": ...}``) attribute values, so the same functions serve the boto3 client in
the adapter, test fixtures and the local stack. Key layout lives in :mod:`shared.keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared import keys
from shared.contract import CLASS_IDS
from shared.standings import FinalResult, RaceRecord, Standing

Item = dict[str, Any]


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def bitmap_bytes(counted: int) -> bytes:
    return counted.to_bytes((counted.bit_length() + 7) // 8, "little")


def bitmap_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def standing_item(s: Standing, expires_at: int) -> Item:
    """The whole stored item of a standing, index keys included, at ``s.version``."""
    shard = keys.rank_shard(s.rider_id)
    return {
        **{k: _s(v) for k, v in keys.standing_key(s.race_id, s.rider_id).items()},
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
        keys.INDEX_OVERALL_PK: _s(keys.overall_rank_pk(s.race_id, shard)),
        keys.INDEX_CLASS_PK: _s(keys.class_rank_pk(s.race_id, s.class_id, shard)),
        keys.INDEX_RANK_SK: _s(keys.rank_sk(s.points, s.rider_id)),
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
    )


RANK_ENTRY_ATTRIBUTES = (keys.INDEX_RANK_SK, "classId")
"""What :func:`rank_entry_from_item` reads of a ranking-index entry."""


def rank_entry_from_item(item: Mapping[str, Any]) -> tuple[int, int]:
    """(points, class id) of a ranking-index entry."""
    return keys.points_from_rank_sk(item[keys.INDEX_RANK_SK]["S"]), _int(item, "classId")


def race_from_item(item: Mapping[str, Any]) -> RaceRecord:
    return RaceRecord(
        race_id=item["raceId"]["S"],
        started_at=_int(item, keys.INDEX_RECENT_SK),
        last_reading_at=_int(item, "lastReadingAt"),
        riders=_int(item, "riders"),
        class_counts={c: _int(item, keys.class_count_attribute(c)) for c in CLASS_IDS},
        finished=_int(item, "finished"),
    )


def race_item(r: RaceRecord, expires_at: int) -> Item:
    """A whole race record (the processor builds it with update expressions; tests seed it)."""
    return {
        **{k: _s(v) for k, v in keys.race_key(r.race_id).items()},
        "raceId": _s(r.race_id),
        keys.INDEX_RECENT_PK: _s(keys.RECENT_RACES_PARTITION),
        keys.INDEX_RECENT_SK: _n(r.started_at),
        "lastReadingAt": _n(r.last_reading_at),
        "riders": _n(r.riders),
        **{keys.class_count_attribute(c): _n(n) for c, n in r.class_counts.items()},
        "finished": _n(r.finished),
        keys.TTL_ATTRIBUTE: _n(expires_at),
    }


def result_item(r: FinalResult, expires_at: int) -> Item:
    return {
        **{k: _s(v) for k, v in keys.result_key(r.race_id, r.rider_id).items()},
        "raceId": _s(r.race_id),
        "riderId": _s(r.rider_id),
        "name": _s(r.name),
        "classId": _n(r.class_id),
        "points": _n(r.points),
        "seconds": _n(r.seconds),
        "lastSecond": _n(r.last_second),
        "rankOverall": _n(r.rank_overall),
        "rankClass": _n(r.rank_class),
        "finishedAt": _n(r.finished_at),
        keys.TTL_ATTRIBUTE: _n(expires_at),
    }


def result_from_item(item: Mapping[str, Any]) -> FinalResult:
    return FinalResult(
        race_id=item["raceId"]["S"],
        rider_id=item["riderId"]["S"],
        name=item["name"]["S"],
        class_id=_int(item, "classId"),
        points=_int(item, "points"),
        seconds=_int(item, "seconds"),
        last_second=_int(item, "lastSecond", -1),
        rank_overall=_int(item, "rankOverall"),
        rank_class=_int(item, "rankClass"),
        finished_at=_int(item, "finishedAt"),
    )
