"""docs/queries.md is the shipped SQL: each query's section names it, says what it answers,
lists its parameters and shows its text exactly as the named query holds it."""

from __future__ import annotations

import re
from pathlib import Path

from shared.archive_sql import QUERIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
SECTION = re.compile(
    r"^## `(\w+)`\n\n(.+?)\n\nParameters: (.+?)\.\n\n```sql\n(.*?)\n```$", re.M | re.S
)


def test_queries_md_holds_every_query_in_order_with_its_exact_sql() -> None:
    found = SECTION.findall(DOC.read_text())
    assert [name for name, *_ in found] == [q.name for q in QUERIES]
    for (name, answers, parameters, text), query in zip(found, QUERIES, strict=True):
        assert text == query.sql, name
        assert answers == query.answers, name
        listed = ", ".join(f"{i + 1}. {p}" for i, p in enumerate(query.parameters)) or "none"
        assert parameters == listed, name
