"""MQTT transport: against a broker on 127.0.0.1 (every QoS 1 reading accounted for, each on
its device's own topic), through a proxy that cuts the connections (nothing lost), and with
fake connections for the pool's own rules (rate limit, devices, republishing, topics)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from awscrt import mqtt

from shared.contract import parse_reading
from shared.names import TELEMETRY_TOPIC_FILTER, basic_ingest_topic, telemetry_topic
from simulator.fleet import Fleet
from simulator.model import RaceConfig, race
from simulator.runner import RunOptions, simulate
from simulator.transports.base import Outgoing
from simulator.transports.mqtt import MqttTransport, RateLimiter, tcp_connection


class Subscriber:
    """Counts every reading the broker delivers (QoS 1 subscription)."""

    def __init__(self, port: int, name: str) -> None:
        self.lock = threading.Lock()
        self.event_ids: Counter[str] = Counter()
        self.topics: dict[str, set[str]] = {}
        """The topics each rider's readings came on."""
        self.connection = tcp_connection("127.0.0.1", port, name)
        self.connection.connect().result(10)
        fut, _ = self.connection.subscribe(
            TELEMETRY_TOPIC_FILTER, mqtt.QoS.AT_LEAST_ONCE, callback=self.on_message
        )
        fut.result(10)

    def on_message(self, topic: str, payload: bytes, **_: Any) -> None:
        reading = parse_reading(payload)
        assert reading.device_id is None  # a device does not say: its topic does
        with self.lock:
            self.event_ids[reading.event_id] += 1
            self.topics.setdefault(reading.rider_id, set()).add(topic)

    def assert_each_rider_on_its_device(self, config: RaceConfig, devices: list[str]) -> None:
        fleet = Fleet(tuple(devices))
        with self.lock:
            assert self.topics == {
                f"rider-{i:05d}": {telemetry_topic(str(fleet.device_of(i)))}
                for i in range(config.riders)
            }

    def wait_for(self, wanted: set[str], timeout: float = 30.0) -> set[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if wanted <= set(self.event_ids):
                    break
            time.sleep(0.05)
        with self.lock:
            return set(self.event_ids)

    def close(self) -> None:
        self.connection.disconnect().result(5)


@pytest.fixture
def subscriber(broker_port: int, request: pytest.FixtureRequest) -> Iterator[Subscriber]:
    sub = Subscriber(broker_port, f"sub-{request.node.name[:40]}")
    yield sub
    sub.close()


def event_ids(config: RaceConfig) -> set[str]:
    return {r.event_id for b in race(config) for r in b}


def test_qos1_every_reading_is_acknowledged_and_arrives(
    broker_port: int, subscriber: Subscriber
) -> None:
    config = RaceConfig("race-q1", riders=40, duration=15, seed=3, start_ms=1)
    devices = [f"q1-{i}" for i in range(3)]
    connections = [tcp_connection("127.0.0.1", broker_port, d) for d in devices]
    transport = MqttTransport(connections, qos=1, max_rate=0)
    assert transport.devices == tuple(devices)
    summary = simulate(config, transport, RunOptions(time_compression=0, flush_timeout=60))
    transport.close()
    want = event_ids(config)
    got = subscriber.wait_for(want)
    assert got == want
    subscriber.assert_each_rider_on_its_device(config, devices)
    assert {rid: t.device_id for rid, t in summary.truth.riders.items()} == {
        f"rider-{i:05d}": devices[i % 3] for i in range(40)
    }
    c = summary.counts
    assert (c.sent, c.acknowledged, c.failed) == (len(want), len(want), 0)


def test_qos0_readings_arrive(broker_port: int, subscriber: Subscriber) -> None:
    config = RaceConfig("race-q0", riders=20, duration=10, seed=5, start_ms=1)
    connections = [tcp_connection("127.0.0.1", broker_port, f"q0-{i}") for i in range(2)]
    transport = MqttTransport(connections, qos=0, max_rate=0)
    summary = simulate(config, transport, RunOptions(time_compression=0, flush_timeout=60))
    transport.close()
    want = event_ids(config)
    assert subscriber.wait_for(want) == want
    assert summary.counts.acknowledged == len(want)


class CuttingProxy:
    """TCP forwarder on 127.0.0.1 whose connections can all be cut at once."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.cuts = 0
        self.accepted = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.accepted += 1
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.cuts += 1
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_qos1_readings_survive_dropped_connections(
    broker_port: int, subscriber: Subscriber
) -> None:
    config = RaceConfig("race-cut", riders=30, duration=40, seed=8, start_ms=1)
    proxy = CuttingProxy(broker_port)
    connections = [tcp_connection("127.0.0.1", proxy.port, f"cut-{i}") for i in range(2)]
    transport = MqttTransport(connections, qos=1, max_rate=0)
    produced = sum(len(b) for b in race(config))

    def cutter() -> None:
        # cut twice, while readings are flowing (bounded wait)
        for threshold in (produced // 4, produced // 2):
            deadline = time.monotonic() + 30
            while transport.stats.snapshot().sent < threshold and time.monotonic() < deadline:
                time.sleep(0.01)
            proxy.cut()

    thread = threading.Thread(target=cutter)
    thread.start()
    summary = simulate(config, transport, RunOptions(time_compression=20, flush_timeout=60))
    thread.join()
    transport.close()
    proxy.close()
    want = event_ids(config)
    assert proxy.cuts >= 2
    assert proxy.accepted >= 4  # both connections came back after each cut
    assert subscriber.wait_for(want) == want
    c = summary.counts
    assert c.failed == 0
    assert c.acknowledged == c.sent == len(want)


# --- the pool's own rules, with fake connections ---------------------------------------------


def done(value: Any = None, error: Exception | None = None) -> Future[Any]:
    fut: Future[Any] = Future()
    if error is None:
        fut.set_result(value)
    else:
        fut.set_exception(error)
    return fut


class FakeConnection:
    def __init__(self, fail_first: int = 0, client_id: str = "dev") -> None:
        self.client_id = client_id
        self.published: list[tuple[str, bytes]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def connect(self) -> Future[Any]:
        return done({"session_present": False})

    def disconnect(self) -> Future[Any]:
        return done()

    def publish(self, topic: str, payload: bytes, qos: Any) -> tuple[Future[Any], int]:
        with self.lock:
            self.published.append((topic, payload))
            if self.fail_first > 0:
                self.fail_first -= 1
                return done(error=RuntimeError("AWS_ERROR_MQTT_CONNECTION_DESTROYED")), 1
        return done({"packet_id": 1}), 1


def items(n: int, race_id: str = "r", device: str | None = None) -> list[Outgoing]:
    return [Outgoing(race_id, f"rider-{i:05d}", f"e{i}", b"{}", device) for i in range(n)]


def fakes_of(n: int, **kwargs: Any) -> list[FakeConnection]:
    return [FakeConnection(client_id=f"dev-{i}", **kwargs) for i in range(n)]


def test_each_connection_publishes_on_its_own_topic_only() -> None:
    fakes = fakes_of(3)
    transport = MqttTransport(fakes, max_rate=0)  # type: ignore[arg-type]
    assert (transport.devices, transport.device_in_payload) == (("dev-0", "dev-1", "dev-2"), False)
    transport.send(items(4, device="dev-2") + items(2, device="dev-0"))
    transport.flush(10)
    transport.close()
    assert [[t for t, _ in f.published] for f in fakes] == [
        [telemetry_topic("dev-0")] * 2,
        [],
        [telemetry_topic("dev-2")] * 4,
    ]
    assert telemetry_topic("dev-2") == "breakaway/devices/dev-2/telemetry"


def test_a_reading_for_a_device_the_pool_does_not_hold_is_refused() -> None:
    transport = MqttTransport(fakes_of(2), max_rate=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no connection is device 'dev-9'"):
        transport.send(items(1, device="dev-9"))
    transport.close()


def test_readings_without_a_device_are_spread_and_each_rider_stays_on_its_connection() -> None:
    fakes = fakes_of(10)
    transport = MqttTransport(fakes, max_rate=0)  # type: ignore[arg-type]
    transport.send(items(1000))
    transport.send(items(1000))
    transport.flush(10)
    transport.close()
    assert [len(f.published) for f in fakes] == [200] * 10
    for f in fakes:
        assert {t for t, _ in f.published} == {telemetry_topic(f.client_id)}
    # on first sight, round-robin; after that, the same connection
    lanes = [transport.lane_of(item).index for item in items(1000)]
    assert lanes == [i % 10 for i in range(1000)]


def test_failed_publishes_are_republished_until_acknowledged() -> None:
    fakes = [
        FakeConnection(fail_first=7, client_id="a"),
        FakeConnection(fail_first=3, client_id="b"),
    ]
    transport = MqttTransport(fakes, max_rate=0)  # type: ignore[arg-type]
    transport.send(items(50))
    transport.flush(10)
    transport.close()
    c = transport.stats.snapshot()
    assert (c.sent, c.acknowledged, c.retried, c.failed) == (50, 50, 10, 0)
    assert sum(len(f.published) for f in fakes) == 60


def test_basic_ingest_uses_the_rule_topic_of_the_device() -> None:
    fake = FakeConnection(client_id="gym-7")
    rule = "breakaway_qa_telemetry_to_kinesis"
    transport = MqttTransport([fake], max_rate=0, basic_ingest_rule=rule)  # type: ignore[list-item]
    transport.send(items(2, race_id="race-b", device="gym-7"))
    transport.flush(10)
    transport.close()
    assert [t for t, _ in fake.published] == [basic_ingest_topic(rule, "gym-7")] * 2
    assert fake.published[0][0] == (
        "$aws/rules/breakaway_qa_telemetry_to_kinesis/breakaway/devices/gym-7/telemetry"
    )


def test_rate_limiter_keeps_any_one_second_window_under_the_limit() -> None:
    now = [0.0]
    stamps: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(100, clock=lambda: now[0], sleep=sleep)
    for i in range(450):
        now[0] += 0.001 if i % 50 else 0.2  # bursts
        limiter.acquire()
        stamps.append(now[0])
    for i, t in enumerate(stamps):
        in_window = sum(1 for s in stamps[i:] if s < t + 1.0)
        assert in_window <= 100
    assert stamps[-1] >= 3.5  # 450 publishes at 100/s need about 4.5 s


def test_unlimited_rate_never_sleeps() -> None:
    limiter = RateLimiter(0, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))
    for _ in range(1000):
        limiter.acquire()


def test_connection_failure_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from simulator.transports.base import TransportError

    with pytest.raises(TransportError, match=r"cannot connect to the broker at 127\.0\.0\.1"):
        MqttTransport(
            [tcp_connection("127.0.0.1", port, "nobody")],
            connect_timeout=10,
            where=f"the broker at 127.0.0.1:{port}",
        )
