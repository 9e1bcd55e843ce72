"""The local stack's MQTT broker: which one runs, a clear word when the choice is wrong,
persistent sessions, and device topics kept to their devices as IoT Core's policy keeps them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from awscrt import io, mqtt

from local import procs
from local.aws.iot_broker import BROKER_ENV, device_of, may_publish
from shared.names import (
    LOCAL_RULE_NAME,
    basic_ingest_topic_prefix,
    result_topic,
    telemetry_topic,
)
from tests.local.aws.mqtt_wire import (
    connect,
    packet,
    publish_qos1,
    read_packet,
    text,
    until_closed,
)

ROOT = Path(__file__).resolve().parents[3]


def test_the_default_broker_is_aedes_on_node_in_the_same_process() -> None:
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if k != BROKER_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.aws.iot_broker", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        procs.wait_for_port(port, proc=proc)
        exe = Path(f"/proc/{proc.pid}/exe").resolve().name
        assert exe.startswith("node")  # exec'd: the stack stops the pid it started
    finally:
        procs.stop_process(proc)
    assert proc.stdout is not None
    assert f"mqtt broker (aedes) listening on 127.0.0.1:{port}" in proc.stdout.read().decode()


def test_an_unknown_broker_in_the_environment_is_named() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "local.aws.iot_broker", "--port", "1"],
        cwd=ROOT,
        env={**os.environ, BROKER_ENV: "mosquitto"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert out.returncode == 2
    assert "BREAKAWAY_MQTT_BROKER must be one of aedes, amqtt, not 'mosquitto'" in out.stderr


# --- persistent sessions: [MQTT-4.4.0-1] ---------------------------------------------------------
def test_a_message_in_flight_when_the_subscriber_drops_comes_again_when_it_is_back(
    mqtt_port: int, request: pytest.FixtureRequest
) -> None:
    """[MQTT-4.4.0-1]: a client that reconnects with CleanSession=0 gets again every QoS 1
    PUBLISH it did not acknowledge. The rule bridge relies on it when it is killed. amqtt
    drops a message whose PUBACK had not come when the connection closed."""
    if request.node.callspec.params["mqtt_port"] == "amqtt":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="amqtt 0.12 drops unacknowledged messages")
        )
    client_id = f"probe-{uuid.uuid4().hex[:8]}"
    topic = f"probe/{client_id}"
    sock, had_session = connect(mqtt_port, client_id)
    assert not had_session
    sock.sendall(packet(0x82, (1).to_bytes(2, "big") + text(topic) + b"\x01"))
    assert read_packet(sock)[0] == 0x90  # SUBACK
    pub = mqtt.Connection(
        mqtt.Client(io.ClientBootstrap.get_or_create_static_default(), None),
        host_name="127.0.0.1",
        port=mqtt_port,
        client_id=f"pub-{client_id}",
        disable_metrics=True,
    )
    pub.connect().result(timeout=10)
    pub.publish(topic, b"in flight", mqtt.QoS.AT_LEAST_ONCE)[0].result(timeout=10)
    pub.disconnect().result(timeout=10)
    kind, _ = read_packet(sock)
    assert kind & 0xF0 == 0x30  # the PUBLISH, never acknowledged:
    sock.close()

    time.sleep(0.5)
    again, had_session = connect(mqtt_port, client_id)
    try:
        assert had_session
        again.settimeout(3)  # aedes sends it at once; amqtt never does
        kind, body = read_packet(again)
    finally:
        again.close()
    assert (kind & 0xF6, body.endswith(b"in flight")) == (0x32, True)  # QoS 1, sent again
    # (aedes sends it again without the DUP flag [MQTT-3.3.1-1] asks for: the bridge ignores it)


# --- device topics: IoT Core's device policy ---------------------------------------------------
INGEST = basic_ingest_topic_prefix(LOCAL_RULE_NAME)
TOPICS = [
    # (topic hub-1 publishes on, allowed)
    (telemetry_topic("hub-1"), True),
    (telemetry_topic("hub-2"), False),
    (telemetry_topic("hub-10"), False),
    (telemetry_topic("hub"), False),
    ("breakaway/devices/hub-1/other", True),
    ("breakaway/devices/hub-2/other", False),
    ("breakaway/devices", True),
    (result_topic("race-1", "hub-2"), True),
    ("probe/hub-2/telemetry", True),
    (INGEST + telemetry_topic("hub-1"), True),
    (INGEST + telemetry_topic("hub-2"), False),
    ("$aws/rules/another_rule/" + telemetry_topic("hub-2"), False),
]


@pytest.mark.parametrize(("topic", "allowed"), TOPICS)
def test_a_device_topic_is_its_device_s_alone(topic: str, allowed: bool) -> None:
    assert device_of(telemetry_topic("hub-1")) == "hub-1"
    assert may_publish("hub-1", topic) is allowed


def acked_before_closing(request: pytest.FixtureRequest) -> list[list[int]]:
    """What a refused QoS 1 publish may get before the connection closes: nothing, as from IoT
    Core and aedes; amqtt acknowledges a message before its broker looks at the topic."""
    if request.node.callspec.params["mqtt_port"] == "amqtt":
        return [[], [0x40]]
    return [[]]


@pytest.mark.parametrize(("topic", "allowed"), TOPICS)
def test_a_publish_on_another_client_s_device_topic_closes_its_connection(
    mqtt_port: int, request: pytest.FixtureRequest, topic: str, allowed: bool
) -> None:
    """IoT Core refuses an unauthorized MQTT 3.1.1 publish with no PUBACK and closes the
    connection; so does the local broker, on each broker (amqtt closes any ``$`` topic's)."""
    if request.node.callspec.params["mqtt_port"] == "amqtt" and topic.startswith("$"):
        allowed = False  # amqtt refuses every $ topic [MQTT-4.7.2-1]: no Basic Ingest there
    client = f"hub-1-{uuid.uuid4().hex[:6]}"
    own = topic.replace("hub-1", client)
    sock, _ = connect(mqtt_port, client)
    sock.settimeout(10)
    try:
        publish_qos1(sock, own, b"{}")
        if allowed:
            kind, body = read_packet(sock)
            assert (kind, body) == (0x40, (7).to_bytes(2, "big"))  # PUBACK
        else:
            assert until_closed(sock) in acked_before_closing(request)
    finally:
        sock.close()


def test_what_a_client_may_not_publish_reaches_no_one(
    mqtt_port: int, request: pytest.FixtureRequest
) -> None:
    """hub-1's publish on hub-2's topic goes nowhere; hub-2's own, published after hub-1's
    connection was closed, is the only one its subscriber gets."""
    hub1, hub2 = (f"hub-{n}-{uuid.uuid4().hex[:6]}" for n in (1, 2))
    watcher, _ = connect(mqtt_port, f"watch-{uuid.uuid4().hex[:6]}")
    watcher.settimeout(10)
    watcher.sendall(packet(0x82, (1).to_bytes(2, "big") + text(telemetry_topic(hub2)) + b"\x01"))
    assert read_packet(watcher)[0] == 0x90  # SUBACK
    cheat, _ = connect(mqtt_port, hub1)
    cheat.settimeout(10)
    publish_qos1(cheat, telemetry_topic(hub2), b"cheat")
    assert until_closed(cheat) in acked_before_closing(request)
    own, _ = connect(mqtt_port, hub2)
    own.settimeout(10)
    publish_qos1(own, telemetry_topic(hub2), b"own")
    assert read_packet(own)[0] == 0x40
    kind, body = read_packet(watcher)
    assert (kind & 0xF0, body.endswith(b"own")) == (0x30, True)
    for s in (watcher, cheat, own):
        s.close()
