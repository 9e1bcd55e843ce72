"""No function outside the tests is longer than a reader can hold: 80 lines.

Ruff's gates (C901 complexity, PLR0915 statements, in ``make lint``) bound how tangled a
function is; this bounds how long, which neither measures (a 200-line CDK constructor can be
straight-line code).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "infra", "simulator", "local", "benchmarks")
MAX_FUNCTION_LINES = 80


def long_functions(
    paths: list[Path], root: Path = REPO, limit: int = MAX_FUNCTION_LINES
) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines})")
    return found


def test_no_function_outside_the_tests_is_over_80_lines() -> None:
    paths = [REPO / "app.py", *(p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py")))]
    assert len(paths) > 50
    assert long_functions(paths) == []


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "long.py"
    source.write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert long_functions([source], root=tmp_path) == ["long.py:5 long (81)"]
