"""The AWS APIs of the local stack: moto in server mode, in a process of its own.

``python -m local.aws.moto_server --port PORT`` serves the moto API (Kinesis, DynamoDB, S3,
SQS, ...) on 127.0.0.1:PORT until it is terminated, with :mod:`local.aws.moto_patches` applied
(each removes a cost of moto's that grows with the stream or the table, results unchanged). The
stack runs two of them: one for DynamoDB alone, its busiest service, so that its writes get a
core of their own, and one for the rest. :func:`aws_client` is how the stack and its
components talk to them.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import boto3
from botocore.config import Config

from local.aws import moto_patches
from local.procs import die_with_parent
from shared import names

LOCAL_ACCESS_KEY = "breakaway-local"
LOCAL_SECRET_KEY = "breakaway-local"  # noqa: S105 (the emulator accepts anything)


def aws_client(service: str, url: str, region: str = names.LOCAL_REGION) -> Any:
    """A boto3 client of the emulator at ``url`` (the local stack's credentials)."""
    factory: Any = boto3.client
    return factory(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32),
    )


def freeze_after_full_collections() -> Any:
    """After every full garbage collection, move what survived it out of later ones
    (``gc.freeze``); returns the callback (``gc.callbacks.remove`` undoes it).

    An emulator's objects live as long as it does: a stream's records, a table's items. Each
    full collection walks all of them, so its pause grows with the stream, every few seconds
    while puts arrive, holding every request up. Frozen, a full collection walks only what is
    newer than the last one, and its pause stays flat. Objects freed by reference counting are
    freed as before; only a reference cycle among frozen objects is kept, and moto makes few.
    """

    def freeze(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.callbacks.append(freeze)
    return freeze


class RequestStats:
    """WSGI middleware: count requests and server time per API action (``X-Amz-Target`` or
    ``Action``); written as JSON to ``BREAKAWAY_EMULATOR_STATS`` when the emulator stops
    (``{pid}`` in the path is replaced by the process id: the stack runs two emulators)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.stats: dict[str, list[float]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET") or environ.get("QUERY_STRING", "")[:40]
        began = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            spent = time.perf_counter() - began
            with self.lock:
                entry = self.stats.setdefault(target, [0, 0.0])
                entry[0] += 1
                entry[1] += spent

    def write(self, path: str) -> None:
        rows = {k: {"count": int(v[0]), "total_s": round(v[1], 3)} for k, v in self.stats.items()}
        with open(path, "w") as f:
            json.dump(rows, f, indent=2, sort_keys=True)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve the moto API on host:port until SIGTERM or SIGINT."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    freeze_after_full_collections()
    moto_patches.apply_all()
    app: Any = DomainDispatcherApplication(create_backend_app)
    stats_path = os.environ.get("BREAKAWAY_EMULATOR_STATS")
    if stats_path:
        app = RequestStats(app)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    thread.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    if stats_path:
        app.write(stats_path.replace("{pid}", str(os.getpid())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.aws.moto_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    die_with_parent()
    serve(args.port, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
