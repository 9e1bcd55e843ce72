"""Child processes and ports of the local stack: free ports, readiness, clean stop."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class PortInUseError(RuntimeError):
    """A port the user asked for is taken."""


def free_port(host: str = HOST) -> int:
    """A port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def check_port_free(port: int, what: str, host: str = HOST) -> None:
    """Raise :class:`PortInUseError` naming ``what`` if ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} ({what}) is already in use: stop what uses it, "
                    f"or choose another port"
                ) from exc
            raise


def wait_for_port(
    port: int, timeout: float = 30.0, host: str = HOST, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``host:port`` accepts connections (or the process exits, or time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


def start_module(
    module: str, args: Sequence[str], log_path: str | None = None
) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` as a child that dies with this process (Linux)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        if log_path and not isinstance(out, int):
            out.close()


def die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies (every child
    of the stack calls it first, so that none outlives a stack that was killed). The parent is
    the *thread* that started the process: a child started from a thread that then ends is
    stopped with it, so start children from a thread that lives as long as they should."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:  # pragma: no cover - non-glibc systems
            pass


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: the child is gone when this returns."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def cli_command(*args: str) -> list[str]:
    """The ``breakaway`` command line with this interpreter (not ``-m local.cli``, which would
    make the CLI module ``__main__`` and its ``CliError`` a different class)."""
    return [sys.executable, "-c", "import sys; from local.cli import main; sys.exit(main())", *args]
