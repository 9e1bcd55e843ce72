"""Runs a race: the model, ground truth, fault injection, pacing, a transport, progress.

The loop is the same whatever the transport: for each reporting second, wait until its wall
time (``second / time_compression`` after the start; compression 0 = no waiting), take every
riding rider's reading from the model (from the device ``simulator.fleet`` assigns it, the
transport's), add those that count to the ground truth, pass them through the fault injector and
hand them to the transport (which blocks when too much is in flight); cheating readings
(``simulator.faults.Cheater``) go straight to the transport and only into the truth's tally of
what must be refused. At the end the fault injector is drained, the transport flushed (awaited),
the readings after riders' finals sent and flushed, the ground truth written, and a one-line
summary returned.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from shared.contract import Telemetry
from simulator.faults import Cheater, Cheats, FaultInjector, outgoing
from simulator.fleet import Fleet, entries
from simulator.model import RaceConfig, reading_of, riders_of, seconds_of
from simulator.transports.base import Counts, Outgoing, Transport, TransportError
from simulator.truth import GroundTruth, write_ground_truth

if TYPE_CHECKING:
    from rich.live import Live


@dataclass(frozen=True)
class RunOptions:
    time_compression: float = 1.0
    """Race seconds per wall-clock second (1 = real time, 60 = a minute per second,
    0 = as fast as the transport takes them)."""
    duplicate_fraction: float = 0.0
    reorder_window: int = 0
    truth_path: Path | None = None
    progress: bool = False
    """Redraw a progress line on ``out`` about once a second (for a terminal, with rich)."""
    flush_timeout: float | None = 600.0
    start_at: float | None = None
    """The ``clock`` reading at which race second 0 is due (the CLI: ``--start-ms`` on the
    wall clock), so a reading goes out at the moment its ``deviceTimestamp`` names: a start
    still ahead is waited for, seconds already past are sent at once. ``None``: when
    :func:`simulate` begins."""
    race_start_at: float | None = None
    """The ``clock`` reading of the race's ``startsAt`` (the processor's race clock starts
    there; with time compression it is earlier than ``start_at``), for readings from the future.
    ``None``: ``start_at``."""
    cheats: Cheats = field(default_factory=Cheats)
    no_shows: int = 0
    """Entered riders who never ride (DNS in the placings)."""


@dataclass
class Summary:
    race_id: str
    riders: int
    produced: int
    duplicates: int
    counts: Counts
    wall_seconds: float
    cpu_seconds: float
    truth_path: Path | None
    truth: GroundTruth

    @property
    def rate(self) -> float:
        return self.counts.sent / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.counts.failed == 0

    def line(self) -> str:
        c = self.counts
        truth = f"; ground truth: {self.truth_path}" if self.truth_path else ""
        refused = sum(self.truth.dead_letters.values())
        cheats = f", {refused} of them to be refused" if refused else ""
        return (
            f"race {self.race_id}: {self.riders} riders, {self.produced} readings produced, "
            f"{c.sent} sent ({self.duplicates} resent by fault injection{cheats}), "
            f"{c.acknowledged} acknowledged, {c.retried} retried, {c.throttled} throttled, "
            f"{c.failed} failed, {self.rate:,.0f} readings/s over {self.wall_seconds:.1f} s, "
            f"CPU {self.cpu_seconds:.2f} s{truth}"
        )


def progress_line(counts: Counts, rate: float) -> str:
    return (
        f"sent {counts.sent}  acknowledged {counts.acknowledged}  retried {counts.retried}  "
        f"throttled {counts.throttled}  failed {counts.failed}  {rate:,.0f}/s"
    )


class _Progress:
    """The progress line: redrawn in place by rich about once a second, erased at the end.

    ``out`` is taken to be a terminal (the caller asked for progress); rich leaves a dumb
    terminal (``TERM=dumb``) alone. rich is imported here, not with the module: only a race
    ridden in a terminal pays for it, not every `breakaway` command.
    """

    def __init__(
        self, out: TextIO, transport: Transport, clock: Callable[[], float], began: float
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out, force_terminal=True)
        self.live: Live = Live(
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._transport = transport
        self._clock = clock
        self._last_draw = began
        self._last_sent = 0

    def tick(self) -> None:
        if self._clock() - self._last_draw < 1.0:
            return
        from rich.text import Text

        now = self._clock()
        counts = self._transport.stats.snapshot()
        rate = (counts.sent - self._last_sent) / (now - self._last_draw)
        self.live.update(Text(progress_line(counts, rate)), refresh=True)
        self._last_draw, self._last_sent = now, counts.sent


class _Ride:
    """One race ridden: the model's readings, each routed by its rider's device, through the
    fault injector or (cheating) straight to the transport, the counted ones into the truth."""

    def __init__(self, config: RaceConfig, transport: Transport, options: RunOptions) -> None:
        self.config, self.transport = config, transport
        self.fleet = Fleet(tuple(transport.devices), transport.device_in_payload)
        self.truth = GroundTruth.of_entries(
            config.race_id, config.seed, entries(config, self.fleet)
        )
        self.faults = FaultInjector(config.seed, options.duplicate_fraction, options.reorder_window)
        self.cheater = Cheater(config, self.fleet, options.cheats, options.no_shows)
        self.produced = 0

    def second(self, second: int, race_clock_s: float) -> None:
        """Send every riding rider's reading of ``second`` and the cheats then due."""
        counted: list[Telemetry] = []
        items: list[Outgoing] = []
        direct = self.cheater.at_tick(second, race_clock_s)
        stamp = self.fleet.in_payload
        for r in riders_of(self.config):
            if second > r.last_second or r.index in self.cheater.no_shows:
                continue
            device = self.fleet.device_of(r.index)
            reading = reading_of(self.config, r, second, device if stamp else None)
            diverted = self.cheater.divert(r.index, second, reading)
            if diverted is None:
                items.append(outgoing(reading, device))
            else:
                direct.append(diverted.item)
            if diverted is None or diverted.counts:
                counted.append(reading)
        self.truth.add(counted)
        self.produced += len(counted)
        self.send(self.faults.feed(items) + direct)

    def send(self, items: list[Outgoing]) -> None:
        if items:
            self.transport.send(items)
        if self.transport.error is not None:
            raise self.transport.error

    def finish(self, timeout: float | None) -> None:
        """Drain the fault injector, send what is due after the last second, and once all of it
        is acknowledged the readings after riders' finals."""
        self.send(self.faults.drain() + self.cheater.at_end())
        self.flush(timeout)
        after = self.cheater.after_final()
        if after:
            self.send(after)
            self.flush(timeout)
        unsent = self.cheater.unsent()
        if unsent:
            raise ValueError(
                "cheating readings never sent, the race left no room for them: "
                + ", ".join(f"{n} --{what}" for what, n in unsent.items())
                + " (a reading from the future needs the race clock plus "
                "20 s inside the race: a longer race, or less time compression)"
            )
        for reason, count in self.cheater.refusals.items():
            self.truth.refused(reason, count)
        self.truth.spoofed_counted = self.cheater.spoofed_counted

    def flush(self, timeout: float | None) -> None:
        self.transport.flush(timeout)
        if self.transport.error is not None:
            raise self.transport.error


def simulate(
    config: RaceConfig,
    transport: Transport,
    options: RunOptions,
    *,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Run the race through the transport; raise TransportError on a fatal transport error.
    ValueError if the options ask for cheats the race cannot hold."""
    ride = _Ride(config, transport, options)
    cpu0 = time.process_time()
    began = clock()
    t0 = began if options.start_at is None else options.start_at
    race_t0 = t0 if options.race_start_at is None else options.race_start_at
    progress = _Progress(out, transport, clock, began) if options.progress else None
    with progress.live if progress is not None else contextlib.nullcontext():
        for second in seconds_of(config):
            if options.time_compression > 0:
                wait = t0 + second / options.time_compression - clock()
                if wait > 0:
                    sleep(wait)
            ride.second(second, clock() - race_t0)
            if progress is not None:
                progress.tick()
        ride.finish(options.flush_timeout)
    wall = clock() - began
    path = write_ground_truth(options.truth_path, ride.truth) if options.truth_path else None
    return Summary(
        race_id=config.race_id,
        riders=config.riders,
        produced=ride.produced,
        duplicates=ride.faults.duplicates,
        counts=transport.stats.snapshot(),
        wall_seconds=wall,
        cpu_seconds=time.process_time() - cpu0,
        truth_path=path,
        truth=ride.truth,
    )


__all__ = ["RunOptions", "Summary", "TransportError", "progress_line", "simulate"]
