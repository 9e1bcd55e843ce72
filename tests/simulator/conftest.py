"""Fixtures for the simulator's tests: a stand-in Kinesis endpoint and an MQTT broker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from simulator.localbroker import free_port, start_broker, stop
from simulator.standin import StandinServer


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    server = StandinServer(0, keep=True)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def broker_port() -> Iterator[int]:
    port = free_port()
    proc: subprocess.Popen[bytes] = start_broker(port)
    yield port
    stop(proc)
