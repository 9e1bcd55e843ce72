"""One retry helper for partial failures: the entries AWS hands back unprocessed.

Batch APIs (BatchGetItem's ``UnprocessedKeys``, SendMessageBatch's ``Failed``, PutRecords'
``FailedRecordCount``, a cancelled transaction's remaining actions) answer 200 and leave some
entries undone. Every adapter resends them the same way: exponential backoff with full jitter,
as AWS recommends, so that writers throttled together do not retry together, and a bounded
number of attempts, after which the entries left are a :class:`~shared.ports.TransientError`
and the batch retries from them.

Hand-written rather than taken from tenacity: the Lambda functions ship only the project's own
code beside the Powertools layer, and this is the one loop every adapter needs
(``docs/decisions.md``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import TypeVar

from shared.ports import TransientError

P = TypeVar("P", bound=Sized)


class UnfinishedError(TransientError):
    """Entries were still pending when the attempts ran out (or ``send`` gave up on them):
    ``pending`` holds them, for an adapter that reports each one rather than the batch."""

    def __init__(self, message: str, pending: Sized) -> None:
        super().__init__(message)
        self.pending = pending


_jitter = random.Random()  # spreading retries needs no cryptographic randomness


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often to resend and how long to wait: ``attempts`` sends in all, the n-th wait drawn
    uniformly from ``[0, min(cap_s, base_s * 2**n)]`` (full jitter)."""

    attempts: int
    base_s: float
    cap_s: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.cap_s < 0:
            raise ValueError("Backoff needs attempts >= 1 and non-negative delays")

    def delay(self, attempt: int) -> float:
        return _jitter.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))


def resend(
    send: Callable[[P], P],
    pending: P,
    policy: Backoff,
    *,
    what: str,
    stalled_only: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call ``send(pending)`` until it returns nothing left, waiting between attempts.

    ``send`` returns what is still pending (an empty collection when all is done). Raises
    :class:`UnfinishedError` naming ``what`` and how many are left once ``policy.attempts`` sends
    have not cleared them; errors ``send`` raises pass through untouched. ``stalled_only``
    waits only after an attempt that cleared nothing: a cancelled transaction that returned
    its failed conditions made progress, and the rest may be sent again at once.
    """
    for attempt in range(policy.attempts):
        before = len(pending)
        pending = send(pending)
        if not len(pending):
            return
        stalled = len(pending) >= before
        if attempt + 1 < policy.attempts and (stalled or not stalled_only):
            sleep(policy.delay(attempt))
    raise UnfinishedError(
        f"{what}: {len(pending)} left unprocessed after {policy.attempts} attempts", pending
    )
