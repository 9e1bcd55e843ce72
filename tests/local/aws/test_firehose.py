"""The local archiver writes what the deployed Firehose writes, where it writes it."""

from __future__ import annotations

import gzip
import re
import time
from datetime import UTC, datetime
from typing import Any

from local.aws.firehose import Archiver, ArchiverConfig, prefix_of
from shared.contract import Telemetry
from shared.names import archive_prefix


def reading(race: str, rider: str, second: int) -> bytes:
    return Telemetry(
        v=2,
        event_id=f"e-{race}-{rider}-{second}",
        race_id=race,
        rider_id=rider,
        second=second,
        cadence=90,
        resistance=40,
        device_timestamp=1_700_000_000_000 + second * 1000,
        event="update",
    ).to_json()


def objects(s3: Any, bucket: str) -> dict[str, list[bytes]]:
    out = {}
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        out[obj["Key"]] = gzip.decompress(body).splitlines()
    return out


def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_prefix_is_the_utc_day_of_the_oldest_arrival() -> None:
    late = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    assert prefix_of(late) == archive_prefix("2026-11-22") == "telemetry/day=2026-11-22/"
    east = datetime.fromisoformat("2026-11-23T00:30:00+01:00")
    assert prefix_of(east) == "telemetry/day=2026-11-22/"


def test_archive_holds_every_record_once_gzip_ndjson_in_the_firehose_layout(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    sent = {
        (race, rider, s): reading(race, rider, s)
        for race in ("race-a", "race-b")
        for rider in ("x", "y")
        for s in range(5)
    }
    bad = [b"not json", b'{"riderId":"x"}']
    kinesis.put_records(
        StreamName=stream,
        Records=[{"Data": d, "PartitionKey": "k"} for d in [*sent.values(), *bad]],
    )
    archiver = Archiver(
        kinesis=kinesis,
        s3=s3,
        stream_name=stream,
        config=ArchiverConfig(bucket=bucket, buffer_interval_s=0.3, poll_interval_s=0.05),
    )
    archiver.start()
    try:
        wait_for(lambda: archiver.records_archived == 22)
    finally:
        archiver.stop()
    got = objects(s3, bucket)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    by_prefix: dict[str, list[bytes]] = {}
    for key, lines in got.items():
        prefix, name = key.rsplit("/", 1)
        assert re.fullmatch(
            r"breakaway-archive-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}\.gz", name
        ), name
        by_prefix.setdefault(prefix + "/", []).extend(lines)
    # no dynamic partitioning: every record, unreadable ones too, under the day's prefix
    assert set(by_prefix) == {archive_prefix(today)}
    assert sorted(by_prefix[archive_prefix(today)]) == sorted([*sent.values(), *bad])


def test_buffer_size_flushes_before_the_interval(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    one = reading("race-a", "x", 0)
    archiver = Archiver(
        kinesis=kinesis,
        s3=s3,
        stream_name=stream,
        config=ArchiverConfig(
            bucket=bucket,
            buffer_size_bytes=3 * len(one),
            buffer_interval_s=900,
            poll_interval_s=0.05,
        ),
    )
    archiver.start()
    try:
        kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": reading("race-a", "x", s), "PartitionKey": "x"} for s in range(3)],
        )
        wait_for(lambda: archiver.objects_written == 1)
        kinesis.put_record(StreamName=stream, Data=reading("race-a", "x", 3), PartitionKey="x")
        time.sleep(0.5)
        assert archiver.objects_written == 1  # one record is under the size, interval is 900 s
    finally:
        archiver.stop()  # delivers the rest, as Firehose does
    assert archiver.objects_written == 2
    assert sum(len(v) for v in objects(s3, bucket).values()) == 4


def test_buffer_interval_flushes_a_small_buffer(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    archiver = Archiver(
        kinesis=kinesis,
        s3=s3,
        stream_name=stream,
        config=ArchiverConfig(bucket=bucket, buffer_interval_s=1.0, poll_interval_s=0.05),
    )
    archiver.start()
    try:
        start = time.monotonic()  # before the put: the archiver may read it before put returns
        kinesis.put_record(StreamName=stream, Data=reading("race-a", "x", 0), PartitionKey="x")
        wait_for(lambda: archiver.objects_written == 1)
        assert time.monotonic() - start >= 0.9
    finally:
        archiver.stop()


class FlakyS3:
    """Refuses the first PutObject of every key (as a throttled S3 would)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.refused: set[str] = set()

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] not in self.refused:
            self.refused.add(kwargs["Key"])
            raise ConnectionError("throttled")
        return self.real.put_object(**kwargs)


def test_an_object_s3_refuses_is_sent_again_and_counted_once(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    archiver = Archiver(
        kinesis=kinesis,
        s3=FlakyS3(s3),
        stream_name=stream,
        config=ArchiverConfig(bucket=bucket, buffer_interval_s=60.0, poll_interval_s=0.05),
    )
    archiver.start()
    try:
        for race in ("race-a", "race-b"):
            kinesis.put_record(StreamName=stream, Data=reading(race, "x", 0), PartitionKey="x")
        wait_for(lambda: len(archiver._buffer.lines) == 2)
    finally:
        archiver.stop()  # delivers the buffer
    assert (archiver.objects_written, archiver.records_archived) == (1, 2)
    assert [len(lines) for lines in objects(s3, bucket).values()] == [2]
