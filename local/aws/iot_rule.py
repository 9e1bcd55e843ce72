"""IoT Core's topic rule, locally: each MQTT telemetry message becomes one Kinesis record.

The deployed topic rule is ``shared.names.RULE_SQL`` (the contract's fields, named one by one,
and ``topic(3) AS deviceId``, from ``breakaway/devices/+/telemetry``) with a Kinesis action whose
partition key is ``shared.names.RULE_PARTITION_KEY`` (``${riderId}``). The bridge
(:class:`RuleBridge`) subscribes to the rule's topic filter (and to the rule's Basic Ingest
topics, where the broker allows ``$`` topics) and, for each message, puts one Kinesis record:
the SELECT evaluated on the message (:class:`RuleSql`, the same statement, parsed), keyed by the
partition key rendered by :func:`render` from the incoming payload. Both see the topic the rule
sees: a Basic Ingest topic without its ``$aws/rules/<rule>/`` prefix, which AWS documents as
not available to ``topic(n)``.

The SELECT is evaluated as IoT SQL (version 2016-03-23) evaluates the subset the rule uses:

- each item is an attribute path (``riderId``, ``a.b``) or a function (``topic(n)``,
  ``clientid()``, ``timestamp()``, ``newuuid()``), named by ``AS`` (an attribute unnamed keeps
  its last segment's name), or ``*`` alone (the payload as it is);
- an attribute the payload lacks is Undefined and left out of the record, and the payload's
  other keys are not copied: so the record's ``deviceId`` is always the topic's;
- a whole number written as a decimal (``90.0``) is an Int (``90``), as SQL version 2016-03-23
  processes it.

Substitution templates (``${...}``) are evaluated the way IoT Core does, on the incoming
payload (not the SELECT's output: AWS says a template cannot see an ``AS`` alias):

- ``${topic()}`` is the whole topic, ``${topic(n)}`` its n-th level, 1-based;
- ``${clientid()}``, ``${timestamp()}`` (epoch ms), ``${newuuid()}``;
- ``${field}`` / ``${a.b}`` an attribute of the JSON payload;
- text outside ``${...}`` is copied as is.

A reference that yields nothing (a missing level or attribute, or a payload that is not JSON)
makes IoT Core's action fail with an error, because Kinesis refuses an empty partition key (an
Undefined value renders as an empty string); here it raises :class:`TemplateError` and the
bridge counts a failed action: logged, not sent. So a message reaches Kinesis only if its
payload is a JSON object with a ``riderId``, as from the deployed rule.

The local stack runs the bridge in a process of its own (``python -m local.aws.iot_rule``,
driven by :class:`BridgeProcess`), as IoT Core's rule engine is its own service: its messages
never wait for the processor's or the API's turn at the stack process's GIL.

Nothing is lost if the bridge stops or dies, as nothing is lost from a rule: the bridge keeps a
persistent session (``clean_session=False`` under a fixed client id) with a QoS 1 subscription,
so the broker keeps what is published while it is away and delivers it when it connects again;
and since a QoS 1 message is acknowledged to the broker as soon as the bridge's callback
returns, the callback first appends it to the bridge's :class:`Journal`, which the next bridge
puts before anything else. Delivery is at least once: a message in Kinesis whose journal mark
was not written, or one delivered but not yet acknowledged, comes again after a crash (the
processor counts a second once).

IoT Core's Kinesis action makes one PutRecord call per message. The bridge sends the same
records through PutRecords (up to 500 per call) to keep up with a full-size race on a laptop;
each message is still exactly one record with its own partition key, and an entry that fails
inside a PutRecords answer is sent again (as a rule's retry would).
"""

from __future__ import annotations

import argparse
import collections
import decimal
import json
import logging
import os
import re
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.names import (
    LOCAL_RULE_NAME,
    RULE_PARTITION_KEY,
    RULE_SQL,
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


# --- the rule's SELECT ------------------------------------------------------------------------
_SQL = re.compile(r"^\s*SELECT\s+(?P<items>.+?)\s+FROM\s+'(?P<topic>[^']+)'\s*$", re.I | re.S)
_ITEM = re.compile(r"^\s*(?P<expr>.+?)(?:\s+AS\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*))?\s*$", re.I)
_UNDEFINED: Any = object()
"""IoT SQL's Undefined: not a value, left out of a JSON object."""


def _whole_as_int(text: str) -> int | float:
    """SQL version 2016-03-23 processes a whole-number decimal (``10.0``) as an Int."""
    value = decimal.Decimal(text)
    return int(value) if value == value.to_integral_value() else float(text)


@dataclass(frozen=True)
class RuleSql:
    """A rule's ``SELECT <items> FROM '<topic filter>'``, in the subset the module docstring
    describes; anything else is refused when parsed (ValueError), not when a message comes."""

    items: tuple[tuple[str, str], ...]
    """(expression, output name); ``("*", "*")`` alone: the payload as it is."""
    topic_filter: str

    @classmethod
    def parse(cls, sql: str) -> RuleSql:
        found = _SQL.match(sql)
        if found is None:
            raise ValueError(f"unsupported rule SQL {sql!r}")
        items = [cls._item(part) for part in found.group("items").split(",")]
        if ("*", "*") in items and len(items) > 1:
            raise ValueError(f"unsupported rule SQL {sql!r}: * with other items")
        return cls(tuple(items), found.group("topic"))

    @staticmethod
    def _item(text: str) -> tuple[str, str]:
        found = _ITEM.match(text)
        expr, name = (found.group("expr"), found.group("name")) if found else (text, None)
        expr = expr.strip()
        if expr == "*" and name is None:
            return "*", "*"
        if _FUNCTION.match(expr):
            if name is None:
                raise ValueError(f"unsupported rule SQL item {text.strip()!r}: name it with AS")
            return expr, name
        if not _ATTRIBUTE.match(expr):
            raise ValueError(f"unsupported rule SQL item {text.strip()!r}")
        return expr, name or expr.rsplit(".", 1)[-1]

    def select(self, message: MessageContext) -> bytes:
        """The record the rule's action gets for this message (compact JSON)."""
        if self.items == (("*", "*"),):
            return message.payload
        try:
            payload: Any = json.loads(message.payload, parse_float=_whole_as_int)
        except ValueError:
            raise TemplateError("the payload is not JSON: the SELECT names JSON fields") from None
        out: dict[str, Any] = {}
        for expr, name in self.items:
            value = self._value(expr, payload, message)
            if value is not _UNDEFINED:
                out[name] = value
        return json.dumps(out, separators=(",", ":")).encode()

    @staticmethod
    def _value(expr: str, payload: Any, message: MessageContext) -> Any:
        if _FUNCTION.match(expr):
            value: Any = _evaluate(expr, message)
            return int(value) if expr.replace(" ", "").startswith("timestamp(") else value
        for part in expr.split("."):
            if not isinstance(payload, dict) or part not in payload:
                return _UNDEFINED
            payload = payload[part]
        return payload


@dataclass(frozen=True)
class BridgeConfig:
    stream_name: str
    mqtt_host: str
    mqtt_port: int
    sql: str = RULE_SQL
    """The rule's SQL: what each record holds, and (its FROM) the topics the bridge takes."""
    partition_key: str = RULE_PARTITION_KEY
    basic_ingest_prefix: str = basic_ingest_topic_prefix(LOCAL_RULE_NAME)
    client_id: str = "breakaway-local-rule"
    """Fixed: the broker keeps the session of this client id while the bridge is away."""
    linger_s: float = 0.02
    """How long the sender waits to fill a PutRecords call once it has a first entry."""
    subscription_qos: int = 1
    """1: the broker keeps messages for the bridge while it is away and sends a message again
    until the bridge acknowledges it (nothing lost if the bridge restarts); 0: no
    acknowledgement round trip per message, and what is published while it is away is lost."""
    journal: str | None = None
    """Where the bridge keeps what it took from the broker until Kinesis has it (a
    :class:`Journal`); None: in memory only (lost if the process dies)."""


@dataclass
class BridgeStats:
    received: int = 0
    put: int = 0
    failed_actions: int = 0
    entry_retries: int = 0
    replayed: int = 0
    """Records a previous bridge took from the broker and had not put (from the journal)."""


Entry = tuple[bytes, str, int]
"""A record to put: data, partition key, and where its journal entry ends (0 without one)."""


class Journal:
    """What the bridge took from the broker and Kinesis does not have yet, in a file.

    Each message is appended (a length-prefixed payload and key) before the MQTT callback
    returns, that is before the broker is told it was delivered; a second file holds the offset
    up to which every record is in Kinesis. A write survives the process being killed (it is in
    the page cache), not the machine: the local stack's bridge needs no more. Once everything is
    in Kinesis the file starts again from empty.
    """

    HEADER = struct.Struct(">IH")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark_path = self.mark_of(path)
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size

    @staticmethod
    def mark_of(path: Path) -> Path:
        return path.with_name(path.name + ".done")

    @staticmethod
    def remove(path: Path) -> None:
        """Remove the journal at ``path`` and its mark, if any."""
        path.unlink(missing_ok=True)
        Journal.mark_of(path).unlink(missing_ok=True)

    def pending(self) -> list[Entry]:
        """The entries after the mark, read when the bridge starts. A torn last entry (a write
        cut by the kill: never acknowledged, so the broker sends it again) is cut off; a mark
        past the end (killed between emptying the file and moving the mark) is moved to 0."""
        try:
            mark = int(self.mark_path.read_text() or 0)
        except (OSError, ValueError):
            mark = 0
        data = self.path.read_bytes()
        if mark > len(data):
            self._write_mark(mark := 0)
        entries: list[Entry] = []
        offset = mark
        while offset + self.HEADER.size <= len(data):
            size, key_size = self.HEADER.unpack_from(data, offset)
            end = offset + self.HEADER.size + size + key_size
            if end > len(data):
                break
            payload = data[offset + self.HEADER.size : end - key_size]
            entries.append((payload, data[end - key_size : end].decode(), end))
            offset = end
        if offset < len(data):
            os.ftruncate(self._fd, offset)
        self.size = offset
        return entries

    def append(self, data: bytes, key: str) -> int:
        """Append one record; where its entry ends."""
        encoded = key.encode()
        entry = self.HEADER.pack(len(data), len(encoded)) + data + encoded
        with self._lock:
            os.write(self._fd, entry)
            self.size += len(entry)
            return self.size

    def mark(self, end: int) -> None:
        """Every record up to ``end`` is in Kinesis; all of them: start the file again."""
        with self._lock:
            if end >= self.size:
                os.ftruncate(self._fd, 0)
                self.size = end = 0
            self._write_mark(end)

    def _write_mark(self, end: int) -> None:
        tmp = self.mark_path.with_name(self.mark_path.name + ".tmp")
        tmp.write_text(str(end))
        tmp.replace(self.mark_path)

    def close(self) -> None:
        os.close(self._fd)


class RuleBridge:
    def __init__(self, *, kinesis: Any, config: BridgeConfig) -> None:
        self.kinesis = kinesis
        self.config = config
        self.rule = RuleSql.parse(config.sql)
        self.stats = BridgeStats()
        self._queue: collections.deque[Entry] = collections.deque()
        self._journal = Journal(Path(config.journal)) if config.journal else None
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
        """One message from the broker: the rule's record and partition key, queued; a message
        the action cannot put (no key) is a failed action, logged."""
        self.stats.received += 1
        message = MessageContext(self.rule_topic(topic), bytes(payload))
        try:
            key = render(self.config.partition_key, message)
            if not 1 <= len(key.encode()) <= 256:
                raise TemplateError(f"partition key {key!r} must be 1-256 bytes")
            data = self.rule.select(message)
        except TemplateError as exc:
            self.stats.failed_actions += 1
            log.warning("rule action failed for topic %s: %s", topic, exc)
            return
        end = self._journal.append(data, key) if self._journal is not None else 0
        with self._wakeup:
            self._queue.append((data, key, end))
            self._wakeup.notify()

    def start(self) -> None:
        """Queue what the journal holds, connect (resuming the session) and subscribe."""
        from awscrt import io, mqtt

        if self._journal is not None:
            pending = self._journal.pending()
            self._queue.extend(pending)
            self.stats.replayed += len(pending)
        self._sender.start()
        bootstrap = io.ClientBootstrap.get_or_create_static_default()
        client = mqtt.Client(bootstrap, tls_ctx=None)
        self._connection = mqtt.Connection(
            client,
            host_name=self.config.mqtt_host,
            port=self.config.mqtt_port,
            client_id=self.config.client_id,
            clean_session=False,
            keep_alive_secs=30,
            reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=4,
            disable_metrics=True,
        )
        # A resumed session's messages arrive right after CONNACK, before SUBSCRIBE is answered:
        # one callback for any message takes them (a subscription's own callback would not).
        self._connection.on_message(self.on_message)
        self._connection.connect().result(timeout=20)
        qos = mqtt.QoS(self.config.subscription_qos)
        future, _ = self._connection.subscribe(self.rule.topic_filter, qos)
        future.result(timeout=20)
        ingest = self.config.basic_ingest_prefix + self.rule.topic_filter
        try:
            future, _ = self._connection.subscribe(ingest, qos)
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
        if self._journal is not None:
            self._journal.close()

    # --- Kinesis side ---------------------------------------------------------------------
    def _take(self) -> list[Entry]:
        with self._wakeup:
            while not self._queue and not self._stopping.is_set():
                self._wakeup.wait(0.5)
        if self.config.linger_s and len(self._queue) < MAX_PUT_RECORDS:
            time.sleep(self.config.linger_s)
        batch: list[Entry] = []
        size = 0
        with self._wakeup:
            while self._queue and len(batch) < MAX_PUT_RECORDS:
                data, key, end = self._queue[0]
                entry_size = len(data) + len(key.encode())
                if batch and size + entry_size > MAX_PUT_RECORDS_BYTES:
                    break
                self._queue.popleft()
                batch.append((data, key, end))
                size += entry_size
        return batch

    def _send_loop(self) -> None:
        while not self._stopping.is_set() or self._queue:
            batch = self._take()
            if batch:
                self._busy = True
                try:
                    sent = self.put([(data, key) for data, key, _ in batch])
                    if sent and self._journal is not None:
                        self._journal.mark(batch[-1][2])
                finally:
                    self._busy = False

    def put(self, batch: list[tuple[bytes, str]]) -> bool:
        """PutRecords one batch until every record is in (True) or the bridge stops (False):
        the entries an answer fails are sent again (``shared.retry``), a call that fails whole
        is repeated."""
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
                return True
            except Exception as exc:
                log.warning("PutRecords failed (%d entries left): %s", len(left), exc)
                if self._stopping.wait(delay):
                    log.error("stopping: %d records not sent", len(left))
                    return False
                delay = min(CALL_RETRY_MAX_S, delay * 2)
        return True


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
    """The stack's handle on ``python -m local.aws.iot_rule``: start (returns once subscribed;
    again after the process died, and the new one resumes its session and journal), its
    counters and idleness, stop (the bridge sends what it holds first). Its journal is in
    ``state_dir`` unless the config names one; one left by an earlier stack is removed, as its
    stream and its broker's sessions are gone."""

    def __init__(
        self, config: BridgeConfig, endpoint_url: str, region: str, state_dir: Path
    ) -> None:
        from local.component import ComponentProcess

        if config.journal is None:
            config = replace(config, journal=str(state_dir / f"{config.client_id}.journal"))
        assert config.journal is not None
        Journal.remove(Path(config.journal))
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
