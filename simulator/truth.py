"""The ground truth: each rider's exact score over the readings the model produced.

It is computed with :func:`shared.scoring.ground_truth` from the model's readings (not from
what a transport sent: fault-injected duplicates and reordering change nothing here, by
design, because the pipeline must count each second once). It is accumulated one race second
at a time: the seconds of two ticks never overlap, so per-tick scores add up exactly.

File format (JSON)::

    {"v": 1, "raceId": "...", "seed": 7,
     "riders": {"rider-00000": {"name": "...", "classId": 1, "points": 123, "seconds": 60,
                                "lastSecond": 59}}}

``compare(truth, standings)`` takes standings as a mapping ``{riderId: (points, seconds)}``;
values may also be any object with ``points`` and ``seconds`` attributes (e.g.
``shared.standings.Standing`` or ``shared.scoring.Score``) or a dict with those keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.contract import Telemetry
from shared.scoring import ground_truth

TRUTH_VERSION = 1


@dataclass(slots=True)
class RiderTruth:
    name: str
    class_id: int
    points: int
    seconds: int
    last_second: int


@dataclass(slots=True)
class GroundTruth:
    race_id: str
    seed: int
    riders: dict[str, RiderTruth] = field(default_factory=dict)

    def add(self, readings: Iterable[Telemetry]) -> None:
        """Fold in readings of race seconds not added before (one tick at a time)."""
        readings = list(readings)
        info = {r.rider_id: r for r in readings}
        for (race_id, rider_id), score in ground_truth(readings).items():
            if race_id != self.race_id:
                raise ValueError(f"reading of race {race_id!r} in the truth of {self.race_id!r}")
            known = self.riders.get(rider_id)
            if known is None:
                r = info[rider_id]
                self.riders[rider_id] = RiderTruth(
                    r.name, r.class_id, score.points, score.seconds, score.last_second
                )
            else:
                known.points += score.points
                known.seconds += score.seconds
                known.last_second = max(known.last_second, score.last_second)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": TRUTH_VERSION,
            "raceId": self.race_id,
            "seed": self.seed,
            "riders": {
                rid: {
                    "name": t.name,
                    "classId": t.class_id,
                    "points": t.points,
                    "seconds": t.seconds,
                    "lastSecond": t.last_second,
                }
                for rid, t in sorted(self.riders.items())
            },
        }


def write_ground_truth(path: str | os.PathLike[str], truth: GroundTruth) -> Path:
    """Write atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(truth.to_json(), indent=1) + "\n")
    tmp.replace(target)
    return target


def load_ground_truth(path: str | os.PathLike[str]) -> GroundTruth:
    """Read a ground-truth file; ValueError with a one-line reason if it is not one."""
    try:
        raw = json.loads(Path(path).read_text())
        if raw.get("v") != TRUTH_VERSION:
            raise ValueError(f"unsupported ground-truth version {raw.get('v')!r}")
        truth = GroundTruth(race_id=str(raw["raceId"]), seed=int(raw["seed"]))
        for rid, t in raw["riders"].items():
            truth.riders[rid] = RiderTruth(
                name=str(t["name"]),
                class_id=int(t["classId"]),
                points=int(t["points"]),
                seconds=int(t["seconds"]),
                last_second=int(t["lastSecond"]),
            )
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a ground-truth file ({exc})") from exc
    return truth


def _points_seconds(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple | list):
        return int(value[0]), int(value[1])
    if isinstance(value, Mapping):
        return int(value["points"]), int(value["seconds"])
    return int(value.points), int(value.seconds)


def compare(truth: GroundTruth, standings: Mapping[str, Any]) -> list[str]:
    """Differences between the truth and stored standings; ``[]`` means exact.

    ``standings``: ``{riderId: (points, seconds)}`` (or objects/dicts with points, seconds).
    Each difference is one line, e.g. ``rider-00003: points 1234 != truth 1240``.
    """
    diffs: list[str] = []
    for rid in sorted(truth.riders.keys() | standings.keys()):
        want = truth.riders.get(rid)
        if want is None:
            diffs.append(f"{rid}: in standings but not in the ground truth")
            continue
        if rid not in standings:
            diffs.append(f"{rid}: missing from standings (truth {want.points} points)")
            continue
        got_points, got_seconds = _points_seconds(standings[rid])
        if got_points != want.points:
            diffs.append(f"{rid}: points {got_points} != truth {want.points}")
        if got_seconds != want.seconds:
            diffs.append(f"{rid}: seconds {got_seconds} != truth {want.seconds}")
    return diffs
