"""Fixtures for the simulator's tests: a stand-in Kinesis endpoint, an MQTT broker, a fake of
the organiser's API, and the `breakaway` CLI with the simulator's commands."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import local.cli
from simulator.localbroker import free_port, start_broker, stop
from simulator.standin import StandinServer
from tests.simulator.fake_api import FakeState, fake_api

SIMULATOR_COMMANDS = ("simulator.cli", "simulator.race_cli")


@pytest.fixture(autouse=True)
def simulator_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """`breakaway` with the simulator's commands only: these tests exercise them, and need not
    import every other command's module (the CLI imports each one it registers)."""
    build = local.cli.build_parser
    monkeypatch.setattr(local.cli, "build_parser", lambda: build(SIMULATOR_COMMANDS))


@pytest.fixture
def api() -> Iterator[tuple[str, FakeState]]:
    """A fake organiser API: its URL and what it holds and was asked."""
    with fake_api() as served:
        yield served


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


POLICY_DOC = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


@pytest.fixture
def iot() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("iot", region_name="us-east-1")
        client.create_policy(policyName="sim-policy", policyDocument=POLICY_DOC)
        yield client
