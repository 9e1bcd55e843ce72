"""The race finisher's logic: finishing riders in, results stored and announced once each.

Per batch of finish-queue messages:

1. the riders of every message are grouped per race (a rider sent twice, by a replayed
   processor batch, is finished once: the first finish in the batch is the one used);
2. each race's ranking is read once for all its finishing riders (overall and in class);
3. their results are stored together: each once, on condition that none is stored yet, the
   finishes counted once per transaction (a result stored before comes back as stored);
4. each stored result is announced exactly once by the idempotent ``announce`` the handler
   wires in, all of them at once.

A transient failure fails every message holding a rider it concerns, so that SQS delivers it
again; whatever succeeded is not repeated (results are conditional, announcements
idempotent).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.finishing import Finish
from shared.ports import ResultsStore, TransientError
from shared.standings import FinalResult, RiderKey

H = TypeVar("H")
"""Opaque handle of a message (the handler uses the SQS record)."""

Announcer = Callable[[FinalResult], object]
"""Announces a stored result, exactly once per rider (the handler wraps the notifier in the
Powertools idempotency utility)."""

Outcome = TransientError | None
Mapper = Callable[[Callable[[FinalResult], Outcome], Sequence[FinalResult]], Iterable[Outcome]]
"""Runs a function over the results and yields its answers in their order, one after another
(``map``) or at once (``ThreadPoolExecutor.map``)."""


@dataclass
class FinishOutcome(Generic[H]):
    finished: int = 0
    """Riders whose result is stored and announced (now, or before: a replay)."""
    failed: list[tuple[H, str]] = field(default_factory=list)
    """Messages to report in ``batchItemFailures``, with the reason (each once)."""


def _announce_one(announce: Announcer, result: FinalResult) -> Outcome:
    try:
        announce(result)
    except TransientError as exc:
        return exc
    return None


class RaceFinisher(Generic[H]):
    def __init__(
        self, store: ResultsStore, announce: Announcer, *, announce_map: Mapper = map
    ) -> None:
        self.store = store
        self.announce = announce
        self.announce_map = announce_map
        """How a batch's results are announced: each is independent (its own idempotency
        record and notification), so the handler runs them at once."""

    def finish(self, messages: Sequence[tuple[H, Sequence[Finish]]]) -> FinishOutcome[H]:
        out: FinishOutcome[H] = FinishOutcome()
        senders: dict[RiderKey, list[H]] = {}
        by_race: dict[str, dict[RiderKey, Finish]] = {}
        for handle, finishes in messages:
            for f in finishes:
                key = RiderKey(f.race_id, f.rider_id)
                senders.setdefault(key, []).append(handle)
                by_race.setdefault(f.race_id, {}).setdefault(key, f)
        failed: dict[int, tuple[H, str]] = {}

        def fail(keys: Iterable[RiderKey], reason: str) -> None:
            for key in keys:
                for handle in senders[key]:
                    failed.setdefault(id(handle), (handle, reason))

        for race_id, riders in by_race.items():
            self._finish_race(race_id, riders, out, fail)
        out.failed = list(failed.values())
        return out

    def _finish_race(
        self,
        race_id: str,
        riders: dict[RiderKey, Finish],
        out: FinishOutcome[H],
        fail: Callable[[Iterable[RiderKey], str], None],
    ) -> None:
        finishes = list(riders.values())
        try:
            ranks = self.store.ranks(race_id, [(f.points, f.class_id) for f in finishes])
        except TransientError as exc:
            fail(riders, f"ranks of race {race_id}: {exc}")
            return
        results = [f.result(*r) for f, r in zip(finishes, ranks, strict=True)]
        try:
            stored = self.store.put_results(results)
        except TransientError as exc:
            fail(riders, f"results of race {race_id}: {exc}")
            return
        errors = self.announce_map(functools.partial(_announce_one, self.announce), stored)
        for result, error in zip(stored, errors, strict=True):
            if error is None:
                out.finished += 1
            else:
                fail([RiderKey(result.race_id, result.rider_id)], f"announce: {error}")
