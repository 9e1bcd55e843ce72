"""The DynamoDB key schema: one table, one index (``RecentRaces``), defined once.

Items (``pk`` / ``sk``):

==============================  =====================  =============================================
pk                              sk                     what
==============================  =====================  =============================================
``RACE#{raceId}``               ``RACE``               race record: the organiser's schedule (name,
                                                       startsAt, durationS, graceS, closesAt),
                                                       state, entrants, entriesVersion; the
                                                       processor's counters (riders, class counts,
                                                       finished, lastReadingAt)
``RACE#{raceId}``               ``ENTRY#{riderId}``    an entry: name, classId, deviceId,
                                                       disqualified
``RACE#{id}#PLACINGS#{s}#{n}``  ``PLACINGS``           page n (5 digits) of the final placings of
                                                       scope s: overall (``ALL``) or one class
                                                       (``C1``..); a partition key per page
                                                       (``PLACINGS_PER_ITEM``)
``RACE#{raceId}#RIDER#{id}``    ``STANDING``           a rider's live standing: points, seconds,
                                                       lastSecond, finalSecond, name, classId, the
                                                       bitmap of counted seconds, version
``RACE#{raceId}``               ``LIVE``               the live ranking's head: the current build
                                                       (its ``builtAt``), its sizes, a build lease
``LIVE#{raceId}#{b}#C{n}``      ``LIVE``               chunk n of live ranking build b (rows in
                                                       overall order); expires
``LIVE#{raceId}#{b}#I{h}``      ``LIVE``               rider-index page h of build b (rider ->
                                                       position); expires
``RIDER#{riderId}``             ``RESULT#{t}#{race}``  a race in the rider's history (``t``: the
                                                       race's startsAt, 13 digits: newest last)
``RIDER#{riderId}``             ``BEST#{c}#{d}``       the rider's personal best in class ``c`` over
                                                       races of ``d`` seconds (5 digits)
``RECORDS#{c}#{d}``             ``RECORDS``            the records of class ``c`` over races of
                                                       ``d`` seconds: the top rows, one per rider
==============================  =====================  =============================================

Races, entries, placings, history, bests and records are kept (no TTL); live standings expire
some days after the race. A rider's history is one partition read newest first, so a rider with
a thousand races still costs one page.

Every rider has a partition key of its own, so the table is never hot. The live board and the
rider lookup read the live ranking's builds (:mod:`shared.ranking`), not an index: a standing
write is one item and nothing else.
"""

from __future__ import annotations

from typing import Final

from shared.contract import MAX_RACE_SECONDS

PK: Final = "pk"
SK: Final = "sk"
TTL_ATTRIBUTE: Final = "expiresAt"

SK_RACE: Final = "RACE"
SK_STANDING: Final = "STANDING"
SK_ENTRY_PREFIX: Final = "ENTRY#"
SK_PLACINGS: Final = "PLACINGS"
PLACINGS_PER_ITEM: Final = 100
"""Placings are stored a page of this many to an item (about 10 KB): a results page of up to
100 reads at most two items, and a 10,000-rider race stores about 200 items. Each page has a
partition key of its own: on the race's key, the close of a 10,000-rider race would write
about 2,000 write units to one key, twice what a partition takes in a second."""

INDEX_RECENT: Final = "RecentRaces"
INDEX_RECENT_PK: Final = "racesPk"
INDEX_RECENT_SK: Final = "startsAt"
RECENT_RACES_PARTITION: Final = "RACES"
"""Races are created rarely, and the race record's frequent updates (the processor's counters)
change neither a key nor a projected attribute of this index, so one partition holds it."""
RECENT_RACES_PROJECTION: Final = (
    "raceId",
    "name",
    "durationS",
    "graceS",
    "closesAt",
    "state",
    "entrants",
)
"""What the races index carries (INCLUDE): enough to list and filter races by status without
reading the race records; none of it changes per reading."""

# --- DynamoDB's partition budget ---------------------------------------------------------------
DESIGN_MAX_RIDERS_PER_RACE: Final = 10_000
MAX_RIDER_WRITES_PER_SECOND: Final = 1
"""A standing is written at most once per batch and only when a new second arrives, and a rider
sends one reading a second: so at most one write per rider per second."""
PARTITION_WRITE_LIMIT: Final = 1_000


def race_pk(race_id: str) -> str:
    return f"RACE#{race_id}"


def race_key(race_id: str) -> dict[str, str]:
    return {PK: race_pk(race_id), SK: SK_RACE}


def standing_key(race_id: str, rider_id: str) -> dict[str, str]:
    return {PK: rider_pk(race_id, rider_id), SK: SK_STANDING}


def entry_key(race_id: str, rider_id: str) -> dict[str, str]:
    return {PK: race_pk(race_id), SK: SK_ENTRY_PREFIX + rider_id}


RIDER_PREFIX: Final = "RIDER#"
SK_RESULT_PREFIX: Final = "RESULT#"
SK_BEST_PREFIX: Final = "BEST#"
SK_RECORDS: Final = "RECORDS"
TIME_DIGITS: Final = 13
"""Epoch milliseconds, zero-padded so that sort keys order by time until the year 2286."""
DURATION_DIGITS: Final = len(str(MAX_RACE_SECONDS))


def rider_pk(race_id: str, rider_id: str) -> str:
    return f"RACE#{race_id}#RIDER#{rider_id}"


def history_pk(rider_id: str) -> str:
    return f"{RIDER_PREFIX}{rider_id}"


def result_sk(starts_at: int, race_id: str) -> str:
    return f"{SK_RESULT_PREFIX}{starts_at:0{TIME_DIGITS}d}#{race_id}"


def result_key(rider_id: str, starts_at: int, race_id: str) -> dict[str, str]:
    return {PK: history_pk(rider_id), SK: result_sk(starts_at, race_id)}


def best_key(rider_id: str, class_id: int, duration_s: int) -> dict[str, str]:
    return {
        PK: history_pk(rider_id),
        SK: f"{SK_BEST_PREFIX}{class_id}#{duration_s:0{DURATION_DIGITS}d}",
    }


def records_key(class_id: int, duration_s: int) -> dict[str, str]:
    return {PK: f"RECORDS#{class_id}#{duration_s:0{DURATION_DIGITS}d}", SK: SK_RECORDS}


SK_LIVE: Final = "LIVE"


def live_head_key(race_id: str) -> dict[str, str]:
    return {PK: race_pk(race_id), SK: SK_LIVE}


def live_chunk_key(race_id: str, built_at: int, chunk: int) -> dict[str, str]:
    return {PK: f"LIVE#{race_id}#{built_at}#C{chunk:05d}", SK: SK_LIVE}


def live_index_key(race_id: str, built_at: int, page: int) -> dict[str, str]:
    return {PK: f"LIVE#{race_id}#{built_at}#I{page:05d}", SK: SK_LIVE}


def placings_pk(race_id: str, scope: str, page: int) -> str:
    return f"RACE#{race_id}#PLACINGS#{scope}#{page:05d}"


def placings_key(race_id: str, scope: str, page: int) -> dict[str, str]:
    return {PK: placings_pk(race_id, scope, page), SK: SK_PLACINGS}


def class_count_attribute(class_id: int) -> str:
    """The race record's per-class rider count attribute (``class1`` .. ``class6``)."""
    return f"class{class_id}"
