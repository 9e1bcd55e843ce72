"""The batch processor extends Powertools only where its documentation says to, so a Powertools
release that renames an internal cannot change what happens to a poison record."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor

from functions.stream_processor.batch import TelemetryBatchProcessor
from tests.stream_processor.conftest import Aws, kinesis_record, reading

DOCUMENTED = {"_prepare", "success_handler", "failure_handler", "process", "collect", "__init__"}
"""Powertools' documented extension points: ``success_handler`` and ``failure_handler``
("Extending BatchProcessor"), ``_prepare`` ("Create your own partial processor"), the public
``process``; ``collect`` is this project's record handler."""


def test_only_documented_extension_points_are_overridden() -> None:
    overridden = {
        name
        for name, value in vars(TelemetryBatchProcessor).items()
        if callable(value) and name in {*dir(BatchProcessor), "collect"}
    }
    assert overridden <= DOCUMENTED, overridden - DOCUMENTED


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (42, "invalid reading: data: not base64 text (got int)"),
        (None, "invalid reading: data: not base64 text (got NoneType)"),
    ],
)
def test_a_record_whose_envelope_has_no_base64_data_is_a_dead_letter(
    aws: Aws, data: object, reason: str
) -> None:
    bad = kinesis_record(b"{}", 1)
    bad["kinesis"]["data"] = data
    good = kinesis_record(reading("ann", 0, 90, 50), 2)

    assert aws.invoke([bad, good]) == {"batchItemFailures": []}

    [letter] = aws.dead_letters()
    assert letter["sequence_number"] == bad["kinesis"]["sequenceNumber"]
    assert letter["partition_key"] == bad["kinesis"]["partitionKey"]
    assert letter["reason"] == reason
    assert list(aws.standings()) == ["ann"]
