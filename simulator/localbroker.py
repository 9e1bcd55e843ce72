"""A throwaway MQTT broker on 127.0.0.1 (amqtt, MQTT 3.1.1) for tests and benchmarks.

``python -m simulator.localbroker PORT`` runs a broker bound to 127.0.0.1:PORT with anonymous
access until it is terminated. :func:`start_broker` runs it as a subprocess and waits until the
port accepts connections. The local stack has its own broker; this one exists so the
simulator's tests and benchmark need nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def start_broker(port: int) -> subprocess.Popen[bytes]:
    """Start a broker subprocess on 127.0.0.1:port; the caller terminates it."""
    proc = subprocess.Popen(  # noqa: S603 (this package's own module, fixed argv)
        [sys.executable, "-m", "simulator.localbroker", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _serve(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


def main() -> None:
    port = int(sys.argv[1])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port))


if __name__ == "__main__":
    main()
