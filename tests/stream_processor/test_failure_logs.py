"""What the functions log about records they could not process: ids and reasons, never the
records' contents. A reading (or a hostile payload that only looks like one) may carry anything,
and logs are read by more people, and kept longer, than the dead-letter queue that holds the
payload (docs/decisions.md, "Logs name failed records by id").

Each test sends a record carrying a recognisable secret, makes its processing fail so that the
record is retried (the dead-letter store, or the standings table, refuses), and reads what the
function logged through its own formatter.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from functions.stream_processor import handler as processor_handler
from shared import names
from tests.stream_processor.conftest import Aws, kinesis_record, reading

SECRET = "hunter2-SECRET-7f3a9c"
"""Something a reading must never carry, and the logs must never show if one does."""


def _capture(logger: Any, service: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    log_handler.setFormatter(logger.registered_formatter)
    std_logger = logging.getLogger(service)
    std_logger.addHandler(log_handler)
    try:
        yield stream
    finally:
        std_logger.removeHandler(log_handler)


@pytest.fixture
def processor_logs() -> Iterator[io.StringIO]:
    yield from _capture(processor_handler.logger, names.POWERTOOLS_SERVICE_PROCESSOR)


def _warnings(stream: io.StringIO) -> list[dict[str, Any]]:
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [r for r in logged if r["level"] == "WARNING"]


def _not_base64(record: dict[str, Any]) -> dict[str, Any]:
    record["kinesis"]["data"] = f"{{not base64: {SECRET}}}"
    return record


def _not_a_reading(record: dict[str, Any]) -> dict[str, Any]:
    record["kinesis"]["data"] = base64.b64encode(json.dumps({"token": SECRET}).encode()).decode()
    return record


def _not_a_kinesis_record(record: dict[str, Any]) -> dict[str, Any]:
    """Refused by the parser model itself (no arrival time): kept as delivered, a dict."""
    record["kinesis"]["data"] = base64.b64encode(SECRET.encode()).decode()
    del record["kinesis"]["approximateArrivalTimestamp"]
    return record


@pytest.mark.parametrize("poison", [_not_base64, _not_a_reading, _not_a_kinesis_record])
def test_a_retried_poison_record_is_logged_by_id_and_reason_not_payload(
    aws_items: Aws, processor_logs: io.StringIO, poison: Any
) -> None:
    good = kinesis_record(reading("ann", 0), 0)
    bad = poison(copy.deepcopy(kinesis_record(reading("bob", 0), 1)))
    aws_items.faults.fail("SendMessageBatch", times=100)  # the dead-letter queue is down

    response = aws_items.invoke([good, bad])

    sequence = bad["kinesis"]["sequenceNumber"]
    assert response["batchItemFailures"] == [{"itemIdentifier": sequence}]
    text = processor_logs.getvalue()
    assert SECRET not in text
    assert bad["kinesis"]["data"] not in text
    assert good["kinesis"]["data"] not in text
    (warning,) = _warnings(processor_logs)
    assert warning["dead_lettered"] == 0
    (retried,) = warning["retried"]
    assert retried["sequenceNumber"] == sequence
    assert retried["partitionKey"] == "bob"
    assert retried["eventId"] == bad["eventID"]
    assert retried["reason"].startswith("dead-letter store: SQS dead-letter queue: ")
    assert warning["retried_total"] == 1


def test_a_retried_refused_reading_is_logged_by_id_and_reason_not_payload(
    aws_items: Aws, processor_logs: io.StringIO
) -> None:
    """A reading the rules refuse is a dead letter too; when the store is down it is retried,
    and named by id."""
    refused = kinesis_record(reading("zed", 0, event_id=SECRET), 0)  # zed is not entered
    aws_items.faults.fail("SendMessageBatch", times=100)

    response = aws_items.invoke([refused])

    assert response["batchItemFailures"] == [
        {"itemIdentifier": refused["kinesis"]["sequenceNumber"]}
    ]
    assert SECRET not in processor_logs.getvalue()
    (warning,) = _warnings(processor_logs)
    assert (warning["dead_lettered"], warning["dead_letters"]) == (0, {})
    assert [r["partitionKey"] for r in warning["retried"]] == ["zed"]


def test_a_retried_reading_is_logged_by_id_and_reason_not_payload(
    aws_items: Aws, processor_logs: io.StringIO
) -> None:
    record = kinesis_record(reading("ann", 0, event_id=SECRET), 0)
    aws_items.faults.fail("TransactWriteItems", times=100)  # the standings table throttles

    response = aws_items.invoke([record])

    assert response["batchItemFailures"] == [
        {"itemIdentifier": record["kinesis"]["sequenceNumber"]}
    ]
    assert SECRET not in processor_logs.getvalue()
    (warning,) = _warnings(processor_logs)
    assert [r["sequenceNumber"] for r in warning["retried"]] == [
        record["kinesis"]["sequenceNumber"]
    ]
    assert warning["retried"][0]["reason"].startswith("rider ann: ")
