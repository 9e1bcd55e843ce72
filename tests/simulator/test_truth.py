"""Ground truth: the shared scoring of the readings the model produced, written and compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.scoring import Score, ground_truth
from shared.standings import Standing
from simulator.model import RaceConfig, race
from simulator.runner import RunOptions, simulate
from simulator.transports.memory import MemoryTransport as Recorder
from simulator.truth import GroundTruth, compare, load_ground_truth, write_ground_truth

CFG = RaceConfig("race-t", riders=40, duration=90, seed=9, start_ms=1_700_000_000_000)


def expected() -> dict[tuple[str, str], Score]:
    return ground_truth(r for b in race(CFG) for r in b)


def test_truth_equals_the_shared_scoring_of_all_readings(tmp_path: Path) -> None:
    summary = simulate(
        CFG, Recorder(), RunOptions(time_compression=0, truth_path=tmp_path / "t.json")
    )
    want = expected()
    assert len(want) == CFG.riders
    got = summary.truth
    for (race_id, rider_id), score in want.items():
        assert race_id == CFG.race_id
        t = got.riders[rider_id]
        assert (t.points, t.seconds, t.last_second) == (
            score.points,
            score.seconds,
            score.last_second,
        )
    assert set(got.riders) == {k[1] for k in want}


def test_truth_ignores_injected_duplicates_and_reordering(tmp_path: Path) -> None:
    rec = Recorder()
    options = RunOptions(
        time_compression=0,
        duplicate_fraction=0.2,
        reorder_window=50,
        truth_path=tmp_path / "t.json",
    )
    summary = simulate(CFG, rec, options)
    produced = sum(len(b) for b in race(CFG))
    assert summary.produced == produced
    assert summary.duplicates == len(rec.items) - produced
    assert 0.15 * produced < summary.duplicates < 0.25 * produced
    # what was sent, scored by the shared scoring, is exactly the truth
    from shared.contract import parse_reading

    sent_truth = ground_truth(parse_reading(i.payload) for i in rec.items)
    assert {k[1]: v.points for k, v in sent_truth.items()} == {
        rid: t.points for rid, t in summary.truth.riders.items()
    }


def test_file_format_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "truth.json"
    simulate(CFG, Recorder(), RunOptions(time_compression=0, truth_path=path))
    raw = json.loads(path.read_text())
    assert raw["v"] == 1
    assert raw["raceId"] == "race-t"
    assert raw["seed"] == 9
    first = raw["riders"]["rider-00000"]
    assert set(first) == {"name", "classId", "points", "seconds", "lastSecond"}
    score = expected()[("race-t", "rider-00000")]
    assert (first["points"], first["seconds"], first["lastSecond"]) == (
        score.points,
        score.seconds,
        score.last_second,
    )
    loaded = load_ground_truth(path)
    assert loaded.to_json() == raw


def test_compare_exact_and_differences() -> None:
    truth = GroundTruth("r", 1)
    from simulator.truth import RiderTruth

    truth.riders["a"] = RiderTruth("A", 1, 1000, 10, 9)
    truth.riders["b"] = RiderTruth("B", 2, 500, 5, 4)
    assert compare(truth, {"a": (1000, 10), "b": (500, 5)}) == []
    assert compare(truth, {"a": {"points": 1000, "seconds": 10}, "b": Score(500, 5, 4)}) == []
    standing = Standing("r", "a", "A", 1, 1000, 10, 9, (1 << 10) - 1, 3, 0, 0)
    assert compare(truth, {"a": standing, "b": (500, 5)}) == []
    assert compare(truth, {"a": (990, 9), "c": (1, 1)}) == [
        "a: points 990 != truth 1000",
        "a: seconds 9 != truth 10",
        "b: missing from standings (truth 500 points)",
        "c: in standings but not in the ground truth",
    ]


def test_load_refuses_what_is_not_a_truth_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": 1, "raceId": "r"}')
    with pytest.raises(ValueError, match="not a ground-truth file"):
        load_ground_truth(bad)
    bad.write_text('{"v": 2}')
    with pytest.raises(ValueError, match="unsupported ground-truth version 2"):
        load_ground_truth(bad)
    with pytest.raises(ValueError, match="not a ground-truth file"):
        load_ground_truth(tmp_path / "missing.json")


def test_write_is_atomic_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    truth = GroundTruth("r", 1)
    write_ground_truth(path, truth)
    write_ground_truth(path, truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
