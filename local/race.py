"""Race the simulator against a running local stack and check the result through the API.

Used by ``breakaway demo``, the ``local`` benchmark and the end-to-end tests. The simulator
runs as its own process (``breakaway simulate``, exactly what a user runs); this process
watches the API while it rides:

- visibility latency: the leaderboard's top riders are polled; when a rider on two
  consecutive polls has ``lastSecond`` move from a to b, seen at time t, each second s in
  (a, b] was published at the race start + s/time-compression and became visible by t (a
  rider who was off the previous poll's page is not timed: his seconds may have become
  visible while he was out of view). The simulator sends second s at that moment (it paces
  by the wall clock from ``--start-ms``), so the time is from publishing to visible;
- iterator age: the event source mapping's IteratorAge (the age of the last record of each
  batch when the function is invoked), if the stack runs in this process;
- exactness: after the run, every standing read back through the API is compared with the
  simulator's ground truth (``simulator.truth.compare``);
- placings: the race closes itself (its schedule runs the closer at ``closesAt`` and the settle
  time); once the API says ``closed``, every page of its results, overall and per class, is
  compared with the placings the ground truth implies (``GroundTruth.placings``).

Races run by the wall clock (``time_compression`` 1): the processor refuses a second that runs
ahead of the race clock, so a compressed race would be refused from its sixth second on.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.leaderboard_api.logic import LEADERBOARD_MAX_AGE_S
from local.api_client import all_results, all_standings, race, top
from local.procs import cli_command
from shared.contract import CLASS_IDS
from shared.races import CLOSE_SETTLE_S

log = logging.getLogger(__name__)

SIMULATOR_START_S = 3.0
"""Race second 0 is this far ahead of launching the simulator: time for it to start and
connect, so that each second goes out when due (one sent late is timed from when it was due)."""


@dataclass(frozen=True)
class RaceSpec:
    race_id: str
    riders: int = 1000
    duration: int = 300
    transport: str = "mqtt"
    seed: int = 1
    time_compression: float = 1.0
    duplicate_fraction: float = 0.0
    reorder_window: int = 0
    probe_limit: int = 100
    probe_interval_s: float = 0.5
    grace_s: int = 2
    """Seconds after the last race second that late readings still count; then it closes."""
    cheats: tuple[tuple[str, int], ...] = ()
    """(simulate's cheating option, how many readings): each must be refused."""
    no_shows: int = 0
    """Riders entered who never ride: DNS in the placings."""
    connections: int = 0
    """MQTT connections (devices) to ride on; 0: as many as the riders' rate needs."""
    close_timeout_s: float = 60.0
    """How long after its scheduled close the race may take to show as closed."""


@dataclass
class RaceReport:
    spec: RaceSpec
    simulator_exit: int = 0
    simulator_output: str = ""
    latencies_s: list[float] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    riders_checked: int = 0
    wall_s: float = 0.0
    drained: bool = False
    finished: int | None = None
    """Riders the race record counts as finished (their final reading counted, each once),
    after the drain; None if the race could not be read."""
    closed: bool = False
    """The API showed the race closed within ``close_timeout_s`` of its scheduled close."""
    placing_differences: list[str] = field(default_factory=list)
    placings_checked: int = 0
    """Placings compared (overall and in every class)."""

    @property
    def exact(self) -> bool:
        return self.simulator_exit == 0 and not self.differences and self.riders_checked > 0

    @property
    def placings_exact(self) -> bool:
        return self.closed and not self.placing_differences and self.placings_checked > 0


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def simulate_command(
    spec: RaceSpec, endpoints_file: Path, truth_file: Path, start_ms: int
) -> list[str]:
    cmd = cli_command(
        "simulate",
        "--target",
        "local",
        "--endpoints-file",
        str(endpoints_file),
        "--transport",
        spec.transport,
        "--riders",
        str(spec.riders),
        "--duration",
        str(spec.duration),
        "--race-id",
        spec.race_id,
        "--seed",
        str(spec.seed),
        "--start-ms",
        str(start_ms),
        "--time-compression",
        str(spec.time_compression),
        "--ground-truth",
        str(truth_file),
        "--grace",
        str(spec.grace_s),
    )
    for option, count in spec.cheats:
        cmd += [f"--{option}", str(count)]
    if spec.no_shows:
        cmd += ["--no-shows", str(spec.no_shows)]
    if spec.connections:
        cmd += ["--connections", str(spec.connections)]
    if spec.duplicate_fraction:
        cmd += ["--duplicate-fraction", str(spec.duplicate_fraction)]
    if spec.reorder_window:
        cmd += ["--reorder-window", str(spec.reorder_window)]
    return cmd


class Prober:
    """Polls the top of the leaderboard; turns each advance of lastSecond into latencies."""

    def __init__(
        self,
        api_url: str,
        spec: RaceSpec,
        start_s: float,
        on_page: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api_url = api_url
        self.spec = spec
        self.start_s = start_s
        self.on_page = on_page
        self.latencies: list[float] = []
        self.last: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def published_at(self, second: int) -> float:
        c = self.spec.time_compression
        return self.start_s + (second / c if c else 0.0)

    def observe(self, page: dict[str, Any], seen_at: float) -> None:
        seen: dict[str, int] = {}
        for entry in page.get("entries", []):
            rider, last = entry["riderId"], entry["lastSecond"]
            before = self.last.get(rider)
            if before is not None and last > before:
                for s in range(before + 1, last + 1):
                    self.latencies.append(max(0.0, seen_at - self.published_at(s)))
            seen[rider] = max(last, before if before is not None else -1)
        self.last = seen

    def _run(self) -> None:
        while not self.stop.wait(self.spec.probe_interval_s):
            try:
                page = top(self.api_url, self.spec.race_id, self.spec.probe_limit)
            except Exception as exc:  # the race is not there yet, or a transient error
                log.debug("probe: %s", exc)
                continue
            self.observe(page, time.time())
            if self.on_page is not None:
                self.on_page(page)


def run_race(
    spec: RaceSpec,
    endpoints_file: Path,
    api_url: str,
    truth_file: Path,
    *,
    wait_idle: Callable[[float], bool] | None = None,
    on_page: Callable[[dict[str, Any]], None] | None = None,
    simulator_output: Any = subprocess.PIPE,
    drain_timeout_s: float = 120.0,
) -> RaceReport:
    """Ride ``spec`` against the stack at ``endpoints_file``; check standings via the API."""
    report = RaceReport(spec)
    start_s = time.time() + SIMULATOR_START_S  # the simulator sends second s at start_s + s/c
    start_ms = int(start_s * 1000)
    prober = Prober(api_url, spec, start_s, on_page)
    prober.thread.start()
    began = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 (our interpreter, our CLI)
            simulate_command(spec, endpoints_file, truth_file, start_ms),
            stdout=simulator_output,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=spec.duration * 3 + 300,
        )
        report.simulator_exit = proc.returncode
        if isinstance(proc.stdout, bytes):
            report.simulator_output = proc.stdout.decode(errors="replace").strip()
        if wait_idle is not None:
            report.drained = wait_idle(drain_timeout_s)
        else:
            time.sleep(5)
            report.drained = True
        time.sleep(LEADERBOARD_MAX_AGE_S)  # a live ranking built before the last write is rebuilt
    finally:
        prober.stop.set()
        prober.thread.join(10)
    report.wall_s = time.monotonic() - began
    report.latencies_s = prober.latencies
    report.differences, report.riders_checked = check(api_url, spec.race_id, truth_file)
    report.finished = finished_count(api_url, spec.race_id)
    if report.finished is None:
        log.warning("cannot read race %s through the API", spec.race_id)
    report.closed = wait_closed(api_url, spec.race_id, spec.close_timeout_s)
    if report.closed:
        report.placing_differences, report.placings_checked = check_placings(
            api_url, spec.race_id, truth_file
        )
    return report


def wait_closed(api_url: str, race_id: str, timeout_s: float, every_s: float = 0.5) -> bool:
    """Poll the race until the API says ``closed`` (True), or until ``timeout_s`` after its
    scheduled close and settle time (False): nobody closes it, its schedule does. A race that
    cannot be read at all is given ``timeout_s`` from now."""
    deadline = time.time() + timeout_s
    while True:
        try:
            body = race(api_url, race_id)
        except Exception as exc:  # a transient error: the deadline still holds
            log.debug("race %s: %s", race_id, exc)
            body = {}
        if body.get("status") == "closed":
            return True
        if "closesAt" in body:
            deadline = body["closesAt"] / 1000 + CLOSE_SETTLE_S + timeout_s
        if time.time() > deadline:
            return False
        time.sleep(every_s)


def check_placings(api_url: str, race_id: str, truth_file: Path) -> tuple[list[str], int]:
    """Compare every page of the race's results, overall and per class, with the placings the
    ground truth implies: the same riders in the same order with the same fields."""
    from simulator.truth import compare_results, expected_results, load_ground_truth

    truth = load_ground_truth(truth_file)
    differences: list[str] = []
    checked = 0
    for class_id in (None, *CLASS_IDS):
        try:
            got = all_results(api_url, race_id, class_id)
        except Exception as exc:
            return [f"cannot read the results through the API: {exc}"], checked
        scope = "overall" if class_id is None else f"class {class_id}"
        differences += [f"{scope} {d}" for d in compare_results(truth, got, class_id)]
        checked += len(expected_results(truth, class_id))
    return differences, checked


def wait_until_exact(
    api_url: str, race_id: str, truth_file: Path, timeout_s: float = 120.0, every_s: float = 2.0
) -> bool:
    """Poll the API until its standings equal the ground truth (True) or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        differences, checked = check(api_url, race_id, truth_file)
        if checked and not differences:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)


def finished_count(api_url: str, race_id: str) -> int | None:
    """How many riders the race record counts as finished; None if it cannot be read."""
    try:
        return int(race(api_url, race_id)["finished"])
    except Exception as exc:  # the race is not there yet, or a transient error
        log.debug("race %s: %s", race_id, exc)
        return None


def wait_finished(
    api_url: str, race_id: str, riders: int, timeout_s: float = 30.0, every_s: float = 1.0
) -> int | None:
    """Poll the race record until it counts ``riders`` finished (their final readings counted:
    the stream drains a moment after the simulator stops); the last count read, None if the
    race could not be read."""
    deadline = time.monotonic() + timeout_s
    finished: int | None = None
    while True:
        count = finished_count(api_url, race_id)
        if count is not None:
            finished = count
        if finished == riders or time.monotonic() > deadline:
            return finished
        time.sleep(every_s)


def check(api_url: str, race_id: str, truth_file: Path) -> tuple[list[str], int]:
    """Compare every standing read through the API with the ground truth."""
    from simulator.truth import compare, load_ground_truth

    try:
        truth = load_ground_truth(truth_file)
    except ValueError as exc:
        return [f"no ground truth: {exc}"], 0
    try:
        standings = all_standings(api_url, race_id)
    except Exception as exc:
        return [f"cannot read the standings through the API: {exc}"], 0
    got = {rid: (e["points"], e["seconds"]) for rid, e in standings.items()}
    return compare(truth, got), len(truth.riders)
