"""The run loop: pacing by the race clock, the progress line (rich), the summary (fake clock)."""

from __future__ import annotations

import io
import re

import pytest

from simulator.model import RaceConfig
from simulator.runner import RunOptions, simulate
from simulator.transports.memory import MemoryTransport as Recorder


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_time_compression_paces_ticks_by_the_race_clock() -> None:
    clock = FakeClock()
    config = RaceConfig("r", riders=5, duration=20, seed=1, period=2)
    summary = simulate(
        config,
        Recorder(),
        RunOptions(time_compression=4),
        clock=clock,
        sleep=clock.sleep,
    )
    # ticks at seconds 0, 2, ..., 18 happen at t0 + second / 4
    assert clock.sleeps == [0.5] * 9
    assert summary.wall_seconds == 4.5
    assert summary.produced == 50


def test_a_start_ahead_is_waited_for_and_each_second_is_sent_when_due() -> None:
    clock = FakeClock()  # now = 100.0
    config = RaceConfig("r", riders=5, duration=3, seed=1)
    summary = simulate(
        config,
        Recorder(),
        RunOptions(time_compression=1, start_at=102.5),
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == [2.5, 1.0, 1.0]  # seconds 0, 1, 2 go out at 102.5, 103.5, 104.5
    assert summary.wall_seconds == 4.5


def test_seconds_already_past_a_late_start_are_sent_at_once() -> None:
    clock = FakeClock()  # now = 100.0: seconds 0 and 1 (due 98.5, 99.5) are late
    config = RaceConfig("r", riders=5, duration=4, seed=1)
    transport = Recorder()
    simulate(
        config,
        transport,
        RunOptions(time_compression=1, start_at=98.5),
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == [0.5, 1.0]  # seconds 2 and 3: due at 100.5 and 101.5
    assert len(transport.items) == 20


def test_no_compression_never_waits() -> None:
    clock = FakeClock()
    config = RaceConfig("r", riders=5, duration=20, seed=1)
    simulate(config, Recorder(), RunOptions(time_compression=0), clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_progress_line_is_redrawn_about_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")  # rich leaves a dumb terminal alone
    clock = FakeClock()
    out = io.StringIO()
    config = RaceConfig("r", riders=10, duration=5, seed=1)
    summary = simulate(
        config,
        Recorder(),
        RunOptions(time_compression=1, progress=True),
        out=out,
        clock=clock,
        sleep=clock.sleep,
    )
    drawn = re.findall(r"sent [^\r\n\x1b]*", out.getvalue())
    # second 0 and second 1 both fall in the first drawn second: 20/s, then 10/s
    assert list(dict.fromkeys(drawn)) == [
        f"sent {10 * n}  acknowledged {10 * n}  retried 0  throttled 0  failed 0  {rate}/s"
        for n, rate in [(2, 20), (3, 10), (4, 10), (5, 10)]
    ]
    assert out.getvalue().endswith("\x1b[2K")  # the line is erased before the summary
    assert summary.line().startswith("race r: 10 riders, 50 readings produced, 50 sent (0 ")


def test_no_progress_writes_nothing() -> None:
    out = io.StringIO()
    config = RaceConfig("r", riders=10, duration=5, seed=1)
    simulate(config, Recorder(), RunOptions(time_compression=0), out=out)
    assert out.getvalue() == ""
