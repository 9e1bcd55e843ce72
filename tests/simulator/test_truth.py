"""Ground truth: the shared scoring of the readings that count, every entered rider, the final
placings that follow, written and compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.counting import Refusal
from shared.placings import Tally, compute_placings
from shared.races import EnteredRider, Entry
from shared.scoring import Score, ground_truth
from shared.standings import Standing
from simulator.fleet import PRODUCER_ID
from simulator.model import RaceConfig, race, rider
from simulator.runner import RunOptions, simulate
from simulator.transports.memory import MemoryTransport as Recorder
from simulator.truth import (
    GroundTruth,
    RiderTruth,
    compare,
    compare_results,
    expected_results,
    load_ground_truth,
    write_ground_truth,
)

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
    assert raw["v"] == 2
    assert raw["raceId"] == "race-t"
    assert raw["seed"] == 9
    assert (raw["deadLetters"], raw["spoofedCounted"]) == ({}, 0)
    first = raw["riders"]["rider-00000"]
    assert set(first) == {"name", "classId", "points", "seconds", "lastSecond"}  # no device
    r0 = rider(CFG, 0)
    assert (first["name"], first["classId"]) == (r0.name, r0.class_id)
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
    # an entered rider who never rode has no standing, and is missed by nobody
    truth.riders["d"] = RiderTruth("D", 3)
    assert compare(truth, {"a": (1000, 10), "b": (500, 5)}) == []
    assert compare(truth, {"a": (1000, 10), "b": (500, 5), "d": (0, 0)}) == []


def test_load_refuses_what_is_not_a_truth_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": 2, "raceId": "r"}')
    with pytest.raises(ValueError, match="not a ground-truth file"):
        load_ground_truth(bad)
    bad.write_text('{"v": 1}')
    with pytest.raises(ValueError, match="unsupported ground-truth version 1"):
        load_ground_truth(bad)
    with pytest.raises(ValueError, match="not a ground-truth file"):
        load_ground_truth(tmp_path / "missing.json")


def test_write_is_atomic_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    truth = GroundTruth("r", 1)
    write_ground_truth(path, truth)
    write_ground_truth(path, truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def small_truth() -> GroundTruth:
    """Two classes; a tie at the top overall; a rider who never rode."""
    truth = GroundTruth("r", 1)
    truth.riders["a"] = RiderTruth("Ann", 1, 900, 9, 8, "dev-a")
    truth.riders["b"] = RiderTruth("Bo", 2, 900, 9, 8)
    truth.riders["c"] = RiderTruth("Cy", 1, 400, 4, 3)
    truth.riders["d"] = RiderTruth("Di", 2)
    return truth


def test_placings_follow_from_the_entries_and_the_tallies() -> None:
    truth = small_truth()
    overall = [(p.rank, p.rider_id, p.outcome) for p in truth.placings().overall]
    assert overall == [
        (1, "a", "ranked"),
        (1, "b", "ranked"),
        (3, "c", "ranked"),
        (None, "d", "DNS"),
    ]
    # the closer's own computation, fed the same entries and tallies
    entries = [
        EnteredRider(Entry(rider_id="a", name="Ann", class_id=1, device_id="dev-a")),
        EnteredRider(Entry(rider_id="b", name="Bo", class_id=2)),
        EnteredRider(Entry(rider_id="c", name="Cy", class_id=1)),
        EnteredRider(Entry(rider_id="d", name="Di", class_id=2)),
    ]
    tallies = {"a": Tally(900, 9), "b": Tally(900, 9), "c": Tally(400, 4), "d": Tally(0, 0)}
    assert truth.placings() == compute_placings(entries, tallies)
    dsq = truth.placings(disqualified={"a"}).overall
    assert [(p.rank, p.rider_id, p.outcome) for p in dsq] == [
        (1, "b", "ranked"),
        (2, "c", "ranked"),
        (None, "d", "DNS"),
        (None, "a", "DSQ"),
    ]


def test_expected_results_are_the_api_s_entries_overall_and_per_class() -> None:
    truth = small_truth()
    assert expected_results(truth, class_id=2) == [
        {"rank": 1, "riderId": "b", "name": "Bo", "classId": 2, "points": 900, "seconds": 9,
         "outcome": "ranked"},
        {"rank": None, "riderId": "d", "name": "Di", "classId": 2, "points": 0, "seconds": 0,
         "outcome": "DNS"},
    ]  # fmt: skip
    assert [r["riderId"] for r in expected_results(truth)] == ["a", "b", "c", "d"]
    assert expected_results(truth, class_id=5) == []


def test_compare_results_names_each_difference() -> None:
    truth = small_truth()
    got = [dict(r) for r in expected_results(truth)]
    assert compare_results(truth, got) == []
    got[2]["points"] = 401
    assert compare_results(truth, got[:3]) == [
        "#3: {'rank': 3, 'riderId': 'c', 'name': 'Cy', 'classId': 1, 'points': 401, "
        "'seconds': 4, 'outcome': 'ranked'} != truth {'rank': 3, 'riderId': 'c', 'name': 'Cy', "
        "'classId': 1, 'points': 400, 'seconds': 4, 'outcome': 'ranked'}",
        "3 results listed, the truth places 4 riders",
    ]
    # fields the API adds beyond a result's are not compared
    assert compare_results(truth, [r | {"extra": 1} for r in expected_results(truth)]) == []


def test_every_entered_rider_is_in_the_truth_with_the_producer_device(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    transport = Recorder((PRODUCER_ID,), device_in_payload=True)
    options = RunOptions(time_compression=0, truth_path=path, no_shows=3)
    summary = simulate(CFG, transport, options)
    riders = summary.truth.riders
    assert len(riders) == CFG.riders
    dns = sorted(rid for rid, t in riders.items() if t.seconds == 0)
    assert len(dns) == 3
    assert all((riders[r].points, riders[r].last_second) == (0, -1) for r in dns)
    assert {t.device_id for t in riders.values()} == {PRODUCER_ID}
    assert [p.rider_id for p in summary.truth.placings().overall if p.outcome == "DNS"] == dns
    raw = json.loads(path.read_text())
    assert raw["riders"][dns[0]] == {
        "name": riders[dns[0]].name,
        "classId": riders[dns[0]].class_id,
        "deviceId": PRODUCER_ID,
        "points": 0,
        "seconds": 0,
        "lastSecond": -1,
    }
    assert load_ground_truth(path).to_json() == raw


def test_dead_letters_round_trip(tmp_path: Path) -> None:
    truth = small_truth()
    truth.refused(Refusal.WRONG_DEVICE, 2)
    truth.refused(Refusal.FROM_THE_FUTURE)
    truth.refused(Refusal.WRONG_DEVICE)
    truth.refused(Refusal.AFTER_FINAL, 0)
    truth.spoofed_counted = 4
    path = write_ground_truth(tmp_path / "t.json", truth)
    raw = json.loads(path.read_text())
    assert (raw["deadLetters"], raw["spoofedCounted"]) == (
        {"FromTheFuture": 1, "WrongDevice": 3},
        4,
    )
    loaded = load_ground_truth(path)
    assert loaded.dead_letters == {Refusal.WRONG_DEVICE: 3, Refusal.FROM_THE_FUTURE: 1}
    assert loaded.placings() == truth.placings()


def test_a_reading_of_a_rider_not_entered_or_another_race_is_refused_by_the_truth() -> None:
    truth = GroundTruth.of_entries("r", 1, [Entry(rider_id="a", name="Ann", class_id=1)])
    reading = next(iter(race(RaceConfig("r", riders=2, duration=1))))[1]
    with pytest.raises(ValueError, match="reading of 'rider-00001', who is not entered"):
        truth.add([reading])
    other = next(iter(race(RaceConfig("s", riders=1, duration=1))))[0]
    with pytest.raises(ValueError, match="reading of race 's' in the truth of 'r'"):
        truth.add([other])
