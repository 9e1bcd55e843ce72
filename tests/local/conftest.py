"""Fixtures of the local stack's tests: one emulator process per test session (per xdist
worker), on a free port of 127.0.0.1; each test makes its own uniquely named resources."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local import procs
from local.aws.iot_broker import BROKERS
from shared.names import LOCAL_REGION


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
    }.items():
        os.environ.setdefault(name, value)
    port = procs.free_port()
    proc = procs.start_module("local.aws.moto_server", ["--port", str(port)])
    try:
        procs.wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        procs.stop_process(proc)


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=LOCAL_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def kinesis(emulator_url: str) -> Any:
    return client("kinesis", emulator_url)


@pytest.fixture
def s3(emulator_url: str) -> Any:
    return client("s3", emulator_url)


@pytest.fixture
def sqs(emulator_url: str) -> Any:
    return client("sqs", emulator_url)


@pytest.fixture
def stream(kinesis: Any) -> str:
    """A fresh one-shard stream."""
    name = f"s-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
    return name


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session", params=BROKERS)
def mqtt_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """The local stack's MQTT broker, one per test session: aedes (the default) and amqtt
    (the fallback), so that what runs over MQTT is tested on both."""
    port = procs.free_port()
    proc = procs.start_module(
        "local.aws.iot_broker", ["--port", str(port), "--broker", request.param]
    )
    try:
        procs.wait_for_port(port, proc=proc)
        yield port
    finally:
        procs.stop_process(proc)
