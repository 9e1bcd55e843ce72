"""Powertools batch processing, extended to merge a whole batch before writing.

``TelemetryBatchProcessor`` is a Powertools ``BatchProcessor`` for Kinesis. Its record handler
decodes each record's data and parses the reading against the telemetry contract. A record that
fails can never succeed, so instead of reporting it as a batch item failure (which
would block the shard until it expires) it becomes a dead letter with its payload, shard,
sequence number and the reason (``invalid reading: ...``, or ``contract v1: ...`` for a v1
payload). After the per-record loop the valid readings go to the logic as one batch, which
checks them against the counting rules and stores every dead letter; the records it reports
as transient failures become ``batchItemFailures``.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from functions.stream_processor.logic import BatchOutcome, Delivery, Poison, StreamProcessor
from shared.contract import MAX_READING_BYTES, V1_REFUSED, ContractError, parse_reading
from shared.counting import Refusal
from shared.ports import DeadLetter


def decode(data: object) -> bytes:
    if not isinstance(data, str):
        raise ContractError(f"data: not base64 text (got {type(data).__name__})")
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


def record_letter(record: KinesisStreamRecord, reason: str) -> DeadLetter:
    """The dead letter of a record whose reading was refused (the logic's ``letter``)."""
    return dead_letter(record.raw_event, reason)


def contract_refusal(error: ContractError) -> Refusal:
    return Refusal.CONTRACT_V1 if str(error) == V1_REFUSED else Refusal.INVALID_READING


class TelemetryBatchProcessor(BatchProcessor):
    """Powertools' Kinesis batch processor, extended only where its documentation says to:
    ``_prepare`` (a partial processor's set-up) and the public ``process`` (docs/decisions.md).

    No parser model for the envelope: Lambda builds it, so validating it per record found
    nothing and cost a third of the processor's CPU. The record handler gets Powertools'
    ``KinesisStreamRecord`` data class, and the reading in it, the producer's and untrusted, is
    parsed strictly by the contract.
    """

    def __init__(
        self,
        logic: StreamProcessor[KinesisStreamRecord],
        on_outcome: Callable[[BatchOutcome[Any]], None] = lambda _: None,
    ) -> None:
        super().__init__(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        self.logic = logic
        self.on_outcome = on_outcome
        self._deliveries: list[Delivery[KinesisStreamRecord]] = []
        self._poison: list[Poison[KinesisStreamRecord]] = []

    def collect(self, record: KinesisStreamRecord) -> None:
        """The record handler: a valid reading joins the batch, anything else is a dead letter."""
        raw = record.raw_event
        try:
            reading = parse_reading(decode((raw.get("kinesis") or {}).get("data")))
        except ContractError as exc:
            rule = contract_refusal(exc)
            self._poison.append(Poison(dead_letter(raw, f"{rule.text}: {exc}"), record, rule))
            return
        self._deliveries.append(Delivery(reading, record))

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]
        self._deliveries = []
        self._poison = []

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        outcome = self.logic.process(self._deliveries, self._poison)
        for handle, reason in outcome.failed:
            try:
                raise RetryableRecordError(reason)
            except RetryableRecordError:
                self.failure_handler(record=handle, exception=sys.exc_info())
        self.on_outcome(outcome)
        return results


class RetryableRecordError(Exception):
    """Why a record is reported in ``batchItemFailures`` (logged by Powertools)."""
