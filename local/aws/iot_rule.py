"""IoT Core's topic rule, locally: each MQTT telemetry message becomes one Kinesis record.

The deployed topic rule is ``shared.names.RULE_SQL`` (``SELECT * FROM '<TELEMETRY_TOPIC_FILTER>'``)
with a Kinesis action whose partition key is ``shared.names.RULE_PARTITION_KEY``
(``${topic(5)}``, the rider id). The bridge (:class:`RuleBridge`) subscribes to the same filter
(and to the rule's Basic Ingest topics, where the broker allows ``$`` topics) and, for each
message, puts one Kinesis record: the payload unchanged (``SELECT *``), the partition key
rendered by :func:`render` from the topic the rule sees (Basic Ingest prefix removed).

Substitution templates (``${...}``) are evaluated the way IoT Core does:

- ``${topic()}`` is the whole topic, ``${topic(n)}`` its n-th level, 1-based;
- ``${clientid()}``, ``${timestamp()}`` (epoch ms), ``${newuuid()}``;
- ``${field}`` / ``${a.b}`` an attribute of the JSON payload;
- text outside ``${...}`` is copied as is.

A reference that yields nothing (a missing level or attribute) makes IoT Core's action fail
with an error, because Kinesis refuses an empty partition key; here it raises
:class:`TemplateError` and the bridge counts a failed action: logged, not sent.

The local stack runs the bridge in a process of its own (``python -m local.aws.iot_rule``,
driven by :class:`BridgeProcess`), as IoT Core's rule engine is its own service: its messages
never wait for the processor's or the API's turn at the stack process's GIL.

IoT Core's Kinesis action makes one PutRecord call per message. The bridge sends the same
records through PutRecords (up to 500 per call) to keep up with a full-size race on a laptop;
each message is still exactly one record with its own partition key, and an entry that fails
inside a PutRecords answer is sent again (as a rule's retry would).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.names import (
    LOCAL_RULE_NAME,
    RULE_PARTITION_KEY,
    TELEMETRY_TOPIC_FILTER,
    basic_ingest_topic_prefix,
)
from shared.retry import Backoff, resend

log = logging.getLogger(__name__)

MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024
ENTRY_RETRIES = Backoff(attempts=8, base_s=0.05, cap_s=2.0)
"""Resending the entries a PutRecords answer failed (throttled), with jittered backoff."""
CALL_RETRY_FIRST_S = 0.05
CALL_RETRY_MAX_S = 2.0
"""The wait after a PutRecords call (or a whole round of resends) failed, doubling to this."""


# --- substitution templates (the action's partition key) ---------------------------------
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_FUNCTION = re.compile(r"^\s*([a-z_]+)\(\s*([0-9]*)\s*\)\s*$")
_ATTRIBUTE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$")


class TemplateError(ValueError):
    """The template cannot be evaluated for this message (the message says why)."""


@dataclass(frozen=True)
class MessageContext:
    """What a substitution template may refer to: the message and where it came from."""

    topic: str
    payload: bytes
    client_id: str = ""
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def _topic_level(topic: str, arg: str) -> str:
    if arg == "":
        return topic
    n = int(arg)
    levels = topic.split("/")
    if n < 1 or n > len(levels) or levels[n - 1] == "":
        raise TemplateError(f"topic({n}): topic {topic!r} has no level {n}")
    return levels[n - 1]


def _attribute(payload: bytes, path: str) -> str:
    try:
        value: Any = json.loads(payload)
    except ValueError:
        raise TemplateError(f"{path}: the payload is not JSON") from None
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"{path}: the payload has no such attribute")
        value = value[part]
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _evaluate(expression: str, message: MessageContext) -> str:
    call = _FUNCTION.match(expression)
    if call:
        name, arg = call.groups()
        if name == "topic":
            return _topic_level(message.topic, arg)
        if arg:
            raise TemplateError(f"{name}() takes no argument")
        if name == "clientid":
            return message.client_id
        if name == "timestamp":
            return str(message.timestamp_ms)
        if name == "newuuid":
            return str(uuid.uuid4())
        raise TemplateError(f"unsupported function {name}()")
    attribute = _ATTRIBUTE.match(expression)
    if attribute:
        return _attribute(message.payload, attribute.group(1))
    raise TemplateError(f"unsupported expression ${{{expression}}}")


def render(template: str, message: MessageContext) -> str:
    """The template with every ``${...}`` replaced; raises :class:`TemplateError`."""
    out = _PLACEHOLDER.sub(lambda m: _evaluate(m.group(1), message), template)
    if "${" in out and _PLACEHOLDER.search(template) is None:
        raise TemplateError(f"malformed template {template!r}")
    return out


@dataclass(frozen=True)
class BridgeConfig:
    stream_name: str
    mqtt_host: str
    mqtt_port: int
    topic_filter: str = TELEMETRY_TOPIC_FILTER
    partition_key: str = RULE_PARTITION_KEY
    basic_ingest_prefix: str = basic_ingest_topic_prefix(LOCAL_RULE_NAME)
    client_id: str = "breakaway-local-rule"
    linger_s: float = 0.02
    subscription_qos: int = 1
    """1: the broker redelivers until the bridge acknowledges (nothing lost if the bridge
    restarts); 0: no acknowledgement round trip per message (faster on amqtt)."""
    """How long the sender waits to fill a PutRecords call once it has a first entry."""


@dataclass
class BridgeStats:
    received: int = 0
    put: int = 0
    failed_actions: int = 0
    entry_retries: int = 0


class RuleBridge:
    def __init__(self, *, kinesis: Any, config: BridgeConfig) -> None:
        self.kinesis = kinesis
        self.config = config
        self.stats = BridgeStats()
        self._queue: collections.deque[tuple[bytes, str]] = collections.deque()
        self._wakeup = threading.Condition()
        self._stopping = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="rule-bridge", daemon=True)
        self._connection: Any = None
        self._busy = False

    @property
    def idle(self) -> bool:
        """Nothing queued and no PutRecords call in flight."""
        return not self._queue and not self._busy

    # --- MQTT side ------------------------------------------------------------------------
    def rule_topic(self, topic: str) -> str:
        """The topic the rule SQL sees: Basic Ingest topics lose their ``$aws/rules/..`` prefix."""
        prefix = self.config.basic_ingest_prefix
        return topic[len(prefix) :] if topic.startswith(prefix) else topic

    def on_message(self, topic: str, payload: bytes, **_: Any) -> None:
        """One message from the broker: render the partition key, queue one record."""
        self.stats.received += 1
        rule_topic = self.rule_topic(topic)
        try:
            key = render(self.config.partition_key, MessageContext(rule_topic, bytes(payload)))
            if not 1 <= len(key.encode()) <= 256:
                raise TemplateError(f"partition key {key!r} must be 1-256 bytes")
        except TemplateError as exc:
            self.stats.failed_actions += 1
            log.warning("rule action failed for topic %s: %s", topic, exc)
            return
        with self._wakeup:
            self._queue.append((bytes(payload), key))
            self._wakeup.notify()

    def start(self) -> None:
        from awscrt import io, mqtt

        self._sender.start()
        bootstrap = io.ClientBootstrap.get_or_create_static_default()
        client = mqtt.Client(bootstrap, tls_ctx=None)
        self._connection = mqtt.Connection(
            client,
            host_name=self.config.mqtt_host,
            port=self.config.mqtt_port,
            client_id=self.config.client_id,
            clean_session=True,
            keep_alive_secs=30,
            reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=4,
            disable_metrics=True,
        )
        self._connection.connect().result(timeout=20)
        qos = mqtt.QoS(self.config.subscription_qos)
        future, _ = self._connection.subscribe(
            self.config.topic_filter, qos, callback=self.on_message
        )
        future.result(timeout=20)
        ingest = self.config.basic_ingest_prefix + self.config.topic_filter
        try:
            future, _ = self._connection.subscribe(ingest, qos, callback=self.on_message)
            result = future.result(timeout=5)
            if result.get("qos") is None:
                log.info("broker refused the Basic Ingest subscription %s", ingest)
        except Exception as exc:
            log.info("no Basic Ingest subscription (%s): %s", ingest, exc)

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Disconnect, send what is queued (bounded by ``drain_timeout``), stop the sender."""
        if self._connection is not None:
            try:
                self._connection.disconnect().result(timeout=5)
            except Exception as exc:
                log.info("MQTT disconnect: %s", exc)
        deadline = time.monotonic() + drain_timeout
        while self._queue and time.monotonic() < deadline and self._sender.is_alive():
            time.sleep(0.02)
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        if self._sender.is_alive():
            self._sender.join(10)

    # --- Kinesis side ---------------------------------------------------------------------
    def _take(self) -> list[tuple[bytes, str]]:
        with self._wakeup:
            while not self._queue and not self._stopping.is_set():
                self._wakeup.wait(0.5)
        if self.config.linger_s and len(self._queue) < MAX_PUT_RECORDS:
            time.sleep(self.config.linger_s)
        batch: list[tuple[bytes, str]] = []
        size = 0
        with self._wakeup:
            while self._queue and len(batch) < MAX_PUT_RECORDS:
                data, key = self._queue[0]
                entry_size = len(data) + len(key.encode())
                if batch and size + entry_size > MAX_PUT_RECORDS_BYTES:
                    break
                self._queue.popleft()
                batch.append((data, key))
                size += entry_size
        return batch

    def _send_loop(self) -> None:
        while not self._stopping.is_set() or self._queue:
            batch = self._take()
            if batch:
                self._busy = True
                try:
                    self.put(batch)
                finally:
                    self._busy = False

    def put(self, batch: list[tuple[bytes, str]]) -> None:
        """PutRecords one batch until every record is in (or the bridge stops): the entries an
        answer fails are sent again (``shared.retry``), a call that fails whole is repeated."""
        left = batch

        def send(pending: list[tuple[bytes, str]]) -> list[tuple[bytes, str]]:
            nonlocal left
            resp = self.kinesis.put_records(
                StreamName=self.config.stream_name,
                Records=[{"Data": d, "PartitionKey": k} for d, k in pending],
            )
            results = zip(pending, resp["Records"], strict=True)
            left = [entry for entry, result in results if result.get("ErrorCode")]
            self.stats.put += len(pending) - len(left)
            self.stats.entry_retries += len(left)
            return left

        delay = CALL_RETRY_FIRST_S
        while left:
            try:
                resend(send, left, ENTRY_RETRIES, what="PutRecords entries")
                return
            except Exception as exc:
                log.warning("PutRecords failed (%d entries left): %s", len(left), exc)
                if self._stopping.wait(delay):
                    log.error("stopping: %d records not sent", len(left))
                    return
                delay = min(CALL_RETRY_MAX_S, delay * 2)


# --- the bridge as a process of its own (local.component) -------------------------------------
def main(argv: list[str] | None = None) -> int:
    from local.aws.moto_server import aws_client
    from local.component import serve

    parser = argparse.ArgumentParser(prog="python -m local.aws.iot_rule")
    parser.add_argument("--config", required=True, help="BridgeConfig as JSON")
    parser.add_argument("--endpoint-url", required=True, help="the Kinesis endpoint")
    parser.add_argument("--region", required=True)
    parser.add_argument("--status", required=True, type=Path, help="status file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    kinesis = aws_client("kinesis", args.endpoint_url, args.region)
    bridge = RuleBridge(kinesis=kinesis, config=BridgeConfig(**json.loads(args.config)))
    serve(bridge, args.status, lambda: {**asdict(bridge.stats), "idle": bridge.idle})
    return 0


class BridgeProcess:
    """The stack's handle on ``python -m local.aws.iot_rule``: start (returns once subscribed), its
    counters and idleness, stop (the bridge sends what it holds first)."""

    def __init__(
        self, config: BridgeConfig, endpoint_url: str, region: str, state_dir: Path
    ) -> None:
        from local.component import ComponentProcess

        args = ["--config", json.dumps(asdict(config)), "--endpoint-url", endpoint_url]
        self.process = ComponentProcess(
            "bridge", "local.aws.iot_rule", [*args, "--region", region], state_dir
        )

    def start(self) -> BridgeProcess:
        self.process.start()
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    @property
    def stats(self) -> BridgeStats:
        status = self.process.status()
        return BridgeStats(**{k: int(status.get(k, 0)) for k in BridgeStats.__dataclass_fields__})

    @property
    def idle(self) -> bool:
        return bool(self.process.status().get("idle"))

    def stop(self) -> None:
        self.process.stop()


if __name__ == "__main__":
    sys.exit(main())
