"""The local stack's MQTT broker: amqtt (MQTT 3.1.1), installed with the project.

``python -m local.broker --port PORT`` serves anonymous MQTT on 127.0.0.1:PORT until
terminated. No system package is needed; mosquitto, if installed, is used instead when the
stack is asked for it (it is about 6x faster, see DESIGN.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys

from local.emulator import die_with_parent


def broker_config(port: int, host: str = "127.0.0.1") -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True},
        "topic-check": {"enabled": False},
    }


async def _serve(port: int, host: str) -> None:
    from amqtt.broker import Broker

    broker = Broker(broker_config(port, host))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await broker.shutdown()


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if shutil.which("/usr/sbin/mosquitto") else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.broker")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    die_with_parent()
    asyncio.run(_serve(args.port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
