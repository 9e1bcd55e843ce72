"""Simulator benchmark: readings/s from one process per transport, and CPU at 1,000 riders.

Every endpoint runs in a separate process, so the CPU figures are the simulator's own
(``resource.getrusage(RUSAGE_SELF)``: user + system of this process, all threads):

- Kinesis against a fast stand-in PutRecords endpoint (``simulator.standin``: answers
  PutRecords over HTTP, stores nothing) and against the emulator (plain moto server, one call
  in flight because moto's shard is not safe for concurrent puts): moto is the bottleneck there.
- MQTT QoS 1 against a fast stand-in endpoint (``simulator.standin_mqtt``: PUBACKs everything)
  and against amqtt (the test broker, the bottleneck there); no per-connection rate limit.
- ``cpu_fraction_1000_riders_1hz``: 1,000 riders at 1 Hz in real time for 10 s over Kinesis to
  the stand-in: CPU seconds per race second (= fraction of one core). Bar: at most 0.10.

Wall-clock rates depend on what else runs on the machine (the load average is recorded);
``*_cpu_bound_readings_per_s`` (readings per CPU-second of this process) does not.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.limits import IOT_PUBLISHES_PER_CONNECTION
from simulator.localbroker import free_port, start_broker, stop, wait_for_port
from simulator.model import RaceConfig
from simulator.runner import RunOptions, Summary, simulate
from simulator.standin import STANDIN_STREAM
from simulator.transports.base import Transport
from simulator.transports.kinesis import KinesisTransport, kinesis_client
from simulator.transports.mqtt import MqttTransport, tcp_connection

CPU_BAR = 0.10
RATE_BAR = 10_000


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


@contextmanager
def _process(module: str, port: int) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        stop(proc)


@contextmanager
def _moto() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def _measure(
    config: RaceConfig, make: Callable[[], Transport], compression: float = 0
) -> dict[str, Any]:
    transport = make()
    cpu0 = _cpu()
    summary: Summary = simulate(config, transport, RunOptions(time_compression=compression))
    cpu = _cpu() - cpu0
    transport.close()
    n = summary.counts.acknowledged
    assert summary.counts.failed == 0, summary.line()
    return {
        "readings": n,
        "wall_s": round(summary.wall_seconds, 2),
        "cpu_s": round(cpu, 3),
        "readings_per_s": round(n / summary.wall_seconds),
        "cpu_bound_readings_per_s": round(n / cpu) if cpu else None,
        "cpu_ms_per_1000_readings": round(1e6 * cpu / n, 1),
    }


def _kinesis(url: str, stream: str, in_flight: int) -> Callable[[], Transport]:
    def make() -> Transport:
        client = kinesis_client(
            endpoint_url=url,
            region="us-east-1",
            max_in_flight=in_flight,
            access_key="bench",
            secret_key="bench",
        )
        return KinesisTransport(client, stream, max_in_flight=in_flight)

    return make


def _mqtt(port: int, connections: int, qos: int) -> Callable[[], Transport]:
    def make() -> Transport:
        pid = os.getpid()
        conns = [tcp_connection("127.0.0.1", port, f"bench-{pid}-{i}") for i in range(connections)]
        return MqttTransport(conns, qos=qos, max_rate=0)

    return make


FAST = RaceConfig("bench-fast", riders=2_000, duration=15, seed=1, start_ms=0)
"""The unpaced run of each transport against its fast stand-in."""
REALTIME = RaceConfig("bench-1hz", riders=1_000, duration=10, seed=1, start_ms=0)
"""1,000 riders at 1 Hz in real time: the CPU-fraction run."""


def _kinesis_runs() -> dict[str, dict[str, Any]]:
    small = RaceConfig("bench-emu", riders=1_000, duration=8, seed=1, start_ms=0)
    with _process("simulator.standin", free_port()) as port:
        url = f"http://127.0.0.1:{port}"
        _measure(small, _kinesis(url, STANDIN_STREAM, 4))  # warm-up (imports, caches)
        kinesis_fast = _measure(FAST, _kinesis(url, STANDIN_STREAM, 4))
        one_hz = _measure(REALTIME, _kinesis(url, STANDIN_STREAM, 4), compression=1.0)
    with _moto() as moto_url:
        boto = kinesis_client(
            endpoint_url=moto_url, region="us-east-1", access_key="b", secret_key="b"
        )
        boto.create_stream(StreamName="bench", ShardCount=2)
        time.sleep(0.5)
        kinesis_emulator = _measure(small, _kinesis(moto_url, "bench", 1))
    return {
        "kinesis_standin": kinesis_fast,
        "kinesis_1000_riders_1hz": one_hz,
        "kinesis_emulator": kinesis_emulator,
    }


def _mqtt_runs() -> dict[str, dict[str, Any]]:
    with _process("simulator.standin_mqtt", free_port()) as port:
        mqtt_fast = _measure(FAST, _mqtt(port, 10, 1))
    broker_port = free_port()
    broker = start_broker(broker_port)
    try:
        mqtt_amqtt = _measure(
            RaceConfig("bench-amqtt", riders=500, duration=8, seed=1, start_ms=0),
            _mqtt(broker_port, 10, 1),
        )
    finally:
        stop(broker)
    return {"mqtt_standin": mqtt_fast, "mqtt_amqtt": mqtt_amqtt}


def _bars(kinesis_fast: dict[str, Any], fraction: float) -> dict[str, Any]:
    return {
        "cpu_fraction_1000_riders_1hz_max": CPU_BAR,
        "readings_per_s_min": RATE_BAR,
        "cpu_fraction_met": fraction <= CPU_BAR,
        "kinesis_rate_met": kinesis_fast["readings_per_s"] >= RATE_BAR,
        "kinesis_cpu_bound_rate_met": (kinesis_fast["cpu_bound_readings_per_s"] or 0) >= RATE_BAR,
    }


def run() -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    runs = {**_kinesis_runs(), **_mqtt_runs()}
    kinesis_fast, kinesis_emulator = runs["kinesis_standin"], runs["kinesis_emulator"]
    mqtt_fast, mqtt_amqtt = runs["mqtt_standin"], runs["mqtt_amqtt"]
    fraction = runs["kinesis_1000_riders_1hz"]["cpu_s"] / REALTIME.duration
    return {
        "kinesis_readings_per_s": kinesis_fast["readings_per_s"],
        "kinesis_readings_per_s_against": "fast stand-in PutRecords endpoint "
        "(simulator.standin, separate process), 4 calls in flight, 2,000 riders, no pacing",
        "kinesis_cpu_bound_readings_per_s": kinesis_fast["cpu_bound_readings_per_s"],
        "kinesis_cpu_ms_per_1000_readings": kinesis_fast["cpu_ms_per_1000_readings"],
        "kinesis_emulator_readings_per_s": kinesis_emulator["readings_per_s"],
        "kinesis_emulator_readings_per_s_against": "plain moto server (the emulator; the "
        "bottleneck), 2 shards, 1 call in flight, 1,000 riders",
        "mqtt_readings_per_s": mqtt_fast["readings_per_s"],
        "mqtt_readings_per_s_against": "fast stand-in MQTT endpoint that PUBACKs everything "
        "(simulator.standin_mqtt), QoS 1, 10 connections, no per-connection rate limit, "
        "2,000 riders, no pacing",
        "mqtt_cpu_bound_readings_per_s": mqtt_fast["cpu_bound_readings_per_s"],
        "mqtt_cpu_ms_per_1000_readings": mqtt_fast["cpu_ms_per_1000_readings"],
        "mqtt_broker_readings_per_s": mqtt_amqtt["readings_per_s"],
        "mqtt_broker_readings_per_s_against": "amqtt broker (the bottleneck), QoS 1, "
        "10 connections",
        "mqtt_iot_core_ceiling_per_connection": IOT_PUBLISHES_PER_CONNECTION,
        "cpu_fraction_1000_riders_1hz": round(fraction, 4),
        "cpu_fraction_1000_riders_1hz_against": "Kinesis transport to the stand-in, real time "
        "(time compression 1) for 10 race seconds; CPU (user+sys, this process) / 10 s",
        "bars": _bars(kinesis_fast, fraction),
        "runs": runs,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
