"""The API's response models (pydantic): wire names are camelCase, as in the telemetry contract.

Each model builds itself from the logic's result (:mod:`functions.leaderboard_api.logic`), so the
handler only wires routes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from functions.leaderboard_api.logic import LeaderboardPage, RacesListing, RiderView
from shared.contract import CLASS_IDS, ID_PATTERN, MAX_ID_LENGTH, NUM_CLASSES
from shared.standings import RaceRecord

Id = Annotated[str, Field(pattern=ID_PATTERN)]
ClassId = Annotated[int, Field(ge=1, le=NUM_CLASSES)]
Count = Annotated[int, Field(ge=0)]
EpochMs = Annotated[int, Field(ge=0, description="epoch milliseconds (device time)")]


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
    name: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    class_id: ClassId
    points: Annotated[int, Field(ge=0, description="hundredths of an output unit")]
    seconds: Annotated[Count, Field(description="distinct race seconds counted")]
    last_second: Annotated[int, Field(ge=-1, description="newest race second counted")]


class Leaderboard(_Out):
    race_id: Id
    class_id: Annotated[ClassId | None, Field(description="null: overall")]
    as_of: Annotated[EpochMs, Field(description="the race's newest reading (epoch ms)")]
    entries: list[Entry]
    next_cursor: Annotated[str | None, Field(description="pass as cursor for the next page")]

    @classmethod
    def of(cls, page: LeaderboardPage) -> Leaderboard:
        return cls(
            race_id=page.race.race_id,
            class_id=page.class_id,
            as_of=page.race.last_reading_at,
            entries=[
                Entry(
                    rank=e.rank,
                    rider_id=e.standing.rider_id,
                    name=e.standing.name,
                    class_id=e.standing.class_id,
                    points=e.standing.points,
                    seconds=e.standing.seconds,
                    last_second=e.standing.last_second,
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
    started_at: EpochMs
    last_reading_at: EpochMs
    riders: Count
    finished: Annotated[Count, Field(description="riders whose result is stored")]
    classes: list[ClassCount]

    @classmethod
    def of(cls, race: RaceRecord) -> Race:
        return cls(
            race_id=race.race_id,
            started_at=race.started_at,
            last_reading_at=race.last_reading_at,
            riders=race.riders,
            finished=race.finished,
            classes=[ClassCount(class_id=c, riders=race.class_counts.get(c, 0)) for c in CLASS_IDS],
        )


class Races(_Out):
    races: list[Race]
    next_cursor: str | None

    @classmethod
    def of(cls, listing: RacesListing) -> Races:
        return cls(races=[Race.of(r) for r in listing.races], next_cursor=listing.next_cursor)


class Rider(_Out):
    race_id: Id
    rider_id: Id
    name: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    class_id: ClassId
    points: Annotated[int, Field(ge=0)]
    seconds: Count
    last_second: Annotated[int, Field(ge=-1)]
    rank: Annotated[int, Field(ge=1, description="rank overall")]
    class_rank: Annotated[int, Field(ge=1, description="rank in the rider's class")]
    riders: Annotated[Count, Field(description="riders in the race")]
    class_riders: Annotated[Count, Field(description="riders in the rider's class")]
    finished: Annotated[bool, Field(description="the rider's result is stored")]
    as_of: EpochMs

    @classmethod
    def of(cls, view: RiderView) -> Rider:
        s = view.standing
        return cls(
            race_id=s.race_id,
            rider_id=s.rider_id,
            name=s.name,
            class_id=s.class_id,
            points=s.points,
            seconds=s.seconds,
            last_second=s.last_second,
            rank=view.rank,
            class_rank=view.class_rank,
            riders=view.race.riders,
            class_riders=view.race.class_counts.get(s.class_id, 0),
            finished=view.result is not None,
            as_of=view.race.last_reading_at,
        )


class Error(BaseModel):
    """Every 4xx/5xx body: one line that says what is wrong."""

    message: str
