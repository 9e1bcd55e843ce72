"""Kinesis transport: batched PutRecords with per-entry retries.

- A call carries at most 500 records and 5 MiB (data + partition keys); a record is at most
  1 MiB including its partition key (a larger one is counted failed, never sent).
- Partition key = rider id, so a rider's readings land on one shard.
- The producer is trusted (it holds IAM credentials): with ``producer_id`` the readings it is
  given carry that ``deviceId`` (the runner writes it; ``simulator.fleet``).
- PutRecords answers HTTP 200 with per-entry ``ErrorCode`` (``ProvisionedThroughputExceeded
  Exception`` or ``InternalFailure``): only those entries are resent, after an exponential
  backoff with jitter. A whole call refused (throttling, 5xx, connection trouble) is resent
  the same way. After ``max_attempts`` the remaining entries are counted failed.
- At most ``max_in_flight`` calls run at once (threads); ``send`` blocks beyond that.
- ``flush`` waits for every call, retries included.

botocore's own retries are switched off (see :func:`kinesis_client`) so that every resend is
this module's, counted, and limited to the failed entries.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from simulator.targets import NO_CREDENTIALS
from simulator.transports.base import Outgoing, Stats, TransportError

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "KMSThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
TRANSIENT_CODES = frozenset(
    {"InternalFailure", "InternalServerError", "ServiceUnavailable", "InternalError"}
)


def kinesis_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: boto3.Session | None = None,
    max_in_flight: int = 4,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A Kinesis client tuned for the simulator: no botocore retries, no param validation."""
    config = Config(
        retries={"total_max_attempts": 1},
        parameter_validation=False,
        max_pool_connections=max_in_flight + 2,
        connect_timeout=5,
        read_timeout=30,
    )
    sess = session or boto3.Session()
    return sess.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name=region,
        config=config,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def record_size(item: Outgoing) -> int:
    return len(item.payload) + len(item.rider_id.encode())


def batches(items: Sequence[Outgoing]) -> Iterator[list[Outgoing]]:
    """Greedy batches within PutRecords' limits (items over the record limit are excluded)."""
    batch: list[Outgoing] = []
    size = 0
    for item in items:
        n = record_size(item)
        if n > MAX_BYTES_PER_RECORD:
            continue
        if batch and (len(batch) >= MAX_RECORDS_PER_CALL or size + n > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def describe_failure(exc: BaseException, stream_name: str) -> TransportError | None:
    """A fatal error as a one-line TransportError; None if the failure is worth retrying."""
    if isinstance(exc, NoCredentialsError):
        return TransportError(NO_CREDENTIALS)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in THROTTLE_CODES or code in TRANSIENT_CODES:
            return None
        if code == "ResourceNotFoundException":
            return TransportError(
                f"stream {stream_name!r} does not exist: deploy the stack (or run "
                "`breakaway up`), or pass the right --stream-name"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return TransportError(f"Kinesis refused PutRecords ({code}: {message}); check access")
    return None


class KinesisTransport:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        max_in_flight: int = 4,
        max_attempts: int = 12,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        endpoint_description: str = "the Kinesis endpoint",
        producer_id: str | None = None,
    ) -> None:
        self.stats = Stats()
        self.devices: tuple[str, ...] = (producer_id,) if producer_id else ()
        """A trusted producer writes its id into each reading (``simulator.fleet``)."""
        self.device_in_payload = True
        self._client = client
        self._stream = stream_name
        self._max_attempts = max_attempts
        self._base = base_delay
        self._cap = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._where = endpoint_description
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="putrecords")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()
        self._error: TransportError | None = None
        self.calls = 0
        self.oversized = 0

    @property
    def error(self) -> TransportError | None:
        return self._error

    def send(self, items: list[Outgoing]) -> None:
        oversized = sum(1 for i in items if record_size(i) > MAX_BYTES_PER_RECORD)
        if oversized:
            self.oversized += oversized
            self.stats.add(sent=oversized, failed=oversized)
        for batch in batches(items):
            if self._error is not None:
                self.stats.add(sent=len(batch), failed=len(batch))
                continue
            self._slots.acquire()
            self.stats.add(sent=len(batch))
            fut = self._pool.submit(self._put, batch)
            with self._pending_lock:
                self._pending.add(fut)
            fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(fut)
        self._slots.release()
        exc = fut.exception()
        if exc is not None and self._error is None:
            self._error = TransportError(f"PutRecords failed unexpectedly: {exc!r}")

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random."""
        ceiling = min(self._cap, self._base * (2.0**attempt))
        with self._rng_lock:
            return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _put(self, batch: list[Outgoing]) -> None:
        """Send one batch until every entry is accepted or given up on."""
        pending = batch
        attempt = 0
        while pending:
            if self._error is not None:
                self.stats.add(failed=len(pending))
                return
            failed, last_exc = self._attempt(pending)
            if failed is None:  # fatal: already counted and recorded
                return
            pending = failed
            if not pending:
                return
            attempt += 1
            if attempt >= self._max_attempts:
                self.stats.add(failed=len(pending))
                if isinstance(last_exc, EndpointConnectionError | ConnectionClosedError):
                    self._error = self._error or TransportError(
                        f"cannot reach {self._where} ({last_exc}): is it running "
                        "(`breakaway up`) and is the address right?"
                    )
                return
            self.stats.add(retried=len(pending))
            self._sleep(self.backoff(attempt))

    def _attempt(
        self, pending: list[Outgoing]
    ) -> tuple[list[Outgoing] | None, BaseException | None]:
        """One PutRecords call: the entries to resend (None = fatal) and the call's error."""
        records = [{"Data": i.payload, "PartitionKey": i.rider_id} for i in pending]
        self.calls += 1
        try:
            response = self._client.put_records(StreamName=self._stream, Records=records)
        except (ClientError, BotoCoreError) as exc:
            fatal = describe_failure(exc, self._stream)
            if fatal is None and isinstance(exc, BotoCoreError):
                retryable = EndpointConnectionError | ConnectionClosedError | ReadTimeoutError
                if not isinstance(exc, retryable):
                    fatal = TransportError(f"PutRecords failed: {exc}")
            if fatal is not None:
                self._error = self._error or fatal
                self.stats.add(failed=len(pending))
                return None, exc
            code = (
                exc.response.get("Error", {}).get("Code", "")
                if isinstance(exc, ClientError)
                else ""
            )
            if code in THROTTLE_CODES:
                self.stats.add(throttled=len(pending))
            return pending, exc
        failed = []
        throttled = 0
        for item, entry in zip(pending, response["Records"], strict=True):
            code = entry.get("ErrorCode")
            if code:
                failed.append(item)
                if code == "ProvisionedThroughputExceededException":
                    throttled += 1
        self.stats.add(acknowledged=len(pending) - len(failed), throttled=throttled)
        return failed, None

    def flush(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pending_lock:
                futures = list(self._pending)
            if not futures:
                return
            for fut in futures:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                fut.exception(timeout=remaining)

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
