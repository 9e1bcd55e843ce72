"""The records of a class and race length (shared.history, pure): one row per rider (their best),
ordered by points then by when set, the top RECORDS_KEPT kept; who holds the record on a tie;
merging the same results again changes nothing."""

from __future__ import annotations

import pytest

from shared.history import RECORDS_KEPT, Best, ClassRecords, RaceRef

EARLY = RaceRef("early", "Early Crit", 1_000, 600)
LATE = RaceRef("late", "Late Crit", 2_000, 600)
LATER = RaceRef("later", "Later Crit", 3_000, 600)
LONG = RaceRef("long", "Long Crit", 1_500, 3_600)


def best(rider: str, points: int, race: RaceRef = EARLY, class_id: int = 1) -> Best:
    return Best(rider, rider.title(), class_id, points, points // 3, race)


def rows(records: ClassRecords) -> list[tuple[str, int, str]]:
    return [(b.rider_id, b.points, b.race.race_id) for b in records.rows]


def test_rows_are_ordered_by_points_then_when_set_then_rider() -> None:
    records = ClassRecords(1, 600).merged(
        [best("cat", 700), best("ann", 900), best("bob", 900), best("dan", 100)]
    )
    assert rows(records) == [
        ("ann", 900, "early"), ("bob", 900, "early"), ("cat", 700, "early"),
        ("dan", 100, "early"),
    ]  # fmt: skip
    assert records.version == 1
    later = records.merged([best("eve", 900, LATE)])
    assert rows(later)[:3] == [("ann", 900, "early"), ("bob", 900, "early"), ("eve", 900, "late")]
    assert later.version == 2


def test_each_rider_keeps_one_row_their_best() -> None:
    first = ClassRecords(1, 600).merged([best("ann", 500), best("bob", 800)])
    second = first.merged([best("ann", 900, LATE), best("bob", 600, LATE)])
    assert rows(second) == [("ann", 900, "late"), ("bob", 800, "early")]


def test_an_equal_later_result_does_not_replace_the_earlier_row() -> None:
    first = ClassRecords(1, 600).merged([best("ann", 900, LATE)])
    assert rows(first.merged([best("ann", 900, LATER)])) == [("ann", 900, "late")]
    # an equal result set earlier (a race that closed later than it started) is the one kept
    assert rows(first.merged([best("ann", 900, EARLY)])) == [("ann", 900, "early")]


def test_merging_the_same_results_again_changes_nothing_but_the_version() -> None:
    results = [best("ann", 900), best("bob", 700)]
    once = ClassRecords(1, 600).merged(results)
    twice = once.merged(results)
    assert twice.rows == once.rows
    assert twice.version == once.version + 1


def test_only_the_top_rows_are_kept() -> None:
    many = [best(f"r{i:03d}", 1_000 - i) for i in range(RECORDS_KEPT + 5)]
    records = ClassRecords(1, 600).merged(many)
    assert len(records.rows) == RECORDS_KEPT
    assert records.rows[-1].rider_id == f"r{RECORDS_KEPT - 1:03d}"
    # a result equal to the last row kept, set later, does not enter; one above it pushes the
    # last out (and, equal to the row before, set later, goes after it)
    assert records.merged([best("low", 1_000 - (RECORDS_KEPT - 1), LATE)]).rows == records.rows
    pushed = records.merged([best("new", 1_000 - (RECORDS_KEPT - 2), LATE)])
    assert len(pushed.rows) == RECORDS_KEPT
    assert [b.rider_id for b in pushed.rows[-2:]] == [f"r{RECORDS_KEPT - 2:03d}", "new"]


def test_a_result_of_another_class_or_race_length_is_refused() -> None:
    records = ClassRecords(1, 600)
    with pytest.raises(ValueError, match="is not a result of class 1, 600 s"):
        records.merged([best("ann", 900, class_id=2)])
    with pytest.raises(ValueError, match="is not a result of class 1, 600 s"):
        records.merged([best("ann", 900, LONG)])


def test_no_rows_no_holder() -> None:
    assert ClassRecords(1, 600).holders() == ()
    assert not ClassRecords(1, 600).held_by("ann", "early")


def test_equalling_a_record_in_a_later_race_does_not_take_it() -> None:
    records = ClassRecords(1, 600).merged([best("ann", 900, LATE)])
    records = records.merged([best("bob", 900, LATER)])
    assert [b.rider_id for b in records.holders()] == ["ann"]
    assert records.held_by("ann", "late")
    assert not records.held_by("bob", "later")


def test_riders_tying_for_a_new_record_in_one_race_hold_it_together() -> None:
    records = ClassRecords(1, 600).merged([best("ann", 800, EARLY)])
    records = records.merged([best("cat", 900, LATE), best("bob", 900, LATE), best("dan", 500)])
    assert [b.rider_id for b in records.holders()] == ["bob", "cat"]
    assert records.held_by("bob", "late")
    assert records.held_by("cat", "late")
    assert not records.held_by("ann", "early")
    # the same rider's result in another race is not the record
    assert not records.held_by("bob", "early")


def test_a_tie_set_earlier_but_merged_later_holds_the_record() -> None:
    """Races are weighed as they close; the record goes by when it was set."""
    records = ClassRecords(1, 600).merged([best("bob", 900, LATE)])
    records = records.merged([best("ann", 900, EARLY)])
    assert [b.rider_id for b in records.holders()] == ["ann"]


def test_best_beats_only_with_more_points() -> None:
    assert best("ann", 900).beats(None)
    assert best("ann", 900).beats(best("ann", 899))
    assert not best("ann", 900).beats(best("ann", 900, LATE))
    assert best("ann", 1, LATE).set_at == 2_000
    assert best("ann", 1, LONG).duration_s == 3_600
