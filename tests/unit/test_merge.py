"""The pure merge: a second counts once, whatever arrives twice, late or out of order; nothing
counts after the rider's final second; the name and class are the entry's."""

from __future__ import annotations

import pytest

from shared.contract import Telemetry
from shared.races import Entry
from shared.scoring import points
from shared.standings import merge

ANN = Entry(rider_id="ann", name="Ann", class_id=2)


def r(second: int, cadence: int = 90, event: str = "update") -> Telemetry:
    return Telemetry(
        v=2,
        event_id=f"e{second}",
        race_id="r1",
        rider_id="ann",
        second=second,
        cadence=cadence,
        resistance=50,
        device_timestamp=1000 + second,
        event=event,
    )


def final(second: int) -> Telemetry:
    return r(second, event="final")


def test_a_new_rider_is_merged_into_version_one_with_the_seconds_counted() -> None:
    m = merge(None, [r(0), r(2)], now_ms=99, entry=ANN)

    s = m.standing
    assert (s.points, s.seconds, s.last_second, s.counted, s.version) == (
        2 * points(90, 50),
        2,
        2,
        0b101,
        1,
    )
    assert (s.updated_at, s.last_device_ts, m.duplicates, len(m.applied)) == (99, 1002, 0, 2)
    assert (s.name, s.class_id, s.final_second, m.changed, m.finishes) == (
        "Ann",
        2,
        -1,
        True,
        False,
    )


def test_seconds_already_counted_are_duplicates_even_with_other_values() -> None:
    first = merge(None, [r(0), r(1)], now_ms=1, entry=ANN).standing

    m = merge(first, [r(1, cadence=200), r(0), r(2, cadence=100)], now_ms=2, entry=ANN)

    assert m.standing.version == first.version + 1
    assert m.standing.points == 2 * points(90, 50) + points(100, 50)
    assert (m.standing.seconds, m.duplicates, [a.second for a in m.applied]) == (3, 2, [2])


def test_only_duplicates_leave_the_standing_untouched() -> None:
    first = merge(None, [r(0)], now_ms=1, entry=ANN).standing

    m = merge(first, [r(0), r(0)], now_ms=5, entry=ANN)

    assert not m.changed
    assert m.standing is first
    assert m.duplicates == 2


def test_a_duplicate_inside_one_batch_counts_once() -> None:
    m = merge(None, [r(3), r(3), r(3)], now_ms=1, entry=ANN)

    assert (m.standing.points, m.standing.seconds, m.duplicates) == (points(90, 50), 1, 2)


def test_late_seconds_count_and_do_not_move_last_second_back() -> None:
    first = merge(None, [r(10)], now_ms=1, entry=ANN).standing

    s = merge(first, [r(3)], now_ms=2, entry=ANN).standing

    assert (s.seconds, s.last_second) == (2, 10)
    assert s.counted == (1 << 10) | (1 << 3)


def test_the_name_and_class_are_the_entrys_at_each_write() -> None:
    first = merge(None, [r(0)], now_ms=1, entry=ANN).standing
    renamed = Entry(rider_id="ann", name="Ann B", class_id=2)

    s = merge(first, [r(1)], now_ms=2, entry=renamed).standing

    assert (first.name, s.name, s.class_id) == ("Ann", "Ann B", 2)


def test_the_last_second_of_a_day_long_race_fits() -> None:
    s = merge(None, [r(86_399)], now_ms=1, entry=ANN).standing

    assert s.counted.bit_length() == 86_400


def test_readings_of_another_rider_are_refused() -> None:
    other = r(0).model_copy(update={"rider_id": "bob"})

    with pytest.raises(ValueError, match="merged into"):
        merge(None, [r(0), other], now_ms=1, entry=ANN)


def test_an_entry_of_another_rider_is_refused() -> None:
    bob = Entry(rider_id="bob", name="Bob", class_id=1)

    with pytest.raises(ValueError, match="entry of bob merged into"):
        merge(None, [r(0)], now_ms=1, entry=bob)


def test_seconds_after_the_final_second_are_refused_whatever_the_order() -> None:
    m = merge(None, [r(101), final(100), r(99)], now_ms=1, entry=ANN)

    s = m.standing
    assert (s.final_second, s.seconds, s.last_second) == (100, 2, 100)
    assert [x.second for x in m.after_final] == [101]
    assert (m.duplicates, m.finishes, m.changed) == (0, True, True)


def test_after_the_final_resent_and_late_earlier_seconds_still_count() -> None:
    first = merge(None, [r(0), final(5)], now_ms=1, entry=ANN).standing

    m = merge(first, [r(3), r(6), final(5), r(0)], now_ms=2, entry=ANN)

    assert [x.second for x in m.applied] == [3]
    assert [x.second for x in m.after_final] == [6]
    assert (m.duplicates, m.finishes) == (2, False)  # 5 and 0 again; finished before
    assert (m.standing.final_second, m.standing.seconds) == (5, 3)


def test_only_refused_readings_change_nothing() -> None:
    first = merge(None, [final(5)], now_ms=1, entry=ANN).standing

    m = merge(first, [r(7), r(8)], now_ms=2, entry=ANN)

    assert (m.changed, m.standing is first, m.duplicates, len(m.after_final)) == (
        False,
        True,
        0,
        2,
    )


def test_a_smaller_final_second_wins_and_what_counted_stays_counted() -> None:
    """A final for an earlier second arrives after later seconds counted (a final resent with
    a corrected second, say): from then on nothing after it counts, but what counted before
    cannot be taken back."""
    first = merge(None, [r(8), final(10)], now_ms=1, entry=ANN).standing

    m = merge(first, [final(6), r(9), r(7)], now_ms=2, entry=ANN)

    s = m.standing
    assert (s.final_second, s.seconds, s.last_second) == (6, 3, 10)  # 8, 10, and 6 itself
    assert [x.second for x in m.after_final] == [9, 7]
    assert (m.changed, m.finishes) == (True, False)


def test_a_final_for_a_second_already_counted_sets_the_final_second() -> None:
    first = merge(None, [r(4)], now_ms=1, entry=ANN).standing

    m = merge(first, [final(4)], now_ms=2, entry=ANN)

    assert (m.changed, m.finishes, m.duplicates, m.applied) == (True, True, 1, ())
    assert (m.standing.final_second, m.standing.version, m.standing.seconds) == (4, 2, 1)
