"""The archive's layout and its race cards: what the closer writes next to the telemetry, and
how the audit reads it back (pure; the S3 writes are behind a port).

The telemetry Firehose delivers carries no class (contract v2: a rider's name and class come
from the entries), so a question "per class" needs the race's card in the archive too. The
closer writes it once the placings are stored: one GZIP newline-delimited JSON object per race,
one line per entry with the race's fields repeated, under ``shared.names.ARCHIVE_ENTRIES_KEY``
(the day of the race's start). The same race gives the same key and the same bytes (sorted
lines, no timestamp in the GZIP header), so writing it again changes nothing.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from shared import names
from shared.contract import Telemetry
from shared.races import EnteredRider, Entry, Race, RaceCard, card

_GLUE_TYPES: Final = {"integer": "bigint", "string": "string"}


def _json_type(prop: Mapping[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    (kind,) = {p["type"] for p in prop["anyOf"] if p.get("type") != "null"}
    return str(kind)


TELEMETRY_COLUMNS: Final = tuple(
    (name, _GLUE_TYPES[_json_type(prop)])
    for name, prop in Telemetry.model_json_schema(by_alias=True)["properties"].items()
)
"""The telemetry table's columns, from the contract itself: wire names and Glue types. An
optional field (``deviceId``) is a column of its type, null where a reading has none."""

ENTRY_COLUMNS: Final = (
    ("raceId", "string"),
    ("raceName", "string"),
    ("startsAt", "bigint"),
    ("durationS", "bigint"),
    ("graceS", "bigint"),
    ("closesAt", "bigint"),
    ("riderId", "string"),
    ("name", "string"),
    ("classId", "bigint"),
    ("deviceId", "string"),
    ("disqualified", "boolean"),
)
"""One line of a race card object: its JSON keys and their Glue types (Glue lower-cases the
names; Athena's JSON SerDe and DuckDB both match them case-insensitively)."""
DAY_FORMAT: Final = "%Y-%m-%d"


def day_of(epoch_ms: int) -> str:
    """The UTC day of an instant, as the archive's ``day`` partitions name it."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime(DAY_FORMAT)


def day_range(starts_at: int, closes_at: int) -> tuple[str, str]:
    """The ``day`` partitions that hold every record a race could count: Firehose names an
    object by the arrival of its oldest record, which may be the day before a record's own
    arrival (an object open across midnight); a record counts only if it arrives before
    ``closesAt``."""
    first = datetime.fromtimestamp(starts_at / 1000, UTC) - timedelta(days=1)
    return first.strftime(DAY_FORMAT), day_of(closes_at)


def card_lines(race_card: RaceCard) -> list[dict[str, Any]]:
    """The object's lines: one per entry, by rider id."""
    r = race_card.race
    return [
        {
            "raceId": r.race_id,
            "raceName": r.name,
            "startsAt": r.starts_at,
            "durationS": r.duration_s,
            "graceS": r.grace_s,
            "closesAt": r.closes_at,
            "riderId": e.rider_id,
            "name": e.entry.name,
            "classId": e.entry.class_id,
            "deviceId": e.entry.device_id,
            "disqualified": e.disqualified,
        }
        for e in sorted(race_card.entries.values(), key=lambda e: e.rider_id)
    ]


@dataclass(frozen=True, slots=True)
class ArchiveObject:
    key: str
    body: bytes


def card_object(race_card: RaceCard) -> ArchiveObject:
    """The race card as its archive object: the same bytes for the same card."""
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in card_lines(race_card))
    body = gzip.compress(text.encode(), mtime=0)
    key = names.archive_entries_key(race_card.race.race_id, day_of(race_card.race.starts_at))
    return ArchiveObject(key, body)


def card_from_lines(lines: Sequence[Mapping[str, Any]]) -> RaceCard | None:
    """A race card read back from its lines (any key case: Athena answers in lower case); None
    when there are none. The race is ``open``: the audit asks the counting rules what a
    processor would have counted while it was."""
    if not lines:
        return None
    rows = [{k.lower(): v for k, v in line.items()} for line in lines]
    first = rows[0]
    race = Race(
        race_id=first["raceid"],
        name=first["racename"],
        starts_at=int(first["startsat"]),
        duration_s=int(first["durations"]),
        grace_s=int(first["graces"]),
        closes_at=int(first["closesat"]),
    )
    entries = [
        EnteredRider(
            Entry(
                rider_id=row["riderid"],
                name=row["name"],
                class_id=int(row["classid"]),
                device_id=row["deviceid"] or None,
            ),
            disqualified=_boolean(row["disqualified"]),
        )
        for row in rows
    ]
    return card(race, entries)


def _boolean(value: Any) -> bool:
    """A boolean column: ``True`` (DuckDB) or ``"true"`` (Athena's results are text)."""
    return value is True or str(value).lower() == "true"


class ArchiveWriter(Protocol):
    def put(self, obj: ArchiveObject) -> None:
        """Store the object under its key (replacing one with the same key). Raises
        TransientError."""
        ...
