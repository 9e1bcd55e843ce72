"""The leaderboard API's logic: leaderboard pages, rider ranks and recent races, independent of
storage.

* **Top N** of a race (overall or one class) is a k-way merge of the write shards of a ranking
  index (:mod:`shared.keys`). :func:`merge_shards` asks each shard for a few rows first (twice
  its fair share of the page, or the 10 that one read unit carries anyway) and refills only a
  shard whose fetched rows were all taken: one Query per shard per page, bounded by the page
  size, never the race.
* **Ranking** is standard competition ranking: equal points share a rank, the next rank skips
  (1, 2, 2, 4); ties are ordered by riderId, which is the index's sort order, so pages are
  stable.
* **Cursors** are opaque strings (URL-safe base64 of a small JSON object): the last entry's
  ``rankSk``, its rank and its position, and the leaderboard they belong to. That is all the
  next page needs to go on ranking across the page boundary.

Storage is behind :class:`LeaderboardReader`: :mod:`functions.leaderboard_api.adapters`
implements it on DynamoDB, :mod:`functions.leaderboard_api.memory` in memory. Everything else
here is pure.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import keys
from shared.contract import ID_PATTERN, MAX_ID_LENGTH, NUM_CLASSES
from shared.standings import FinalResult, RaceRecord, Standing

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
DEFAULT_RACES_LIMIT: Final = 20
MAX_CURSOR_CHARS: Final = 512
RANK_SK_PATTERN: Final = rf"^[0-9]{{{keys.RANK_POINTS_DIGITS}}}#[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}$"


# --- errors the API turns into 4xx -------------------------------------------------------------
class NotFoundError(LookupError):
    """An unknown race or rider (404); the message says which."""


class BadRequestError(ValueError):
    """Input that can never succeed, such as a malformed cursor (400); the message says why."""


# --- the read port -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ShardRequest:
    """Rows of one shard with ``rankSk`` strictly after ``after`` (None: from the top)."""

    shard: int
    after: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class ShardPage:
    rows: tuple[Standing, ...]
    """In index order (rank order), at most the requested limit."""
    more: bool
    """The shard may hold rows after the last one returned."""


@dataclass(frozen=True, slots=True)
class RiderRecords:
    race: RaceRecord | None
    standing: Standing | None
    result: FinalResult | None


@dataclass(frozen=True, slots=True)
class RacesPage:
    races: tuple[RaceRecord, ...]
    more: bool


class LeaderboardReader(Protocol):
    """What the read side needs from storage. Adapters raise ``shared.ports.TransientError``
    for failures worth retrying."""

    def race(self, race_id: str) -> RaceRecord | None: ...

    def recent_races(self, limit: int, after: RaceRecord | None) -> RacesPage:
        """Races newest first (startedAt descending), after ``after`` when given."""
        ...

    def rider(self, race_id: str, rider_id: str) -> RiderRecords: ...

    def shard_pages(
        self, race_id: str, class_id: int | None, requests: Sequence[ShardRequest]
    ) -> list[ShardPage]:
        """One page per request, in order (the adapter may run them concurrently)."""
        ...

    def rank(self, race_id: str, class_id: int | None, points: int) -> int:
        """1 + the riders (overall or in the class) with strictly more points."""
        ...


# --- k-way merge of the shards -----------------------------------------------------------------
def sort_key(s: Standing) -> str:
    return keys.rank_sk(s.points, s.rider_id)


FREE_ROWS_PER_QUERY: Final = 10
"""A Query costs one read unit per 4 KB it reads, at least one: a typical ranking-index entry is
about 250 bytes, so 10 rows cost what 1 row costs, and asking for them makes refills rare."""


def first_fetch_size(count: int, shards: int) -> int:
    """Rows asked of every shard first: twice the fair share plus two, or as many as one read
    unit carries anyway, but never more than ``count``."""
    return min(count, max(2 * math.ceil(count / shards) + 2, FREE_ROWS_PER_QUERY))


def _first_in_rank(buffers: Sequence[deque[Standing]]) -> int | None:
    """The shard whose next buffered row ranks first; None when every buffer is empty."""
    best: int | None = None
    best_key = ""
    for s, buffer in enumerate(buffers):
        if buffer:
            k = sort_key(buffer[0])
            if best is None or k < best_key:
                best, best_key = s, k
    return best


def merge_shards(
    fetch: Callable[[Sequence[ShardRequest]], Sequence[ShardPage]],
    shards: int,
    after: str | None,
    count: int,
) -> list[Standing]:
    """The first ``count`` rows after ``after`` across all shards, in rank order.

    Each shard is sorted, so a shard's next row can only be needed once all its fetched rows
    have been taken: such a shard is refilled (from its last row) before the merge goes on.
    """
    if count <= 0:
        return []
    size = first_fetch_size(count, shards)
    buffers: list[deque[Standing]] = [deque() for _ in range(shards)]
    more = [True] * shards
    last: list[str | None] = [after] * shards
    pending = list(range(shards))
    out: list[Standing] = []
    while len(out) < count:
        if pending:
            want = size if not out else min(2 * size, count - len(out))
            requests = [ShardRequest(s, last[s], want) for s in pending]
            for s, page in zip(pending, fetch(requests), strict=True):
                buffers[s].extend(page.rows)
                more[s] = page.more and len(page.rows) > 0
                if page.rows:
                    last[s] = sort_key(page.rows[-1])
            pending = []
        best = _first_in_rank(buffers)
        if best is None:
            break
        out.append(buffers[best].popleft())
        if not buffers[best] and more[best]:
            pending = [best]
    return out


# --- ranking across pages ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RankState:
    """Where a page starts: the previous entry's sort key, rank and 1-based position."""

    after: str | None = None
    rank: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    standing: Standing


def rank_rows(rows: Sequence[Standing], start: RankState) -> list[Entry]:
    """Standard competition ranks for rows in leaderboard order continuing from ``start``."""
    prev_points = keys.points_from_rank_sk(start.after) if start.after is not None else None
    rank, position = start.rank, start.position
    out = []
    for s in rows:
        position += 1
        if s.points != prev_points:
            rank = position
        prev_points = s.points
        out.append(Entry(rank, s))
    return out


# --- cursors -----------------------------------------------------------------------------------
class _CursorModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    race: Annotated[str, Field(pattern=ID_PATTERN)]
    cls: Annotated[int, Field(ge=0, le=NUM_CLASSES)]
    """0 = overall."""
    after: Annotated[str, Field(pattern=RANK_SK_PATTERN)]
    rank: Annotated[int, Field(ge=1)]
    pos: Annotated[int, Field(ge=1)]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str, what: str) -> bytes:
    if len(text) > MAX_CURSOR_CHARS:
        raise BadRequestError(f"{what}: longer than {MAX_CURSOR_CHARS} characters")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError(f"{what}: not a cursor this API returned") from exc


def encode_cursor(race_id: str, class_id: int | None, state: RankState) -> str:
    if state.after is None:
        raise ValueError("a cursor needs the sort key of the last entry")
    body = {
        "race": race_id,
        "cls": class_id or 0,
        "after": state.after,
        "rank": state.rank,
        "pos": state.position,
    }
    return _b64encode(json.dumps(body, separators=(",", ":")).encode())


def decode_cursor(cursor: str, race_id: str, class_id: int | None) -> RankState:
    """The page start a cursor names; BadRequestError if it is malformed or for another board."""
    raw = _b64decode(cursor, "cursor")
    try:
        model = _CursorModel.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequestError("cursor: not a cursor this API returned") from exc
    if model.race != race_id or model.cls != (class_id or 0):
        raise BadRequestError("cursor: it belongs to another leaderboard (raceId or classId)")
    if model.rank > model.pos:
        raise BadRequestError("cursor: not a cursor this API returned")
    if keys.points_from_rank_sk(model.after) < 0:
        raise BadRequestError("cursor: not a cursor this API returned")
    return RankState(after=model.after, rank=model.rank, position=model.pos)


class _RacesCursorModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    race: Annotated[str, Field(pattern=ID_PATTERN)]
    started: Annotated[int, Field(ge=0, lt=2**53)]


def encode_races_cursor(race: RaceRecord) -> str:
    body = {"race": race.race_id, "started": race.started_at}
    return _b64encode(json.dumps(body, separators=(",", ":")).encode())


def decode_races_cursor(cursor: str) -> RaceRecord:
    """The race a races cursor points after (only its id and startedAt are meaningful)."""
    raw = _b64decode(cursor, "cursor")
    try:
        model = _RacesCursorModel.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequestError("cursor: not a cursor this API returned") from exc
    return RaceRecord(
        race_id=model.race,
        started_at=model.started,
        last_reading_at=0,
        riders=0,
        class_counts={},
        finished=0,
    )


# --- the use cases -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    race: RaceRecord
    class_id: int | None
    entries: tuple[Entry, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RiderView:
    race: RaceRecord
    standing: Standing
    rank: int
    class_rank: int
    result: FinalResult | None


def _require_race(reader: LeaderboardReader, race_id: str) -> RaceRecord:
    race = reader.race(race_id)
    if race is None:
        raise NotFoundError(f"race {race_id!r} not found")
    return race


def leaderboard(
    reader: LeaderboardReader,
    race_id: str,
    class_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> LeaderboardPage:
    """One page of a race's leaderboard (overall, or one class when ``class_id`` is given)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError(f"limit: must be 1 to {MAX_LIMIT} (got {limit})")
    start = decode_cursor(cursor, race_id, class_id) if cursor is not None else RankState()
    race = _require_race(reader, race_id)

    def fetch(requests: Sequence[ShardRequest]) -> Sequence[ShardPage]:
        return reader.shard_pages(race_id, class_id, requests)

    rows = merge_shards(fetch, keys.RANK_SHARDS, start.after, limit + 1)
    entries = rank_rows(rows[:limit], start)
    next_cursor = None
    if len(rows) > limit:
        last = entries[-1]
        next_cursor = encode_cursor(
            race_id,
            class_id,
            RankState(sort_key(last.standing), last.rank, start.position + len(entries)),
        )
    return LeaderboardPage(race, class_id, tuple(entries), next_cursor)


def rider(reader: LeaderboardReader, race_id: str, rider_id: str) -> RiderView:
    """A rider's standing with its rank overall and in its class."""
    records = reader.rider(race_id, rider_id)
    if records.race is None:
        raise NotFoundError(f"race {race_id!r} not found")
    if records.standing is None:
        raise NotFoundError(f"rider {rider_id!r} not found in race {race_id!r}")
    s = records.standing
    return RiderView(
        race=records.race,
        standing=s,
        rank=reader.rank(race_id, None, s.points),
        class_rank=reader.rank(race_id, s.class_id, s.points),
        result=records.result,
    )


def race(reader: LeaderboardReader, race_id: str) -> RaceRecord:
    return _require_race(reader, race_id)


@dataclass(frozen=True, slots=True)
class RacesListing:
    races: tuple[RaceRecord, ...]
    next_cursor: str | None


def recent_races(
    reader: LeaderboardReader, limit: int = DEFAULT_RACES_LIMIT, cursor: str | None = None
) -> RacesListing:
    """Races newest first, ``limit`` at a time."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError(f"limit: must be 1 to {MAX_LIMIT} (got {limit})")
    after = decode_races_cursor(cursor) if cursor is not None else None
    page = reader.recent_races(limit, after)
    next_cursor = encode_races_cursor(page.races[-1]) if page.more and page.races else None
    return RacesListing(page.races, next_cursor)


# --- a one-second page cache -------------------------------------------------------------------
LEADERBOARD_MAX_AGE_S: Final = 1
"""How old a leaderboard page may be: its ``Cache-Control: max-age`` and the page cache's TTL."""

T = TypeVar("T")


class PageCache(Generic[T]):
    """Results computed in the last ``ttl_s`` seconds, by key, in this execution environment.

    A leaderboard page costs one Query per ranking shard whatever its size, and every viewer
    of the live page asks for it every second: with the page cached for as long as its
    ``Cache-Control: max-age`` allows, DynamoDB sees one read per page per second per
    environment, however many viewers there are. Failures are not cached.
    """

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] < self._ttl:
                self.hits += 1
                return found[1]
            self.misses += 1
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
