"""Runs a race: the model, ground truth, fault injection, pacing, a transport, progress.

The loop is the same whatever the transport: for each reporting second, wait until its wall
time (``second / time_compression`` after the start; compression 0 = no waiting), take every
riding rider's reading from the model, add them to the ground truth, pass them through the
fault injector and hand them to the transport (which blocks when too much is in flight).
At the end the fault injector is drained, the transport flushed (awaited), the ground truth
written, and a one-line summary returned.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from simulator.faults import FaultInjector
from simulator.model import RaceConfig, race
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
        return (
            f"race {self.race_id}: {self.riders} riders, {self.produced} readings produced, "
            f"{c.sent} sent ({self.duplicates} resent by fault injection), "
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


def simulate(
    config: RaceConfig,
    transport: Transport,
    options: RunOptions,
    *,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Run the race through the transport; raise TransportError on a fatal transport error."""
    truth = GroundTruth(race_id=config.race_id, seed=config.seed)
    faults = FaultInjector(config.seed, options.duplicate_fraction, options.reorder_window)
    produced = 0
    cpu0 = time.process_time()
    began = clock()
    t0 = began if options.start_at is None else options.start_at
    progress = _Progress(out, transport, clock, began) if options.progress else None
    with progress.live if progress is not None else contextlib.nullcontext():
        for batch in race(config):
            if options.time_compression > 0:
                wait = t0 + batch[0].second / options.time_compression - clock()
                if wait > 0:
                    sleep(wait)
            truth.add(batch)
            produced += len(batch)
            items = [Outgoing(r.race_id, r.rider_id, r.event_id, r.to_json()) for r in batch]
            transport.send(faults.feed(items))
            if transport.error is not None:
                raise transport.error
            if progress is not None:
                progress.tick()
        transport.send(faults.drain())
        transport.flush(options.flush_timeout)
        if transport.error is not None:
            raise transport.error
    wall = clock() - began
    path = write_ground_truth(options.truth_path, truth) if options.truth_path else None
    return Summary(
        race_id=config.race_id,
        riders=config.riders,
        produced=produced,
        duplicates=faults.duplicates,
        counts=transport.stats.snapshot(),
        wall_seconds=wall,
        cpu_seconds=time.process_time() - cpu0,
        truth_path=path,
        truth=truth,
    )


__all__ = ["RunOptions", "Summary", "TransportError", "progress_line", "simulate"]
