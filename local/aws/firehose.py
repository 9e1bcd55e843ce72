"""Firehose, locally: what the deployed delivery stream does with the Kinesis stream (the archive).

The deployed Firehose (Kinesis source, S3 destination, no dynamic partitioning) reads the stream
with its own iterator, buffers by size and interval, appends a newline to each record,
compresses with GZIP and writes one object per flush under ``shared.names.archive_prefix(day)``:
``!{timestamp:yyyy-MM-dd}``, the UTC day of the approximate arrival of the oldest record in the
object. Every record goes there, whatever it holds (no partitioning can fail, no partition
limit can be exceeded). Object names follow Firehose's
``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz``.

Delivery is at least once, like Firehose's: a record is archived once per delivery.

The local stack runs it in a process of its own (``python -m local.aws.firehose``, driven by
:class:`ArchiverProcess`; see :mod:`local.component`), as Firehose is a service of its own.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.names import archive_prefix
from shared.ports import TransientError
from shared.retry import Backoff, resend

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PUT_RETRIES = Backoff(attempts=5, base_s=0.5, cap_s=2.0)
"""Resending an object S3 refused, with jittered backoff."""


@dataclass(frozen=True)
class ArchiverConfig:
    bucket: str
    delivery_stream_name: str = "breakaway-archive"
    buffer_size_bytes: int = 64 * MIB
    """Firehose: 1-128 MiB."""
    buffer_interval_s: float = 60.0
    """Firehose: 0-900 s."""
    poll_interval_s: float = 1.0
    """Firehose reads each shard once a second."""


def prefix_of(oldest_arrival: datetime) -> str:
    """The S3 prefix of an object: the UTC day its oldest record arrived."""
    return archive_prefix(oldest_arrival.astimezone(UTC).strftime("%Y-%m-%d"))


@dataclass
class _Buffer:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    since: float | None = None
    oldest: datetime | None = None
    """The arrival time of the oldest record buffered (the object's prefix)."""

    def add(self, data: bytes, arrival: datetime) -> None:
        line = data if data.endswith(b"\n") else data + b"\n"
        self.lines.append(line)
        self.size += len(line)
        if self.since is None:
            self.since = time.monotonic()
        if self.oldest is None or arrival < self.oldest:
            self.oldest = arrival


class Archiver:
    """Reads every shard of a stream and writes GZIP NDJSON objects to the archive bucket."""

    def __init__(self, *, kinesis: Any, s3: Any, stream_name: str, config: ArchiverConfig) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        self.stream_name = stream_name
        self.config = config
        self.stopping = threading.Event()
        self.records_archived = 0
        self.objects_written = 0
        self._buffer = _Buffer()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        shards = self.kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        for shard in shards:
            t = threading.Thread(
                target=self._read, args=(shard["ShardId"],), name="archiver", daemon=True
            )
            self._threads.append(t)
        flusher = threading.Thread(target=self._flush_loop, name="archiver-flush", daemon=True)
        self._threads.append(flusher)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop reading and deliver what is buffered (Firehose delivers its buffers too)."""
        self.stopping.set()
        for t in self._threads:
            t.join(30)
        self.flush()

    def _read(self, shard_id: str) -> None:
        try:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        except Exception:
            log.exception("archiver %s: cannot get a shard iterator", shard_id)
            return
        while not self.stopping.is_set():
            try:
                resp = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            except Exception as exc:
                if self.stopping.is_set():
                    return
                log.warning("archiver %s: GetRecords failed: %s", shard_id, exc)
                self.stopping.wait(self.config.poll_interval_s)
                continue
            iterator = resp["NextShardIterator"]
            records = resp["Records"]
            if records:
                with self._lock:
                    for r in records:
                        self._buffer.add(r["Data"], r["ApproximateArrivalTimestamp"])
                    full = self._buffer.size >= self.config.buffer_size_bytes
                if full:
                    self.flush()
            if len(records) < 10_000:
                self.stopping.wait(self.config.poll_interval_s)

    def _flush_loop(self) -> None:
        while not self.stopping.wait(min(0.2, self.config.buffer_interval_s or 0.2)):
            with self._lock:
                since = self._buffer.since
            if since is not None and time.monotonic() - since >= self.config.buffer_interval_s:
                self.flush()

    def flush(self) -> None:
        """Write the buffer as one GZIP object (an object S3 refuses is sent again,
        ``shared.retry``; after ``PUT_RETRIES`` its records are given up, logged)."""
        with self._lock:
            buffer, self._buffer = self._buffer, _Buffer()
        if buffer.oldest is None:
            return
        now = datetime.now(UTC)
        key = (
            f"{prefix_of(buffer.oldest)}{self.config.delivery_stream_name}-1-"
            f"{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}.gz"
        )
        objects = [(key, gzip.compress(b"".join(buffer.lines)), len(buffer.lines))]
        try:
            resend(self._put, objects, PUT_RETRIES, what="archive objects")
        except TransientError as exc:
            log.error("archiver: gave up: %s", exc)

    def _put(self, objects: list[tuple[str, bytes, int]]) -> list[tuple[str, bytes, int]]:
        """PutObject each (key, body, records); those S3 refused."""
        refused = []
        for key, body, records in objects:
            try:
                self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body)
            except Exception as exc:
                log.warning("archiver: put %s failed: %s", key, exc)
                refused.append((key, body, records))
                continue
            self.records_archived += records
            self.objects_written += 1
        return refused


# --- the archiver as a process of its own (local.component) -----------------------------------
def main(argv: list[str] | None = None) -> int:
    from local.aws.moto_server import aws_client
    from local.component import serve

    parser = argparse.ArgumentParser(prog="python -m local.aws.firehose")
    parser.add_argument("--config", required=True, help="ArchiverConfig as JSON")
    parser.add_argument("--stream-name", required=True)
    parser.add_argument("--endpoint-url", required=True, help="the Kinesis and S3 endpoint")
    parser.add_argument("--region", required=True)
    parser.add_argument("--status", required=True, type=Path, help="status file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    archiver = Archiver(
        kinesis=aws_client("kinesis", args.endpoint_url, args.region),
        s3=aws_client("s3", args.endpoint_url, args.region),
        stream_name=args.stream_name,
        config=ArchiverConfig(**json.loads(args.config)),
    )

    def report() -> dict[str, Any]:
        return {"records": archiver.records_archived, "objects": archiver.objects_written}

    serve(archiver, args.status, report, flush=archiver.flush)
    return 0


class ArchiverProcess:
    """The stack's handle on ``python -m local.aws.firehose``: start, flush (returns once the
    buffers are written), stop (buffers delivered first)."""

    def __init__(
        self,
        config: ArchiverConfig,
        stream_name: str,
        endpoint_url: str,
        region: str,
        state_dir: Path,
    ) -> None:
        from local.component import ComponentProcess

        args = ["--config", json.dumps(asdict(config)), "--stream-name", stream_name]
        args += ["--endpoint-url", endpoint_url, "--region", region]
        self.process = ComponentProcess("archiver", "local.aws.firehose", args, state_dir)

    def start(self) -> ArchiverProcess:
        self.process.start()
        return self

    def flush(self) -> None:
        self.process.flush()

    @property
    def records_archived(self) -> int:
        return int(self.process.status().get("records", 0))

    def stop(self) -> None:
        self.process.stop()


if __name__ == "__main__":
    sys.exit(main())
