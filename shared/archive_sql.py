"""The archive's SQL: written once, run by Athena (the stack's named queries, in the
environment's workgroup) and by DuckDB (the local archive, ``breakaway audit``, the tests).

Each query names the tables without a database (a named query carries its database; DuckDB
has views of those names over the local objects) and takes its values as positional ``?``
parameters (Athena's ``ExecutionParameters``, DuckDB's prepared parameters), in the order
:attr:`Query.parameters` lists them. The SQL keeps to what both engines run alike: plain
comparisons (``day`` is a ``yyyy-MM-dd`` string), ``row_number()``, ``avg``, ``round``.

Every query that reads telemetry bounds ``day`` (the partition: Athena reads only those days)
and de-duplicates after that bound, so a resend is one reading whichever day it landed in.
The one exception is the ``readings`` view, which is exact across days by reading them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared import names
from shared.contract import CONTRACT_VERSION, Telemetry
from shared.scoring import CADENCE_OFFSET, RESISTANCE_OFFSET

DAY: Final = "day"
"""The partition column of both tables (Hive-style ``day=yyyy-MM-dd`` in the keys)."""
COPY_ORDER: Final = "devicetimestamp, eventid"
"""Which copy of a (race, rider, second) is its reading. The processor counts the first to
arrive; the archive keeps no arrival order, so the earliest by the device's clock (then by
eventId) stands for it. Resends are byte-identical copies, so any choice is the same reading;
docs/decisions.md says when it is not. Among identical copies the one archived first (the
earliest ``day``) is kept, so a query's answer never depends on which copy the engine meets
first."""
READING_COLUMNS: Final = tuple(
    (f.alias or name).lower() for name, f in Telemetry.model_fields.items()
)
"""The telemetry columns, in the contract's order (Glue's lower-case names)."""
POINTS: Final = f"(cadence + {CADENCE_OFFSET}) * (resistance + {RESISTANCE_OFFSET})"
"""A reading's points, as :func:`shared.scoring.points` computes them."""


@dataclass(frozen=True)
class Query:
    name: str
    answers: str
    """What the query answers (the named query's description, docs/queries.md)."""
    sql: str
    parameters: tuple[str, ...] = ()
    """What each ``?`` stands for, in order."""


def first_of_each_second(where: str) -> str:
    """The first reading of each (race, rider, second) among the contract v2 rows that
    ``where`` keeps, with the ``day`` it was archived under."""
    columns = ", ".join((*READING_COLUMNS, DAY))
    # The module's constants and the caller's constant predicate; values are ``?`` parameters.
    return (
        f"SELECT {columns}\n"  # noqa: S608
        f"FROM (\n"
        f"  SELECT {columns},\n"
        f"    row_number() OVER (PARTITION BY raceid, riderid, second ORDER BY {COPY_ORDER}, {DAY})"
        f" AS copy\n"
        f"  FROM {names.GLUE_TABLE}\n"
        f"  WHERE v = {CONTRACT_VERSION}{where}\n"
        f") AS deliveries\n"
        f"WHERE copy = 1"
    )


READINGS_VIEW: Final = Query(
    "readings_view",
    f"Creates the view {names.ARCHIVE_READINGS_VIEW}: the first reading of each (race, rider, "
    "second), every copy after it left out (resends, replays), over every day of the archive.",
    f"CREATE OR REPLACE VIEW {names.ARCHIVE_READINGS_VIEW} AS\n{first_of_each_second('')}",
)

RACE_READINGS: Final = Query(
    "race_readings",
    "The readings of one race, de-duplicated: the first reading of each (rider, second), in "
    "rider and second order.",
    f"{first_of_each_second(f' AND {DAY} BETWEEN ? AND ? AND raceid = ?')}\n"
    "ORDER BY riderid, second",
    ("first day", "last day", "race id"),
)

RACE_DELIVERIES: Final = Query(
    "race_deliveries",
    "Every record archived for one race, every copy and whatever its contract version, in "
    "the order the audit counts them (per rider, the device's clock, then eventId): what "
    "`breakaway audit` recomputes the placings from.",
    f"SELECT {', '.join(READING_COLUMNS)}\n"
    f"FROM {names.GLUE_TABLE}\n"
    f"WHERE {DAY} BETWEEN ? AND ? AND raceid = ?\n"
    f"ORDER BY riderid, {COPY_ORDER}, second, cadence, resistance, event, deviceid",
    ("first day", "last day", "race id"),
)

RACE_CARD: Final = Query(
    "race_card",
    "A closed race's card: the race and every rider entered in it (class, device, "
    "disqualified), as the closer archived it.",
    f"SELECT *\nFROM {names.GLUE_ENTRIES_TABLE}\nWHERE {DAY} = ? AND raceid = ?\nORDER BY riderid",
    ("the race's start day", "race id"),
)

RIDER_RACES: Final = Query(
    "rider_races",
    "Every race of one rider that started between two days (e.g. November): the race, when "
    "it started, the rider's class and whether the rider was disqualified.",
    f"SELECT raceid, racename, startsat, classid, disqualified\n"
    f"FROM {names.GLUE_ENTRIES_TABLE}\n"
    f"WHERE {DAY} BETWEEN ? AND ? AND riderid = ?\n"
    "ORDER BY startsat, raceid",
    ("first day", "last day", "rider id"),
)

CADENCE_PER_CLASS_PER_DAY: Final = Query(
    "cadence_per_class_per_day",
    "Average cadence per class per day: readings (de-duplicated) of entered riders, by the "
    "day they were archived and the class the rider was entered in.",
    f"SELECT r.{DAY}, e.classid, count(*) AS readings,\n"
    "  round(avg(CAST(r.cadence AS DOUBLE)), 2) AS avg_cadence\n"
    f"FROM ({first_of_each_second(f' AND {DAY} BETWEEN ? AND ?')}) AS r\n"
    f"JOIN {names.GLUE_ENTRIES_TABLE} AS e ON e.raceid = r.raceid AND e.riderid = r.riderid\n"
    f"GROUP BY r.{DAY}, e.classid\n"
    f"ORDER BY r.{DAY}, e.classid",
    ("first day", "last day"),
)

RACE_POINTS: Final = Query(
    "race_points",
    "Each rider's seconds and points in one race from the de-duplicated readings alone, no "
    "counting rule applied (a quick look; `breakaway audit` applies the rules).",
    f"SELECT riderid, count(*) AS seconds, sum({POINTS}) AS points\n"
    f"FROM ({first_of_each_second(f' AND {DAY} BETWEEN ? AND ? AND raceid = ?')})"
    " AS r\n"
    "GROUP BY riderid\n"
    "ORDER BY points DESC, riderid",
    ("first day", "last day", "race id"),
)

QUERIES: Final = (
    READINGS_VIEW,
    RACE_READINGS,
    RACE_DELIVERIES,
    RACE_CARD,
    RIDER_RACES,
    CADENCE_PER_CLASS_PER_DAY,
    RACE_POINTS,
)
"""Every query the stack ships as a named query, in docs/queries.md's order."""
