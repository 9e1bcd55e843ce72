"""The pure merge: a second counts once, whatever arrives twice, late or out of order."""

from __future__ import annotations

import pytest

from shared.contract import Telemetry
from shared.scoring import points
from shared.standings import merge, ranks_among


def r(second: int, cadence: int = 90, name: str = "Ann", class_id: int = 2) -> Telemetry:
    return Telemetry(
        v=1,
        event_id=f"e{second}",
        race_id="r1",
        rider_id="ann",
        name=name,
        class_id=class_id,
        second=second,
        cadence=cadence,
        resistance=50,
        device_timestamp=1000 + second,
        event="update",
    )


def test_a_new_rider_is_merged_into_version_one_with_the_seconds_counted() -> None:
    m = merge(None, [r(0), r(2)], now_ms=99)

    s = m.standing
    assert (s.points, s.seconds, s.last_second, s.counted, s.version) == (
        2 * points(90, 50),
        2,
        2,
        0b101,
        1,
    )
    assert (s.updated_at, s.last_device_ts, m.duplicates, len(m.applied)) == (99, 1002, 0, 2)


def test_seconds_already_counted_are_duplicates_even_with_other_values() -> None:
    first = merge(None, [r(0), r(1)], now_ms=1).standing

    m = merge(first, [r(1, cadence=200), r(0), r(2, cadence=100)], now_ms=2)

    assert m.standing.version == first.version + 1
    assert m.standing.points == 2 * points(90, 50) + points(100, 50)
    assert (m.standing.seconds, m.duplicates, [a.second for a in m.applied]) == (3, 2, [2])


def test_only_duplicates_leave_the_standing_untouched() -> None:
    first = merge(None, [r(0)], now_ms=1).standing

    m = merge(first, [r(0), r(0)], now_ms=5)

    assert not m.changed
    assert m.standing is first
    assert m.duplicates == 2


def test_a_duplicate_inside_one_batch_counts_once() -> None:
    m = merge(None, [r(3), r(3), r(3)], now_ms=1)

    assert (m.standing.points, m.standing.seconds, m.duplicates) == (points(90, 50), 1, 2)


def test_late_seconds_count_and_do_not_move_last_second_back() -> None:
    first = merge(None, [r(10, name="Ann B", class_id=4)], now_ms=1).standing

    s = merge(first, [r(3, name="Ann A", class_id=1)], now_ms=2).standing

    assert (s.seconds, s.last_second, s.name, s.class_id) == (2, 10, "Ann B", 4)
    assert s.counted == (1 << 10) | (1 << 3)


def test_the_last_second_of_a_day_long_race_fits() -> None:
    s = merge(None, [r(86_400)], now_ms=1).standing

    assert s.counted.bit_length() == 86_401


def test_readings_of_another_rider_are_refused() -> None:
    other = r(0).model_copy(update={"rider_id": "bob"})

    with pytest.raises(ValueError, match="merged into"):
        merge(None, [r(0), other], now_ms=1)


def test_ranks_among_are_competition_ranks_overall_and_in_class() -> None:
    field = [(500, 1), (400, 2), (400, 1), (300, 1), (300, 2), (100, 3)]
    riders = [(400, 2), (300, 1), (100, 3), (50, 4), (500, 1)]

    assert ranks_among(field, riders) == [(2, 1), (4, 3), (6, 1), (7, 1), (1, 1)]
    assert ranks_among([], [(10, 1)]) == [(1, 1)]
    assert ranks_among(field, []) == []
