"""`breakaway up` and `breakaway down`: the local stack from the command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import names
from shared.cli import PORT, CliError

if TYPE_CHECKING:
    from local.stack import Endpoints, LocalStack, StackOptions

STOP_TIMEOUT_S = 60.0


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="run the local stack in the foreground (no AWS account needed)",
        description="Start the whole pipeline on this machine: moto (Kinesis, DynamoDB, S3, "
        "SQS), an MQTT broker, the IoT rule bridge, the event source mapping running the "
        "stream processor, the archiver, and the API with the live page. Stops on Ctrl-C "
        "or `breakaway down`.",
    )
    ports = up.add_argument_group("ports on 127.0.0.1 (0 = a free one, the default)")
    for what in ("aws", "dynamodb", "mqtt", "api"):
        ports.add_argument(f"--{what}-port", type=PORT, default=0, metavar="PORT")
    up.add_argument("--state-dir", type=Path, default=Path(names.LOCAL_STATE_DIR))
    up.add_argument("--shards", type=int, default=2, help="Kinesis shards (default 2)")
    up.add_argument("--batch-size", type=int, default=1000, help="event source mapping batch size")
    up.add_argument(
        "--batching-window",
        type=float,
        default=1.0,
        help="event source mapping batching window, seconds (default 1)",
    )
    up.add_argument(
        "--archive-interval", type=float, default=60.0, help="archiver buffer interval, s"
    )
    up.add_argument("--verbose", action="store_true", help="the functions' INFO logs and metrics")
    up.set_defaults(func=run_up)

    down = subparsers.add_parser("down", help="stop the local stack started by `breakaway up`")
    down.add_argument("--state-dir", type=Path, default=Path(names.LOCAL_STATE_DIR))
    down.set_defaults(func=run_down)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_pid(state_dir: Path) -> int | None:
    from local.stack import PID_FILE

    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _stack_options(args: argparse.Namespace) -> StackOptions:
    """The stack's options from ``breakaway up``'s arguments (refused: a clear one-line error)."""
    from local.stack import StackOptions

    if args.shards < 1 or not 1 <= args.batch_size <= 10_000:
        raise CliError("--shards must be at least 1 and --batch-size 1-10000")
    if not 0 <= args.batching_window <= 300:
        raise CliError("--batching-window must be 0-300 seconds")
    return StackOptions(
        aws_port=args.aws_port,
        dynamodb_port=args.dynamodb_port,
        mqtt_port=args.mqtt_port,
        api_port=args.api_port,
        state_dir=args.state_dir,
        shards=args.shards,
        batch_size=args.batch_size,
        batching_window_s=args.batching_window,
        archive_interval_s=args.archive_interval,
        quiet_handlers=not args.verbose,
    )


def _announce(ep: Endpoints, state_dir: Path) -> None:
    print(
        f"breakaway local stack is up (pid {os.getpid()}):\n"
        f"  live page   {ep.api_url}\n"
        f"  API         {ep.api_url}races\n"
        f"  MQTT        {ep.mqtt_host}:{ep.mqtt_port}  "
        f"(topics {names.TELEMETRY_TOPIC_FILTER})\n"
        f"  AWS (moto)  {ep.aws_endpoint_url}  stream {ep.stream_name}, "
        f"bucket {ep.archive_bucket}\n"
        f"  DynamoDB    {ep.dynamodb_endpoint_url}  table {ep.standings_table}\n"
        f"  endpoints   {state_dir / 'endpoints.json'}\n"
        "Ctrl-C or `breakaway down` stops it.",
        flush=True,
    )


def _serve(stack: LocalStack, stop: threading.Event) -> int:
    """Until ``stop`` is set (0), or one of the stack's processes exits (1)."""
    while not stop.wait(1.0):
        for proc in stack.children:
            if proc.poll() is not None:
                print(f"breakaway up: {proc.args!r} exited ({proc.returncode})", file=sys.stderr)
                return 1
    print("stopping...", flush=True)
    return 0


def run_up(args: argparse.Namespace) -> int:
    from local.procs import PortInUseError
    from local.stack import LocalStack

    pid = _running_pid(args.state_dir)
    if pid is not None:
        raise CliError(
            f"a local stack is already running (pid {pid}, {args.state_dir}): "
            "stop it with `breakaway down`"
        )
    options = _stack_options(args)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(options)
    try:
        try:
            ep = stack.start()
        except PortInUseError as exc:
            raise CliError(str(exc)) from None
        _announce(ep, args.state_dir)
        return _serve(stack, stop)
    finally:
        stack.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_down(args: argparse.Namespace) -> int:
    pid = _running_pid(args.state_dir)
    if pid is None:
        raise CliError(f"no local stack is running (no live pid in {args.state_dir})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"stopped the local stack (pid {pid})")
            return 0
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    raise CliError(f"the local stack (pid {pid}) did not stop in {STOP_TIMEOUT_S:.0f} s: killed it")
