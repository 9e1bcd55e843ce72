"""`breakaway up` / `breakaway down` as a user runs them: real processes, signals, ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from local.procs import cli_command

pytestmark = [pytest.mark.slow]

START_TIMEOUT_S = 90


def breakaway(*args: str) -> list[str]:
    return cli_command(*args)


def children_of(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_up(state: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        breakaway("up", "--state-dir", str(state), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (state / "endpoints.json").exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"breakaway up exited {proc.returncode}: {out}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("breakaway up did not write endpoints.json in time")
        time.sleep(0.2)
    return proc


@pytest.mark.parametrize("how", ["SIGINT", "down"])  # down sends SIGTERM
def test_up_serves_and_stops_cleanly_leaving_no_process(tmp_path: Path, how: str) -> None:
    state = tmp_path / "state"
    proc = start_up(state)
    try:
        endpoints = json.loads((state / "endpoints.json").read_text())
        for key in (
            "aws_endpoint_url",
            "region",
            "mqtt_host",
            "mqtt_port",
            "api_url",
            "stream_name",
            "archive_bucket",
        ):
            assert key in endpoints, key
        assert endpoints["mqtt_host"] == "127.0.0.1"
        assert endpoints["api_url"].startswith("http://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", endpoints["mqtt_port"]), timeout=5):
            pass
        descendants = children_of(proc.pid)
        assert len(descendants) >= 3  # two emulators and the broker
        assert int((state / "stack.pid").read_text()) == proc.pid
        if how == "down":
            down = subprocess.run(
                breakaway("down", "--state-dir", str(state)),
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            assert down.returncode == 0, down.stderr
            assert f"pid {proc.pid}" in down.stdout
        else:
            proc.send_signal(getattr(signal, how))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in descendants) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in descendants if alive(p)] == []
    assert not (state / "stack.pid").exists()
    assert not (state / "endpoints.json").exists()


def test_a_port_in_use_is_a_clear_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            breakaway("up", "--state-dir", str(tmp_path), "--api-port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"breakaway up: port {port} on 127.0.0.1 (--api-port) is already in use: "
        "stop what uses it, or choose another port"
    )
    assert "Traceback" not in result.stderr


def test_down_without_a_running_stack_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        breakaway("down", "--state-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no local stack is running" in result.stderr


def test_a_second_up_refuses_while_one_runs(tmp_path: Path) -> None:
    (tmp_path / "stack.pid").write_text(f"{os.getpid()}\n")  # this process is alive
    result = subprocess.run(
        breakaway("up", "--state-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "already running" in result.stderr
    assert "breakaway down" in result.stderr
