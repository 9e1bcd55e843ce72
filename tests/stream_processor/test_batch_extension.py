"""The batch processors extend Powertools only where its documentation says to, so a Powertools
release that renames an internal cannot change what happens to a poison record."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor

from functions.race_finisher.handler import FinishBatchProcessor
from functions.stream_processor.batch import TelemetryBatchProcessor
from tests.stream_processor.conftest import Aws, kinesis_record, reading

DOCUMENTED = {"_prepare", "success_handler", "failure_handler", "process", "collect", "__init__"}
"""Powertools' documented extension points: ``success_handler`` and ``failure_handler``
("Extending BatchProcessor"), ``_prepare`` ("Create your own partial processor"), the public
``process``; ``collect`` is this project's record handler."""


@pytest.mark.parametrize("processor", [TelemetryBatchProcessor, FinishBatchProcessor])
def test_only_documented_extension_points_are_overridden(processor: type) -> None:
    overridden = {
        name
        for name, value in vars(processor).items()
        if callable(value) and name in {*dir(BatchProcessor), "collect"}
    }
    assert overridden <= DOCUMENTED, overridden - DOCUMENTED


def test_a_record_whose_envelope_fails_the_parser_model_is_a_dead_letter(aws: Aws) -> None:
    bad = kinesis_record(b"{}", 1)
    bad["kinesis"]["data"] = 42  # not a string: the parser model refuses the envelope
    good = kinesis_record(reading("ann", 0, 90, 50), 2)

    assert aws.invoke([bad, good]) == {"batchItemFailures": []}

    [letter] = aws.dead_letters()
    assert letter["sequence_number"] == bad["kinesis"]["sequenceNumber"]
    assert letter["partition_key"] == bad["kinesis"]["partitionKey"]
    assert letter["reason"].startswith("kinesis.data: Input should be a valid string")
    assert list(aws.standings()) == ["ann"]


def test_an_envelope_failure_that_cannot_be_dead_lettered_is_retried_by_sequence_number(
    aws: Aws,
) -> None:
    bad = kinesis_record(b"{}", 1)
    del bad["kinesis"]["approximateArrivalTimestamp"]
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    response = aws.invoke([bad, kinesis_record(reading("ann", 0, 90, 50), 2)])

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["kinesis"]["sequenceNumber"]}]}
