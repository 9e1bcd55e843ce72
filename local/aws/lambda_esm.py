"""What every Lambda event source mapping does, whatever it polls (Kinesis, SQS).

A mapping runs pollers, each in a thread of its own. A poller fetches records into its batch
and, once the batch is ready, invokes the function with it synchronously and waits, as Lambda
does. What AWS documents for every poll-based source, and what this module does once for both:

- batching: a batch is sent when ``batch_size`` records are buffered, or when
  ``maximum_batching_window_s`` has passed since the first buffered record (window 0: with
  whatever one fetch returned), or when the event would pass a payload limit (the records that
  do not fit start the next batch);
- invoking: the handler gets the service's event and a fresh Lambda context (the function's
  name, region, a request id and a deadline); its response goes through JSON, as Lambda's does;
- partial batch responses (``ReportBatchItemFailures``): success is a null or empty response,
  or a null or empty ``batchItemFailures``; otherwise the reported ``itemIdentifier``\\ s fail,
  and one that is empty, null, missing or not a record of the batch (or a ``batchItemFailures``
  that is not a list) fails the whole batch. Without the setting the response is ignored;
- a function error (the handler raises) fails the whole batch;
- execution environments: a plain ``handler`` serves every poller; an ``environment_factory``
  makes one per poller on first use, so that pollers invoke in parallel as Lambda's
  environments do, while each environment takes one invocation at a time;
- stopping: :meth:`EventSourceMapping.stop` returns once every poller has finished the batch
  it is delivering (or after the timeout);
- statistics: invocations, function errors, partial failures (each service adds its own).

What is the service's own (where the records come from, what success and failure do to them)
is in :mod:`local.aws.kinesis_esm` (the SQS mapping that also stood on this core went with the
finish queue).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from local.aws.lambda_runtime import Handler, LambdaContext, function_arn

log = logging.getLogger(__name__)

R = TypeVar("R")
"""A record as the service's API returns it (a Kinesis record, an SQS message)."""


@dataclass(frozen=True, kw_only=True)
class MappingConfig:
    """The settings every event source mapping has (names as in CreateEventSourceMapping)."""

    function_name: str
    batch_size: int = 10
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = True
    poll_interval_s: float = 0.25
    """How long a poller that found nothing waits before it asks again."""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1-10000, got {self.batch_size}")
        if not 0 <= self.maximum_batching_window_s <= 300:
            raise ValueError(
                f"maximum_batching_window_s must be 0-300, got {self.maximum_batching_window_s}"
            )


@dataclass
class MappingStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    """Invocations whose response failed some or all records (without a function error)."""


S = TypeVar("S", bound=MappingStats)


def reported_failures(response: Any, identifiers: Sequence[str]) -> tuple[int, ...]:
    """The positions, in batch order, of the records a ``ReportBatchItemFailures`` response
    fails: none for a success, every one for an invalid response (see the module doc)."""
    if not response or not isinstance(response, dict):
        return ()
    failures = response.get("batchItemFailures")
    if not failures:
        return ()
    everything = tuple(range(len(identifiers)))
    if not isinstance(failures, list):
        return everything
    positions = {ident: i for i, ident in enumerate(identifiers)}
    reported: set[int] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in positions:
            return everything
        reported.add(positions[ident])
    return tuple(sorted(reported))


@dataclass(frozen=True)
class Invocation:
    """One invocation's result: ``failed`` are the positions of the records that did not
    succeed (all of them on a function error); ``error`` is set on a function error."""

    failed: tuple[int, ...]
    error: str | None = None
    response: Any = None


class Batch(Generic[R]):
    """The records a poller holds for its next invocation, and when they are due."""

    def __init__(
        self,
        batch_size: int,
        window_s: float,
        *,
        max_bytes: int | None = None,
        size_of: Callable[[R], int] = lambda _record: 0,
        overhead_bytes: int = 0,
    ) -> None:
        self.batch_size = batch_size
        self.window_s = window_s
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.overhead_bytes = overhead_bytes
        self.items: list[tuple[R, int]] = []
        self.first_at: float | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def room(self) -> int:
        return self.batch_size - len(self.items)

    def add(self, records: Sequence[R]) -> None:
        if records and self.first_at is None:
            self.first_at = time.monotonic()
        self.items.extend((r, self.size_of(r)) for r in records)

    def window_left(self) -> float:
        if self.first_at is None:
            return self.window_s
        return max(0.0, self.window_s - (time.monotonic() - self.first_at))

    def _over_payload(self) -> bool:
        if self.max_bytes is None:
            return False
        return self.overhead_bytes + sum(size for _, size in self.items) > self.max_bytes

    def ready(self) -> bool:
        """Full (by count or payload), or the window has passed since the first record."""
        return self.room <= 0 or self._over_payload() or self.window_left() <= 0

    def take(self) -> list[R]:
        """The next batch: the first records, up to ``batch_size`` and the payload limit (the
        first record always goes); the window starts again for what is left."""
        total = self.overhead_bytes
        n = 0
        for _, size in self.items[: self.batch_size]:
            if n and self.max_bytes is not None and total + size > self.max_bytes:
                break
            total += size
            n += 1
        batch = [record for record, _ in self.items[:n]]
        self.items = self.items[n:]
        self.first_at = time.monotonic() if self.items else None
        return batch

    def drain(self) -> list[R]:
        """Everything held, which is then let go."""
        left = [record for record, _ in self.items]
        self.items = []
        self.first_at = None
        return left


class Poller(ABC, Generic[R]):
    """One poller: fetches into its batch and delivers one batch at a time, in order."""

    def __init__(self, mapping: EventSourceMapping[R, Any], name: str, batch: Batch[R]) -> None:
        self.mapping = mapping
        self.name = name
        self.batch = batch
        self.thread = threading.Thread(
            target=self._run, name=f"{mapping.log_name.replace(' ', '-')}-{name}", daemon=True
        )
        self.idle = False
        """True when the last fetch found nothing and nothing is buffered or in flight."""

    @abstractmethod
    def fetch(self) -> int | None:
        """Ask the service for records into :attr:`batch`: how many came (None: it failed)."""

    @abstractmethod
    def deliver(self, records: list[R]) -> None:
        """Invoke the function with one batch and settle its records with the service."""

    def begin(self) -> bool:
        """Prepare to poll (False: cannot, the poller ends)."""
        return True

    def end(self) -> None:
        """The poller stops: give back what it holds."""

    def waited_in_fetch(self) -> bool:
        """Whether the last fetch waited for records itself (a long poll)."""
        return False

    @property
    def error_delay_s(self) -> float:
        return self.mapping.config.poll_interval_s

    def _run(self) -> None:
        try:
            if self.begin():
                self._poll()
        except Exception:
            log.exception("%s %s: poller failed", self.mapping.log_name, self.name)
        finally:
            self.end()

    def _poll(self) -> None:
        stopping = self.mapping.stopping
        interval = self.mapping.config.poll_interval_s
        while not stopping.is_set():
            got = self.fetch()
            if got is None:
                stopping.wait(self.error_delay_s)
                continue
            if not self.batch:
                self.idle = True
                if not self.waited_in_fetch():
                    stopping.wait(interval)
                continue
            self.idle = False
            if not self.batch.ready():
                if not got and not self.waited_in_fetch():
                    stopping.wait(min(interval, self.batch.window_left()))
                continue
            if stopping.is_set():
                return  # not sent: the poller's end gives it back
            self.deliver(self.batch.take())


class EventSourceMapping(ABC, Generic[R, S]):
    """A mapping running its pollers in threads of this process (see the module doc)."""

    log_name = "esm"

    def __init__(
        self,
        *,
        handler: Handler | None,
        environment_factory: Callable[[str], Handler] | None,
        config: MappingConfig,
        stats: S,
        region: str,
        clock: Callable[[], float],
    ) -> None:
        if (handler is None) == (environment_factory is None):
            raise ValueError("give the mapping a handler or an environment factory, not both")
        if environment_factory is None:
            assert handler is not None
            only: Handler = handler
            environment_factory = lambda _poller: only  # noqa: E731
        self.environment_factory = environment_factory
        """Makes the environment a poller's invocations go to (on first use)."""
        self.environments: dict[str, Handler] = {}
        self.config = config
        self.region = region
        self.clock = clock
        self.stats = stats
        self.function_arn = function_arn(config.function_name, region)
        self.stopping = threading.Event()
        self.pollers: list[Poller[R]] = []
        self._lock = threading.Lock()

    @abstractmethod
    def make_pollers(self) -> list[Poller[R]]: ...

    def start(self) -> None:
        self.pollers = self.make_pollers()
        for poller in self.pollers:
            poller.thread.start()

    @property
    def idle(self) -> bool:
        """Every poller found nothing more, and no batch is buffered or in flight."""
        return all(p.idle for p in self.pollers)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling: returns once every poller has finished its batch in flight, or after
        ``timeout``."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for poller in self.pollers:
            poller.thread.join(max(0.0, deadline - time.monotonic()))

    def count(self, **increments: int) -> None:
        """Add to the statistics (pollers run in parallel)."""
        with self._lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _handler_for(self, poller: str) -> Handler:
        with self._lock:
            found = self.environments.get(poller)
            if found is None:
                found = self.environments[poller] = self.environment_factory(poller)
        return found

    def call(self, poller: str, event: dict[str, Any], identifiers: Sequence[str]) -> Invocation:
        """Invoke the handler of ``poller`` with ``event`` (synchronously, with a fresh
        context) and read its response against the batch's record ``identifiers``."""
        context = LambdaContext(self.config.function_name, self.region)
        self.count(invocations=1)
        try:
            response = self._handler_for(poller)(event, context)
            response = json.loads(json.dumps(response)) if response is not None else None
        except Exception as exc:
            self.count(function_errors=1)
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s %s: function error: %s", self.log_name, poller, error)
            return Invocation(tuple(range(len(identifiers))), error=error)
        if not self.config.report_batch_item_failures:
            return Invocation((), response=response)
        failed = reported_failures(response, identifiers)
        if failed:
            self.count(partial_failures=1)
        return Invocation(failed, response=response)
