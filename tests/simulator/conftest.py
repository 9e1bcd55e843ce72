"""Fixtures for the simulator's tests: a stand-in Kinesis endpoint and an MQTT broker."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

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
