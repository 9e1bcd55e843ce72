"""IoT Core's MQTT message broker, locally: installed with the project (no system package needed).

``python -m local.aws.iot_broker --port PORT [--broker aedes|amqtt]`` serves anonymous MQTT
3.1.1 on 127.0.0.1:PORT until terminated. The default is aedes (``mqtt_broker.mjs`` beside this
module, Node, from ``npm ci``), which carries a full-size race with a fraction of a core; amqtt
(PyPI) is the fallback when Node or the npm packages are missing: it falls behind a full-size
race (docs/benchmarks.md). ``BREAKAWAY_MQTT_BROKER`` chooses when ``--broker`` is not given.

Like IoT Core's device policy, both keep a device's topics its own: a topic under
``breakaway/devices/<id>/`` (bare, or in its Basic Ingest form ``$aws/rules/<rule>/...``) takes
publishes only from the client whose id is ``<id>``. IoT Core answers any other client's publish
there as MQTT 3.1.1 lets a server answer an unauthorized PUBLISH [MQTT-3.3.5-2]: no PUBACK, and
it closes the connection (its lifecycle events give such a disconnect the reason
``AUTH_ERROR``: "authorization failed"); so do these. The rule bridge takes the reading's
``deviceId`` from the topic, so a client can speak only for itself.

Unlike IoT Core: no TLS, no certificates, no other policy (any client may connect under any id,
and publish and subscribe anywhere else), no message size or rate limits. Basic Ingest topics
(``$aws/rules/...``) reach the rule bridge on aedes, which routes them as ordinary topics; amqtt
does not deliver them (it closes a connection that publishes on a ``$`` topic).

Like IoT Core, both keep a persistent session (``clean_session=False``) while its client is
away: its subscriptions, and the QoS 1 messages published to them meanwhile, delivered when it
comes back (the rule bridge relies on it). amqtt keeps nothing for an *anonymous* client, and
its own anonymous-auth plugin marks every client so: :class:`AnyClient` admits every client
without that mark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from local.procs import die_with_parent
from shared.names import BASIC_INGEST_ROOT, DEVICE_TOPIC_PREFIX

log = logging.getLogger(__name__)


def device_of(topic: str) -> str | None:
    """The device a topic belongs to (``breakaway/devices/<id>/...``, bare or in its Basic
    Ingest form), or None. ``mqtt_broker.mjs`` reads topics the same way."""
    rest = topic
    if rest.startswith(BASIC_INGEST_ROOT):
        _, slash, after = rest[len(BASIC_INGEST_ROOT) :].partition("/")
        if not slash:
            return None
        rest = after
    if not rest.startswith(DEVICE_TOPIC_PREFIX + "/"):
        return None
    return rest[len(DEVICE_TOPIC_PREFIX) + 1 :].split("/", 1)[0]


def may_publish(client_id: str | None, topic: str) -> bool:
    """Whether IoT Core's device policy lets this client publish on this topic."""
    owner = device_of(topic)
    return owner is None or owner == client_id


def _refused(client_id: str | None, topic: str) -> bool:
    """What amqtt refuses: another client's device topic, and (amqtt's own rule,
    [MQTT-4.7.2-1]) any topic starting with ``$``, so no Basic Ingest topic."""
    return topic.startswith("$") or not may_publish(client_id, topic)


class DeviceTopicBroker(Broker):  # type: ignore[misc]  # amqtt has no type information
    """amqtt, refusing a publish on another client's device topic as IoT Core does: the message
    goes nowhere and the connection is closed. (amqtt's topic-filtering plugins can only drop a
    message and keep the connection; and when its own message handling stops a client, for a
    publish it finds malformed, it stops reading the connection but leaves it open. amqtt has
    acknowledged a QoS 1 message before its broker sees the topic: the PUBACK IoT Core would
    not send comes first.)"""

    async def _handle_message_delivery(
        self, client_session: Session, handler: Any, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        message = wait_deliver.result()
        if message is not None and _refused(client_session.client_id, message.topic):
            log.warning(
                "client %s may not publish on %s: connection closed",
                client_session.client_id,
                message.topic,
            )
            await self._stop_handler(handler)
            client_session.transitions.disconnect()
            return False
        result: bool = await super()._handle_message_delivery(client_session, handler, wait_deliver)
        return result


class AnyClient(BaseAuthPlugin):  # type: ignore[misc]  # amqtt has no type information
    """amqtt's authentication: every client is admitted (IoT Core's certificates and policies
    are not emulated), and none is marked anonymous, so that amqtt keeps a persistent session's
    messages while its client is away (it keeps none for an anonymous one)."""

    async def authenticate(self, *, session: Session) -> bool:
        return True


def broker_config(port: int, host: str = "127.0.0.1") -> dict[str, object]:
    """amqtt's configuration: one TCP listener, :class:`AnyClient` as the only plugin (no
    ``$SYS`` topics, no topic filtering)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {f"{AnyClient.__module__}.{AnyClient.__qualname__}": {}},
    }


async def _serve(port: int, host: str) -> None:
    broker = DeviceTopicBroker(broker_config(port, host))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await broker.shutdown()


BROKERS = ("aedes", "amqtt")
BROKER_ENV = "BREAKAWAY_MQTT_BROKER"
AEDES_SCRIPT = Path(__file__).with_name("mqtt_broker.mjs")
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


def aedes_command(port: int, host: str) -> list[str] | None:
    """The command that serves aedes, or None if Node or the npm packages are missing."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "aedes" / "package.json").is_file():
        return None
    return [
        node,
        str(AEDES_SCRIPT),
        "--port",
        str(port),
        "--host",
        host,
        "--device-topic-prefix",
        DEVICE_TOPIC_PREFIX,
        "--basic-ingest-root",
        BASIC_INGEST_ROOT,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.aws.iot_broker")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--broker", choices=BROKERS, default=os.environ.get(BROKER_ENV) or None)
    args = parser.parse_args(argv)
    if args.broker not in (None, *BROKERS):
        parser.error(f"{BROKER_ENV} must be one of {', '.join(BROKERS)}, not {args.broker!r}")
    die_with_parent()
    if args.broker in (None, "aedes"):
        command = aedes_command(args.port, args.host)
        if command is not None:
            sys.stdout.flush()
            os.execv(command[0], command)  # noqa: S606 (Node, our script); keeps this pid
        if args.broker == "aedes":
            print("mqtt broker: aedes needs Node and `npm ci` (make setup)", file=sys.stderr)
            return 2
    asyncio.run(_serve(args.port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
