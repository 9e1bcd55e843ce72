"""The audit's recount (pure): the archive's records of a race, with resends, reordering and
every kind of refused reading, come to the placings the closer stored; a tampered placing is
named, rider by rider."""

from __future__ import annotations

import copy
import random

from shared.audit import Difference, audit, reading_of, recount
from shared.counting import Refusal
from shared.placings import Tally
from tests.archive.helpers import (
    CAT_INVALID,
    CAT_V1,
    OBJECTS,
    RACE_ID,
    TALLIES,
    race_card,
    rows_of,
    stored_placings,
)


def archived_rows() -> list[dict[str, object]]:
    """Every record of the race in the order the objects hold them (the other race's left
    out, as the query's ``raceid = ?`` does)."""
    records = [r for bodies in OBJECTS.values() for lines in bodies for r in lines]
    return rows_of([r for r in records if r["raceId"] == RACE_ID])


def test_the_recount_applies_the_processors_rules_to_every_record() -> None:
    counted = recount(race_card(), archived_rows())
    assert counted.tallies == {r: Tally(points=p, seconds=s) for r, (p, s) in TALLIES.items()}
    assert (counted.records, counted.counted, counted.duplicates) == (16, 8, 2)
    assert counted.refused == {
        Refusal.WRONG_DEVICE: 1,
        Refusal.AFTER_FINAL: 1,
        Refusal.CONTRACT_V1: 1,
        Refusal.INVALID_READING: 1,
        Refusal.SECOND_OUT_OF_RANGE: 1,
        Refusal.NOT_ENTERED: 1,
    }


def test_the_recount_does_not_depend_on_the_order_of_identical_copies() -> None:
    rows = archived_rows()
    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert recount(race_card(), shuffled).tallies == recount(race_card(), rows).tallies


def test_a_row_is_parsed_as_the_processor_parses_a_record() -> None:
    (v1, invalid) = rows_of([CAT_V1, CAT_INVALID])
    assert reading_of(v1) is Refusal.CONTRACT_V1
    assert reading_of(invalid) is Refusal.INVALID_READING


def test_the_stored_placings_of_the_race_are_exact() -> None:
    result = audit(race_card(), archived_rows(), stored_placings())
    assert result.exact
    assert result.differences == []
    assert result.placings_compared == 10  # five overall, five in their classes


def test_a_tampered_placing_is_named_with_its_scope_rider_and_field() -> None:
    stored = copy.deepcopy(stored_placings())
    stored["ALL"][1]["points"] = 28_126  # ann, overall
    stored["C2"].pop()  # hal, class 2
    result = audit(race_card(), archived_rows(), stored)
    assert not result.exact
    assert [str(d) for d in result.differences] == [
        "ALL ann: points stored 28126 != archive 28125",
        "C2 hal: not stored, the archive places rank None, name 'Hal', classId 2, "
        "points 14725, seconds 1, outcome 'DSQ'",
    ]
    assert [(d.scope, d.rider_id) for d in result.differences] == [("ALL", "ann"), ("C2", "hal")]


def test_a_stored_rider_the_archive_does_not_know_is_a_difference() -> None:
    stored = copy.deepcopy(stored_placings())
    ghost = dict(stored["C3"][0], riderId="gus", name="Gus")
    stored["C3"].append(ghost)
    (difference,) = audit(race_card(), archived_rows(), stored).differences
    assert difference == Difference(
        "C3", "gus", {k: ghost[k] for k in difference.stored or {}}, None
    )
    assert str(difference) == (
        "C3 gus: stored rank None, name 'Gus', classId 3, points 0, seconds 0, outcome 'DNS', "
        "not in the archive's card"
    )


def test_a_reading_lost_from_the_archive_changes_the_placings() -> None:
    rows = [r for r in archived_rows() if (r["riderid"], r["second"]) != ("cat", 0)]
    differences = [str(d) for d in audit(race_card(), rows, stored_placings()).differences]
    assert differences == [
        "ALL cat: rank stored 3 != archive None, points stored 7475 != archive 0, "
        "seconds stored 1 != archive 0, outcome stored 'ranked' != archive 'DNS'",
        "C1 cat: rank stored 2 != archive None, points stored 7475 != archive 0, "
        "seconds stored 1 != archive 0, outcome stored 'ranked' != archive 'DNS'",
    ]
