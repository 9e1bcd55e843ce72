"""A component of the local stack in a process of its own, as its AWS service runs apart.

The child (``python -m local.aws.<service> ...``) calls :func:`serve`: it starts the component,
writes a status file (JSON, replaced atomically) every ``STATUS_EVERY_S`` with ``ready`` and
whatever the component reports, flushes on SIGUSR1 (counted as ``flushes``), and stops on
SIGTERM or SIGINT, its own stop first (a bridge sends what it holds, an archiver delivers its
buffers). The stack holds a :class:`ComponentProcess`: start (returns once the child is
ready), its status, flush, stop. A child dies with the stack's process (Linux).

Why: the stack's own process is one GIL. With the rule bridge in it, readings waited for the
processor's and the API's turn before they reached the bridge (docs/decisions.md).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from local import procs

STATUS_EVERY_S = 0.1


class Component(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> Any: ...


def write_status(path: Path, status: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def serve(
    component: Component,
    status_path: Path,
    report: Callable[[], dict[str, Any]],
    flush: Callable[[], Any] | None = None,
) -> None:
    """Run ``component`` until SIGTERM or SIGINT, writing ``report()`` to ``status_path``."""
    from local.procs import die_with_parent

    die_with_parent()
    stop = threading.Event()
    flush_asked = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: flush_asked.set())
    flushes = 0
    component.start()
    while not stop.wait(STATUS_EVERY_S):
        if flush_asked.is_set() and flush is not None:
            flush_asked.clear()
            flush()
            flushes += 1
        write_status(status_path, {**report(), "ready": True, "flushes": flushes})
    component.stop()
    write_status(status_path, {**report(), "ready": False, "flushes": flushes})


class ComponentProcess:
    """The stack's handle on a component's process."""

    def __init__(self, name: str, module: str, args: Sequence[str], state_dir: Path) -> None:
        self.name = name
        self.module = module
        self.status_path = state_dir / f"{name}.status.json"
        self.log_path = state_dir / "logs" / f"{name}.log"
        self.args = [*args, "--status", str(self.status_path)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.status_path.unlink(missing_ok=True)
        self.proc = procs.start_module(self.module, self.args, str(self.log_path))
        self._wait(lambda s: bool(s.get("ready")), timeout, "did not start")

    def status(self) -> dict[str, Any]:
        try:
            status: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return status

    def flush(self, timeout: float = 60.0) -> None:
        """Ask the component to flush now; return once it has."""
        assert self.proc is not None
        done = int(self.status().get("flushes", 0))
        self.proc.send_signal(signal.SIGUSR1)
        self._wait(lambda s: int(s.get("flushes", 0)) > done, timeout, "did not flush")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            procs.stop_process(self.proc, timeout=timeout)
            self.proc = None

    def _wait(self, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not done(self.status()):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the {self.name} exited with {self.proc.returncode} (see {self.log_path})"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {self.name} {what} (see {self.log_path})")
            time.sleep(0.05)
