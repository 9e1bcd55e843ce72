"""The archive's SQL (the Athena named queries' own text) on DuckDB over a local archive in
Firehose's layout: GZIP JSON lines under ``telemetry/day=.../``, the closer's cards under
``entries/day=.../``. Every query returns exactly the rows written out here by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import archive_sql as sql
from shared.names import ARCHIVE_READINGS_VIEW
from simulator.archive import ArchiveQueryError, DuckArchive
from simulator.audit_cli import run
from tests.archive.helpers import (
    DAY_BEFORE,
    NEXT_DAY,
    RACE_ID,
    START_DAY,
    STARTS_AT,
    stored_placings,
    write_archive,
)

WHOLE_RACE = [DAY_BEFORE, NEXT_DAY, RACE_ID]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> DuckArchive:
    root = tmp_path_factory.mktemp("archive")
    write_archive(root)
    return DuckArchive(root)


def pick(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


def test_race_readings_keeps_the_first_of_each_second_whichever_day_it_landed_in(
    archive: DuckArchive,
) -> None:
    rows = archive.query(sql.RACE_READINGS, WHOLE_RACE)
    assert pick(rows, "riderid", "second", "eventid", "deviceid", "day") == [
        ("ann", 0, "ann-0", None, DAY_BEFORE),
        ("ann", 1, "ann-1", None, START_DAY),  # sent twice
        ("ann", 2, "ann-2", None, START_DAY),  # arrived before second 1
        ("bob", 0, "bob-0", "bike-7", DAY_BEFORE),
        ("bob", 1, "bob-1", "bike-7", START_DAY),
        ("bob", 2, "bob-2", "bike-9", START_DAY),  # no rule applied: the audit refuses it
        ("bob", 3, "bob-3", "bike-7", START_DAY),  # resent the next day: once, the first day
        ("bob", 4, "bob-4", "bike-7", START_DAY),
        ("cat", 0, "cat-0", None, START_DAY),
        ("cat", 2, "cat-2", None, START_DAY),
        ("cat", 10, "cat-10", None, START_DAY),
        ("hal", 0, "hal-0", None, DAY_BEFORE),
        ("zed", 0, "zed-0", None, START_DAY),
    ]  # cat's v1 reading is not contract v2; the other race's reading is not this race's
    assert rows[0] == {
        "v": 2,
        "eventid": "ann-0",
        "raceid": RACE_ID,
        "riderid": "ann",
        "second": 0,
        "cadence": 90,
        "resistance": 10,
        "devicetimestamp": STARTS_AT,
        "event": "update",
        "deviceid": None,
        "day": DAY_BEFORE,
    }


def test_only_the_days_asked_for_are_read(archive: DuckArchive) -> None:
    rows = archive.query(sql.RACE_READINGS, [START_DAY, START_DAY, RACE_ID])
    assert [r["day"] for r in rows] == [START_DAY] * 10
    assert len(archive.query(sql.RACE_DELIVERIES, [START_DAY, START_DAY, RACE_ID])) == 12


def test_race_deliveries_lists_every_copy_per_rider_in_the_audits_order(
    archive: DuckArchive,
) -> None:
    rows = archive.query(sql.RACE_DELIVERIES, WHOLE_RACE)
    assert pick(rows, "riderid", "second", "v", "event") == [
        ("ann", 0, 2, "update"),
        ("ann", 1, 2, "update"),
        ("ann", 1, 2, "update"),
        ("ann", 2, 2, "update"),
        ("bob", 0, 2, "update"),
        ("bob", 1, 2, "update"),
        ("bob", 2, 2, "update"),
        ("bob", 3, 2, "final"),
        ("bob", 3, 2, "final"),
        ("bob", 4, 2, "update"),
        ("cat", 0, 2, "update"),
        ("cat", 1, 1, "update"),
        ("cat", 2, 2, "update"),
        ("cat", 10, 2, "update"),
        ("hal", 0, 2, "update"),
        ("zed", 0, 2, "update"),
    ]  # the unreadable line of the next day belongs to no race


def test_race_card_is_the_race_and_every_entry(archive: DuckArchive) -> None:
    rows = archive.query(sql.RACE_CARD, [START_DAY, RACE_ID])
    assert pick(rows, "riderid", "name", "classid", "deviceid", "disqualified") == [
        ("ann", "Ann", 1, None, False),
        ("bob", "Bob", 2, "bike-7", False),
        ("cat", "Cat", 1, None, False),
        ("dan", "Dan", 3, None, False),
        ("hal", "Hal", 2, None, True),
    ]
    assert {
        (r["raceid"], r["racename"], r["startsat"], r["durations"], r["graces"], r["closesat"])
        for r in rows
    } == {(RACE_ID, "Night Crit", STARTS_AT, 10, 5, STARTS_AT + 15_000)}


def test_rider_races_in_november(archive: DuckArchive) -> None:
    november = ["2025-11-01", "2025-11-30"]
    assert archive.query(sql.RIDER_RACES, [*november, "bob"]) == [
        {
            "raceid": RACE_ID,
            "racename": "Night Crit",
            "startsat": STARTS_AT,
            "classid": 2,
            "disqualified": False,
        }
    ]
    assert archive.query(sql.RIDER_RACES, ["2025-12-01", "2025-12-31", "bob"]) == []
    assert archive.query(sql.RIDER_RACES, [*november, "zed"]) == []  # never entered


def test_cadence_per_class_per_day_of_entered_riders(archive: DuckArchive) -> None:
    rows = archive.query(sql.CADENCE_PER_CLASS_PER_DAY, ["2025-11-01", "2025-11-30"])
    assert pick(rows, "day", "classid", "readings", "avg_cadence") == [
        (DAY_BEFORE, 1, 1, 90.0),  # ann 0
        (DAY_BEFORE, 2, 2, 110.0),  # bob 0 (100), hal 0 (120)
        (START_DAY, 1, 5, 118.0),  # ann 1, 2 (90), cat 0, 10 (80), cat 2 (250: no rule)
        (START_DAY, 2, 4, 125.0),  # bob 1, 2, 3 (100), bob 4 (200)
    ]  # zed is entered nowhere; the other race has no card


def test_race_points_sums_the_de_duplicated_readings_without_the_rules(
    archive: DuckArchive,
) -> None:
    rows = archive.query(sql.RACE_POINTS, WHOLE_RACE)
    assert pick(rows, "riderid", "seconds", "points") == [
        ("bob", 5, 4 * 11_475 + 235 * 165),
        ("zed", 1, 235 * 165),
        ("cat", 3, 7_475 + 285 * 65 + 7_475),
        ("ann", 3, 3 * 9_375),
        ("hal", 1, 14_725),
    ]


def test_the_readings_view_is_the_named_querys_own(archive: DuckArchive) -> None:
    rows = archive.db.execute(
        f"SELECT raceid, riderid, second, day FROM {ARCHIVE_READINGS_VIEW} "
        "WHERE riderid = 'ann' ORDER BY raceid, second"
    ).fetchall()
    assert rows == [
        (RACE_ID, "ann", 0, DAY_BEFORE),
        (RACE_ID, "ann", 1, START_DAY),
        (RACE_ID, "ann", 2, START_DAY),
        ("crit-2", "ann", 0, START_DAY),
    ]


def test_the_audit_on_the_local_archive_is_exact(archive: DuckArchive) -> None:
    result = run(archive, RACE_ID, STARTS_AT, (DAY_BEFORE, NEXT_DAY), stored_placings())
    assert result.exact
    assert (result.recount.records, result.recount.counted) == (16, 8)


def test_an_empty_archive_answers_with_no_rows(tmp_path: Path) -> None:
    empty = DuckArchive(tmp_path)
    assert empty.query(sql.RACE_READINGS, WHOLE_RACE) == []
    assert empty.query(sql.RACE_CARD, [START_DAY, RACE_ID]) == []


def test_a_query_that_fails_says_which(archive: DuckArchive) -> None:
    with pytest.raises(ArchiveQueryError, match=r"^race_card: "):
        archive.query(sql.RACE_CARD, [START_DAY])  # a parameter short
