"""A race's live ranking: every rider with a standing, ranked, built at most once a second (pure).

The live board and the rider lookup read a *snapshot* of the ranking instead of ranking indexes.
A snapshot is built from the race's standings (one BatchGetItem per 100 entered riders) by the
first board or rider request that finds the stored one older than :data:`SNAPSHOT_MAX_AGE_MS`
while the race has new readings; one request builds, the others read what is stored.
That is the whole cost of ranking: standings are written without index entries (one write unit
where the two ranking indexes cost five), and a lookup reads three small items whatever the
race's size.

Order and ranks are the leaderboard's: points descending, then riderId; standard competition
ranking (1, 2, 2, 4) overall and within each class.

A snapshot is stored as one *build* (keyed by its ``built_at``, so that a reader never mixes two
builds): the rows in pages of :data:`ROWS_PER_CHUNK` in overall order, a rider index (which
chunk holds each rider) in pages by rider hash, and last the race's *head*, which names the
current build. Old builds expire by TTL.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from shared.contract import CLASS_IDS
from shared.placings import competition_ranks
from shared.standings import Standing

SNAPSHOT_MAX_AGE_MS: Final = 1_000
"""A request rebuilds a snapshot older than this (when the race has readings since): the live
board is at most this much older than the standings, as a CloudFront TTL of 1 s would make it
anyway."""
BUILD_LEASE_MS: Final = 5_000
"""A build takes the race's head for at most this long: a builder that dies frees it then."""
READING_SLACK_MS: Final = 10_000
"""A race's ``lastReadingAt`` is its processor batch's clock, read before the batch's writes
land: a build that started up to this long after it may have missed them, so such a build is
built again (while it is older than :data:`SNAPSHOT_MAX_AGE_MS`). A batch that outlives this
(the processor's timeout is 60 s) shows at the race's next reading."""
BUILD_TTL_S: Final = 300
"""A build's items expire this long after it was built (readers follow the head within a
second; DynamoDB deletes expired items for free)."""
BUILD_MAX_AGE_MS: Final = 1000 * (BUILD_TTL_S - 60)
"""A build this old is built again when asked for, even if no reading came since (an idle
race): its items must never expire while its head names it."""
ROWS_PER_CHUNK: Final = 100
"""Rows per stored chunk (about 7 KB): a board page of up to 100 reads at most two chunks."""
RIDERS_PER_INDEX_PAGE: Final = 200
"""Riders per rider-index page (about 4 KB): a lookup reads one page, then one chunk."""


@dataclass(frozen=True, slots=True)
class LiveRow:
    """One rider in the live ranking: the standing's figures and both ranks."""

    rider_id: str
    name: str
    class_id: int
    points: int
    seconds: int
    last_second: int
    final_second: int
    rank_overall: int
    rank_class: int

    @property
    def finished(self) -> bool:
        return self.final_second >= 0


@dataclass(frozen=True, slots=True)
class LiveRanking:
    """A built snapshot: every rider with a standing, in overall order."""

    race_id: str
    built_at: int
    """Epoch ms at which the standings were read (the build's id)."""
    rows: tuple[LiveRow, ...]

    def chunks(self) -> list[tuple[LiveRow, ...]]:
        return [self.rows[i : i + ROWS_PER_CHUNK] for i in range(0, len(self.rows), ROWS_PER_CHUNK)]

    @property
    def index_pages(self) -> int:
        return index_pages(len(self.rows))

    def rider_index(self) -> list[dict[str, int]]:
        """Per rider-index page: rider id -> position (0-based, overall order)."""
        pages: list[dict[str, int]] = [{} for _ in range(self.index_pages)]
        for position, row in enumerate(self.rows):
            pages[index_page(row.rider_id, self.index_pages)][row.rider_id] = position
        return pages

    def class_totals(self) -> dict[int, int]:
        totals = dict.fromkeys(CLASS_IDS, 0)
        for row in self.rows:
            totals[row.class_id] = totals.get(row.class_id, 0) + 1
        return totals

    def chunk_classes(self) -> tuple[tuple[int, ...], ...]:
        """Per chunk, its riders of each class (``CLASS_IDS`` order): where a class page is."""
        return tuple(
            tuple(sum(1 for r in chunk if r.class_id == c) for c in CLASS_IDS)
            for chunk in self.chunks()
        )

    def head(self, lease_until: int = 0) -> LiveHead:
        """The head naming this build."""
        return LiveHead(
            race_id=self.race_id,
            built_at=self.built_at,
            riders=len(self.rows),
            index_pages=self.index_pages,
            class_totals=self.class_totals(),
            lease_until=lease_until,
            chunk_classes=self.chunk_classes(),
        )


@dataclass(frozen=True, slots=True)
class LiveHead:
    """The race's pointer to its current build, and a build lease (0: free)."""

    race_id: str
    built_at: int
    riders: int
    index_pages: int
    class_totals: dict[int, int]
    lease_until: int = 0
    chunk_classes: tuple[tuple[int, ...], ...] = ()
    """Per chunk of the build, its riders of each class (``CLASS_IDS`` order)."""

    @property
    def built(self) -> bool:
        """A build is named (a head may hold only a lease, before the first build)."""
        return self.built_at > 0

    def total(self, class_id: int | None) -> int:
        return self.riders if class_id is None else self.class_totals.get(class_id, 0)

    def span(self, class_id: int | None, offset: int, count: int) -> tuple[list[int], int]:
        """The chunks holding rows ``offset`` to ``offset + count - 1`` of the board (overall,
        or the class's rows in overall order), and how many of the board's rows come before
        the first of them."""
        if class_id is None:
            end = min(offset + count, self.riders)
            if end <= offset:
                return [], 0
            first = chunk_of(offset)
            return list(range(first, chunk_of(end - 1) + 1)), first * ROWS_PER_CHUNK
        column = CLASS_IDS.index(class_id)
        wanted: list[int] = []
        before = seen = 0
        for n, counts in enumerate(self.chunk_classes):
            here = counts[column]
            if here and seen + here > offset and seen < offset + count:
                if not wanted:
                    before = seen
                wanted.append(n)
            seen += here
        return wanted, before


def needs_build(race_last_reading_at: int, head: LiveHead | None, now: int) -> bool:
    """Whether a request at ``now`` builds the race's ranking: there is none yet while the race
    has readings, or the stored one is older than :data:`SNAPSHOT_MAX_AGE_MS` and readings came
    since it was built (within :data:`READING_SLACK_MS`). An idle race is built again only when
    its build nears its expiry (:data:`BUILD_MAX_AGE_MS`)."""
    if head is None or not head.built:
        return race_last_reading_at > 0
    age = now - head.built_at
    if age >= BUILD_MAX_AGE_MS:
        return True
    return age >= SNAPSHOT_MAX_AGE_MS and race_last_reading_at >= head.built_at - READING_SLACK_MS


def index_pages(riders: int) -> int:
    return max(1, math.ceil(riders / RIDERS_PER_INDEX_PAGE))


def index_page(rider_id: str, pages: int) -> int:
    """The rider-index page of a rider: stable across processes and Python versions."""
    return zlib.crc32(rider_id.encode()) % pages


def chunk_of(position: int) -> int:
    return position // ROWS_PER_CHUNK


def rank_live(race_id: str, standings: Iterable[Standing], built_at: int) -> LiveRanking:
    """The live ranking of these standings (a race's, each rider once)."""
    ordered = sorted(
        (s for s in standings if s.race_id == race_id), key=lambda s: (-s.points, s.rider_id)
    )
    overall = competition_ranks([s.points for s in ordered])
    in_class: dict[str, int] = {}
    for class_id in {s.class_id for s in ordered}:
        members = [s for s in ordered if s.class_id == class_id]
        ranks = competition_ranks([s.points for s in members])
        in_class.update((s.rider_id, r) for s, r in zip(members, ranks, strict=True))
    rows = tuple(
        LiveRow(
            rider_id=s.rider_id,
            name=s.name,
            class_id=s.class_id,
            points=s.points,
            seconds=s.seconds,
            last_second=s.last_second,
            final_second=s.final_second,
            rank_overall=rank,
            rank_class=in_class[s.rider_id],
        )
        for s, rank in zip(ordered, overall, strict=True)
    )
    return LiveRanking(race_id, built_at, rows)
