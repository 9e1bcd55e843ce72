"""The API's response models (pydantic): wire names are camelCase, as in the telemetry contract.

Each model builds itself from the logic's result (:mod:`functions.leaderboard_api.logic`), so the
handler only wires routes. The organiser's request bodies are the shared models
(:class:`shared.races.NewRace`, :class:`shared.races.Entries`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from functions.leaderboard_api.history import HistoryPage, RecordsPage
from functions.leaderboard_api.logic import (
    LeaderboardPage,
    RacesListing,
    ResultsPage,
    RiderView,
)
from shared import history, races
from shared.contract import CLASS_IDS, ID_PATTERN, MAX_ID_LENGTH, MAX_RACE_SECONDS, NUM_CLASSES
from shared.placings import Outcome

Id = Annotated[str, Field(pattern=ID_PATTERN)]
ClassId = Annotated[int, Field(ge=1, le=NUM_CLASSES)]
Count = Annotated[int, Field(ge=0)]
EpochMs = Annotated[int, Field(ge=0, description="epoch milliseconds")]
Name = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Status = Literal["scheduled", "running", "closing", "closed"]


class _Out(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class Entry(_Out):
    rank: Annotated[int, Field(ge=1, description="standard competition rank (1, 2, 2, 4)")]
    rider_id: Id
    name: Annotated[Name, Field(description="as entered")]
    class_id: Annotated[ClassId, Field(description="as entered")]
    points: Annotated[int, Field(ge=0, description="hundredths of an output unit")]
    seconds: Annotated[Count, Field(description="distinct race seconds counted")]
    last_second: Annotated[int, Field(ge=-1, description="newest race second counted")]
    finished: Annotated[bool, Field(description="the rider's final reading counted")]


class Leaderboard(_Out):
    race_id: Id
    class_id: Annotated[ClassId | None, Field(description="null: overall")]
    as_of: Annotated[
        EpochMs,
        Field(
            description="when the standings shown were read (the live ranking's build, at "
            "most a second behind the race's readings)"
        ),
    ]
    entries: list[Entry]
    next_cursor: Annotated[str | None, Field(description="pass as cursor for the next page")]

    @classmethod
    def of(cls, page: LeaderboardPage) -> Leaderboard:
        return cls(
            race_id=page.race.race_id,
            class_id=page.class_id,
            as_of=page.as_of,
            entries=[
                Entry(
                    rank=e.rank,
                    rider_id=e.row.rider_id,
                    name=e.row.name,
                    class_id=e.row.class_id,
                    points=e.row.points,
                    seconds=e.row.seconds,
                    last_second=e.row.last_second,
                    finished=e.row.finished,
                )
                for e in page.entries
            ],
            next_cursor=page.next_cursor,
        )


class ClassCount(_Out):
    class_id: ClassId
    riders: Count


class Race(_Out):
    race_id: Id
    name: Name
    status: Annotated[
        Status,
        Field(
            description="scheduled before startsAt, running until closesAt, closing until its "
            "placings are stored, then closed"
        ),
    ]
    starts_at: EpochMs
    duration_s: Annotated[int, Field(ge=1, le=MAX_RACE_SECONDS)]
    grace_s: Annotated[
        int, Field(ge=0, le=races.MAX_GRACE_S, description="late readings taken after the end")
    ]
    closes_at: Annotated[EpochMs, Field(description="startsAt + 1000 * (durationS + graceS)")]
    entrants: Annotated[Count, Field(description="riders entered")]
    riders: Annotated[Count, Field(description="riders with a counted second")]
    finished: Annotated[Count, Field(description="riders whose final reading counted")]
    last_reading_at: Annotated[EpochMs, Field(description="when a reading last counted")]
    classes: Annotated[list[ClassCount], Field(description="riders with a counted second")]

    @classmethod
    def of(cls, race: races.Race, now: int) -> Race:
        return cls(
            race_id=race.race_id,
            name=race.name,
            status=race.status(now).value,
            starts_at=race.starts_at,
            duration_s=race.duration_s,
            grace_s=race.grace_s,
            closes_at=race.closes_at,
            entrants=race.entrants,
            riders=race.riders,
            finished=race.finished,
            last_reading_at=race.last_reading_at,
            classes=[ClassCount(class_id=c, riders=race.class_counts.get(c, 0)) for c in CLASS_IDS],
        )


class Races(_Out):
    races: list[Race]
    next_cursor: Annotated[
        str | None, Field(description="pass as cursor for the next page (a page may be short)")
    ]

    @classmethod
    def of(cls, listing: RacesListing, now: int) -> Races:
        return cls(races=[Race.of(r, now) for r in listing.races], next_cursor=listing.next_cursor)


class Rider(_Out):
    race_id: Id
    rider_id: Id
    name: Name
    class_id: ClassId
    points: Annotated[int, Field(ge=0)]
    seconds: Count
    last_second: Annotated[int, Field(ge=-1)]
    rank: Annotated[int, Field(ge=1, description="rank overall")]
    class_rank: Annotated[int, Field(ge=1, description="rank in the rider's class")]
    riders: Annotated[Count, Field(description="riders ranked in the race")]
    class_riders: Annotated[Count, Field(description="riders ranked in the rider's class")]
    finished: Annotated[bool, Field(description="the rider's final reading counted")]
    as_of: Annotated[
        EpochMs, Field(description="when the standings shown were read (the live ranking's build)")
    ]

    @classmethod
    def of(cls, view: RiderView) -> Rider:
        r = view.row
        return cls(
            race_id=view.race.race_id,
            rider_id=r.rider_id,
            name=r.name,
            class_id=r.class_id,
            points=r.points,
            seconds=r.seconds,
            last_second=r.last_second,
            rank=r.rank_overall,
            class_rank=r.rank_class,
            riders=view.riders,
            class_riders=view.class_riders,
            finished=view.finished,
            as_of=view.as_of,
        )


PERSONAL_BEST = "the rider's best points in this class over races of this length, when it closed"
RECORD = "the result holds the class record for races of this length (set when it closed)"


class Placing(_Out):
    rank: Annotated[int | None, Field(ge=1, description="null unless ranked")]
    rider_id: Id
    name: Annotated[Name, Field(description="as entered")]
    class_id: Annotated[ClassId, Field(description="as entered")]
    points: Annotated[int, Field(ge=0, description="hundredths of an output unit")]
    seconds: Annotated[Count, Field(description="distinct race seconds counted")]
    outcome: Annotated[
        Outcome, Field(description="ranked; DNS: no counted second; DSQ: disqualified")
    ]
    personal_best: Annotated[bool, Field(description=PERSONAL_BEST)]
    record: Annotated[bool, Field(description=RECORD)]


class Results(_Out):
    race_id: Id
    class_id: Annotated[ClassId | None, Field(description="null: overall")]
    entries: Annotated[
        list[Placing], Field(description="ranked in rank order (ties by riderId), then DNS, DSQ")
    ]
    next_cursor: Annotated[str | None, Field(description="pass as cursor for the next page")]

    @classmethod
    def of(cls, page: ResultsPage) -> Results:
        return cls(
            race_id=page.race.race_id,
            class_id=page.class_id,
            entries=[
                Placing(
                    rank=p.rank,
                    rider_id=p.rider_id,
                    name=p.name,
                    class_id=p.class_id,
                    points=p.points,
                    seconds=p.seconds,
                    outcome=p.outcome,
                    personal_best=p.personal_best,
                    record=p.record,
                )
                for p in page.placings
            ],
            next_cursor=page.next_cursor,
        )


# --- history and records (shared.history) ------------------------------------------------------
class RaceRef(_Out):
    race_id: Id
    name: Name
    starts_at: EpochMs
    duration_s: Annotated[int, Field(ge=1, le=MAX_RACE_SECONDS)]

    @classmethod
    def of(cls, race: history.RaceRef) -> RaceRef:
        return cls(
            race_id=race.race_id,
            name=race.name,
            starts_at=race.starts_at,
            duration_s=race.duration_s,
        )


class HistoryEntry(_Out):
    race: RaceRef
    name: Annotated[Name, Field(description="the rider's name as entered in that race")]
    class_id: Annotated[ClassId, Field(description="as entered in that race")]
    rank_overall: Annotated[int, Field(ge=1)]
    rank_class: Annotated[int, Field(ge=1)]
    points: Annotated[int, Field(ge=0, description="hundredths of an output unit")]
    seconds: Count
    personal_best: Annotated[bool, Field(description=PERSONAL_BEST)]
    record: Annotated[bool, Field(description=RECORD)]


class RiderHistory(_Out):
    rider_id: Id
    results: Annotated[
        list[HistoryEntry], Field(description="the rider's closed races, newest first")
    ]
    next_cursor: Annotated[str | None, Field(description="pass as cursor for the next page")]

    @classmethod
    def of(cls, page: HistoryPage) -> RiderHistory:
        return cls(
            rider_id=page.rider_id,
            results=[
                HistoryEntry(
                    race=RaceRef.of(r.race),
                    name=r.name,
                    class_id=r.class_id,
                    rank_overall=r.rank_overall,
                    rank_class=r.rank_class,
                    points=r.points,
                    seconds=r.seconds,
                    personal_best=r.personal_best,
                    record=r.record,
                )
                for r in page.results
            ],
            next_cursor=page.next_cursor,
        )


class RecordEntry(_Out):
    rank: Annotated[int, Field(ge=1, description="standard competition rank by points")]
    rider_id: Id
    name: Annotated[Name, Field(description="as entered in the race that set it")]
    points: Annotated[int, Field(ge=0, description="hundredths of an output unit")]
    seconds: Count
    race: Annotated[RaceRef, Field(description="where and when it was set (startsAt)")]
    holder: Annotated[
        bool,
        Field(description="holds the record: the top points, set first (a tie in one race: joint)"),
    ]


class ClassRecords(_Out):
    class_id: ClassId
    duration_s: Annotated[int, Field(ge=1, le=MAX_RACE_SECONDS)]
    records: Annotated[
        list[RecordEntry], Field(description="each rider's best, best first (ties: set first)")
    ]

    @classmethod
    def of(cls, page: RecordsPage) -> ClassRecords:
        return cls(
            class_id=page.class_id,
            duration_s=page.duration_s,
            records=[
                RecordEntry(
                    rank=row.rank,
                    rider_id=row.best.rider_id,
                    name=row.best.name,
                    points=row.best.points,
                    seconds=row.best.seconds,
                    race=RaceRef.of(row.best.race),
                    holder=row.holder,
                )
                for row in page.rows
            ],
        )


class EntriesApplied(_Out):
    added: Annotated[Count, Field(description="riders entered by this request")]
    updated: Annotated[Count, Field(description="entries this request changed")]


class Disqualified(_Out):
    race_id: Id
    rider_id: Id
    disqualified: Literal[True]


class Error(BaseModel):
    """Every 4xx/5xx body: one line that says what is wrong."""

    message: str
