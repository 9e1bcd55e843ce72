"""The ground truth: each entered rider's exact score over the readings that count, and the
race's final placings that follow from it.

It is computed with :func:`shared.scoring.ground_truth` from the model's readings (not from
what a transport sent: fault-injected duplicates and reordering change nothing here, by design,
because the pipeline must count each second once). Readings that must not count (the cheating
readings of :mod:`simulator.faults`) are never added; they are tallied by the reason the
pipeline must give for refusing them (``deadLetters``, by ``shared.counting.Refusal`` name). It
is accumulated one race second at a time: the seconds of two ticks never overlap, so per-tick
scores add up exactly.

Every entered rider is in the truth, a rider who never rode with 0 seconds (``DNS`` in the
placings). :meth:`GroundTruth.placings` computes the final placings with the closer's own
:func:`shared.placings.compute_placings` from the entries and these tallies (nobody
disqualified unless said), so a test can hold the API's results to them exactly.

File format (JSON)::

    {"v": 2, "raceId": "...", "seed": 7,
     "riders": {"rider-00000": {"name": "...", "classId": 1, "deviceId": "...", "points": 123,
                                "seconds": 60, "lastSecond": 59}},
     "deadLetters": {"FromTheFuture": 2, ...}, "spoofedCounted": 1}

``deviceId`` is absent for a rider entered without one; ``lastSecond`` is -1 for a rider with no
counted second. ``compare(truth, standings)`` takes standings as a mapping
``{riderId: (points, seconds)}``; values may also be any object with ``points`` and ``seconds``
attributes (e.g. ``shared.standings.Standing``) or a dict with those keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from shared.contract import Telemetry
from shared.counting import Refusal
from shared.placings import Placing, Placings, Tally, compute_placings
from shared.races import EnteredRider, Entry
from shared.scoring import ground_truth

TRUTH_VERSION: Final = 2


@dataclass(slots=True)
class RiderTruth:
    name: str
    class_id: int
    points: int = 0
    seconds: int = 0
    last_second: int = -1
    device_id: str | None = None


@dataclass(slots=True)
class GroundTruth:
    race_id: str
    seed: int
    riders: dict[str, RiderTruth] = field(default_factory=dict)
    dead_letters: dict[Refusal, int] = field(default_factory=dict)
    """Readings sent that the pipeline must refuse, by the reason it must give."""
    spoofed_counted: int = 0
    """Readings whose payload claimed another device but that count (the topic says whose)."""

    @classmethod
    def of_entries(cls, race_id: str, seed: int, entries: Iterable[Entry]) -> GroundTruth:
        """A truth for these entered riders, each with nothing counted yet."""
        truth = cls(race_id=race_id, seed=seed)
        for e in entries:
            truth.riders[e.rider_id] = RiderTruth(e.name, e.class_id, device_id=e.device_id)
        return truth

    def add(self, readings: Iterable[Telemetry]) -> None:
        """Fold in counted readings of race seconds not added before (one tick at a time); each
        must be of this race and of an entered rider."""
        for (race_id, rider_id), score in ground_truth(readings).items():
            if race_id != self.race_id:
                raise ValueError(f"reading of race {race_id!r} in the truth of {self.race_id!r}")
            known = self.riders.get(rider_id)
            if known is None:
                raise ValueError(f"reading of {rider_id!r}, who is not entered")
            known.points += score.points
            known.seconds += score.seconds
            known.last_second = max(known.last_second, score.last_second)

    def refused(self, reason: Refusal, count: int = 1) -> None:
        """Note readings sent that the pipeline must refuse for ``reason``."""
        if count:
            self.dead_letters[reason] = self.dead_letters.get(reason, 0) + count

    def entries(self) -> list[EnteredRider]:
        return [
            EnteredRider(
                Entry(rider_id=rid, name=t.name, class_id=t.class_id, device_id=t.device_id)
            )
            for rid, t in sorted(self.riders.items())
        ]

    def placings(self, disqualified: Collection[str] = ()) -> Placings:
        """The final placings the closer must store: overall and per class, from the entries
        and these tallies, with ``disqualified`` riders as DSQ."""
        entered = [
            EnteredRider(e.entry, disqualified=e.rider_id in disqualified) for e in self.entries()
        ]
        tallies = {rid: Tally(t.points, t.seconds) for rid, t in self.riders.items()}
        return compute_placings(entered, tallies)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": TRUTH_VERSION,
            "raceId": self.race_id,
            "seed": self.seed,
            "riders": {rid: _rider_json(t) for rid, t in sorted(self.riders.items())},
            "deadLetters": {r.value: n for r, n in sorted(self.dead_letters.items(), key=_name)},
            "spoofedCounted": self.spoofed_counted,
        }


def _name(item: tuple[Refusal, int]) -> str:
    return item[0].value


def _rider_json(t: RiderTruth) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "classId": t.class_id}
    if t.device_id is not None:
        out["deviceId"] = t.device_id
    out |= {"points": t.points, "seconds": t.seconds, "lastSecond": t.last_second}
    return out


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
            device = t.get("deviceId")
            truth.riders[rid] = RiderTruth(
                name=str(t["name"]),
                class_id=int(t["classId"]),
                points=int(t["points"]),
                seconds=int(t["seconds"]),
                last_second=int(t["lastSecond"]),
                device_id=None if device is None else str(device),
            )
        for reason, count in raw["deadLetters"].items():
            truth.dead_letters[Refusal(reason)] = int(count)
        truth.spoofed_counted = int(raw["spoofedCounted"])
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

    ``standings``: ``{riderId: (points, seconds)}`` (or objects/dicts with points, seconds). A
    rider with no counted second has no standing. Each difference is one line, e.g.
    ``rider-00003: points 1234 != truth 1240``.
    """
    diffs: list[str] = []
    for rid in sorted(truth.riders.keys() | standings.keys()):
        want = truth.riders.get(rid)
        if want is None:
            diffs.append(f"{rid}: in standings but not in the ground truth")
            continue
        if rid not in standings:
            if want.seconds:
                diffs.append(f"{rid}: missing from standings (truth {want.points} points)")
            continue
        got_points, got_seconds = _points_seconds(standings[rid])
        if got_points != want.points:
            diffs.append(f"{rid}: points {got_points} != truth {want.points}")
        if got_seconds != want.seconds:
            diffs.append(f"{rid}: seconds {got_seconds} != truth {want.seconds}")
    return diffs


RESULT_FIELDS: Final = ("rank", "riderId", "name", "classId", "points", "seconds", "outcome")
"""An entry of ``GET /races/{raceId}/results``, in the API's field names."""


def result_entry(p: Placing) -> dict[str, Any]:
    """A placing as the results route lists it."""
    return {
        "rank": p.rank,
        "riderId": p.rider_id,
        "name": p.name,
        "classId": p.class_id,
        "points": p.points,
        "seconds": p.seconds,
        "outcome": p.outcome,
    }


def expected_results(
    truth: GroundTruth, class_id: int | None = None, disqualified: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The entries ``GET /races/{raceId}/results[?classId=]`` must list, in order (every page
    of it, concatenated)."""
    placings = truth.placings(disqualified)
    listed = placings.overall if class_id is None else placings.by_class[class_id]
    return [result_entry(p) for p in listed]


def compare_results(
    truth: GroundTruth,
    results: Sequence[Mapping[str, Any]],
    class_id: int | None = None,
    disqualified: Collection[str] = (),
) -> list[str]:
    """Differences between the API's results (every page, in order) and the truth's placings;
    ``[]`` means exact. One line each, naming the position and the rider."""
    want = expected_results(truth, class_id, disqualified)
    got = [{k: r.get(k) for k in RESULT_FIELDS} for r in results]
    diffs = [
        f"#{i + 1}: {g} != truth {w}"
        for i, (g, w) in enumerate(zip(got, want, strict=False))
        if g != w
    ]
    if len(got) != len(want):
        diffs.append(f"{len(got)} results listed, the truth places {len(want)} riders")
    return diffs
