"""What every transport shares: the outgoing item, thread-safe counters, the interface."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Outgoing(NamedTuple):
    """One reading on its way out: the wire bytes and what routes it."""

    race_id: str
    rider_id: str
    event_id: str
    payload: bytes
    device_id: str | None = None
    """The device that publishes it (over MQTT: the connection with this client id, on its own
    topic); None: any (a rider keeps to one connection)."""


@dataclass
class Counts:
    sent: int = 0
    """Readings handed to the wire for the first time (fault-injected copies included)."""
    acknowledged: int = 0
    """Accepted by the endpoint: a PutRecords entry with a sequence number, a PUBACK (QoS 1),
    or written to the socket (QoS 0)."""
    retried: int = 0
    """Resends of readings whose attempt failed (each resend counted once)."""
    throttled: int = 0
    """Readings refused for throughput (per entry, or every entry of a throttled call)."""
    failed: int = 0
    """Readings given up on: lost unless resent by the caller."""


class Stats:
    """Counters updated from transport threads; ``snapshot()`` reads them consistently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c = Counts()

    def add(
        self,
        *,
        sent: int = 0,
        acknowledged: int = 0,
        retried: int = 0,
        throttled: int = 0,
        failed: int = 0,
    ) -> None:
        with self._lock:
            self._c.sent += sent
            self._c.acknowledged += acknowledged
            self._c.retried += retried
            self._c.throttled += throttled
            self._c.failed += failed

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(**vars(self._c))


class TransportError(Exception):
    """A failure no retry can fix (missing stream, no credentials, unreachable endpoint).

    The message is one line saying what is wrong and what to do.
    """


class Transport(Protocol):
    stats: Stats
    devices: tuple[str, ...]
    """The device ids this transport publishes under (``simulator.fleet``)."""
    device_in_payload: bool
    """Whether the producer writes ``deviceId`` into a reading (PutRecords) or the ingest path
    takes it from where the reading was published (MQTT)."""

    def send(self, items: list[Outgoing]) -> None:
        """Queue items for sending; blocks when too much is in flight (back-pressure)."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued is acknowledged or given up on."""

    def close(self) -> None: ...

    @property
    def error(self) -> TransportError | None:
        """The first fatal error, once one happened."""
