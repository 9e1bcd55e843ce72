"""Finishing a rider: the message the stream processor hands to the race finisher.

When a rider's ``final`` reading is counted, the stream processor does not finish the rider
itself: ranking a finisher reads the whole ranking index (one query per index shard), and the
stream's shard would wait for it. It sends one message per batch to the finish queue instead,
with each finishing rider's standing as counted, and the race finisher (an SQS-triggered
function) ranks, stores and announces them (see docs/decisions.md).

This module is the one definition of that message: the processor builds it, the finisher
parses it strictly (a message that does not parse is reported as failed and ends in the
queue's dead-letter queue after its receives run out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contract import MAX_RACE_SECONDS, NUM_CLASSES, WIRE_MODEL, Id, Name
from shared.standings import FinalResult, Standing

MESSAGE_VERSION: Final = 1
MAX_FINISHES_PER_MESSAGE: Final = 500
"""An SQS message holds at most 256 KiB; 500 finishes of the longest names and ids are about
a third of that (tested), so a batch of any size goes out in a few messages."""
MAX_MESSAGE_BYTES: Final = 256 * 1024


class Finish(BaseModel):
    """A rider whose ``final`` reading was counted: the standing as counted, and when."""

    model_config = WIRE_MODEL

    race_id: Id
    rider_id: Id
    name: Name
    class_id: Annotated[int, Field(ge=1, le=NUM_CLASSES)]
    points: Annotated[int, Field(ge=0)]
    seconds: Annotated[int, Field(ge=0, le=MAX_RACE_SECONDS + 1)]
    last_second: Annotated[int, Field(ge=-1, le=MAX_RACE_SECONDS)]
    finished_at: Annotated[int, Field(ge=0)]
    """Epoch milliseconds at which the processor counted the ``final`` reading."""

    @classmethod
    def of(cls, standing: Standing, finished_at: int) -> Finish:
        return cls(
            race_id=standing.race_id,
            rider_id=standing.rider_id,
            name=standing.name,
            class_id=standing.class_id,
            points=standing.points,
            seconds=standing.seconds,
            last_second=standing.last_second,
            finished_at=finished_at,
        )

    def result(self, rank_overall: int, rank_class: int) -> FinalResult:
        """The rider's result, with the ranks read at finishing."""
        return FinalResult(
            race_id=self.race_id,
            rider_id=self.rider_id,
            name=self.name,
            class_id=self.class_id,
            points=self.points,
            seconds=self.seconds,
            last_second=self.last_second,
            rank_overall=rank_overall,
            rank_class=rank_class,
            finished_at=self.finished_at,
        )


class FinishMessage(BaseModel):
    """One message of the finish queue: the riders of one processor batch (or part of it)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    v: Literal[1]
    finishes: Annotated[
        tuple[Finish, ...], Field(min_length=1, max_length=MAX_FINISHES_PER_MESSAGE)
    ]


def encode(finishes: Sequence[Finish]) -> list[str]:
    """The message bodies for these finishes: as few as fit, in order."""
    return [
        FinishMessage(
            v=MESSAGE_VERSION, finishes=tuple(finishes[i : i + MAX_FINISHES_PER_MESSAGE])
        ).model_dump_json()
        for i in range(0, len(finishes), MAX_FINISHES_PER_MESSAGE)
    ]


def parse(body: str) -> FinishMessage:
    """A message body, validated strictly. Raises ``pydantic.ValidationError``."""
    return FinishMessage.model_validate_json(body)
