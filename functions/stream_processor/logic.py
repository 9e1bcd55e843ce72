"""The stream processor's logic: one batch of readings in, standings written once per rider.

Per batch, by the processor's clock read once (``now``; a device's clock is never trusted):

1. readings are grouped per rider, and the batch's races' cards (record and entries) come from
   this environment's cache (:mod:`functions.stream_processor.cards`): no request per reading;
2. every reading is checked against the counting rules (:func:`shared.counting.refusal`): a
   refused one becomes a dead letter whose reason names the rule;
3. each rider's standing comes from the warm cache of what this environment last wrote, or one
   BatchGetItem for the riders it has not seen;
4. :func:`shared.standings.merge` counts only the seconds not counted yet and not after the
   rider's final second (those are dead letters too), with the name and class of the entry;
5. each changed rider is written once, on condition that the stored version is the one merged
   from; on a conflict the stored standing comes back with the failure and is merged again.
   A new rider, and a rider whose final second is set, are counted in the race record in the
   same transaction;
6. the race records' ``lastReadingAt`` moves to ``now`` (races with readings that passed);
7. every dead letter of the batch, poison records and refused readings alike, is stored in
   one send and counted per reason. None is ever retried: the shard moves on.

Anything transient is reported per record, at the first record of the rider (or race) it
concerns, so that Lambda retries from there; the records after it come again and count nothing.
"""

from __future__ import annotations

import operator
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from functions.stream_processor.cards import RaceCardCache
from shared.contract import Telemetry
from shared.counting import Refusal, refusal, rider_gate
from shared.ports import (
    DeadLetter,
    DeadLetterSink,
    RaceActivity,
    RaceCards,
    StandingsStore,
    TransientError,
    WriteStatus,
)
from shared.races import DEFAULT_FUTURE_SLACK_S, Entry
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
    """A record that will never count: its dead letter, and the rule it broke (the metric's
    reason)."""

    letter: DeadLetter
    handle: H
    refusal: Refusal


@dataclass
class BatchOutcome(Generic[H]):
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letters: Counter[Refusal] = field(default_factory=Counter)
    """The dead letters stored, by the rule each broke."""
    riders_written: int = 0
    conflicts: int = 0
    finished: int = 0
    """Riders whose final second this batch set (counted finished in the race record)."""
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


@dataclass
class _Batch(Generic[H]):
    """One batch on its way through: what counts, per rider, and what does not."""

    now: int
    groups: dict[RiderKey, list[Delivery[H]]] = field(default_factory=dict)
    """The readings that passed the rules, per rider."""
    entries: dict[RiderKey, Entry] = field(default_factory=dict)
    letters: list[Poison[H]] = field(default_factory=list)
    failed: dict[RiderKey, str] = field(default_factory=dict)
    settled: dict[RiderKey, Merge] = field(default_factory=dict)
    """Each rider's last merge, once written (or once there was nothing to write)."""


class StreamProcessor(Generic[H]):
    def __init__(
        self,
        store: StandingsStore,
        races: RaceCards,
        dead_letters: DeadLetterSink,
        clock_ms: Callable[[], int],
        letter: Callable[[H, str], DeadLetter],
        *,
        slack_s: int = DEFAULT_FUTURE_SLACK_S,
        cache: StandingsCache | None = None,
        cards: RaceCardCache | None = None,
    ) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.clock_ms = clock_ms
        self.letter = letter
        """The dead letter of a record, with a reason (the record as it arrived)."""
        self.slack_s = slack_s
        self.cache = cache if cache is not None else StandingsCache()
        self.cards = cards if cards is not None else RaceCardCache(races)

    def process(
        self, deliveries: Sequence[Delivery[H]], poison: Sequence[Poison[H]] = ()
    ) -> BatchOutcome[H]:
        out: BatchOutcome[H] = BatchOutcome()
        batch: _Batch[H] = _Batch(self.clock_ms(), letters=list(poison))
        if deliveries:
            self._check(deliveries, batch, out)
        if batch.groups:
            self._write_standings(batch, out)
            self._record_activity(batch, out)
        self._dead_letter(batch.letters, out)
        return out

    def _check(
        self, deliveries: Sequence[Delivery[H]], batch: _Batch[H], out: BatchOutcome[H]
    ) -> None:
        """Group the readings per rider, keeping those the counting rules let count."""
        by_rider: dict[tuple[str, str], list[Delivery[H]]] = {}
        for d in deliveries:  # once per reading: plain dict and attribute work only
            reading = d.reading
            key = (reading.race_id, reading.rider_id)
            group = by_rider.get(key)
            if group is None:
                by_rider[key] = [d]
            else:
                group.append(d)
        cards, unreadable = self.cards.cards({race for race, _ in by_rider}, batch.now)
        now, slack = batch.now, self.slack_s
        for (race_id, rider_id), ds in by_rider.items():
            if race_id in unreadable:
                out.failed.append((ds[0].handle, f"race {race_id}: {unreadable[race_id]}"))
                continue
            card = cards[race_id]
            # The rules settled once for the rider; each reading's second and device checked
            # against them, and a reading refused given its reason by the rules themselves.
            admits = rider_gate(card, rider_id, now, slack).admits
            kept = [d for d in ds if admits(d.reading)]
            if len(kept) != len(ds):
                for d in ds:
                    verdict = refusal(d.reading, card, now, slack)
                    if verdict is not None:
                        batch.letters.append(self._refused(d.handle, *verdict))
            if kept and card is not None:
                key = RiderKey(race_id, rider_id)
                batch.groups[key] = kept
                batch.entries[key] = card.entries[rider_id].entry

    def _refused(self, handle: H, rule: Refusal, reason: str) -> Poison[H]:
        return Poison(self.letter(handle, reason), handle, rule)

    def _write_standings(self, batch: _Batch[H], out: BatchOutcome[H]) -> None:
        known = self._known_standings(list(batch.groups), batch.failed)
        pending: dict[RiderKey, Merge] = {}
        for key, ds in batch.groups.items():
            if key in batch.failed:
                continue
            m = merge(known[key], [d.reading for d in ds], batch.now, batch.entries[key])
            if m.changed:
                pending[key] = m
            else:
                batch.settled[key] = m

        for _ in range(MAX_CONFLICT_ROUNDS):
            if not pending:
                break
            pending = self._save(pending, batch, out)
        for key in pending:
            self.cache.drop(key)
            batch.failed[key] = "write: conflicts did not settle"

        for key, reason in batch.failed.items():
            out.failed.append((batch.groups[key][0].handle, f"rider {key.rider_id}: {reason}"))
        for key, m in batch.settled.items():
            out.duplicates += m.duplicates
            if m.after_final:
                self._refuse_after_final(key, m, batch)

    def _refuse_after_final(self, key: RiderKey, m: Merge, batch: _Batch[H]) -> None:
        late = {id(r) for r in m.after_final}
        for d in batch.groups[key]:
            if id(d.reading) in late:
                reason = (
                    f"{Refusal.AFTER_FINAL.text}: second {d.reading.second} comes after "
                    f"{key.rider_id}'s final second {m.standing.final_second}"
                )
                batch.letters.append(self._refused(d.handle, Refusal.AFTER_FINAL, reason))

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
        self, pending: dict[RiderKey, Merge], batch: _Batch[H], out: BatchOutcome[H]
    ) -> dict[RiderKey, Merge]:
        """One write per pending rider; returns the riders to write again after a conflict."""
        retry: dict[RiderKey, Merge] = {}
        finishing = [k for k, m in pending.items() if m.finishes]
        for r in self.store.save([m.standing for m in pending.values()], finishing):
            m = pending[r.key]
            if r.status is WriteStatus.OK:
                self.cache.put(m.standing)
                batch.settled[r.key] = m
                self._count_written(m, batch, out)
            elif r.status is WriteStatus.CONFLICT:
                # Someone else wrote this rider (a replay, another environment after a
                # reshard): merge again from what is stored, which came back with the failure.
                out.conflicts += 1
                if r.current is not None:
                    self.cache.put(r.current)
                else:
                    self.cache.drop(r.key)
                readings = [d.reading for d in batch.groups[r.key]]
                again = merge(r.current, readings, batch.now, batch.entries[r.key])
                if again.changed:
                    retry[r.key] = again
                else:
                    batch.settled[r.key] = again
            else:
                self.cache.drop(r.key)
                batch.failed[r.key] = f"write: {r.error}"
        return retry

    @staticmethod
    def _count_written(m: Merge, batch: _Batch[H], out: BatchOutcome[H]) -> None:
        out.riders_written += 1
        out.finished += m.finishes
        if not m.applied:
            return
        now = batch.now
        out.applied += len(m.applied)
        out.lag_count += len(m.applied)
        out.lag_total_ms += now * len(m.applied) - sum(map(_device_ts, m.applied))
        out.lag_max_ms = max(out.lag_max_ms, now - min(map(_device_ts, m.applied)))

    def _record_activity(self, batch: _Batch[H], out: BatchOutcome[H]) -> None:
        """``lastReadingAt`` of each race with readings that passed the rules (counted now or
        before): the batch's clock. Retried, with its riders' first records, if it fails."""
        first: dict[str, H] = {}
        for key, ds in batch.groups.items():
            if key not in batch.failed:
                first.setdefault(key.race_id, ds[0].handle)
        if not first:
            return
        try:
            self.store.record_activity([RaceActivity(race, batch.now) for race in first])
        except TransientError as exc:
            out.failed.extend((h, f"race {race}: {exc}") for race, h in first.items())

    def _dead_letter(self, letters: Sequence[Poison[H]], out: BatchOutcome[H]) -> None:
        """Store every dead letter of the batch at once, or retry them all."""
        if not letters:
            return
        try:
            self.dead_letters.send([p.letter for p in letters])
        except TransientError as exc:
            out.failed.extend((p.handle, f"dead-letter store: {exc}") for p in letters)
            return
        out.dead_lettered = len(letters)
        out.dead_letters.update(p.refusal for p in letters)
