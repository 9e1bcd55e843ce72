"""The leaderboard API's read logic: leaderboard pages, rider ranks, races by status and a
closed race's placings, independent of storage.

* **Top N** of a race (overall or one class) is a k-way merge of the write shards of a ranking
  index (:mod:`shared.keys`). :func:`merge_shards` asks each shard for a few rows first (twice
  its fair share of the page, or the 10 that one read unit carries anyway) and refills only a
  shard whose fetched rows were all taken: one Query per shard per page, bounded by the page
  size, never the race.
* **Ranking** is standard competition ranking: equal points share a rank, the next rank skips
  (1, 2, 2, 4); ties are ordered by riderId, which is the index's sort order, so pages are
  stable.
* **Races by status**: the races index is sorted by ``startsAt``, and a race's status is derived
  from its record and the clock (:meth:`shared.races.Race.status`). Each status bounds the
  ``startsAt`` range worth reading (:func:`start_window`), the races read are kept by their
  derived status, and a page stops after a bounded number of races read.
* **Cursors** are opaque strings (URL-safe base64 of a small JSON object) that say what they
  belong to (the race and scope) and where the next page starts, validated on the way back in.

Storage is behind :class:`LeaderboardReader` (and the placings behind the shared
:class:`shared.ports.RaceBook`): :mod:`functions.leaderboard_api.adapters` implements it on
DynamoDB, :mod:`functions.leaderboard_api.memory` in memory. Everything else here is pure.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import keys
from shared.contract import ID_PATTERN, MAX_ID_LENGTH, MAX_RACE_SECONDS, NUM_CLASSES
from shared.placings import OVERALL, Placing, class_scope
from shared.ports import RaceBook, TransientError
from shared.races import (
    MAX_EPOCH_MS,
    MAX_GRACE_S,
    Race,
    RaceConflictError,
    RaceNotFoundError,
    RaceStatus,
)
from shared.routes import CLOSED_MAX_AGE_S, LIVE_MAX_AGE_S
from shared.standings import Standing

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
DEFAULT_RACES_LIMIT: Final = 20
MAX_CURSOR_CHARS: Final = 512
RANK_SK_PATTERN: Final = rf"^[0-9]{{{keys.RANK_POINTS_DIGITS}}}#[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}$"
SCOPE_PATTERN: Final = rf"^({OVERALL}|C[1-{NUM_CLASSES}])$"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --- errors the API turns into 4xx -------------------------------------------------------------
class BadRequestError(ValueError):
    """Input that can never succeed, such as a malformed cursor (400); the message says why."""


def race_not_found(race_id: str) -> RaceNotFoundError:
    """The 404 of an unknown race, worded as the race book words it."""
    return RaceNotFoundError(f"raceId: no race {race_id}")


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
    race: Race | None
    standing: Standing | None


@dataclass(frozen=True, slots=True)
class RacePosition:
    """A place in the races index (newest ``startsAt`` first): a page starts after it."""

    starts_at: int
    race_id: str


@dataclass(frozen=True, slots=True)
class StartWindow:
    """The ``startsAt`` range a listing reads, both ends inclusive; None: unbounded."""

    oldest: int | None = None
    newest: int | None = None


@dataclass(frozen=True, slots=True)
class RacesIndexPage:
    races: tuple[Race, ...]
    """Newest ``startsAt`` first, as the index projects them: the schedule, the state and the
    entrants, not the processor's counters (riders, finished, lastReadingAt: zero here)."""
    more: bool
    """The window may hold races after the last one returned."""


class LeaderboardReader(Protocol):
    """What the read side needs from storage. Adapters raise ``shared.ports.TransientError``
    for failures worth retrying."""

    def race(self, race_id: str) -> Race | None: ...

    def races_by_start(
        self, window: StartWindow, after: RacePosition | None, limit: int
    ) -> RacesIndexPage:
        """Races starting within ``window``, newest first, after ``after`` when given."""
        ...

    def races(self, race_ids: Sequence[str]) -> dict[str, Race]:
        """The whole race records of these ids that exist."""
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


def decode_model(cursor: str, model: type[M]) -> M:
    raw = _b64decode(cursor, "cursor")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequestError("cursor: not a cursor this API returned") from exc


def encode_model(model: BaseModel) -> str:
    return _b64encode(model.model_dump_json().encode())


def encode_cursor(race_id: str, class_id: int | None, state: RankState) -> str:
    if state.after is None:
        raise ValueError("a cursor needs the sort key of the last entry")
    return encode_model(
        _CursorModel(
            race=race_id, cls=class_id or 0, after=state.after, rank=state.rank, pos=state.position
        )
    )


def decode_cursor(cursor: str, race_id: str, class_id: int | None) -> RankState:
    """The page start a cursor names; BadRequestError if it is malformed or for another board."""
    model = decode_model(cursor, _CursorModel)
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
    starts: Annotated[int, Field(ge=0, le=MAX_EPOCH_MS)]


def encode_races_cursor(position: RacePosition) -> str:
    return encode_model(_RacesCursorModel(race=position.race_id, starts=position.starts_at))


def decode_races_cursor(cursor: str) -> RacePosition:
    """The place in the races index a races cursor points after (valid for any status: it is
    a position in ``startsAt`` order)."""
    model = decode_model(cursor, _RacesCursorModel)
    return RacePosition(starts_at=model.starts, race_id=model.race)


class _ResultsCursorModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    race: Annotated[str, Field(pattern=ID_PATTERN)]
    scope: Annotated[str, Field(pattern=SCOPE_PATTERN)]
    offset: Annotated[int, Field(ge=1, le=MAX_EPOCH_MS)]


def encode_results_cursor(race_id: str, scope: str, offset: int) -> str:
    return encode_model(_ResultsCursorModel(race=race_id, scope=scope, offset=offset))


def decode_results_cursor(cursor: str, race_id: str, scope: str) -> int:
    """The offset a results cursor names; BadRequestError if it is malformed or belongs to
    another race or class."""
    model = decode_model(cursor, _ResultsCursorModel)
    if model.race != race_id or model.scope != scope:
        raise BadRequestError("cursor: it belongs to other results (raceId or classId)")
    return model.offset


# --- the use cases -----------------------------------------------------------------------------
def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError(f"limit: must be 1 to {MAX_LIMIT} (got {limit})")


@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    race: Race
    class_id: int | None
    entries: tuple[Entry, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RiderView:
    race: Race
    standing: Standing
    rank: int
    class_rank: int

    @property
    def finished(self) -> bool:
        """The rider's ``final`` reading counted."""
        return self.standing.final_second >= 0


def _require_race(reader: LeaderboardReader, race_id: str) -> Race:
    race = reader.race(race_id)
    if race is None:
        raise race_not_found(race_id)
    return race


def leaderboard(
    reader: LeaderboardReader,
    race_id: str,
    class_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> LeaderboardPage:
    """One page of a race's leaderboard (overall, or one class when ``class_id`` is given)."""
    check_limit(limit)
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
        raise race_not_found(race_id)
    if records.standing is None:
        raise RaceNotFoundError(f"riderId: {rider_id} has no standing in race {race_id}")
    s = records.standing
    return RiderView(
        race=records.race,
        standing=s,
        rank=reader.rank(race_id, None, s.points),
        class_rank=reader.rank(race_id, s.class_id, s.points),
    )


def race(reader: LeaderboardReader, race_id: str) -> Race:
    return _require_race(reader, race_id)


# --- races by status ---------------------------------------------------------------------------
RUNNING_WINDOW_MS: Final = 1000 * (MAX_RACE_SECONDS + MAX_GRACE_S)
"""No race closes later than this after its start (``closesAt = startsAt + 1000 * (durationS +
graceS)``, each at most its maximum), so a running race started within it."""
RACES_INDEX_PAGE: Final = 25
"""Races read per index query when filtering by status: about as many as one read unit
carries (the index projects about 150 bytes a race)."""
MAX_RACES_READ: Final = 500
"""A listing reads at most about this many races of the index per request; a page may then be
short, with a ``nextCursor`` to go on from."""


def start_window(status: RaceStatus | None, now: int) -> StartWindow:
    """The ``startsAt`` range holding every race of ``status`` at ``now``: scheduled races start
    after now, running ones started within :data:`RUNNING_WINDOW_MS` before it; closing ones
    too (or start later still, when closed early before their start), unless their closer has
    stalled for longer than that; closed races may have started any time."""
    if status is RaceStatus.SCHEDULED:
        return StartWindow(oldest=now + 1)
    if status is RaceStatus.RUNNING:
        return StartWindow(oldest=now - RUNNING_WINDOW_MS, newest=now)
    if status is RaceStatus.CLOSING:
        return StartWindow(oldest=now - RUNNING_WINDOW_MS)
    return StartWindow()


@dataclass(frozen=True, slots=True)
class RacesListing:
    races: tuple[Race, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class _Scan:
    matched: list[Race]
    position: RacePosition | None
    """The last race read."""
    exhausted: bool
    """Nothing is left to read in the window."""


def _scan_races(
    reader: LeaderboardReader,
    status: RaceStatus | None,
    now: int,
    after: RacePosition | None,
    want: int,
) -> _Scan:
    """Read the window of ``status`` from ``after``, keeping races of that status, until
    ``want`` are kept, the window ends or :data:`MAX_RACES_READ` have been read."""
    window = start_window(status, now)
    size = want if status is None else max(want, RACES_INDEX_PAGE)
    matched: list[Race] = []
    position = after
    read = 0
    while True:
        page = reader.races_by_start(window, position, size)
        for r in page.races:
            read += 1
            position = RacePosition(r.starts_at, r.race_id)
            if status is None or r.status(now) is status:
                matched.append(r)
                if len(matched) == want:
                    return _Scan(matched, position, exhausted=False)
        if not page.more or not page.races:
            return _Scan(matched, position, exhausted=True)
        if read >= MAX_RACES_READ:
            return _Scan(matched, position, exhausted=False)


def races(
    reader: LeaderboardReader,
    now: int,
    status: RaceStatus | None = None,
    limit: int = DEFAULT_RACES_LIMIT,
    cursor: str | None = None,
) -> RacesListing:
    """Races of ``status`` (any when None), newest ``startsAt`` first, ``limit`` at a time, the
    whole records of the page read in one batch."""
    check_limit(limit)
    after = decode_races_cursor(cursor) if cursor is not None else None
    scan = _scan_races(reader, status, now, after, limit + 1)
    shown = scan.matched[:limit]
    records = reader.races([r.race_id for r in shown]) if shown else {}
    listed = tuple(records[r.race_id] for r in shown if r.race_id in records)
    next_cursor = None
    if len(scan.matched) > limit:
        next_cursor = encode_races_cursor(RacePosition(shown[-1].starts_at, shown[-1].race_id))
    elif not scan.exhausted and scan.position is not None:
        next_cursor = encode_races_cursor(scan.position)
    return RacesListing(listed, next_cursor)


# --- a closed race's placings ------------------------------------------------------------------
RESULTS_MAX_AGE_S: Final = CLOSED_MAX_AGE_S
"""A closed race's placings never change: a page may be cached for a day."""


@dataclass(frozen=True, slots=True)
class ResultsPage:
    race: Race
    class_id: int | None
    placings: tuple[Placing, ...]
    next_cursor: str | None


def results(
    reader: LeaderboardReader,
    book: RaceBook,
    now: int,
    race_id: str,
    *,
    class_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> ResultsPage:
    """One page of a closed race's final placings, overall or in one class (ranks within it)."""
    check_limit(limit)
    scope = OVERALL if class_id is None else class_scope(class_id)
    offset = decode_results_cursor(cursor, race_id, scope) if cursor is not None else 0
    found = _require_race(reader, race_id)
    status = found.status(now)
    if status is not RaceStatus.CLOSED:
        raise RaceConflictError(
            f"race {race_id} is {status}: its results are published once it is closed"
        )
    page = book.placings_page(race_id, scope, offset, limit)
    if page is None:  # closed is written after the placings: an eventually consistent read
        raise TransientError(f"race {race_id}: its placings are not readable yet")
    rows, total = page
    end = offset + len(rows)
    next_cursor = encode_results_cursor(race_id, scope, end) if rows and end < total else None
    return ResultsPage(found, class_id, tuple(rows), next_cursor)


# --- a one-second page cache -------------------------------------------------------------------
LEADERBOARD_MAX_AGE_S: Final = LIVE_MAX_AGE_S
"""How old a leaderboard page may be: its ``Cache-Control: max-age`` and the page cache's TTL."""


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
