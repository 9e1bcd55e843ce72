"""The local SQS event source mapping: one test per documented Lambda + SQS behaviour."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.aws.lambda_runtime import ACCOUNT_ID
from local.aws.sqs_esm import (
    MAX_PAYLOAD_BYTES,
    SqsEventSourceMapping,
    SqsMappingConfig,
    failed_items,
)
from shared.names import LOCAL_REGION

FIXTURES = Path(__file__).parent / "fixtures"


class Recorder:
    """A stub handler: records every batch, context and time; ``behave`` decides what each
    call does (it gets the records and the call's number, from 1)."""

    def __init__(self, behave: Callable[[list[dict[str, Any]], int], Any] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.contexts: list[Any] = []
        self.times: list[float] = []
        self.behave = behave
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        assert context.get_remaining_time_in_millis() > 0
        with self.lock:
            self.calls.append(event["Records"])
            self.contexts.append(context)
            self.times.append(time.monotonic())
            n = len(self.calls)
        return self.behave(event["Records"], n) if self.behave else None

    def bodies(self, call: int) -> list[str]:
        return [r["body"] for r in self.calls[call]]

    def sizes(self) -> list[int]:
        return [len(c) for c in self.calls]


class Spy:
    """An SQS client that records the entry count of every DeleteMessageBatch."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.delete_batches: list[int] = []

    def delete_message_batch(self, **kwargs: Any) -> Any:
        self.delete_batches.append(len(kwargs["Entries"]))
        return self.sqs.delete_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


def new_queue(sqs: Any, **attributes: Any) -> str:
    name = f"q-{uuid.uuid4().hex[:12]}"
    attrs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in attributes.items()}
    return str(sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"])


def send(sqs: Any, url: str, bodies: list[str]) -> list[str]:
    """Send the bodies (10 a call); their messageIds, in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        out = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
        )
        assert not out.get("Failed")
        by_entry = {e["Id"]: e["MessageId"] for e in out["Successful"]}
        ids.extend(by_entry[str(i)] for i in range(len(chunk)))
    return ids


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


def receive(sqs: Any, url: str, n: int = 10) -> list[dict[str, Any]]:
    out = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=n,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(out.get("Messages", []))


def mapping(sqs: Any, url: str, handler: Any, **settings: Any) -> SqsEventSourceMapping:
    return SqsEventSourceMapping(
        sqs=sqs,
        queue_url=url,
        handler=handler,
        config=SqsMappingConfig(function_name="processor", **settings),
        region=LOCAL_REGION,
    )


def wait_for(done: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def run_until(m: SqsEventSourceMapping, done: Callable[[], bool], timeout: float = 8.0) -> None:
    m.start()
    try:
        wait_for(done, timeout)
    finally:
        m.stop()
    assert not any(p.thread.is_alive() for p in m.pollers)


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively, with the types of its leaves."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": 0}, "batch_size must be 1-10000"),
        ({"batch_size": 10_001, "maximum_batching_window_s": 1}, "batch_size must be 1-10000"),
        ({"batch_size": 11}, "batch_size above 10 requires maximum_batching_window_s"),
        (
            {"batch_size": 11, "maximum_batching_window_s": 0.5},
            "batch_size above 10 requires maximum_batching_window_s",
        ),
        ({"maximum_batching_window_s": -1}, "maximum_batching_window_s must be 0-300"),
        ({"maximum_batching_window_s": 301}, "maximum_batching_window_s must be 0-300"),
        ({"maximum_concurrency": 0}, "maximum_concurrency must be 1-1000"),
        ({"maximum_concurrency": 1001}, "maximum_concurrency must be 1-1000"),
        ({"wait_time_s": 21}, "wait_time_s must be 0-20"),
    ],
    ids=[
        "batch-0",
        "batch-10001",
        "batch-11-no-window",
        "batch-11-half-second",
        "window-negative",
        "window-301",
        "concurrency-0",
        "concurrency-1001",
        "wait-21",
    ],
)
def test_config_rejects_what_lambda_rejects(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SqsMappingConfig(function_name="processor", **settings)


def test_config_accepts_lambdas_limits() -> None:
    cfg = SqsMappingConfig(function_name="processor")
    assert (cfg.batch_size, cfg.maximum_batching_window_s, cfg.maximum_concurrency) == (10, 0, 1)
    assert cfg.report_batch_item_failures is True
    SqsMappingConfig(function_name="p", batch_size=1)
    SqsMappingConfig(function_name="p", batch_size=11, maximum_batching_window_s=1)
    SqsMappingConfig(function_name="p", batch_size=10_000, maximum_batching_window_s=300)
    SqsMappingConfig(function_name="p", maximum_concurrency=1000, wait_time_s=20)


def test_a_handler_or_an_environment_factory_not_both(sqs: Any) -> None:
    url = new_queue(sqs)
    cfg = SqsMappingConfig(function_name="processor")
    with pytest.raises(ValueError, match="not both"):
        SqsEventSourceMapping(sqs=sqs, queue_url=url, config=cfg, region=LOCAL_REGION)
    with pytest.raises(ValueError, match="not both"):
        SqsEventSourceMapping(
            sqs=sqs,
            queue_url=url,
            handler=Recorder(),
            environment_factory=lambda _name: Recorder(),
            config=cfg,
            region=LOCAL_REGION,
        )


# --- the event ----------------------------------------------------------------------------


def test_event_has_exactly_the_keys_of_lambdas_sqs_event(sqs: Any) -> None:
    url = new_queue(sqs)
    name = url.rsplit("/", 1)[1]
    sent_at = time.time()
    with_attr = sqs.send_message(
        QueueUrl=url,
        MessageBody="Test message.",
        MessageAttributes={"myAttribute": {"StringValue": "myValue", "DataType": "String"}},
    )["MessageId"]
    without = sqs.send_message(QueueUrl=url, MessageBody="Another message.")["MessageId"]
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=2)
    run_until(m, lambda: sum(rec.sizes()) == 2)

    aws = json.loads((FIXTURES / "sqs_event.json").read_text())["Records"]
    got = {r["messageId"]: r for call in rec.calls for r in call}
    assert shape(got[with_attr]) == shape(aws[0])
    assert shape(got[without]) == shape(aws[1])
    assert got[with_attr]["messageAttributes"] == aws[0]["messageAttributes"]
    assert got[without]["messageAttributes"] == {}
    for message_id, body in [(with_attr, "Test message."), (without, "Another message.")]:
        r = got[message_id]
        assert r["body"] == body
        assert r["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
        assert r["eventSource"] == "aws:sqs"
        assert r["eventSourceARN"] == f"arn:aws:sqs:{LOCAL_REGION}:{ACCOUNT_ID}:{name}"
        assert r["awsRegion"] == LOCAL_REGION
        assert r["attributes"]["ApproximateReceiveCount"] == "1"
        sent = int(r["attributes"]["SentTimestamp"]) / 1000
        assert sent_at - 1 <= sent <= time.time()
        assert int(r["attributes"]["ApproximateFirstReceiveTimestamp"]) >= sent * 1000
    assert got[with_attr]["md5OfBody"] == aws[0]["md5OfBody"]  # the doc's body is ours
    assert m.stats.messages_deleted == 2  # the receipt handles were the live ones


def test_message_attributes_take_lambdas_lower_camel_case_form(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(
        QueueUrl=url,
        MessageBody="x",
        MessageAttributes={
            "name": {"StringValue": "Ann", "DataType": "String"},
            "bib": {"StringValue": "42", "DataType": "Number"},
            "chip": {"BinaryValue": b"\x00\x01\xff", "DataType": "Binary"},
            "team": {"StringValue": "blue", "DataType": "String.team"},
        },
    )
    rec = Recorder()
    m = mapping(sqs, url, rec)
    outcome = m.invoke(receive(sqs, url))
    assert outcome.failed_message_ids == ()
    (record,) = rec.calls[0]
    assert record["messageAttributes"] == {
        "name": {
            "stringValue": "Ann",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "bib": {
            "stringValue": "42",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "chip": {
            "binaryValue": base64.b64encode(b"\x00\x01\xff").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
        "team": {
            "stringValue": "blue",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String.team",
        },
    }
    json.dumps(rec.calls)  # the event is JSON, as Lambda's is


# --- batching -----------------------------------------------------------------------------


def test_batch_size_caps_each_batch(sqs: Any) -> None:
    url = new_queue(sqs)
    bodies = [f"m{i}" for i in range(7)]
    send(sqs, url, bodies)
    rec = Recorder()
    run_until(mapping(sqs, url, rec, batch_size=3), lambda: sum(rec.sizes()) == 7)
    assert rec.sizes() == [3, 3, 1]
    assert sorted(b for i in range(3) for b in rec.bodies(i)) == bodies


def test_without_window_a_batch_is_what_one_receive_returned(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, ["a", "b", "c"])
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=10)
    m.start()
    try:
        wait_for(lambda: len(rec.calls) == 1)
        send(sqs, url, ["d", "e"])
        wait_for(lambda: len(rec.calls) == 2)
    finally:
        m.stop()
    assert [sorted(rec.bodies(0)), sorted(rec.bodies(1))] == [["a", "b", "c"], ["d", "e"]]


def test_window_gathers_messages_until_it_expires(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, ["a", "b"])
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=100, maximum_batching_window_s=1.0)
    started = time.monotonic()
    m.start()
    try:
        time.sleep(0.3)
        send(sqs, url, ["c", "d", "e"])
        wait_for(lambda: len(rec.calls) == 1)
        time.sleep(0.2)
    finally:
        m.stop()
    assert len(rec.calls) == 1
    assert sorted(rec.bodies(0)) == ["a", "b", "c", "d", "e"]
    assert rec.times[0] - started >= 1.0


def test_a_full_batch_goes_before_the_window_ends(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, [f"m{i}" for i in range(12)])
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=12, maximum_batching_window_s=5.0)
    started = time.monotonic()
    run_until(m, lambda: len(rec.calls) == 1)
    assert rec.sizes() == [12]
    assert rec.times[0] - started < 2.5  # the window (5 s) did not have to pass


def test_a_batch_stays_within_lambdas_6_mb_payload(sqs: Any) -> None:
    url = new_queue(sqs)
    for i in range(7):  # 7 x 1,000,000 bytes: 6 fit in 6 MiB with their record fields
        sqs.send_message(QueueUrl=url, MessageBody=str(i) * 1_000_000)
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=7)
    run_until(m, lambda: sum(rec.sizes()) == 7)
    assert rec.sizes() == [6, 1]
    for call in rec.calls:
        assert len(json.dumps({"Records": call}, separators=(",", ":"))) <= MAX_PAYLOAD_BYTES
    assert m.stats.messages_deleted == 7
    assert counts(sqs, url) == (0, 0)


# --- responses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null-response", "empty-response", "empty-list", "null-list"],
)
def test_success_deletes_every_message_in_chunks_of_10(sqs: Any, response: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, [f"m{i}" for i in range(15)])
    spy = Spy(sqs)
    rec = Recorder(lambda records, n: response)
    m = mapping(spy, url, rec, batch_size=15, maximum_batching_window_s=1.0)
    run_until(m, lambda: m.stats.messages_deleted == 15)
    assert rec.sizes() == [15]
    assert spy.delete_batches == [10, 5]
    assert (m.stats.messages_delivered, m.stats.partial_failures) == (15, 0)
    assert counts(sqs, url) == (0, 0)


def test_partial_failure_deletes_all_but_the_reported_messages(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="1")
    ids = send(sqs, url, [f"m{i}" for i in range(5)])

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if n == 1:
            return {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[3]}]}
        return {"batchItemFailures": []}

    rec = Recorder(behave)
    m = mapping(sqs, url, rec)
    run_until(m, lambda: len(rec.calls) == 2 and m.stats.messages_deleted == 5)
    assert rec.sizes() == [5, 2]
    assert sorted(rec.bodies(1)) == ["m1", "m3"]
    assert sorted(r["messageId"] for r in rec.calls[1]) == sorted([ids[1], ids[3]])
    assert [r["attributes"]["ApproximateReceiveCount"] for r in rec.calls[1]] == ["2", "2"]
    assert m.stats.partial_failures == 1
    assert m.stats.messages_delivered == 5
    assert counts(sqs, url) == (0, 0)


@pytest.mark.parametrize(
    "failures",
    [
        lambda ids: [{"itemIdentifier": ""}],
        lambda ids: [{"itemIdentifier": None}],
        lambda ids: [{}],
        lambda ids: [{"itemIdentifier": "not-a-message-of-the-batch"}],
        lambda ids: [{"itemIdentifier": ids[0]}, {"itemIdentifier": "unknown"}],
        lambda ids: [{"itemIdentifier": ids[0]}, {"identifier": ids[1]}],
        lambda ids: {"itemIdentifier": ids[0]},
    ],
    ids=[
        "empty",
        "null",
        "missing",
        "unknown",
        "valid-and-unknown",
        "bad-key-name",
        "not-a-list",
    ],
)
def test_invalid_item_identifier_fails_the_whole_batch(
    sqs: Any, failures: Callable[[list[str]], Any]
) -> None:
    url = new_queue(sqs)
    ids = send(sqs, url, ["a", "b", "c"])
    rec = Recorder(lambda records, n: {"batchItemFailures": failures(ids)})
    m = mapping(sqs, url, rec)
    messages = receive(sqs, url)
    assert len(messages) == 3
    outcome = m.deliver(messages)
    assert sorted(outcome.failed_message_ids) == sorted(ids)
    assert outcome.error is None
    assert (m.stats.messages_deleted, m.stats.messages_delivered) == (0, 0)
    assert m.stats.partial_failures == 1
    assert counts(sqs, url) == (0, 3)  # all three still in the queue, in flight


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null-response", "empty-response", "empty-list", "null-list"],
)
def test_success_responses(response: Any) -> None:
    assert failed_items(response, ["1", "2"]) == []


def test_reported_failures_are_ignored_without_report_batch_item_failures(sqs: Any) -> None:
    url = new_queue(sqs)
    ids = send(sqs, url, ["a", "b", "c"])
    rec = Recorder(lambda records, n: {"batchItemFailures": [{"itemIdentifier": ids[0]}]})
    m = mapping(sqs, url, rec, report_batch_item_failures=False)
    outcome = m.deliver(receive(sqs, url))
    assert outcome.failed_message_ids == ()
    assert (m.stats.messages_deleted, m.stats.partial_failures) == (3, 0)
    assert counts(sqs, url) == (0, 0)


def test_function_error_deletes_nothing_and_sqs_delivers_again(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout="1")
    ids = send(sqs, url, ["a", "b", "c"])

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        if n == 1:
            raise RuntimeError("transient")
        return None

    rec = Recorder(behave)
    m = mapping(sqs, url, rec)
    run_until(m, lambda: len(rec.calls) == 2 and m.stats.messages_deleted == 3)
    assert rec.sizes() == [3, 3]
    assert sorted(r["messageId"] for r in rec.calls[1]) == sorted(ids)
    assert [r["attributes"]["ApproximateReceiveCount"] for r in rec.calls[0]] == ["1"] * 3
    assert [r["attributes"]["ApproximateReceiveCount"] for r in rec.calls[1]] == ["2"] * 3
    assert rec.times[1] - rec.times[0] >= 0.9  # back only when the visibility timeout expired
    assert m.stats.function_errors == 1
    assert counts(sqs, url) == (0, 0)


def test_redrive_to_the_dead_letter_queue_after_max_receive_count(sqs: Any) -> None:
    dlq = new_queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = new_queue(
        sqs,
        VisibilityTimeout="1",
        RedrivePolicy={"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"},
    )
    (message_id,) = send(sqs, url, ["poison"])
    in_dlq_during_call: list[tuple[int, int]] = []

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        in_dlq_during_call.append(counts(sqs, dlq))
        raise ValueError("poison")

    rec = Recorder(behave)
    m = mapping(sqs, url, rec)
    m.start()
    try:
        wait_for(lambda: counts(sqs, dlq) == (1, 0))
        time.sleep(0.3)
    finally:
        m.stop()
    assert rec.sizes() == [1, 1]
    assert [c[0]["attributes"]["ApproximateReceiveCount"] for c in rec.calls] == ["1", "2"]
    assert in_dlq_during_call == [(0, 0), (0, 0)]
    assert m.stats.function_errors == 2
    assert m.stats.messages_deleted == 0
    assert counts(sqs, url) == (0, 0)
    (dead,) = receive(sqs, dlq)
    assert (dead["MessageId"], dead["Body"]) == (message_id, "poison")


# --- stopping -----------------------------------------------------------------------------


def test_stop_is_prompt_while_long_polling(sqs: Any) -> None:
    url = new_queue(sqs)
    m = mapping(sqs, url, Recorder(), wait_time_s=1, maximum_concurrency=2)
    m.start()
    wait_for(lambda: m.idle)
    began = time.monotonic()
    m.stop()
    assert time.monotonic() - began < 1 + 0.5
    assert [p.thread.is_alive() for p in m.pollers] == [False, False]


def test_stop_lets_the_batch_in_flight_finish_and_deletes_all_of_it(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, [f"m{i}" for i in range(12)])
    entered = threading.Event()
    idle_in_flight: list[bool] = []

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        idle_in_flight.append(m.idle)
        entered.set()
        time.sleep(0.5)
        return None

    rec = Recorder(behave)
    m = mapping(sqs, url, rec, batch_size=12, maximum_batching_window_s=1.0)
    m.start()
    assert entered.wait(8)
    began = time.monotonic()
    m.stop(timeout=5)
    assert time.monotonic() - began >= 0.3  # it waited for the invocation
    assert not m.pollers[0].thread.is_alive()
    assert idle_in_flight == [False]
    assert rec.sizes() == [12]
    assert m.stats.messages_deleted == 12
    assert counts(sqs, url) == (0, 0)


def test_stop_releases_messages_not_yet_sent_to_the_function(sqs: Any) -> None:
    url = new_queue(sqs)
    ids = send(sqs, url, ["a", "b", "c"])
    rec = Recorder()
    m = mapping(sqs, url, rec, batch_size=100, maximum_batching_window_s=30)
    m.start()
    wait_for(lambda: counts(sqs, url) == (0, 3))  # received, buffered for the window
    m.stop(timeout=5)
    assert not m.pollers[0].thread.is_alive()
    assert rec.calls == []
    assert counts(sqs, url) == (3, 0)  # visible at once, not after the 30 s timeout
    again = receive(sqs, url)
    assert sorted(msg["MessageId"] for msg in again) == sorted(ids)


# --- concurrency --------------------------------------------------------------------------


def test_maximum_concurrency_runs_that_many_invocations_at_once(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, ["a", "b"])
    both_in_flight = threading.Barrier(2, timeout=5)
    environments: dict[str, Recorder] = {}

    def factory(name: str) -> Recorder:
        # Each environment's first invocation waits for the other's: they must overlap.
        environments[name] = Recorder(lambda records, n: both_in_flight.wait() if n == 1 else None)
        return environments[name]

    def delivered() -> set[str]:
        return {
            b
            for env in list(environments.values())
            for c in range(len(env.calls))
            for b in env.bodies(c)
        }

    m = SqsEventSourceMapping(
        sqs=sqs,
        queue_url=url,
        environment_factory=factory,
        config=SqsMappingConfig(function_name="processor", batch_size=1, maximum_concurrency=2),
        region=LOCAL_REGION,
    )
    # Standard queues deliver at least once (and moto's ReceiveMessage takes no lock, so two
    # pollers asking at the same instant can both get "a"): wait for both bodies.
    run_until(m, lambda: delivered() == {"a", "b"})
    assert m.stats.function_errors == 0  # a broken barrier would be a function error
    assert sorted(environments) == ["poller-0", "poller-1"]
    assert all(len(env.calls) >= 1 for env in environments.values())
    contexts = [env.contexts[0] for env in environments.values()]
    assert contexts[0].aws_request_id != contexts[1].aws_request_id


def test_by_default_one_batch_at_a_time_each_with_a_fresh_context(sqs: Any) -> None:
    url = new_queue(sqs)
    send(sqs, url, [f"m{i}" for i in range(5)])
    in_flight = [0]
    most = [0]

    def behave(records: list[dict[str, Any]], n: int) -> Any:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        time.sleep(0.02)
        in_flight[0] -= 1
        return None

    rec = Recorder(behave)
    run_until(mapping(sqs, url, rec, batch_size=1), lambda: len(rec.calls) == 5)
    assert most[0] == 1
    assert len({c.aws_request_id for c in rec.contexts}) == 5
    assert {c.invoked_function_arn for c in rec.contexts} == {
        f"arn:aws:lambda:{LOCAL_REGION}:{ACCOUNT_ID}:function:processor"
    }
