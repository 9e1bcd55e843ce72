"""The stream processor's logic: one batch of readings in, standings written once per rider.

Per batch:

1. dead letters (records that can never succeed) are stored durably first;
2. readings are grouped per rider; each rider's standing comes from the warm cache of what this
   environment last wrote, or one BatchGetItem for the riders it has not seen;
3. :func:`shared.standings.merge` counts only the seconds not counted yet;
4. each changed rider is written once, on condition that the stored version is the one merged
   from; on a conflict the stored standing comes back with the failure and is merged again;
5. the race record moves forward; riders whose ``final`` reading is in the batch are handed,
   standing as counted, to the race finisher in one finish-queue message (the finisher ranks,
   stores and announces them: :mod:`functions.race_finisher.logic`), so the shard never waits
   for a read of the whole ranking.

Anything transient is reported per record, at the first record of the rider (or race) it
concerns, so that Lambda retries from there; the records after it come again and count nothing.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from shared.contract import EVENT_FINAL, Telemetry
from shared.finishing import Finish
from shared.ports import (
    DeadLetter,
    DeadLetterSink,
    FinishQueue,
    RaceActivity,
    StandingsStore,
    TransientError,
    WriteStatus,
)
from shared.standings import Merge, RiderKey, Standing, merge

H = TypeVar("H")
"""Opaque handle of a record (the handler uses the parsed Kinesis record)."""

MAX_CONFLICT_ROUNDS = 4
DEFAULT_CACHE_SIZE = 50_000


class Delivery(NamedTuple, Generic[H]):
    reading: Telemetry
    handle: H


@dataclass(frozen=True, slots=True)
class Poison(Generic[H]):
    letter: DeadLetter
    handle: H


@dataclass
class BatchOutcome(Generic[H]):
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    riders_written: int = 0
    conflicts: int = 0
    finishing: int = 0
    """Riders handed to the race finisher (their ``final`` reading counted, now or before)."""
    lag_count: int = 0
    """Readings counted, and the total and largest of their lags (processing time minus device
    time): kept as sums rather than one figure per reading, which the metrics never need."""
    lag_total_ms: int = 0
    lag_max_ms: int = 0
    failed: list[tuple[H, str]] = field(default_factory=list)
    """Records to report in ``batchItemFailures``, with the reason."""


_device_ts = operator.attrgetter("device_timestamp")


class StandingsCache:
    """What this environment last wrote per rider: a bounded LRU.

    A rider's readings stay on one shard, and a shard is read by one environment at a time, so
    the cache is nearly always current; when it is not, the conditional write says so.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[RiderKey, Standing] = OrderedDict()

    def get(self, key: RiderKey) -> Standing | None:
        s = self._items.get(key)
        if s is not None:
            self._items.move_to_end(key)
        return s

    def put(self, s: Standing) -> None:
        self._items[s.key] = s
        self._items.move_to_end(s.key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, key: RiderKey) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: RiderKey) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()


class StreamProcessor(Generic[H]):
    def __init__(
        self,
        store: StandingsStore,
        dead_letters: DeadLetterSink,
        finishes: FinishQueue,
        clock_ms: Callable[[], int],
        cache: StandingsCache | None = None,
    ) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.finishes = finishes
        self.clock_ms = clock_ms
        self.cache = cache if cache is not None else StandingsCache()

    def process(
        self, deliveries: Sequence[Delivery[H]], poison: Sequence[Poison[H]] = ()
    ) -> BatchOutcome[H]:
        out: BatchOutcome[H] = BatchOutcome()
        if poison:
            try:
                self.dead_letters.send([p.letter for p in poison])
                out.dead_lettered = len(poison)
            except TransientError as exc:
                out.failed.extend((p.handle, f"dead-letter store: {exc}") for p in poison)

        by_rider: dict[tuple[str, str], list[Delivery[H]]] = {}
        first_final: dict[tuple[str, str], Delivery[H]] = {}
        for d in deliveries:  # once per reading: plain dict and attribute work only
            reading = d.reading
            key = (reading.race_id, reading.rider_id)
            group = by_rider.get(key)
            if group is None:
                by_rider[key] = [d]
            else:
                group.append(d)
            if reading.event == EVENT_FINAL and key not in first_final:
                first_final[key] = d
        if not by_rider:
            return out
        groups = {RiderKey(*k): ds for k, ds in by_rider.items()}

        now = self.clock_ms()
        failed_riders = self._write_standings(groups, now, out)

        written = [k for k in groups if k not in failed_riders]
        self._record_activity(groups, written, out)

        finals = {key: first_final[key] for key in written if key in first_final}
        if finals:
            self._finish(finals, now, out)
        return out

    def _finish(self, finals: dict[RiderKey, Delivery[H]], now: int, out: BatchOutcome[H]) -> None:
        """Hand every rider whose ``final`` reading is in the batch to the race finisher
        (counted now, or before: a replay must still finish a rider whose hand-over failed)."""
        finishes: list[Finish] = []
        for key, final in finals.items():
            try:  # just written or just loaded, so cached; the store if the cache let it go
                standing = self.cache.get(key) or self.store.get_standing(key)
            except TransientError as exc:
                out.failed.append((final.handle, f"finish {key.rider_id}: {exc}"))
                continue
            if standing is None:
                out.failed.append((final.handle, f"finish {key.rider_id}: no standing stored"))
                continue
            finishes.append(Finish.of(standing, now))
        if not finishes:
            return
        try:
            self.finishes.send(finishes)
        except TransientError as exc:
            out.failed.extend(
                (finals[RiderKey(f.race_id, f.rider_id)].handle, f"finish queue: {exc}")
                for f in finishes
            )
            return
        out.finishing += len(finishes)

    def _write_standings(
        self, groups: dict[RiderKey, list[Delivery[H]]], now: int, out: BatchOutcome[H]
    ) -> set[RiderKey]:
        failed: dict[RiderKey, str] = {}
        known = self._known_standings(list(groups), failed)
        pending: dict[RiderKey, Merge] = {}
        for key, ds in groups.items():
            if key in failed:
                continue
            m = merge(known[key], [d.reading for d in ds], now)
            if m.changed:
                pending[key] = m
            else:
                out.duplicates += m.duplicates

        for _ in range(MAX_CONFLICT_ROUNDS):
            if not pending:
                break
            pending = self._save(pending, groups, now, out, failed)
        for key in pending:
            self.cache.drop(key)
            failed[key] = "write: conflicts did not settle"

        for key, reason in failed.items():
            out.failed.append((groups[key][0].handle, f"rider {key.rider_id}: {reason}"))
        return set(failed)

    def _known_standings(
        self, riders: list[RiderKey], failed: dict[RiderKey, str]
    ) -> dict[RiderKey, Standing | None]:
        """Each rider's current standing: from the cache, else one batched consistent read."""
        known: dict[RiderKey, Standing | None] = {}
        unseen = []
        for k in riders:
            cached = self.cache.get(k)
            if cached is None:
                unseen.append(k)
            known[k] = cached
        if unseen:
            try:
                loaded = self.store.load(unseen)
            except TransientError as exc:
                loaded = {}
                failed.update((k, f"load: {exc}") for k in unseen)
            for k in unseen:
                found = known[k] = loaded.get(k)
                if found is not None:
                    self.cache.put(found)
        return known

    def _save(
        self,
        pending: dict[RiderKey, Merge],
        groups: dict[RiderKey, list[Delivery[H]]],
        now: int,
        out: BatchOutcome[H],
        failed: dict[RiderKey, str],
    ) -> dict[RiderKey, Merge]:
        """One write per pending rider; returns the riders to write again after a conflict."""
        retry: dict[RiderKey, Merge] = {}
        for r in self.store.save([m.standing for m in pending.values()]):
            m = pending[r.key]
            if r.status is WriteStatus.OK:
                self.cache.put(m.standing)
                out.applied += len(m.applied)
                out.duplicates += m.duplicates
                out.riders_written += 1
                out.lag_count += len(m.applied)
                out.lag_total_ms += now * len(m.applied) - sum(map(_device_ts, m.applied))
                out.lag_max_ms = max(out.lag_max_ms, now - min(map(_device_ts, m.applied)))
            elif r.status is WriteStatus.CONFLICT:
                # Someone else wrote this rider (a replay, another environment after a
                # reshard): merge again from what is stored, which came back with the failure.
                out.conflicts += 1
                if r.current is not None:
                    self.cache.put(r.current)
                else:
                    self.cache.drop(r.key)
                again = merge(r.current, [d.reading for d in groups[r.key]], now)
                if again.changed:
                    retry[r.key] = again
                else:
                    out.duplicates += again.duplicates
            else:
                self.cache.drop(r.key)
                failed[r.key] = f"write: {r.error}"
        return retry

    def _record_activity(
        self,
        groups: dict[RiderKey, list[Delivery[H]]],
        written: Sequence[RiderKey],
        out: BatchOutcome[H],
    ) -> None:
        spans: dict[str, tuple[int, int]] = {}
        for key in written:
            stamps = [d.reading.device_timestamp for d in groups[key]]
            lo, hi = spans.get(key.race_id, (stamps[0], stamps[0]))
            spans[key.race_id] = (min(lo, *stamps), max(hi, *stamps))
        if not spans:
            return
        try:
            self.store.record_activity(
                [RaceActivity(race, lo, hi) for race, (lo, hi) in spans.items()]
            )
        except TransientError as exc:
            first: dict[str, H] = {}
            for key in written:
                first.setdefault(key.race_id, groups[key][0].handle)
            out.failed.extend((h, f"race {race}: {exc}") for race, h in first.items())
