"""Scoring: integer points per distinct second, exact whatever the batching."""

from __future__ import annotations

from shared.contract import Telemetry
from shared.scoring import MAX_POINTS_PER_SECOND, Score, ground_truth, points


def r(rider: str, second: int, cadence: int, resistance: int, race: str = "r1") -> Telemetry:
    return Telemetry(
        v=2,
        event_id=f"{rider}-{second}",
        race_id=race,
        rider_id=rider,
        second=second,
        cadence=cadence,
        resistance=resistance,
        device_timestamp=0,
        event="update",
    )


def test_points_are_the_scaled_alleycat_output() -> None:
    assert points(0, 0) == 35 * 65 == 2275
    assert points(90, 50) == 125 * 115 == 14375
    assert points(200, 100) == MAX_POINTS_PER_SECOND == 235 * 165 == 38775


def test_ground_truth_counts_each_second_once_whatever_the_order() -> None:
    readings = [r("a", 2, 90, 50), r("a", 0, 80, 40), r("a", 2, 90, 50), r("b", 5, 0, 0)]

    assert ground_truth(readings) == {
        ("r1", "a"): Score(points=points(90, 50) + points(80, 40), seconds=2, last_second=2),
        ("r1", "b"): Score(points=2275, seconds=1, last_second=5),
    }
    assert ground_truth(reversed(readings)) == ground_truth(readings)


def test_ground_truth_keeps_races_apart() -> None:
    truth = ground_truth([r("a", 0, 90, 50, race="r1"), r("a", 0, 10, 10, race="r2")])

    assert truth[("r1", "a")].points == 14375
    assert truth[("r2", "a")].points == 45 * 75
