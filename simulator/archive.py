"""Reading the archive back: the same SQL (:mod:`shared.archive_sql`) on DuckDB over a local
copy of the archive's objects, or on Athena in the environment's workgroup.

DuckDB reads the GZIP JSON lines and the Hive-style ``day=`` directories Firehose writes;
:class:`DuckArchive` gives it views named as the Glue tables (same columns, same types) and
the ``readings`` view made by the named query's own SQL. :func:`mirror` copies the objects of
some days from the local stack's S3 (DuckDB's S3 support is an extension that is not
installed offline); only those days are read, as Athena's partition projection prunes.

:class:`AthenaArchive` runs a query with StartQueryExecution (its values as
``ExecutionParameters``), polls GetQueryExecution and pages through GetQueryResults, typing
each value by the result's column types.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from shared import names
from shared.archive import ENTRY_COLUMNS, TELEMETRY_COLUMNS
from shared.archive_sql import DAY, READINGS_VIEW, Query

Row = dict[str, Any]
_DUCK_TYPES: Final = {"bigint": "BIGINT", "string": "VARCHAR", "boolean": "BOOLEAN"}
TABLES: Final = (
    (names.GLUE_TABLE, "telemetry", TELEMETRY_COLUMNS),
    (names.GLUE_ENTRIES_TABLE, "entries", ENTRY_COLUMNS),
)
"""(table, the objects' top-level prefix, columns)."""


class ArchiveQueryError(Exception):
    """A query failed: one line naming it and why."""


def mirror(s3: Any, bucket: str, prefixes: Iterable[str], root: Path) -> int:
    """Copy every object under these prefixes to ``root`` (same keys); how many."""
    copied = 0
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = root / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
                copied += 1
    return copied


def _columns(columns: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"'{n}': '{_DUCK_TYPES[t]}'" for n, t in columns) + "}"


class DuckArchive:
    """The archive's tables over a directory holding the archive's keys."""

    def __init__(self, root: Path) -> None:
        self.db = duckdb.connect()
        for table, prefix, columns in TABLES:
            files = root / prefix
            if any(files.glob("*/*.gz")):
                self.db.execute(  # this module's names and the archive's own path
                    f"CREATE VIEW {table} AS SELECT * FROM read_json("  # noqa: S608
                    f"'{files.as_posix()}/*/*.gz', format = 'newline_delimited', "
                    f"hive_partitioning = true, hive_types = {{'{DAY}': 'VARCHAR'}}, "
                    f"ignore_errors = true, columns = {_columns(columns)})"
                )
            else:  # no object yet: the same columns, no row
                spec = ", ".join(f'"{n}" {_DUCK_TYPES[t]}' for n, t in columns)
                self.db.execute(f"CREATE TABLE {table} ({spec}, {DAY} VARCHAR)")
        self.db.execute(READINGS_VIEW.sql)

    def query(self, query: Query, parameters: Sequence[object] = ()) -> list[Row]:
        try:
            cursor = self.db.execute(query.sql, list(parameters))
        except duckdb.Error as exc:
            raise ArchiveQueryError(f"{query.name}: {exc}") from exc
        header = [d[0].lower() for d in cursor.description or ()]
        return [dict(zip(header, row, strict=True)) for row in cursor.fetchall()]


TERMINAL: Final = ("SUCCEEDED", "FAILED", "CANCELLED")
POLL_S: Final = 0.5
_INTEGER_TYPES: Final = ("tinyint", "smallint", "integer", "bigint")


def literal(value: object) -> str:
    """A value as Athena's ``ExecutionParameters`` take it: SQL literal text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"unsupported parameter {value!r}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _typed(kind: str, cell: Mapping[str, str]) -> Any:
    if "VarCharValue" not in cell:
        return None
    text = cell["VarCharValue"]
    if kind in _INTEGER_TYPES:
        return int(text)
    if kind == "boolean":
        return text == "true"
    if kind in ("double", "float", "real"):
        return float(text)
    return text


class AthenaArchive:
    """The archive through Athena: the environment's workgroup and Glue database."""

    def __init__(
        self,
        client: Any,
        workgroup: str,
        database: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.athena = client
        self.workgroup = workgroup
        self.database = database
        self.sleep = sleep

    def query(self, query: Query, parameters: Sequence[object] = ()) -> list[Row]:
        request: dict[str, Any] = {
            "QueryString": query.sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if parameters:
            request["ExecutionParameters"] = [literal(p) for p in parameters]
        execution_id = self.athena.start_query_execution(**request)["QueryExecutionId"]
        self._wait(query, execution_id)
        return self._rows(execution_id)

    def _wait(self, query: Query, execution_id: str) -> None:
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=execution_id)[
                "QueryExecution"
            ]["Status"]
            if status["State"] in TERMINAL:
                break
            self.sleep(POLL_S)
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason", "no reason given")
            raise ArchiveQueryError(f"{query.name}: {status['State']}: {reason}")

    def _rows(self, execution_id: str) -> list[Row]:
        rows: list[Row] = []
        header: list[tuple[str, str]] = []
        paginator = self.athena.get_paginator("get_query_results")
        for page in paginator.paginate(QueryExecutionId=execution_id):
            result = page["ResultSet"]
            data = result["Rows"]
            if not header:
                header = [
                    (c["Name"].lower(), c["Type"])
                    for c in result["ResultSetMetadata"]["ColumnInfo"]
                ]
                data = data[1:]  # a SELECT's first row is its header
            rows += [
                {
                    name: _typed(kind, cell)
                    for (name, kind), cell in zip(header, r["Data"], strict=True)
                }
                for r in data
            ]
        return rows
