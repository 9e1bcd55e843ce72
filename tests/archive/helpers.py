"""One small race and its archive, written out by hand: the card, every record the stream
carried (resends, reordering, refused ones), and the placings they come to."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from shared.archive import card_object
from shared.names import archive_prefix
from shared.races import EnteredRider, Entry, Race, RaceCard, card

RACE_ID: Final = "crit-1"
STARTS_AT: Final = 1_764_115_200_000
"""2025-11-26T00:00:00Z: the race starts at midnight, so its records span two days."""
DAY_BEFORE, START_DAY, NEXT_DAY = "2025-11-25", "2025-11-26", "2025-11-27"
DURATION_S: Final = 10
GRACE_S: Final = 5
CLOSES_AT: Final = STARTS_AT + 1000 * (DURATION_S + GRACE_S)


def race_card() -> RaceCard:
    race = Race(RACE_ID, "Night Crit", STARTS_AT, DURATION_S, GRACE_S, CLOSES_AT)
    return card(
        race,
        [
            EnteredRider(Entry(rider_id="ann", name="Ann", class_id=1)),
            EnteredRider(Entry(rider_id="bob", name="Bob", class_id=2, device_id="bike-7")),
            EnteredRider(Entry(rider_id="cat", name="Cat", class_id=1)),
            EnteredRider(Entry(rider_id="dan", name="Dan", class_id=3)),
            EnteredRider(Entry(rider_id="hal", name="Hal", class_id=2), disqualified=True),
        ],
    )


def record(rider: str, second: int, cadence: int, resistance: int, **change: Any) -> dict[str, Any]:
    """A reading as the stream carries it (wire names)."""
    wire: dict[str, Any] = {
        "v": 2,
        "eventId": f"{rider}-{second}",
        "raceId": RACE_ID,
        "riderId": rider,
        "second": second,
        "cadence": cadence,
        "resistance": resistance,
        "deviceTimestamp": STARTS_AT + 1000 * second,
        "event": "update",
    }
    return wire | change


ANN = [record("ann", s, 90, 10) for s in range(3)]
BOB = [record("bob", s, 100, 20, deviceId="bike-7") for s in (0, 1)]
BOB_WRONG_DEVICE = record("bob", 2, 100, 20, deviceId="bike-9")
BOB_FINAL = record("bob", 3, 100, 20, deviceId="bike-7", event="final")
BOB_AFTER_FINAL = record("bob", 4, 200, 100, deviceId="bike-7")
CAT = record("cat", 0, 80, 0)
CAT_V1 = record("cat", 1, 80, 0, v=1, name="Cat", classId=1)
CAT_INVALID = record("cat", 2, 250, 0)
CAT_PAST_DURATION = record("cat", DURATION_S, 80, 0)
ZED_NOT_ENTERED = record("zed", 0, 200, 100)
HAL = record("hal", 0, 120, 30)
OTHER_RACE = record("ann", 0, 60, 60, raceId="crit-2", eventId="ann-crit-2-0")

OBJECTS: Final = {
    # the day before: an object opened before midnight (Firehose names it by its oldest record)
    DAY_BEFORE: [[ANN[0], BOB[0], HAL]],
    # reordered (ann's second 2 before 1), resent (ann's second 1 twice), refused ones mixed in
    START_DAY: [
        [ANN[2], ANN[1], BOB[1], BOB_WRONG_DEVICE, CAT, CAT_V1, ZED_NOT_ENTERED],
        [ANN[1], BOB_FINAL, BOB_AFTER_FINAL, CAT_INVALID, CAT_PAST_DURATION, OTHER_RACE],
    ],
    # the next day: a resend of bob's final arriving late, and an unreadable line
    NEXT_DAY: [[BOB_FINAL]],
}
UNREADABLE: Final = b"{not json\n"

TALLIES: Final = {
    # ann: seconds 0-2 at (90 + 35) * (10 + 65) = 9,375
    "ann": (28_125, 3),
    # bob: seconds 0, 1 and 3 (his final) at (100 + 35) * (20 + 65) = 11,475; second 2 came
    # from another device, second 4 after his final
    "bob": (34_425, 3),
    # cat: second 0 at (80 + 35) * 65 = 7,475; a v1 reading, a cadence of 250, second 10
    "cat": (7_475, 1),
    # hal: counted (120 + 35) * (30 + 65) = 14,725 but disqualified
    "hal": (14_725, 1),
}


def result(rank: int | None, rider: str, name: str, class_id: int, outcome: str) -> dict[str, Any]:
    points, seconds = TALLIES.get(rider, (0, 0))
    return {
        "rank": rank,
        "riderId": rider,
        "name": name,
        "classId": class_id,
        "points": points,
        "seconds": seconds,
        "outcome": outcome,
    }


def stored_placings() -> dict[str, list[dict[str, Any]]]:
    """What ``GET /races/crit-1/results`` lists, overall and per class."""
    return {
        "ALL": [
            result(1, "bob", "Bob", 2, "ranked"),
            result(2, "ann", "Ann", 1, "ranked"),
            result(3, "cat", "Cat", 1, "ranked"),
            result(None, "dan", "Dan", 3, "DNS"),
            result(None, "hal", "Hal", 2, "DSQ"),
        ],
        "C1": [result(1, "ann", "Ann", 1, "ranked"), result(2, "cat", "Cat", 1, "ranked")],
        "C2": [result(1, "bob", "Bob", 2, "ranked"), result(None, "hal", "Hal", 2, "DSQ")],
        "C3": [result(None, "dan", "Dan", 3, "DNS")],
        "C4": [],
        "C5": [],
        "C6": [],
    }


def write_archive(root: Path, objects: dict[str, list[list[dict[str, Any]]]] = OBJECTS) -> None:
    """The archive's objects under ``root``, keyed as in the bucket (Firehose's telemetry and
    the closer's card)."""
    for day, bodies in objects.items():
        for n, lines in enumerate(bodies):
            text = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
            if day == NEXT_DAY:
                text += UNREADABLE
            put(root, f"{archive_prefix(day)}breakaway-archive-1-{day}-{n}.gz", gzip.compress(text))
    obj = card_object(race_card())
    put(root, obj.key, obj.body)


def put(root: Path, key: str, body: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def rows_of(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as the archive query returns them: lower-case columns, every one present."""
    columns = ("v", "eventid", "raceid", "riderid", "second", "cadence", "resistance")
    columns += ("devicetimestamp", "event", "deviceid")
    lowered = [{k.lower(): v for k, v in r.items()} for r in records]
    return [{c: r.get(c) for c in columns} for r in lowered]
