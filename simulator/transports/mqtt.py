"""MQTT transport (awscrt, MQTT 3.1.1): a pool of connections, each paced under a limit.

- IoT Core drops what a connection publishes beyond 100 messages/s, so each connection has a
  sliding-window limiter: at most ``max_rate`` publishes in any one-second window (0 = no
  limit, for local benchmarks). 1,000 riders at 1 Hz need at least 10 connections.
- Each connection is one device: its client id is the thing name, and it publishes every rider
  it carries on its own topic (``breakaway/devices/<client id>/telemetry``, or that topic's Basic
  Ingest form), the only one the device policy allows. A reading goes out on the connection its
  ``device_id`` names (``simulator.fleet`` assigns riders to devices); one without is assigned
  round-robin on first sight. Either way a rider's readings stay on one connection, in order.
- QoS 1: a reading counts as acknowledged when its PUBACK arrives. A publish that fails
  (connection lost, operation timeout) is queued again on its connection and republished
  after the reconnect (awscrt reconnects by itself): nothing is lost, a reading may arrive
  twice (same eventId: the pipeline counts it once).
- QoS 0: acknowledged means written to the socket.

Connections: :func:`tcp_connection` (plain TCP, the local broker: built from
``awscrt.mqtt.Client(bootstrap, tls_ctx=None)`` because ``mqtt_connection_builder`` always
uses TLS) and :func:`mtls_connection` (IoT Core, X.509 client certificate, port 8883).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from awscrt import io, mqtt

from shared.limits import IOT_PUBLISHES_PER_CONNECTION
from shared.names import basic_ingest_topic, telemetry_topic
from simulator.transports.base import Outgoing, Stats, TransportError

OPERATION_TIMEOUT_MS = 10_000
_STOP = object()


def tcp_connection(host: str, port: int, client_id: str) -> mqtt.Connection:
    bootstrap = io.ClientBootstrap.get_or_create_static_default()
    client = mqtt.Client(bootstrap, tls_ctx=None)
    return mqtt.Connection(
        client,
        host_name=host,
        port=port,
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=30,
        reconnect_min_timeout_secs=1,
        reconnect_max_timeout_secs=8,
        protocol_operation_timeout_ms=OPERATION_TIMEOUT_MS,
        disable_metrics=True,
    )


def mtls_connection(
    endpoint: str, port: int, cert_path: str, key_path: str, client_id: str
) -> mqtt.Connection:
    from awsiot import mqtt_connection_builder

    connection: mqtt.Connection = mqtt_connection_builder.mtls_from_path(
        endpoint=endpoint,
        port=port,
        cert_filepath=cert_path,
        pri_key_filepath=key_path,
        client_id=client_id,
        clean_session=False,
        keep_alive_secs=30,
        reconnect_min_timeout_secs=1,
        reconnect_max_timeout_secs=8,
        protocol_operation_timeout_ms=OPERATION_TIMEOUT_MS,
    )
    return connection


class RateLimiter:
    """At most ``rate`` events in any one-second window (``rate`` 0 = unlimited)."""

    def __init__(
        self,
        rate: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._times: collections.deque[float] = collections.deque(maxlen=max(1, rate))
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        if len(self._times) == self.rate:
            wait = self._times[0] + 1.0 - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._times.append(self._clock())


class _Lane:
    """One connection (one device), its queue, its limiter and its publishing thread."""

    def __init__(self, owner: MqttTransport, connection: mqtt.Connection, index: int) -> None:
        self.owner = owner
        self.connection = connection
        self.index = index
        self.client_id: str = connection.client_id
        self.topic = owner.topic_of(self.client_id)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.limiter = RateLimiter(owner.max_rate)
        self.inflight = threading.BoundedSemaphore(owner.max_inflight)
        self.outstanding = 0
        """Readings given to this lane and not yet acknowledged or given up on."""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, name=f"mqtt-{index}", daemon=True)

    def run(self) -> None:
        topic, qos, publish = self.topic, self.owner.qos, self.connection.publish
        while True:
            chunk = self.queue.get()
            if chunk is _STOP:
                return
            for outgoing in chunk:
                self.limiter.acquire()
                self.inflight.acquire()
                try:
                    fut, _ = publish(topic, outgoing.payload, qos)
                except Exception:
                    self._finish(outgoing, ok=False)
                    continue
                fut.add_done_callback(
                    lambda f, o=outgoing: self._finish(o, ok=f.exception() is None)
                )

    def _finish(self, outgoing: Outgoing, *, ok: bool) -> None:
        self.inflight.release()
        if not ok and not self.owner.closing:
            # Republished on this connection once it is back (awscrt reconnects by itself).
            self.owner.stats.add(retried=1)
            self.queue.put([outgoing])
            return
        self.owner.stats.add(acknowledged=1 if ok else 0, failed=0 if ok else 1)
        with self.lock:
            self.outstanding -= 1

    def put(self, items: list[Outgoing]) -> None:
        with self.lock:
            self.outstanding += len(items)
        self.queue.put(items)


class MqttTransport:
    def __init__(
        self,
        connections: Sequence[mqtt.Connection],
        *,
        qos: int = 1,
        max_rate: int = IOT_PUBLISHES_PER_CONNECTION,
        basic_ingest_rule: str | None = None,
        max_inflight: int = 2_000,
        connect_timeout: float = 15.0,
        where: str = "the MQTT broker",
    ) -> None:
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        self.stats = Stats()
        self.qos = mqtt.QoS.AT_LEAST_ONCE if qos == 1 else mqtt.QoS.AT_MOST_ONCE
        self.max_rate = max_rate
        self.max_inflight = max_inflight
        self.basic_ingest_rule = basic_ingest_rule
        """Publish on this IoT rule's Basic Ingest topics (None: the telemetry topics)."""
        self.closing = False
        self._error: TransportError | None = None
        self._assigned: dict[str, _Lane] = {}
        self._lanes = [_Lane(self, c, i) for i, c in enumerate(connections)]
        self._by_device = {lane.client_id: lane for lane in self._lanes}
        self.devices: tuple[str, ...] = tuple(self._by_device)
        self.device_in_payload = False
        """The rule takes ``deviceId`` from the topic: a device does not write it."""
        self._connect(connect_timeout, where)
        for lane in self._lanes:
            lane.thread.start()

    def _connect(self, timeout: float, where: str) -> None:
        futures: list[Future[Any]] = [lane.connection.connect() for lane in self._lanes]
        try:
            for fut in futures:
                fut.result(timeout)
        except Exception as exc:
            for lane in self._lanes:
                with contextlib.suppress(Exception):
                    lane.connection.disconnect()
            name = getattr(exc, "name", type(exc).__name__)
            raise TransportError(
                f"cannot connect to {where} ({name}): is it running and is the address "
                "(and for IoT Core the certificate) right?"
            ) from exc

    @property
    def error(self) -> TransportError | None:
        return self._error

    def topic_of(self, device_id: str) -> str:
        """The one topic the device may publish on (plain, or its Basic Ingest form)."""
        if self.basic_ingest_rule is not None:
            return basic_ingest_topic(self.basic_ingest_rule, device_id)
        return telemetry_topic(device_id)

    def lane_of(self, item: Outgoing) -> _Lane:
        """The connection of the item's device, else the rider's (round-robin on first sight)."""
        if item.device_id is not None:
            lane = self._by_device.get(item.device_id)
            if lane is None:
                raise ValueError(f"no connection is device {item.device_id!r}")
            return lane
        lane = self._assigned.get(item.rider_id)
        if lane is None:
            lane = self._lanes[len(self._assigned) % len(self._lanes)]
            self._assigned[item.rider_id] = lane
        return lane

    def send(self, items: list[Outgoing]) -> None:
        self.stats.add(sent=len(items))
        chunks: dict[int, list[Outgoing]] = {}
        for item in items:
            chunks.setdefault(self.lane_of(item).index, []).append(item)
        for index, chunk in chunks.items():
            self._lanes[index].put(chunk)

    def backlog(self) -> int:
        return sum(lane.outstanding for lane in self._lanes)

    def flush(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.backlog() > 0:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.backlog()} readings still unacknowledged")
            time.sleep(0.01)

    def close(self) -> None:
        self.closing = True
        for lane in self._lanes:
            lane.queue.put(_STOP)
        for lane in self._lanes:
            lane.thread.join(timeout=5)
            with contextlib.suppress(Exception):
                lane.connection.disconnect().result(5)
