"""Kinesis transport: PutRecords limits, per-entry retries, throttling, fatal errors."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from shared.contract import parse_reading
from simulator.model import RaceConfig, race
from simulator.runner import RunOptions, simulate
from simulator.standin import StandinServer
from simulator.transports.base import Outgoing
from simulator.transports.kinesis import (
    MAX_BYTES_PER_CALL,
    MAX_RECORDS_PER_CALL,
    KinesisTransport,
    batches,
    kinesis_client,
    record_size,
)

CFG = RaceConfig("race-k", riders=300, duration=12, seed=4, start_ms=1_700_000_000_000)


def produced(config: RaceConfig = CFG) -> list[bytes]:
    return [r.to_json() for b in race(config) for r in b]


def item(i: int, size: int = 200) -> Outgoing:
    return Outgoing("r", f"rider-{i:05d}", f"e{i}", b"x" * size)


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutRecords")


class StubKinesis:
    """PutRecords stand-in: throttles chosen entries per entry, like Kinesis (HTTP 200)."""

    def __init__(
        self,
        *,
        throttle_times: int = 0,
        error_code: str = "ProvisionedThroughputExceededException",
        call_errors: list[Exception] | None = None,
        delay: float = 0.002,
    ) -> None:
        self.throttle_times = throttle_times
        self.error_code = error_code
        self.call_errors = list(call_errors or [])
        self.delay = delay
        self.lock = threading.Lock()
        self.calls: list[list[dict[str, Any]]] = []
        self.seen: Counter[bytes] = Counter()
        self.accepted: Counter[bytes] = Counter()
        self.refused = 0
        self.active = 0
        self.max_active = 0

    def refuses(self, data: bytes, attempt: int) -> bool:
        """About a third of entries are refused 1..throttle_times times, chosen by hash."""
        h = hashlib.sha256(data).digest()
        return h[0] % 3 == 0 and attempt <= 1 + h[1] % max(1, self.throttle_times)

    def put_records(self, **call: Any) -> dict[str, Any]:
        assert set(call) == {"StreamName", "Records"}
        Records: list[dict[str, Any]] = call["Records"]  # noqa: N806 (the API's name)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(Records)
            error = self.call_errors.pop(0) if self.call_errors else None
        try:
            time.sleep(self.delay)
            if error is not None:
                raise error
            out = []
            with self.lock:
                for rec in Records:
                    data = rec["Data"]
                    self.seen[data] += 1
                    if self.throttle_times and self.refuses(data, self.seen[data]):
                        self.refused += 1
                        out.append({"ErrorCode": self.error_code, "ErrorMessage": "Rate exceeded"})
                    else:
                        self.accepted[data] += 1
                        out.append({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
            return {"FailedRecordCount": sum("ErrorCode" in o for o in out), "Records": out}
        finally:
            with self.lock:
                self.active -= 1


def run(stub: Any, tmp_path: Path, **kw: Any) -> tuple[KinesisTransport, Any]:
    sleeps: list[float] = []
    transport = KinesisTransport(stub, "s", sleep=sleeps.append, **kw)
    summary = simulate(CFG, transport, RunOptions(time_compression=0, truth_path=None))
    transport.close()
    transport.sleeps = sleeps  # type: ignore[attr-defined]
    return transport, summary


def test_batches_respect_the_record_count() -> None:
    sizes = [len(b) for b in batches([item(i) for i in range(1_201)])]
    assert sizes == [500, 500, 201]


def test_batches_respect_the_bytes_per_call() -> None:
    big = [item(i, size=100 * 1024) for i in range(120)]
    out = list(batches(big))
    assert sum(len(b) for b in out) == 120
    assert all(sum(record_size(x) for x in b) <= MAX_BYTES_PER_CALL for b in out)
    assert len(out[0]) == MAX_BYTES_PER_CALL // record_size(big[0])  # as full as allowed


def test_a_record_over_one_mib_is_never_sent_and_counted_failed(tmp_path: Path) -> None:
    stub = StubKinesis()
    transport = KinesisTransport(stub, "s")
    huge = Outgoing("r", "rider-1", "e", b"x" * (1024 * 1024))  # + partition key > 1 MiB
    transport.send([item(1), huge, item(2)])
    transport.close()
    assert [len(c) for c in stub.calls] == [2]
    counts = transport.stats.snapshot()
    assert (counts.sent, counts.acknowledged, counts.failed) == (3, 2, 1)


def test_every_reading_arrives_once_and_calls_stay_within_limits(tmp_path: Path) -> None:
    stub = StubKinesis()
    _, summary = run(stub, tmp_path, max_in_flight=3)
    want = produced()
    assert stub.accepted == Counter(want)
    assert all(len(call) <= MAX_RECORDS_PER_CALL for call in stub.calls)
    assert all(
        rec["PartitionKey"] == parse_reading(rec["Data"]).rider_id for c in stub.calls for rec in c
    )
    assert stub.max_active <= 3
    counts = summary.counts
    assert (counts.sent, counts.acknowledged, counts.retried, counts.failed) == (
        len(want),
        len(want),
        0,
        0,
    )


def test_per_entry_throttling_resends_only_the_failed_entries(tmp_path: Path) -> None:
    stub = StubKinesis(throttle_times=3)
    transport, summary = run(stub, tmp_path, max_in_flight=4)
    want = produced()
    # nothing lost, nothing accepted twice
    assert stub.accepted == Counter(want)
    assert stub.refused > len(want) // 4
    # every entry beyond the first sending of each reading was a refused one
    assert sum(len(c) for c in stub.calls) == len(want) + stub.refused
    counts = summary.counts
    assert counts.throttled == stub.refused
    assert counts.retried == stub.refused
    assert (counts.acknowledged, counts.failed) == (len(want), 0)
    assert stub.max_active <= 4
    assert all(s > 0 for s in transport.sleeps)  # type: ignore[attr-defined]


def test_internal_failures_are_retried_but_not_counted_as_throttling(tmp_path: Path) -> None:
    stub = StubKinesis(throttle_times=1, error_code="InternalFailure")
    _, summary = run(stub, tmp_path)
    assert stub.accepted == Counter(produced())
    assert summary.counts.throttled == 0
    assert summary.counts.retried == stub.refused > 0


def test_whole_call_throttling_is_honoured(tmp_path: Path) -> None:
    errors: list[Exception] = [client_error("ProvisionedThroughputExceededException")] * 3
    errors.insert(1, EndpointConnectionError(endpoint_url="http://x"))
    stub = StubKinesis(call_errors=errors)
    transport, summary = run(stub, tmp_path, max_in_flight=1)
    assert stub.accepted == Counter(produced())
    refused_entries = sum(len(c) for c in stub.calls[:4])
    assert summary.counts.retried == refused_entries
    assert summary.counts.throttled == sum(len(c) for i, c in enumerate(stub.calls[:4]) if i != 1)
    assert len(transport.sleeps) == 4  # type: ignore[attr-defined]  # one backoff per refusal


def test_backoff_grows_exponentially_with_jitter() -> None:
    transport = KinesisTransport(StubKinesis(), "s", base_delay=0.1, max_delay=2.0)
    for attempt in range(1, 8):
        ceiling = min(2.0, 0.1 * 2**attempt)
        delays = {transport.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter
    transport.close()


def test_entries_still_refused_after_max_attempts_are_counted_failed(tmp_path: Path) -> None:
    stub = StubKinesis(throttle_times=50)
    _, summary = run(stub, tmp_path, max_attempts=3)
    want = produced()
    counts = summary.counts
    assert counts.failed > 0
    assert counts.acknowledged + counts.failed == len(want)
    assert sum(stub.accepted.values()) == counts.acknowledged
    assert not summary.ok


def test_a_missing_stream_is_fatal_with_one_clear_line(tmp_path: Path) -> None:
    stub = StubKinesis(call_errors=[client_error("ResourceNotFoundException")] * 100)
    transport = KinesisTransport(stub, "nope", sleep=lambda s: None, max_in_flight=1)
    with pytest.raises(Exception, match=r"stream 'nope' does not exist: deploy the stack"):
        simulate(CFG, transport, RunOptions(time_compression=0))
    transport.close()


def test_an_unreachable_endpoint_is_fatal_after_the_retries() -> None:
    errors: list[Exception] = [EndpointConnectionError(endpoint_url="http://127.0.0.1:9")] * 100
    stub = StubKinesis(call_errors=errors, delay=0)
    transport = KinesisTransport(stub, "s", sleep=lambda s: None, max_attempts=3, max_in_flight=1)
    with pytest.raises(Exception, match="cannot reach the Kinesis endpoint"):
        simulate(CFG, transport, RunOptions(time_compression=0))
    transport.close()


def test_against_moto_real_request_shapes(tmp_path: Path) -> None:
    config = RaceConfig("race-m", riders=120, duration=10, seed=2, start_ms=1)
    with mock_aws():
        raw = boto3.client("kinesis", region_name="us-east-1")
        raw.create_stream(StreamName="telemetry", ShardCount=2)
        client = kinesis_client(region="us-east-1")
        # one call at a time: moto's in-memory stream is not safe for concurrent puts
        transport = KinesisTransport(client, "telemetry", max_in_flight=1)
        summary = simulate(config, transport, RunOptions(time_compression=0))
        transport.close()
        got: list[tuple[str, str, bytes]] = []
        for shard in raw.list_shards(StreamName="telemetry")["Shards"]:
            it = raw.get_shard_iterator(
                StreamName="telemetry", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while True:
                page = raw.get_records(ShardIterator=it, Limit=10_000)
                got += [(shard["ShardId"], r["PartitionKey"], r["Data"]) for r in page["Records"]]
                if not page["Records"]:
                    break
                it = page["NextShardIterator"]
    want = [r.to_json() for b in race(config) for r in b]
    assert sorted(d for _, _, d in got) == sorted(want)
    assert summary.counts.acknowledged == len(want)
    shards_of: dict[str, set[str]] = {}
    for shard, key, data in got:
        assert key == parse_reading(data).rider_id
        shards_of.setdefault(key, set()).add(shard)
    assert all(len(s) == 1 for s in shards_of.values())  # a rider stays on one shard
    assert len({s for v in shards_of.values() for s in v}) == 2


def test_over_http_with_per_entry_throttling(standin: StandinServer) -> None:
    standin.throttle_every = 7
    client = kinesis_client(endpoint_url=standin.url, region="us-east-1")
    transport = KinesisTransport(client, standin.stream, base_delay=0.001)
    summary = simulate(CFG, transport, RunOptions(time_compression=0))
    transport.close()
    want = produced()
    assert Counter(d for _, d in standin.received) == Counter(want)
    refused = standin.entries_seen - standin.accepted
    assert refused >= len(want) // 7
    assert (summary.counts.throttled, summary.counts.retried) == (refused, refused)
