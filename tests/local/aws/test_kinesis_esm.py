"""The local Kinesis event source mapping: one test per documented Lambda behaviour."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.aws.kinesis_esm import (
    CONDITION_AGE,
    CONDITION_RETRIES,
    KinesisEventSourceMapping,
    KinesisMappingConfig,
    interpret_response,
)
from shared.names import LOCAL_REGION

FIXTURES = Path(__file__).parent / "fixtures"


class Recorder:
    """A stub handler: records every event; ``behave`` decides what each call does."""

    def __init__(self, behave: Callable[[list[dict[str, Any]], int], Any] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.behave = behave
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        assert context.get_remaining_time_in_millis() > 0
        with self.lock:
            self.calls.append(event["Records"])
            n = len(self.calls)
        return self.behave(event["Records"], n) if self.behave else None

    def payloads(self, call: int) -> list[str]:
        return [base64.b64decode(r["kinesis"]["data"]).decode() for r in self.calls[call]]

    def all_payloads(self) -> list[list[str]]:
        return [self.payloads(i) for i in range(len(self.calls))]


def put(kinesis: Any, stream: str, payloads: list[str], key: str = "k") -> list[str]:
    out = kinesis.put_records(
        StreamName=stream, Records=[{"Data": p.encode(), "PartitionKey": key} for p in payloads]
    )
    return [r["SequenceNumber"] for r in out["Records"]]


def run_until(
    mapping: KinesisEventSourceMapping, done: Callable[[], bool], timeout: float = 10.0
) -> None:
    mapping.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)
    finally:
        mapping.stop()


def mapping(kinesis: Any, stream: str, handler: Any, **settings: Any) -> KinesisEventSourceMapping:
    settings.setdefault("poll_interval_s", 0.02)
    settings.setdefault("retry_delay_s", 0.0)
    s3 = settings.pop("s3", None)
    return KinesisEventSourceMapping(
        kinesis=kinesis,
        stream_name=stream,
        handler=handler,
        config=KinesisMappingConfig(function_name="processor", **settings),
        region=LOCAL_REGION,
        s3=s3,
    )


def names(n: int, start: int = 0) -> list[str]:
    return [f"r{i}" for i in range(start, start + n)]


def test_event_has_lambdas_exact_kinesis_shape(kinesis: Any, stream: str) -> None:
    seqs = put(kinesis, stream, ["hello"], key="rider-1")
    rec = Recorder()
    m = mapping(kinesis, stream, rec)
    run_until(m, lambda: len(rec.calls) == 1)
    (got,) = rec.calls[0]
    (aws,) = json.loads((FIXTURES / "kinesis_event.json").read_text())["Records"]
    assert set(got) == set(aws)
    assert set(got["kinesis"]) == set(aws["kinesis"])
    for k, v in aws.items():
        assert type(got[k]) is type(v), k
    for k, v in aws["kinesis"].items():
        assert type(got["kinesis"][k]) is type(v), k
    assert got["eventSource"] == "aws:kinesis"
    assert got["eventName"] == "aws:kinesis:record"
    assert got["eventVersion"] == "1.0"
    assert got["eventID"] == f"shardId-000000000000:{seqs[0]}"
    assert got["eventSourceARN"] == m.stream_arn
    assert got["eventSourceARN"].endswith(f":stream/{stream}")
    assert got["awsRegion"] == LOCAL_REGION
    assert got["kinesis"]["partitionKey"] == "rider-1"
    assert got["kinesis"]["sequenceNumber"] == seqs[0]
    assert base64.b64decode(got["kinesis"]["data"]) == b"hello"
    assert abs(got["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 30


def test_batch_size_caps_each_batch_and_keeps_order(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, names(25))
    rec = Recorder()
    run_until(mapping(kinesis, stream, rec, batch_size=10), lambda: len(rec.calls) == 3)
    assert rec.all_payloads() == [names(10), names(10, 10), names(5, 20)]


def test_batching_window_gathers_records_that_arrive_within_it(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, ["a"])
    rec = Recorder()
    m = mapping(kinesis, stream, rec, batch_size=100, maximum_batching_window_s=1.5)
    m.start()
    try:
        time.sleep(0.4)
        put(kinesis, stream, ["b", "c"])
        deadline = time.monotonic() + 10
        while not rec.calls:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        m.stop()
    assert rec.all_payloads() == [["a", "b", "c"]]


def test_without_window_a_batch_goes_as_soon_as_records_arrive(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, ["a"])
    rec = Recorder()
    m = mapping(kinesis, stream, rec, batch_size=100)
    m.start()
    try:
        deadline = time.monotonic() + 10
        while not rec.calls:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        put(kinesis, stream, ["b"])
        while len(rec.calls) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        m.stop()
    assert rec.all_payloads() == [["a"], ["b"]]


def test_partial_failure_checkpoints_at_the_lowest_reported_sequence_number(
    kinesis: Any, stream: str
) -> None:
    put(kinesis, stream, names(6))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if n == 1:  # report r4 and r2 (out of order): the checkpoint is r2
            seq = [r["kinesis"]["sequenceNumber"] for r in records]
            return {"batchItemFailures": [{"itemIdentifier": seq[4]}, {"itemIdentifier": seq[2]}]}
        return {"batchItemFailures": []}

    rec = Recorder(behave)
    run_until(mapping(kinesis, stream, rec, batch_size=10), lambda: len(rec.calls) == 2)
    time.sleep(0.1)
    assert rec.all_payloads() == [names(6), ["r2", "r3", "r4", "r5"]]


@pytest.mark.parametrize(
    "bad_item",
    [{"itemIdentifier": ""}, {"itemIdentifier": None}, {"itemIdentifier": "999999"}, {}],
    ids=["empty", "null", "unknown", "missing"],
)
def test_invalid_item_identifier_fails_the_whole_batch(
    kinesis: Any, stream: str, bad_item: dict[str, Any]
) -> None:
    put(kinesis, stream, names(3))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        return {"batchItemFailures": [bad_item]} if n == 1 else None

    rec = Recorder(behave)
    run_until(mapping(kinesis, stream, rec), lambda: len(rec.calls) == 2)
    assert rec.all_payloads() == [names(3), names(3)]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null-response", "empty-response", "empty-list", "null-list"],
)
def test_success_responses(response: Any) -> None:
    assert interpret_response(response, ["1", "2"]) is None


def test_item_failures_are_ignored_without_report_batch_item_failures(
    kinesis: Any, stream: str
) -> None:
    put(kinesis, stream, names(3))
    put_after = threading.Event()

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        seq = records[0]["kinesis"]["sequenceNumber"]
        return {"batchItemFailures": [{"itemIdentifier": seq}]}

    rec = Recorder(behave)
    m = mapping(kinesis, stream, rec, report_batch_item_failures=False)

    def later() -> None:
        while not rec.calls:
            time.sleep(0.01)
        put(kinesis, stream, ["next"])
        put_after.set()

    threading.Thread(target=later, daemon=True).start()
    run_until(m, lambda: len(rec.calls) == 2)
    assert rec.all_payloads() == [names(3), ["next"]]


def test_function_error_retries_the_whole_batch_in_order(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, names(4))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if n <= 2:
            raise RuntimeError("transient")
        return None

    rec = Recorder(behave)
    run_until(mapping(kinesis, stream, rec), lambda: len(rec.calls) == 3)
    assert rec.all_payloads() == [names(4)] * 3


def test_bisect_on_function_error_isolates_the_bad_record(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    put(kinesis, stream, names(8))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if any(base64.b64decode(r["kinesis"]["data"]) == b"r5" for r in records):
            raise ValueError("poison")
        return None

    rec = Recorder(behave)
    m = mapping(
        kinesis,
        stream,
        rec,
        bisect_batch_on_function_error=True,
        maximum_retry_attempts=1,
        on_failure_destination=f"s3:{bucket}",
        s3=s3,
    )
    run_until(m, lambda: len(rec.calls) == 8)
    assert m.stats.records_discarded == 1
    # halves never consume retries: 8 -> 4+4 -> (4 ok) 2+2 -> (2 ok... ) 1+1 -> r5 retried once
    assert rec.all_payloads() == [
        names(8),
        names(4),
        names(4, 4),
        ["r4", "r5"],
        ["r4"],
        ["r5"],
        ["r5"],
        ["r6", "r7"],
    ]
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert body["requestContext"]["condition"] == CONDITION_RETRIES
    assert body["requestContext"]["approximateInvokeCount"] == 2
    assert body["responseContext"]["functionError"] == "Unhandled"
    payload = json.loads(body["payload"])["Records"]
    assert [base64.b64decode(r["kinesis"]["data"]) for r in payload] == [b"r5"]


def test_bisect_with_partial_failure_retries_only_the_rest(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, names(6))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if n == 1:
            return {
                "batchItemFailures": [{"itemIdentifier": records[3]["kinesis"]["sequenceNumber"]}]
            }
        return None

    rec = Recorder(behave)
    run_until(
        mapping(kinesis, stream, rec, bisect_batch_on_function_error=True),
        lambda: len(rec.calls) == 2,
    )
    time.sleep(0.1)
    assert rec.all_payloads() == [names(6), ["r3", "r4", "r5"]]


def test_retry_attempts_exhausted_goes_to_s3_with_the_records_and_the_shard_moves_on(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    seqs = put(kinesis, stream, names(3))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if base64.b64decode(records[0]["kinesis"]["data"]) == b"r0":
            raise RuntimeError("always")
        return None

    rec = Recorder(behave)
    m = mapping(
        kinesis,
        stream,
        rec,
        maximum_retry_attempts=2,
        on_failure_destination=f"s3:{bucket}",
        s3=s3,
    )
    m.start()
    try:
        deadline = time.monotonic() + 10
        while m.stats.records_discarded < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        put(kinesis, stream, ["after"])
        while len(rec.calls) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        m.stop()
    assert rec.all_payloads() == [names(3)] * 3 + [["after"]]
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert obj["Key"].startswith(f"aws/lambda/{m.config.uuid}/shardId-000000000000/")
    body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert body["requestContext"]["condition"] == CONDITION_RETRIES
    assert body["requestContext"]["approximateInvokeCount"] == 3
    assert body["requestContext"]["functionArn"].endswith(":function:processor")
    info = body["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[0], seqs[2])
    assert info["batchSize"] == 3
    assert info["streamArn"] == m.stream_arn
    payload = json.loads(body["payload"])["Records"]
    assert [r["kinesis"]["sequenceNumber"] for r in payload] == seqs


def test_zero_retry_attempts_means_one_invocation(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, names(2))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        raise RuntimeError("always")

    rec = Recorder(behave)
    m = mapping(kinesis, stream, rec, maximum_retry_attempts=0)
    run_until(m, lambda: m.stats.records_discarded == 2)
    assert len(rec.calls) == 1


def test_records_past_the_maximum_age_are_discarded_to_the_destination(
    kinesis: Any, stream: str, s3: Any, bucket: str
) -> None:
    put(kinesis, stream, names(2))
    rec = Recorder()
    m = KinesisEventSourceMapping(
        kinesis=kinesis,
        stream_name=stream,
        handler=rec,
        config=KinesisMappingConfig(
            function_name="processor",
            maximum_record_age_s=60,
            on_failure_destination=f"s3:{bucket}",
            poll_interval_s=0.02,
        ),
        region=LOCAL_REGION,
        s3=s3,
        clock=lambda: time.time() + 61,  # the records are 61 s old when polled
    )
    run_until(m, lambda: m.stats.records_discarded == 2)
    assert rec.calls == []
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert body["requestContext"]["condition"] == CONDITION_AGE
    assert body["KinesisBatchInfo"]["batchSize"] == 2


def test_retries_stop_when_records_grow_too_old(kinesis: Any, stream: str) -> None:
    put(kinesis, stream, names(2))
    offset = [0.0]

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        offset[0] += 40  # each failed attempt "takes" 40 s
        raise RuntimeError("slow failure")

    rec = Recorder(behave)
    m = KinesisEventSourceMapping(
        kinesis=kinesis,
        stream_name=stream,
        handler=rec,
        config=KinesisMappingConfig(
            function_name="processor",
            maximum_record_age_s=60,
            poll_interval_s=0.02,
            retry_delay_s=0.0,
        ),
        region=LOCAL_REGION,
        clock=lambda: time.time() + offset[0],
    )
    run_until(m, lambda: m.stats.records_discarded == 2)
    assert len(rec.calls) == 2  # at 0 s and 40 s; at 80 s the records are past 60 s


def test_sqs_destination_gets_metadata_only(kinesis: Any, stream: str, sqs: Any) -> None:
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    put(kinesis, stream, names(2))

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        raise RuntimeError("always")

    m = KinesisEventSourceMapping(
        kinesis=kinesis,
        stream_name=stream,
        handler=Recorder(behave),
        config=KinesisMappingConfig(
            function_name="processor",
            maximum_retry_attempts=0,
            on_failure_destination=f"sqs:{url}",
            poll_interval_s=0.02,
        ),
        region=LOCAL_REGION,
        sqs=sqs,
    )
    run_until(m, lambda: m.stats.records_discarded == 2)
    (msg,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert "payload" not in body
    assert body["KinesisBatchInfo"]["batchSize"] == 2


def test_each_shard_is_delivered_in_order_one_batch_at_a_time(kinesis: Any) -> None:
    stream = f"s-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=stream, ShardCount=3)
    for i in range(6):
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": f"{rider}:{i}".encode(), "PartitionKey": f"rider{rider}"}
                for rider in range(20)
            ],
        )
    in_flight: dict[str, int] = {}
    overlap: list[str] = []
    lock = threading.Lock()

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        shard = records[0]["eventID"].split(":")[0]
        with lock:
            in_flight[shard] = in_flight.get(shard, 0) + 1
            if in_flight[shard] > 1:
                overlap.append(shard)
        time.sleep(0.005)
        with lock:
            in_flight[shard] -= 1
        return None

    rec = Recorder(behave)
    m = mapping(kinesis, stream, rec, batch_size=7)
    run_until(m, lambda: sum(len(c) for c in rec.calls) == 120)
    assert overlap == []
    per_shard: dict[str, list[int]] = {}
    per_rider: dict[str, list[int]] = {}
    for call in rec.calls:
        assert len({r["eventID"].split(":")[0] for r in call}) == 1
        for r in call:
            per_shard.setdefault(r["eventID"].split(":")[0], []).append(
                int(r["kinesis"]["sequenceNumber"])
            )
            rider, i = base64.b64decode(r["kinesis"]["data"]).decode().split(":")
            per_rider.setdefault(rider, []).append(int(i))
    assert len(per_shard) > 1
    for seqs in per_shard.values():
        assert seqs == sorted(seqs)
    assert all(v == list(range(6)) for v in per_rider.values())
    assert len(per_rider) == 20
