"""`breakaway demo`: the local stack, a simulated race, the live leaderboard, the final check."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.live import Live
from rich.table import Table

from local.procs import cli_command
from local.race import RaceReport, RaceSpec, run_race, wait_finished, wait_until_exact
from shared import names
from shared.cli import CliError
from shared.scoring import POINTS_PER_OUTPUT

START_TIMEOUT_S = 120.0
TOP = 10
PLAIN_EVERY_S = 30.0
"""How often the board is printed when the output is not a terminal (a log, a pipe)."""
BOARD_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("rank", "right"),
    ("rider", "left"),
    ("name", "left"),
    ("class", "right"),
    ("points", "right"),
    ("seconds", "right"),
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="start the local stack, race simulated riders, show the leaderboard, check it",
        description="Start the local stack (unless one runs), race simulated riders over MQTT "
        "(or Kinesis PutRecords), show the live leaderboard here and at a local URL, then "
        "check every standing read through the API against the simulator's ground truth, let "
        "the race close itself, and check its final placings the same way.",
    )
    p.add_argument("--transport", choices=("mqtt", "kinesis"), default="mqtt")
    p.add_argument("--riders", type=int, default=1000)
    p.add_argument("--duration", type=int, default=300, help="race seconds (default 300)")
    p.add_argument(
        "--grace",
        type=int,
        default=5,
        help="seconds after the last race second that late readings count (default 5)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--state-dir", type=Path, default=Path(names.LOCAL_STATE_DIR))
    p.set_defaults(func=run_demo)


def _start_stack(state: Path) -> subprocess.Popen[bytes]:
    (state / "logs").mkdir(parents=True, exist_ok=True)
    log = (state / "logs" / "stack.log").open("ab")
    proc = subprocess.Popen(  # noqa: S603 (our interpreter, our CLI)
        cli_command("up", "--state-dir", str(state)), stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (state / "endpoints.json").exists():
        if proc.poll() is not None:
            raise CliError(
                f"the local stack did not start (exit {proc.returncode}); "
                f"see {state / 'logs' / 'stack.log'}"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise CliError(f"the local stack did not start in {START_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    return proc


def render(page: dict[str, Any], race_seconds: int, started: float) -> str:
    """The board as plain text (what a log or a pipe gets, every ``PLAIN_EVERY_S``)."""
    elapsed = time.time() - started
    lines = [
        f"race {page.get('raceId')}  {min(elapsed, race_seconds):5.0f}/{race_seconds} s",
        f"{'rank':>4}  {'rider':<12} {'name':<12} {'class':>5} {'points':>10} {'seconds':>7}",
    ]
    for e in page.get("entries", [])[:TOP]:
        lines.append(
            f"{e['rank']:>4}  {e['riderId']:<12} {e['name'][:12]:<12} {e['classId']:>5} "
            f"{e['points'] / POINTS_PER_OUTPUT:>10.2f} {e['seconds']:>7}"
        )
    return "\n".join(lines)


def board_table(page: dict[str, Any], race_seconds: int, started: float) -> Table:
    """The board as a table (what a terminal gets, repainted in place)."""
    elapsed = time.time() - started
    table = Table(
        title=f"race {page.get('raceId')}  {min(elapsed, race_seconds):5.0f}/{race_seconds} s",
        title_justify="left",
    )
    for name, justify in BOARD_COLUMNS:
        table.add_column(name, justify=justify)
    for e in page.get("entries", [])[:TOP]:
        table.add_row(
            str(e["rank"]),
            e["riderId"],
            e["name"][:12],
            str(e["classId"]),
            f"{e['points'] / POINTS_PER_OUTPUT:.2f}",
            str(e["seconds"]),
        )
    return table


class LiveBoard:
    """Shows each leaderboard page the race's prober reads: repainted in place on a terminal
    (``rich.live``), otherwise printed as text every ``PLAIN_EVERY_S``."""

    def __init__(self, race_seconds: int) -> None:
        self.race_seconds = race_seconds
        self.started = time.time()
        self.live: Live | None = None
        self._last_print = 0.0

    def __enter__(self) -> LiveBoard:
        self.started = time.time()
        if sys.stdout.isatty():
            self.live = Live(console=Console(file=sys.stdout), auto_refresh=False)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def show(self, page: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(board_table(page, self.race_seconds, self.started), refresh=True)
        elif time.time() - self._last_print >= PLAIN_EVERY_S:
            self._last_print = time.time()
            print(render(page, self.race_seconds, self.started), flush=True)


def _race_spec(race_id: str, args: argparse.Namespace) -> RaceSpec:
    return RaceSpec(
        race_id=race_id,
        riders=args.riders,
        duration=args.duration,
        transport=args.transport,
        seed=args.seed,
        grace_s=args.grace,
        probe_limit=TOP,
        probe_interval_s=1.0,
    )


def _conclude(report: RaceReport, api_url: str, race_id: str, riders: int) -> int:
    """Print what the race showed, the check of every standing and of the final placings: 0 if
    both are exact."""
    print(report.simulator_output.splitlines()[-1] if report.simulator_output else "")
    lat = sorted(report.latencies_s)
    if lat:
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        print(f"reading -> API visibility: p95 {p95:.2f} s over {len(lat)} samples")
    finished = wait_finished(api_url, race_id, riders)
    print(f"finished: {finished} of {riders} riders sent their final reading, each counted once")
    live = _verdict(
        "CHECK",
        report.exact,
        f"All {report.riders_checked} riders' points and seconds read through the API equal "
        "the ground truth.",
        report.differences,
    )
    if not report.closed:
        print("PLACINGS: NOT checked: the race did not close by itself in time")
        return 1
    placings = _verdict(
        "PLACINGS",
        report.placings_exact,
        f"The race closed itself; all {report.placings_checked} placings (overall and per "
        f"class) read through {api_url}races/{race_id}/results equal the ground truth.",
        report.placing_differences,
    )
    return 0 if live and placings else 1


def _verdict(what: str, exact: bool, detail: str, differences: list[str]) -> bool:
    if exact:
        print(f"{what}: exact. {detail}")
        return True
    print(f"{what}: NOT exact ({len(differences)} differences):")
    for line in differences[:20]:
        print(f"  {line}")
    return False


def _stop_stack(proc: subprocess.Popen[bytes], state: Path) -> None:
    print(f"stopping the local stack (logs in {state / 'logs'}) ...", flush=True)
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_demo(args: argparse.Namespace) -> int:
    state: Path = args.state_dir
    endpoints_file = state / "endpoints.json"
    ours: subprocess.Popen[bytes] | None = None
    if not endpoints_file.exists():
        print("starting the local stack ...", flush=True)
        ours = _start_stack(state)
    try:
        api_url = json.loads(endpoints_file.read_text())["api_url"]
        race_id = f"demo-{int(time.time())}"
        print(
            f"live leaderboard: {api_url}?race={race_id}\n"
            f"API:              {api_url}races/{race_id}/leaderboard\n"
            f"racing {args.riders} riders for {args.duration} s over {args.transport} ...",
            flush=True,
        )
        truth = state / "truth" / f"{race_id}.json"
        truth.parent.mkdir(parents=True, exist_ok=True)
        with LiveBoard(args.duration) as board:
            report = run_race(
                _race_spec(race_id, args),
                endpoints_file,
                api_url,
                truth,
                wait_idle=lambda t: wait_until_exact(api_url, race_id, truth, timeout_s=t),
                on_page=board.show,
                drain_timeout_s=180,
            )
        return _conclude(report, api_url, race_id, args.riders)
    finally:
        if ours is not None:
            _stop_stack(ours, state)
