"""The local stack's MQTT broker: which one runs, and a clear word when the choice is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local import procs
from local.aws.iot_broker import BROKER_ENV

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
