"""The local IoT rule: its SELECT and substitution templates evaluated as IoT Core does, and the
bridge: one Kinesis record per MQTT message, the device the topic's, keyed by the payload's
rider; what a device may not publish never reaches it."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from awscrt import io, mqtt

from local.aws.iot_rule import (
    BridgeConfig,
    BridgeProcess,
    BridgeStats,
    Journal,
    MessageContext,
    RuleBridge,
    RuleSql,
    TemplateError,
    render,
)
from shared.contract import Telemetry, parse_reading
from shared.names import (
    LOCAL_REGION,
    LOCAL_RULE_NAME,
    RULE_PARTITION_KEY,
    RULE_SQL,
    TELEMETRY_TOPIC_FILTER,
    basic_ingest_topic,
    telemetry_topic,
)
from tests.local.aws.mqtt_wire import connect, publish_qos1, until_closed

# --- substitution templates -------------------------------------------------------------------
TOPIC = telemetry_topic("hub-7")
MSG = MessageContext(
    topic=TOPIC,
    payload=b'{"raceId":"race-7","riderId":"rider_42","a":{"b":3}}',
    client_id="hub-7",
    timestamp_ms=1234,
)


def test_rule_partition_key_is_the_rider_id_of_the_payload() -> None:
    assert TOPIC == "breakaway/devices/hub-7/telemetry"
    assert render(RULE_PARTITION_KEY, MSG) == "rider_42"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${topic()}", TOPIC),
        ("${topic(1)}", "breakaway"),
        ("${topic(3)}", "hub-7"),
        ("${topic(4)}", "telemetry"),
        ("${ topic( 3 ) }", "hub-7"),
        ("${raceId}", "race-7"),
        ("${a.b}", "3"),
        ("${clientid()}", "hub-7"),
        ("${timestamp()}", "1234"),
        ("k-${topic(3)}/${riderId}", "k-hub-7/rider_42"),
        ("plain", "plain"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, MSG) == expected


def test_newuuid_is_a_fresh_uuid_each_time() -> None:
    first, second = render("${newuuid()}", MSG), render("${newuuid()}", MSG)
    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert first != second


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("${topic(5)}", "has no level 5"),
        ("${topic(0)}", "has no level 0"),
        ("${missing}", "no such attribute"),
        ("${a.c}", "no such attribute"),
        ("${nope()}", "unsupported function nope()"),
        ("${1+1}", "unsupported expression"),
    ],
)
def test_unresolvable_reference_is_an_error(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(reason)):
        render(template, MSG)


def test_attribute_of_a_non_json_payload_is_an_error() -> None:
    with pytest.raises(TemplateError, match="not JSON"):
        render("${raceId}", MessageContext(topic=TOPIC, payload=b"\x00binary"))


# --- the rule's SELECT ------------------------------------------------------------------------
RULE = RuleSql.parse(RULE_SQL)
READING = Telemetry(
    v=2,
    event_id="e-1",
    race_id="race-7",
    rider_id="rider_42",
    second=12,
    cadence=90,
    resistance=40,
    device_timestamp=1_800_000_012_000,
    event="update",
)


def selected(payload: bytes, topic: str = TOPIC) -> bytes:
    return RULE.select(MessageContext(topic=topic, payload=payload))


def test_the_record_is_the_reading_with_the_topic_s_device() -> None:
    assert RULE.topic_filter == TELEMETRY_TOPIC_FILTER
    record = selected(READING.to_json())
    assert parse_reading(record) == READING.model_copy(update={"device_id": "hub-7"})
    assert record == (
        b'{"v":2,"eventId":"e-1","raceId":"race-7","riderId":"rider_42","second":12,'
        b'"cadence":90,"resistance":40,"deviceTimestamp":1800000012000,"event":"update",'
        b'"deviceId":"hub-7"}'
    )


def test_a_payload_s_own_device_id_is_overridden_by_the_topic_s() -> None:
    spoofed = READING.model_copy(update={"device_id": "hub-9"}).to_json()
    assert parse_reading(selected(spoofed)).device_id == "hub-7"
    assert b"hub-9" not in selected(spoofed)


def test_what_the_contract_does_not_know_is_dropped_and_what_is_missing_left_out() -> None:
    assert selected(b'{"riderId":"a","name":"Ann","classId":3,"second":1}') == (
        b'{"riderId":"a","second":1,"deviceId":"hub-7"}'
    )
    assert selected(b"{}") == b'{"deviceId":"hub-7"}'
    assert selected(b"[1,2]") == b'{"deviceId":"hub-7"}'
    assert selected(b'{"v":null,"second":[1]}') == b'{"v":null,"second":[1],"deviceId":"hub-7"}'


def test_a_whole_number_written_as_a_decimal_is_an_int_as_in_sql_2016_03_23() -> None:
    assert selected(b'{"second":3.0,"cadence":90.5,"resistance":1e2}') == (
        b'{"second":3,"cadence":90.5,"resistance":100,"deviceId":"hub-7"}'
    )


def test_a_payload_that_is_not_json_has_no_record() -> None:
    with pytest.raises(TemplateError, match="the payload is not JSON"):
        selected(b"\x00binary")


def test_the_basic_ingest_prefix_is_not_a_level_of_the_topic() -> None:
    ingest = basic_ingest_topic(LOCAL_RULE_NAME, "hub-3")
    bridge = RuleBridge(
        kinesis=None, config=BridgeConfig(stream_name="s", mqtt_host="127.0.0.1", mqtt_port=1)
    )
    assert bridge.rule_topic(ingest) == telemetry_topic("hub-3")
    assert parse_reading(selected(READING.to_json(), bridge.rule_topic(ingest))).device_id == (
        "hub-3"
    )


@pytest.mark.parametrize(
    ("sql", "items"),
    [
        ("SELECT * FROM 'a/+'", (("*", "*"),)),
        (
            "select a.b, c AS d, topic(2) as t from 'a/#'",
            (("a.b", "b"), ("c", "d"), ("topic(2)", "t")),
        ),
    ],
)
def test_the_rule_sql_the_bridge_reads(sql: str, items: tuple[tuple[str, str], ...]) -> None:
    assert RuleSql.parse(sql).items == items
    star = RuleSql.parse("SELECT * FROM 'a'")
    assert star.select(MessageContext(topic="a", payload=b"\x00raw")) == b"\x00raw"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT *, topic(3) AS deviceId FROM 'a'", "* with other items"),
        ("SELECT topic(3) FROM 'a'", "name it with AS"),
        ("SELECT upper(x) AS y FROM 'a'", "unsupported rule SQL item"),
        ("SELECT a FROM 'a' WHERE b > 1", "unsupported rule SQL"),
        ("DELETE FROM 'a'", "unsupported rule SQL"),
    ],
)
def test_rule_sql_beyond_what_the_bridge_evaluates_is_refused_up_front(
    sql: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        RuleSql.parse(sql)


# --- the bridge ---------------------------------------------------------------------------


def publisher(port: int, device: str) -> mqtt.Connection:
    """A device's connection: its client id is the device's id."""
    client = mqtt.Client(io.ClientBootstrap.get_or_create_static_default(), tls_ctx=None)
    conn = mqtt.Connection(
        client,
        host_name="127.0.0.1",
        port=port,
        client_id=device,
        keep_alive_secs=30,
        disable_metrics=True,
    )
    conn.connect().result(timeout=10)
    return conn


def device() -> str:
    return f"hub-{uuid.uuid4().hex[:8]}"


def record(payload: bytes, device_id: str) -> bytes:
    """What the rule puts for a payload of these tests (riderId, second) from a device."""
    fields = json.loads(payload)
    return json.dumps(fields | {"deviceId": device_id}, separators=(",", ":")).encode()


def read_all(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out.extend(kinesis.get_records(ShardIterator=it, Limit=10_000)["Records"])
    return out


@pytest.fixture
def bridge(kinesis: Any, stream: str, mqtt_port: int) -> Any:
    b = RuleBridge(
        kinesis=kinesis,
        config=BridgeConfig(
            stream_name=stream,
            mqtt_host="127.0.0.1",
            mqtt_port=mqtt_port,
            client_id=f"rule-{uuid.uuid4().hex[:8]}",
        ),
    )
    b.start()
    yield b
    b.stop()


def wait(check: Any, timeout: float = 10.0, what: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out {what() if what else ''}"
        time.sleep(0.05)


def test_each_message_becomes_one_record_keyed_by_the_rider_id(
    bridge: RuleBridge, kinesis: Any, stream: str, mqtt_port: int
) -> None:
    hub = device()
    conn = publisher(mqtt_port, hub)
    sent = []
    try:
        for rider in ("ann", "bob", "cy"):
            for s in range(4):
                payload = f'{{"riderId":"{rider}","second":{s}}}'.encode()
                sent.append((rider, record(payload, hub)))
                conn.publish(telemetry_topic(hub), payload, mqtt.QoS.AT_LEAST_ONCE)[0].result(
                    timeout=10
                )
        # the same payload published twice is two messages, so two records
        again = b'{"riderId":"ann","second":0}'
        conn.publish(telemetry_topic(hub), again, mqtt.QoS.AT_LEAST_ONCE)[0].result(timeout=10)
        sent.append(sent[0])
        # not the rule's topic: not forwarded
        conn.publish(f"breakaway/devices/{hub}/other", b"{}", mqtt.QoS.AT_LEAST_ONCE)[0].result(
            timeout=10
        )
    finally:
        conn.disconnect().result(timeout=10)
    wait(lambda: bridge.stats.put == len(sent))
    time.sleep(0.2)
    records = read_all(kinesis, stream)
    assert sorted((r["PartitionKey"], r["Data"]) for r in records) == sorted(sent)
    # a rider's readings keep their order (one shard here, one sender)
    ann = [r["Data"] for r in records if r["PartitionKey"] == "ann"]
    assert ann[:4] == [p for k, p in sent[:4]]


def test_a_device_s_reading_reaches_kinesis_with_its_device_whatever_its_payload_says(
    bridge: RuleBridge, kinesis: Any, stream: str, mqtt_port: int
) -> None:
    hub = device()
    conn = publisher(mqtt_port, hub)
    spoofed = READING.model_copy(update={"device_id": "someone-else"})
    try:
        conn.publish(telemetry_topic(hub), spoofed.to_json(), mqtt.QoS.AT_LEAST_ONCE)[0].result(
            timeout=10
        )
    finally:
        conn.disconnect().result(timeout=10)
    wait(lambda: bridge.stats.put == 1)
    (put,) = read_all(kinesis, stream)
    assert put["PartitionKey"] == "rider_42"
    assert parse_reading(put["Data"]) == READING.model_copy(update={"device_id": hub})


def test_a_reading_on_another_device_s_topic_is_refused_and_reaches_nothing(
    bridge: RuleBridge, kinesis: Any, stream: str, mqtt_port: int, request: pytest.FixtureRequest
) -> None:
    """The broker closes the connection of a client that publishes on another's device topic
    (as IoT Core does: the device policy), so the rule never sees it: only the device's own
    reading, published after, reaches Kinesis."""
    hub, other = device(), device()
    sock, _ = connect(mqtt_port, hub)
    publish_qos1(sock, telemetry_topic(other), READING.to_json())
    closed_with = until_closed(sock)
    sock.close()
    amqtt = request.node.callspec.params["mqtt_port"] == "amqtt"
    assert closed_with in ([[], [0x40]] if amqtt else [[]])  # amqtt acks before it looks
    conn = publisher(mqtt_port, other)
    try:
        conn.publish(telemetry_topic(other), READING.to_json(), mqtt.QoS.AT_LEAST_ONCE)[0].result(
            timeout=10
        )
    finally:
        conn.disconnect().result(timeout=10)
    wait(lambda: bridge.stats.put == 1)
    (put,) = read_all(kinesis, stream)
    assert parse_reading(put["Data"]).device_id == other
    assert bridge.stats.received == 1


def test_basic_ingest_topic_is_keyed_and_stamped_from_the_topic_the_rule_sees(
    bridge: RuleBridge, kinesis: Any, stream: str
) -> None:
    bridge.on_message(basic_ingest_topic(LOCAL_RULE_NAME, "dee"), b'{"riderId":"r1"}')
    wait(lambda: bridge.stats.put == 1)
    (put,) = read_all(kinesis, stream)
    assert (put["PartitionKey"], put["Data"]) == ("r1", b'{"riderId":"r1","deviceId":"dee"}')


@pytest.mark.parametrize(
    "payload",
    [b"\x00binary", b"not json", b"{}", b'{"riderId":""}', b"[1,2]", b'{"second":1}'],
)
def test_a_message_without_a_rider_is_a_failed_action_not_a_record(
    kinesis: Any, stream: str, payload: bytes
) -> None:
    """IoT Core renders ``${riderId}`` of such a payload as an empty string (Undefined), which
    Kinesis refuses as a partition key: the action fails (the error action keeps the message)."""
    b = RuleBridge(
        kinesis=kinesis,
        config=BridgeConfig(stream_name=stream, mqtt_host="127.0.0.1", mqtt_port=1),
    )
    b.on_message(telemetry_topic("hub-1"), payload)
    assert (b.stats.received, b.stats.failed_actions) == (1, 1)
    assert b.idle
    assert read_all(kinesis, stream) == []


def test_a_key_that_cannot_be_rendered_is_a_failed_action(kinesis: Any, stream: str) -> None:
    b = RuleBridge(
        kinesis=kinesis,
        config=BridgeConfig(
            stream_name=stream, mqtt_host="127.0.0.1", mqtt_port=1, partition_key="${topic(9)}"
        ),
    )
    b.on_message(telemetry_topic("hub-1"), b'{"riderId":"a"}')
    assert (b.stats.received, b.stats.failed_actions) == (1, 0 + 1)
    assert read_all(kinesis, stream) == []


class FlakyKinesis:
    """Fails every other entry of the first PutRecords call (HTTP 200, per-entry errors)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[int] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(len(Records))
        if len(self.calls) == 1:
            ok = [r for i, r in enumerate(Records) if i % 2 == 0]
            self.real.put_records(StreamName=StreamName, Records=ok)
            return {
                "FailedRecordCount": len(Records) - len(ok),
                "Records": [
                    {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
                    if i % 2 == 0
                    else {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "x",
                    }
                    for i in range(len(Records))
                ],
            }
        out: dict[str, Any] = self.real.put_records(StreamName=StreamName, Records=Records)
        return out


def test_failed_entries_are_sent_again_and_only_they(kinesis: Any, stream: str) -> None:
    flaky = FlakyKinesis(kinesis)
    b = RuleBridge(
        kinesis=flaky,
        config=BridgeConfig(stream_name=stream, mqtt_host="127.0.0.1", mqtt_port=1),
    )
    batch = [(f"p{i}".encode(), f"k{i}") for i in range(6)]
    b.put(batch)
    assert flaky.calls == [6, 3]
    assert (b.stats.put, b.stats.entry_retries) == (6, 3)
    assert sorted(r["Data"] for r in read_all(kinesis, stream)) == sorted(d for d, _ in batch)


def test_as_a_process_the_bridge_reports_what_it_put_and_goes_when_stopped(
    emulator_url: str, kinesis: Any, stream: str, mqtt_port: int, tmp_path: Path
) -> None:
    config = BridgeConfig(
        stream_name=stream,
        mqtt_host="127.0.0.1",
        mqtt_port=mqtt_port,
        client_id=f"rule-{uuid.uuid4().hex[:8]}",
    )
    (tmp_path / "logs").mkdir()
    process = BridgeProcess(config, emulator_url, LOCAL_REGION, tmp_path).start()
    assert process.proc is not None
    pid = process.proc.pid
    try:
        hub = device()
        conn = publisher(mqtt_port, hub)
        try:
            for s in range(5):
                payload = f'{{"riderId":"eve","second":{s}}}'.encode()
                conn.publish(telemetry_topic(hub), payload, mqtt.QoS.AT_LEAST_ONCE)[0].result(
                    timeout=10
                )
        finally:
            conn.disconnect().result(timeout=10)
        wait(lambda: process.stats.put == 5 and process.idle)
        assert process.stats == BridgeStats(received=5, put=5, failed_actions=0, entry_retries=0)
        assert [r["PartitionKey"] for r in read_all(kinesis, stream)] == ["eve"] * 5
    finally:
        process.stop()
    assert process.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- a persistent session: nothing lost while the bridge is away ------------------------------
def publish(port: int, hub: str, rider: str, seconds: range) -> list[bytes]:
    """Publish a rider's seconds from a device; the records the rule makes of them."""
    conn = publisher(port, hub)
    sent = []
    try:
        for s in seconds:
            payload = f'{{"riderId":"{rider}","second":{s}}}'.encode()
            conn.publish(telemetry_topic(hub), payload, mqtt.QoS.AT_LEAST_ONCE)[0].result(
                timeout=10
            )
            sent.append(record(payload, hub))
    finally:
        conn.disconnect().result(timeout=10)
    return sent


def config_for(stream: str, mqtt_port: int, client_id: str, **extra: Any) -> BridgeConfig:
    return BridgeConfig(
        stream_name=stream, mqtt_host="127.0.0.1", mqtt_port=mqtt_port, client_id=client_id, **extra
    )


def test_what_is_published_while_the_bridge_is_stopped_reaches_kinesis_when_it_is_back(
    kinesis: Any, stream: str, mqtt_port: int
) -> None:
    """The broker keeps the bridge's session (its subscriptions and the QoS 1 messages meant
    for it) while it is away, as IoT Core keeps a persistent session: on both brokers."""
    config = config_for(stream, mqtt_port, f"rule-{uuid.uuid4().hex[:8]}")
    hub = device()
    first = RuleBridge(kinesis=kinesis, config=config)
    first.start()
    sent = publish(mqtt_port, hub, "ann", range(3))
    wait(lambda: first.stats.put == 3 and first.idle)
    first.stop()

    sent += publish(mqtt_port, hub, "ann", range(3, 10))  # nobody is subscribed right now
    again = RuleBridge(kinesis=kinesis, config=config)
    again.start()
    try:
        wait(lambda: again.stats.put == 7 and again.idle)
    finally:
        again.stop()

    assert sorted(r["Data"] for r in read_all(kinesis, stream)) == sorted(sent)


class DownKinesis:
    """Kinesis unreachable: every PutRecords call fails."""

    def __init__(self) -> None:
        self.calls = 0

    def put_records(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise ConnectionError("kinesis is down")


def test_what_the_bridge_took_but_did_not_put_is_put_by_the_next_one(
    kinesis: Any, stream: str, mqtt_port: int, tmp_path: Path
) -> None:
    """A message is acknowledged to the broker once the bridge's callback returns, so the
    broker will not send it again: the bridge writes it to its journal first, and the bridge
    that follows (after a crash) puts what the journal holds and Kinesis does not."""
    journal = str(tmp_path / "bridge.journal")
    config = config_for(stream, mqtt_port, f"rule-{uuid.uuid4().hex[:8]}", journal=journal)
    down = DownKinesis()
    crashed = RuleBridge(kinesis=down, config=config)
    crashed.start()
    sent = publish(mqtt_port, device(), "bob", range(6))
    wait(lambda: crashed.stats.received == 6 and down.calls > 0)
    crashed.stop(drain_timeout=0)  # what it holds is lost with it, as with SIGKILL
    assert crashed.stats.put == 0

    again = RuleBridge(kinesis=kinesis, config=config)
    again.start()
    try:
        wait(lambda: again.stats.put == 6 and again.idle)
        assert again.stats.replayed == 6
    finally:
        again.stop()

    assert sorted(r["Data"] for r in read_all(kinesis, stream)) == sorted(sent)
    assert Path(journal).stat().st_size == 0  # all of it in Kinesis: the journal starts again


def test_a_bridge_process_killed_and_started_again_loses_nothing(
    emulator_url: str,
    kinesis: Any,
    stream: str,
    mqtt_port: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """SIGKILL: what the bridge had journaled is put by the next one, what the broker had sent
    and not had acknowledged comes again, what is published meanwhile waits in the session."""
    if request.node.callspec.params["mqtt_port"] == "amqtt":
        pytest.skip("amqtt drops the messages in flight to a client that dies (test_iot_broker)")
    config = config_for(stream, mqtt_port, f"rule-{uuid.uuid4().hex[:8]}")
    (tmp_path / "logs").mkdir()
    process = BridgeProcess(config, emulator_url, LOCAL_REGION, tmp_path).start()
    hub = device()
    try:
        sent = publish(mqtt_port, hub, "cy", range(20))
        assert process.proc is not None
        os.kill(process.proc.pid, signal.SIGKILL)
        process.proc.wait(timeout=10)
        sent += publish(mqtt_port, hub, "cy", range(20, 40))  # the bridge is down
        process.start()
        sent += publish(mqtt_port, hub, "cy", range(40, 50))
        wait(
            lambda: len({r["Data"] for r in read_all(kinesis, stream)}) == 50,
            timeout=30,
            what=lambda: sorted(
                int(json.loads(r["Data"])["second"]) for r in read_all(kinesis, stream)
            ),
        )
    finally:
        process.stop()

    records = [r["Data"] for r in read_all(kinesis, stream)]
    assert set(records) == set(sent)  # at least once: what was in flight may come twice
    assert all(r["PartitionKey"] == "cy" for r in read_all(kinesis, stream))


def test_the_journal_keeps_what_is_not_marked_and_cuts_what_a_kill_tore(tmp_path: Path) -> None:
    path = tmp_path / "bridge.journal"
    journal = Journal(path)
    first = journal.append(b"one", "k1")
    second = journal.append(b"two", "k2")
    journal.mark(first)
    journal.close()
    with path.open("ab") as torn:  # a write the kill cut short (never acknowledged)
        torn.write(Journal.HEADER.pack(100, 2) + b"cut")

    journal = Journal(path)
    assert journal.pending() == [(b"two", "k2", second)]
    assert path.stat().st_size == second
    third = journal.append(b"three", "k3")
    journal.mark(third)  # everything is in Kinesis: the file starts again
    assert (path.stat().st_size, journal.mark_path.read_text()) == (0, "0")
    journal.close()

    journal.mark_path.write_text("999")  # killed between emptying the file and moving the mark
    journal = Journal(path)
    assert journal.pending() == []
    assert journal.mark_path.read_text() == "0"
    fourth = journal.append(b"four", "k4")
    journal.close()
    reopened = Journal(path)
    assert reopened.pending() == [(b"four", "k4", fourth)]
    reopened.close()
