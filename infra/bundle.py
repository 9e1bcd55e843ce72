"""What goes into a Lambda function's code asset: the handler's import closure, nothing more.

Every function used to ship all of ``shared/``: the in-memory fakes, the CLI argument types and
the tables' ``CreateTable`` form went to Lambda with the code that runs there. The asset is now
the set of the project's modules the handler imports, directly or through another project
module, found by reading the ``import`` statements (no code is run), plus the non-Python files
of the function's own folder (the live page's static files). Third-party packages come from the
Powertools layer and the runtime, never from the asset.

An import the reader cannot see (``importlib`` with a computed name) would be missed: the
project has none in code that runs in Lambda, and ``tests/infra/test_bundles.py`` imports each
bundle's handler from the bundle alone, so a missed module fails there, not in AWS.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
BUNDLED_PACKAGES: Final = ("functions", "shared")
"""Top-level project packages a function may import (the import contracts say the same)."""


def _module_file(module: str, root: Path) -> Path | None:
    """The file of a project module (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``), if any."""
    if module.split(".", maxsplit=1)[0] not in BUNDLED_PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> Iterable[str]:
    """Every module name an ``import`` in ``path`` may refer to (``from a import b`` names both
    ``a`` and ``a.b``: ``b`` may be a submodule or an attribute)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_closure(entry_module: str, root: Path = REPO_ROOT) -> set[Path]:
    """The project files ``entry_module`` needs: itself, what it imports, and every package
    ``__init__.py`` on the way, transitively."""
    seen: set[str] = set()
    files: set[Path] = set()
    pending = [entry_module]
    while pending:
        module = pending.pop()
        for name in _with_parents(module):
            if name in seen:
                continue
            seen.add(name)
            path = _module_file(name, root)
            if path is None:
                continue
            files.add(path)
            pending.extend(_imported_modules(path, name))
    return files


def handler_module(function_name: str) -> str:
    return f"functions.{function_name}.handler"


def bundle_files(function_name: str, root: Path = REPO_ROOT) -> list[str]:
    """Repository-relative paths of every file in the function's asset, sorted."""
    files = import_closure(handler_module(function_name), root)
    own = root / "functions" / function_name
    files.update(
        p
        for p in own.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    )
    return sorted(p.relative_to(root).as_posix() for p in files)


def asset_excludes(function_name: str, root: Path = REPO_ROOT) -> list[str]:
    """Glob excludes for ``Code.from_asset(root)`` that keep exactly :func:`bundle_files`
    (a folder must be re-included for the walk to enter it)."""
    keep = bundle_files(function_name, root)
    folders = sorted({parent for path in keep for parent in _folders(path)})
    return ["*", ".*", *(f"!{f}" for f in folders), *(f"!{p}" for p in keep), "**/__pycache__"]


def _folders(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
