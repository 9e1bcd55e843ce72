"""The read side of what outlives a race (:mod:`shared.history`): a rider's history, a page at a
time, and the records of a class over races of one length.

* **History**: one page is one read of the rider's partition (:meth:`HistoryBook.rider_results`,
  newest race first), however many races the rider has. Its cursor is opaque, as the API's
  other cursors (:mod:`functions.leaderboard_api.logic`): the rider it belongs to and the
  position the port returned, validated on the way back in. A rider id is registered nowhere
  (entries are per race), so a rider with no closed race is an empty history, not a 404.
* **Records**: one read of the class's records item, which holds at most
  :data:`shared.history.RECORDS_KEPT` rows in record order; ranks are standard competition
  ranks by points (1, 2, 2, 4) and the holders are :meth:`ClassRecords.holders` (equalling a
  record does not take it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from functions.leaderboard_api.logic import BadRequestError, decode_model, encode_model
from shared import keys
from shared.contract import ID_PATTERN, MAX_ID_LENGTH
from shared.history import HISTORY_PAGE_MAX, RECORDS_KEPT, Best, RiderResult
from shared.ports import HistoryBook

DEFAULT_HISTORY_LIMIT: Final = 20
DEFAULT_RECORDS_LIMIT: Final = 10
POSITION_PATTERN: Final = (
    rf"^{keys.SK_RESULT_PREFIX}[0-9]{{{keys.TIME_DIGITS}}}#[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}$"
)
"""A place in a rider's history: the sort key of a result (:func:`shared.keys.result_sk`)."""


# --- history -----------------------------------------------------------------------------------
class _HistoryCursorModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    rider: Annotated[str, Field(pattern=ID_PATTERN)]
    after: Annotated[str, Field(pattern=POSITION_PATTERN)]


def encode_history_cursor(rider_id: str, position: str) -> str:
    return encode_model(_HistoryCursorModel(rider=rider_id, after=position))


def decode_history_cursor(cursor: str, rider_id: str) -> str:
    """The history position a cursor names; BadRequestError if it is malformed or belongs to
    another rider's history."""
    model = decode_model(cursor, _HistoryCursorModel)
    if model.rider != rider_id:
        raise BadRequestError("cursor: it belongs to another rider's history (riderId)")
    return model.after


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rider_id: str
    results: tuple[RiderResult, ...]
    """Newest race first."""
    next_cursor: str | None


def rider_history(
    book: HistoryBook,
    rider_id: str,
    limit: int = DEFAULT_HISTORY_LIMIT,
    cursor: str | None = None,
) -> HistoryPage:
    """One page of the rider's closed races, newest first."""
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise BadRequestError(f"limit: must be 1 to {HISTORY_PAGE_MAX} (got {limit})")
    after = decode_history_cursor(cursor, rider_id) if cursor is not None else None
    found, position = book.rider_results(rider_id, limit, after)
    next_cursor = encode_history_cursor(rider_id, position) if position is not None else None
    return HistoryPage(rider_id, tuple(found), next_cursor)


# --- records -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecordRow:
    rank: int
    best: Best
    holder: bool


@dataclass(frozen=True, slots=True)
class RecordsPage:
    class_id: int
    duration_s: int
    rows: tuple[RecordRow, ...]


def class_records(
    book: HistoryBook, class_id: int, duration_s: int, limit: int = DEFAULT_RECORDS_LIMIT
) -> RecordsPage:
    """The best ``limit`` results ever in the class over races of ``duration_s``, one row per
    rider, ranked by points; the record's holders marked."""
    if not 1 <= limit <= RECORDS_KEPT:
        raise BadRequestError(f"limit: must be 1 to {RECORDS_KEPT} (got {limit})")
    records = book.records(class_id, duration_s)
    holders = {(b.rider_id, b.race.race_id) for b in records.holders()}
    rows: list[RecordRow] = []
    for position, best in enumerate(records.rows[:limit], start=1):
        tied = rows and rows[-1].best.points == best.points
        rank = rows[-1].rank if tied else position
        rows.append(RecordRow(rank, best, (best.rider_id, best.race.race_id) in holders))
    return RecordsPage(class_id, duration_s, tuple(rows))
