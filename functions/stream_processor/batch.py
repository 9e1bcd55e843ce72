"""Powertools batch processing, extended to merge a whole batch before writing.

``TelemetryBatchProcessor`` is a Powertools ``BatchProcessor`` for Kinesis with a parser model.
Powertools parses every record into :class:`TelemetryKinesisRecord` (the envelope), then the
record handler decodes the data and parses the reading against the telemetry contract. A record that
fails either can never succeed, so instead of reporting it as a batch item failure (which
would block the shard until it expires) it becomes a dead letter with its payload, shard,
sequence number and the reason.
After the per-record loop the valid readings go to the logic as one batch; the records it
reports as transient failures become ``batchItemFailures``.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import BaseModel, ValidationError

from functions.stream_processor.logic import BatchOutcome, Delivery, Poison, StreamProcessor
from shared.contract import MAX_READING_BYTES, ContractError, describe, parse_reading
from shared.ports import DeadLetter


class KinesisPayload(BaseModel):
    partitionKey: str
    sequenceNumber: str
    data: str
    """Base64, as delivered; decoded (strictly) by the record handler."""
    approximateArrivalTimestamp: float


class TelemetryKinesisRecord(BaseModel):
    """The parser model of one record: the parts of Lambda's Kinesis record the processor uses.

    Deliberately lean and free of Python validators: Powertools' full
    ``KinesisDataStreamRecord`` with its base64 validator, or the reading as a nested
    ``Json[Telemetry]`` field, costs several times this model per record (docs/decisions.md,
    "A lean parser model"). Base64 and the contract are checked by the record handler with
    C-level decoding and the contract's own parser.
    """

    eventID: str
    eventSourceARN: str
    kinesis: KinesisPayload


def decode(data: str) -> bytes:
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)  # b64decode(validate=True), leaner
    except binascii.Error as exc:
        raise ContractError(f"data: not valid base64 ({exc})") from None
    if len(raw) > MAX_READING_BYTES:
        raise ContractError(f"data: reading is {len(raw)} bytes, the limit is {MAX_READING_BYTES}")
    return raw


def dead_letter(record: dict[str, Any], reason: str) -> DeadLetter:
    """A dead letter from the record as Lambda delivered it (any part may be missing)."""
    kinesis = record.get("kinesis") or {}
    event_id = str(record.get("eventID", ""))
    return DeadLetter(
        payload=str(kinesis.get("data", "")),
        reason=reason,
        shard_id=event_id.partition(":")[0],
        sequence_number=str(kinesis.get("sequenceNumber", "")),
        partition_key=str(kinesis.get("partitionKey", "")),
        event_source_arn=str(record.get("eventSourceARN", "")),
        approximate_arrival=float(kinesis.get("approximateArrivalTimestamp") or 0.0),
    )


def parsed_dead_letter(record: TelemetryKinesisRecord, reason: str) -> DeadLetter:
    """A dead letter from a record whose envelope parsed (its reading did not)."""
    return DeadLetter(
        payload=record.kinesis.data,
        reason=reason,
        shard_id=record.eventID.partition(":")[0],
        sequence_number=record.kinesis.sequenceNumber,
        partition_key=record.kinesis.partitionKey,
        event_source_arn=record.eventSourceARN,
        approximate_arrival=record.kinesis.approximateArrivalTimestamp,
    )


class TelemetryBatchProcessor(BatchProcessor):
    """Extended only where Powertools documents it: ``_prepare`` (a partial processor's
    set-up), ``failure_handler`` and ``process`` (docs/decisions.md)."""

    def __init__(
        self,
        logic: StreamProcessor[TelemetryKinesisRecord | KinesisStreamRecord],
        on_outcome: Callable[[BatchOutcome[Any]], None] = lambda _: None,
    ) -> None:
        super().__init__(
            event_type=EventType.KinesisDataStreams,
            model=TelemetryKinesisRecord,  # type: ignore[arg-type]  # any pydantic model works
            raise_on_entire_batch_failure=False,
        )
        self.logic = logic
        self.on_outcome = on_outcome
        self._deliveries: list[Delivery[Any]] = []
        self._poison: list[Poison[Any]] = []

    def collect(self, record: TelemetryKinesisRecord) -> None:
        """The record handler: a valid reading joins the batch, anything else is a dead letter."""
        try:
            reading = parse_reading(decode(record.kinesis.data))
        except ContractError as exc:
            self._poison.append(Poison(parsed_dead_letter(record, str(exc)), record))
            return
        self._deliveries.append(Delivery(reading, record))

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        self._deliveries = []
        self._poison = []

    def failure_handler(self, record: Any, exception: Any) -> Any:
        """A record whose envelope failed the parser model can never succeed: Powertools hands
        it here as its event data class, and it becomes a dead letter, not a batch failure."""
        error = exception[1]
        if isinstance(error, ValidationError) and isinstance(record, KinesisStreamRecord):
            raw = record.raw_event
            self._poison.append(Poison(dead_letter(raw, describe(error)), record))
            return self.success_handler(record=raw, result=None)
        return super().failure_handler(record=record, exception=exception)

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        outcome = self.logic.process(self._deliveries, self._poison)
        for handle, reason in outcome.failed:
            try:
                raise RetryableRecordError(reason)
            except RetryableRecordError:
                super().failure_handler(record=handle, exception=sys.exc_info())
        self.on_outcome(outcome)
        return results


class RetryableRecordError(Exception):
    """Why a record is reported in ``batchItemFailures`` (logged by Powertools)."""
