"""``--target aws``: the archive's queries through Athena, on a stub of the boto3 client that
checks every call: the named query's own SQL in the environment's workgroup and database, its
values as ExecutionParameters, polling until done, every page of results typed by column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared import archive_sql as sql
from shared.archive import card_lines
from shared.names import athena_workgroup_name, glue_database_name
from simulator.archive import ArchiveQueryError, AthenaArchive, literal
from simulator.audit_cli import run
from tests.archive.helpers import (
    DAY_BEFORE,
    NEXT_DAY,
    OBJECTS,
    RACE_ID,
    START_DAY,
    STARTS_AT,
    race_card,
    rows_of,
    stored_placings,
)

COLUMN_TYPES = {
    "v": "bigint",
    "second": "bigint",
    "cadence": "bigint",
    "resistance": "bigint",
    "devicetimestamp": "bigint",
    "startsat": "bigint",
    "durations": "bigint",
    "graces": "bigint",
    "closesat": "bigint",
    "classid": "bigint",
    "disqualified": "boolean",
}


def result_pages(rows: list[dict[str, Any]], page_size: int) -> list[dict[str, Any]]:
    """Rows as GetQueryResults pages them: text values, NULL as a cell without a value, the
    first row of the first page the header."""
    columns = list(rows[0])
    info = [{"Name": c, "Type": COLUMN_TYPES.get(c, "varchar")} for c in columns]

    def cell(value: Any) -> dict[str, str]:
        if value is None:
            return {}
        return {"VarCharValue": str(value).lower() if isinstance(value, bool) else str(value)}

    data = [{"Data": [{"VarCharValue": c} for c in columns]}]
    data += [{"Data": [cell(r[c]) for c in columns]} for r in rows]
    pages = [data[i : i + page_size] for i in range(0, len(data), page_size)]
    return [{"ResultSet": {"Rows": p, "ResultSetMetadata": {"ColumnInfo": info}}} for p in pages]


class StubAthena:
    """Answers each StartQueryExecution with the next planned result; records every call."""

    def __init__(self, results: list[list[dict[str, Any]]], states: list[str]) -> None:
        self.results = results
        self.states = states
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._polls: Iterator[str] = iter(())

    def start_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("start_query_execution", kwargs))
        self._polls = iter(self.states)
        return {"QueryExecutionId": f"q{len(self.calls)}"}

    def get_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_query_execution", kwargs))
        state = next(self._polls)
        status: dict[str, Any] = {"State": state}
        if state == "FAILED":
            status["StateChangeReason"] = "TABLE_NOT_FOUND: entries"
        return {"QueryExecution": {"Status": status}}

    def get_paginator(self, operation: str) -> StubAthena:
        assert operation == "get_query_results"
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append(("get_query_results", kwargs))
        return result_pages(self.results.pop(0), page_size=4)


def athena(client: StubAthena, slept: list[float]) -> AthenaArchive:
    return AthenaArchive(
        client, athena_workgroup_name("dev"), glue_database_name("dev"), sleep=slept.append
    )


def test_a_query_runs_in_the_workgroup_with_its_parameters_and_every_page_is_read() -> None:
    lines = [{k.lower(): v for k, v in line.items()} for line in card_lines(race_card())]
    stub = StubAthena([lines], ["QUEUED", "RUNNING", "SUCCEEDED"])
    slept: list[float] = []
    rows = athena(stub, slept).query(sql.RACE_CARD, [START_DAY, RACE_ID])
    assert rows == lines  # typed back: bigint, boolean and NULL as DuckDB gives them
    assert stub.calls == [
        (
            "start_query_execution",
            {
                "QueryString": sql.RACE_CARD.sql,
                "QueryExecutionContext": {"Database": "breakaway_dev"},
                "WorkGroup": "breakaway-dev-archive",
                "ExecutionParameters": [f"'{START_DAY}'", f"'{RACE_ID}'"],
            },
        ),
        ("get_query_execution", {"QueryExecutionId": "q1"}),
        ("get_query_execution", {"QueryExecutionId": "q1"}),
        ("get_query_execution", {"QueryExecutionId": "q1"}),
        ("get_query_results", {"QueryExecutionId": "q1"}),
    ]
    assert slept == [0.5, 0.5]


def test_a_failed_query_says_which_and_why() -> None:
    stub = StubAthena([], ["RUNNING", "FAILED"])
    with pytest.raises(ArchiveQueryError, match=r"^race_card: FAILED: TABLE_NOT_FOUND: entries$"):
        athena(stub, []).query(sql.RACE_CARD, [START_DAY, RACE_ID])


def test_parameters_are_sql_literals() -> None:
    assert literal("crit-1") == "'crit-1'"
    assert literal("o'clock") == "'o''clock'"
    assert literal(42) == "42"
    with pytest.raises(TypeError):
        literal(True)


def test_the_audit_through_athena_is_exact() -> None:
    records = [r for bodies in OBJECTS.values() for lines in bodies for r in lines]
    deliveries = rows_of([r for r in records if r["raceId"] == RACE_ID])
    card = [{k.lower(): v for k, v in line.items()} for line in card_lines(race_card())]
    stub = StubAthena([card, deliveries], ["SUCCEEDED"])
    result = run(athena(stub, []), RACE_ID, STARTS_AT, (DAY_BEFORE, NEXT_DAY), stored_placings())
    assert result.exact
    starts = [kwargs for name, kwargs in stub.calls if name == "start_query_execution"]
    assert [(s["QueryString"], s["ExecutionParameters"]) for s in starts] == [
        (sql.RACE_CARD.sql, [f"'{START_DAY}'", f"'{RACE_ID}'"]),
        (sql.RACE_DELIVERIES.sql, [f"'{DAY_BEFORE}'", f"'{NEXT_DAY}'", f"'{RACE_ID}'"]),
    ]
