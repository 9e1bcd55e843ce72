"""The leaderboard API's read logic: leaderboard pages, rider ranks, races by status and a
closed race's placings, independent of storage.

* **The live board and the rider lookup** read the race's live ranking (:mod:`shared.ranking`):
  a snapshot built at most once per ``SNAPSHOT_MAX_AGE_MS`` by the first request that finds it
  stale while the race has readings since (:func:`snapshot`; one request builds, the others
  serve the stored build). A page reads the chunks holding its rows (a class page filters the
  overall chunks the head says hold its rows); a rider reads one rider-index page and one
  chunk. Both are exact as of the build (``asOf``).
* **Ranking** is standard competition ranking: equal points share a rank, the next rank skips
  (1, 2, 2, 4); ties are ordered by riderId, so pages are stable.
* **Races by status**: the races index is sorted by ``startsAt``, and a race's status is derived
  from its record and the clock (:meth:`shared.races.Race.status`). Each status bounds the
  ``startsAt`` range worth reading (:func:`start_window`), the races read are kept by their
  derived status, and a page stops after a bounded number of races read.
* **Cursors** are opaque strings (URL-safe base64 of a small JSON object) that say what they
  belong to (the race and scope) and where the next page starts, validated on the way back in.

Storage is behind :class:`LeaderboardReader` and :class:`LiveSnapshots` (and the placings
behind the shared :class:`shared.ports.RaceBook`): :mod:`functions.leaderboard_api.adapters`
and :class:`shared.live_store.DynamoLiveStore` implement them on DynamoDB,
:mod:`functions.leaderboard_api.memory` in memory. Everything else here is pure, but for the
short wait of a request that finds the race's first build under way.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contract import ID_PATTERN, MAX_RACE_SECONDS, NUM_CLASSES
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
from shared.ranking import (
    ROWS_PER_CHUNK,
    LiveHead,
    LiveRanking,
    LiveRow,
    chunk_of,
    needs_build,
    rank_live,
)
from shared.routes import CLOSED_MAX_AGE_S, LIVE_MAX_AGE_S
from shared.standings import Standing

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
DEFAULT_RACES_LIMIT: Final = 20
MAX_CURSOR_CHARS: Final = 512
MAX_POSITION: Final = 1_000_000
"""No board has more rows than this: a cursor past it is not one this API returned."""
SCOPE_PATTERN: Final = rf"^({OVERALL}|C[1-{NUM_CLASSES}])$"

M = TypeVar("M", bound=BaseModel)


# --- errors the API turns into 4xx -------------------------------------------------------------
class BadRequestError(ValueError):
    """Input that can never succeed, such as a malformed cursor (400); the message says why."""


def race_not_found(race_id: str) -> RaceNotFoundError:
    """The 404 of an unknown race, worded as the race book words it."""
    return RaceNotFoundError(f"raceId: no race {race_id}")


# --- the read port -----------------------------------------------------------------------------
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


class LiveSnapshots(Protocol):
    """The live ranking's builds (:class:`shared.live_store.DynamoLiveStore`, and its twin
    :class:`functions.leaderboard_api.memory.InMemoryLiveStore`). Raises
    ``shared.ports.TransientError`` for failures worth retrying."""

    def race_and_head(self, race_id: str) -> tuple[Race | None, LiveHead | None]:
        """The race record and the live head, each None when absent (eventually consistent)."""
        ...

    def acquire(self, race_id: str, now: int, seen: int | None = None) -> bool:
        """Take the race's build lease if it is free or expired and, when ``seen`` is given,
        no build newer than ``seen`` was published since: True if taken."""
        ...

    def standings(self, race: Race) -> list[Standing]:
        """The standings of the race's riders, as a build reads them."""
        ...

    def publish(self, ranking: LiveRanking) -> bool:
        """Store the build and point the head at it, only forward; free the lease."""
        ...

    def chunks(self, head: LiveHead, numbers: Sequence[int]) -> dict[int, list[LiveRow]]:
        """These chunks of the head's build (absent ones left out)."""
        ...

    def position(self, head: LiveHead, rider_id: str) -> int | None:
        """The rider's 0-based position in the head's build; None if not in it."""
        ...


# --- the live ranking, built at most once a second ----------------------------------------------
FIRST_BUILD_WAITS: Final = 10
FIRST_BUILD_WAIT_S: Final = 0.1
"""A request that finds a race's first build under way (its lease taken, no build stored) reads
the head again this often, this far apart, then answers 503: a build of 10,000 riders takes
well under a second."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live ranking a request serves: the race, the head of its build (None: nothing
    ranked yet), and the build itself when this request made it (its rows in memory)."""

    race: Race
    head: LiveHead | None
    built: LiveRanking | None = None

    @property
    def as_of(self) -> int:
        """When the standings shown were read (the race's last reading before any build)."""
        return self.head.built_at if self.head is not None else self.race.last_reading_at

    def chunks(self, live: LiveSnapshots, numbers: Sequence[int]) -> dict[int, list[LiveRow]]:
        if self.built is not None:
            held = self.built.chunks()
            return {n: list(held[n]) for n in numbers if n < len(held)}
        if self.head is None or not numbers:
            return {}
        return live.chunks(self.head, numbers)


def snapshot(
    live: LiveSnapshots,
    race_id: str,
    now: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """The race's live ranking for a request at ``now``: the stored build, or a new one when
    :func:`shared.ranking.needs_build` says so and this request takes the lease."""
    race, head = live.race_and_head(race_id)
    if race is None:
        raise race_not_found(race_id)
    built = head if head is not None and head.built else None
    if not needs_build(race.last_reading_at, built, now):
        return Snapshot(race, built)
    if live.acquire(race_id, now, seen=built.built_at if built is not None else 0):
        ranking = rank_live(race_id, live.standings(race), now)
        live.publish(ranking)
        return Snapshot(race, ranking.head(), ranking)
    if built is not None:
        return Snapshot(race, built)
    for _ in range(FIRST_BUILD_WAITS):
        sleep(FIRST_BUILD_WAIT_S)
        race, head = live.race_and_head(race_id)
        if race is not None and head is not None and head.built:
            return Snapshot(race, head)
    raise TransientError(f"race {race_id}: its live ranking is being built")


def board_rows(
    live: LiveSnapshots, snap: Snapshot, class_id: int | None, offset: int, count: int
) -> list[LiveRow]:
    """Rows ``offset`` to ``offset + count - 1`` of the board (overall, or the class's), read
    from the chunks holding them."""
    if snap.head is None:
        return []
    numbers, before = snap.head.span(class_id, offset, count)
    found = snap.chunks(live, numbers)
    if len(found) < len(numbers):
        raise TransientError(f"race {snap.race.race_id}: a chunk of its live ranking is missing")
    rows = [r for n in numbers for r in found[n] if class_id is None or r.class_id == class_id]
    return rows[offset - before : offset - before + count]


def rider_row(live: LiveSnapshots, snap: Snapshot, rider_id: str) -> LiveRow | None:
    """The rider's row in the build: one index page and one chunk read (none when this request
    built it)."""
    if snap.built is not None:
        return next((r for r in snap.built.rows if r.rider_id == rider_id), None)
    if snap.head is None:
        return None
    position = live.position(snap.head, rider_id)
    if position is None:
        return None
    n = chunk_of(position)
    rows = live.chunks(snap.head, [n]).get(n)
    if rows is None or position - n * ROWS_PER_CHUNK >= len(rows):
        raise TransientError(f"race {snap.race.race_id}: a chunk of its live ranking is missing")
    return rows[position - n * ROWS_PER_CHUNK]


# --- cursors -----------------------------------------------------------------------------------
class _CursorModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    race: Annotated[str, Field(pattern=ID_PATTERN)]
    cls: Annotated[int, Field(ge=0, le=NUM_CLASSES)]
    """0 = overall."""
    pos: Annotated[int, Field(ge=1, le=MAX_POSITION)]
    """Rows of the board already shown: the next page starts there."""


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


def encode_cursor(race_id: str, class_id: int | None, position: int) -> str:
    return encode_model(_CursorModel(race=race_id, cls=class_id or 0, pos=position))


def decode_cursor(cursor: str, race_id: str, class_id: int | None) -> int:
    """Where the page a cursor names starts (rows already shown); BadRequestError if it is
    malformed or for another board. A page starts at that position of the build current when
    it is asked for."""
    model = decode_model(cursor, _CursorModel)
    if model.race != race_id or model.cls != (class_id or 0):
        raise BadRequestError("cursor: it belongs to another leaderboard (raceId or classId)")
    return model.pos


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
class Entry:
    rank: int
    """Overall, or in the class on a class board."""
    row: LiveRow


@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    race: Race
    class_id: int | None
    entries: tuple[Entry, ...]
    next_cursor: str | None
    as_of: int
    """When the standings shown were read (the build's time)."""


@dataclass(frozen=True, slots=True)
class RiderView:
    race: Race
    row: LiveRow
    riders: int
    """Riders ranked in the build, and in the rider's class."""
    class_riders: int
    as_of: int

    @property
    def finished(self) -> bool:
        """The rider's ``final`` reading counted."""
        return self.row.finished


def _require_race(reader: LeaderboardReader, race_id: str) -> Race:
    race = reader.race(race_id)
    if race is None:
        raise race_not_found(race_id)
    return race


def leaderboard(
    live: LiveSnapshots,
    race_id: str,
    class_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    *,
    now: int,
    sleep: Callable[[float], None] = time.sleep,
) -> LeaderboardPage:
    """One page of a race's live leaderboard (overall, or one class when ``class_id`` is
    given), from its live ranking."""
    check_limit(limit)
    offset = decode_cursor(cursor, race_id, class_id) if cursor is not None else 0
    snap = snapshot(live, race_id, now, sleep)
    rows = board_rows(live, snap, class_id, offset, limit)
    entries = tuple(Entry(r.rank_overall if class_id is None else r.rank_class, r) for r in rows)
    end = offset + len(rows)
    more = bool(rows) and snap.head is not None and end < snap.head.total(class_id)
    next_cursor = encode_cursor(race_id, class_id, end) if more else None
    return LeaderboardPage(snap.race, class_id, entries, next_cursor, snap.as_of)


def rider(
    live: LiveSnapshots,
    race_id: str,
    rider_id: str,
    *,
    now: int,
    sleep: Callable[[float], None] = time.sleep,
) -> RiderView:
    """A rider's standing with its rank overall and in its class, from the live ranking."""
    snap = snapshot(live, race_id, now, sleep)
    row = rider_row(live, snap, rider_id)
    if row is None or snap.head is None:
        raise RaceNotFoundError(f"riderId: {rider_id} has no standing in race {race_id}")
    return RiderView(
        race=snap.race,
        row=row,
        riders=snap.head.riders,
        class_riders=snap.head.total(row.class_id),
        as_of=snap.as_of,
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


# --- a build's chunks, kept ---------------------------------------------------------------------
LEADERBOARD_MAX_AGE_S: Final = LIVE_MAX_AGE_S
"""How old a leaderboard page may be (its ``Cache-Control: max-age``): the live ranking is built
again once its build is this old."""
BUILD_CACHE_CHUNKS: Final = 500
"""Chunks an execution environment keeps (least recently used first out): five builds of a
10,000-rider race, about 25 MB."""


class BuildCache:
    """The live store, with the chunks of its builds kept in this execution environment.

    A build never changes once written (its items have keys of their own), so a chunk read once
    serves every later page of that build here: a board request reads the race's head (one
    Query) and only the chunks of a build this environment has not seen; a request that built
    keeps what it wrote. Nothing is kept for longer than it is true, so nothing goes stale: a
    page is as fresh as the build the head names.
    """

    def __init__(self, live: LiveSnapshots, max_chunks: int = BUILD_CACHE_CHUNKS) -> None:
        self._live = live
        self._max = max_chunks
        self._chunks: OrderedDict[tuple[str, int, int], list[LiveRow]] = OrderedDict()
        self._lock = threading.Lock()

    def race_and_head(self, race_id: str) -> tuple[Race | None, LiveHead | None]:
        return self._live.race_and_head(race_id)

    def acquire(self, race_id: str, now: int, seen: int | None = None) -> bool:
        return self._live.acquire(race_id, now, seen)

    def standings(self, race: Race) -> list[Standing]:
        return self._live.standings(race)

    def position(self, head: LiveHead, rider_id: str) -> int | None:
        return self._live.position(head, rider_id)

    def publish(self, ranking: LiveRanking) -> bool:
        published = self._live.publish(ranking)
        self._keep(ranking.race_id, ranking.built_at, dict(enumerate(map(list, ranking.chunks()))))
        return published

    def chunks(self, head: LiveHead, numbers: Sequence[int]) -> dict[int, list[LiveRow]]:
        found: dict[int, list[LiveRow]] = {}
        with self._lock:
            for n in numbers:
                rows = self._chunks.get((head.race_id, head.built_at, n))
                if rows is not None:
                    self._chunks.move_to_end((head.race_id, head.built_at, n))
                    found[n] = rows
        missing = [n for n in numbers if n not in found]
        if missing:
            read = self._live.chunks(head, missing)
            self._keep(head.race_id, head.built_at, read)
            found.update(read)
        return found

    def _keep(self, race_id: str, built_at: int, chunks: dict[int, list[LiveRow]]) -> None:
        with self._lock:
            for n, rows in chunks.items():
                self._chunks[(race_id, built_at, n)] = rows
                self._chunks.move_to_end((race_id, built_at, n))
            while len(self._chunks) > self._max:
                self._chunks.popitem(last=False)
