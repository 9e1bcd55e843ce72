"""Each Lambda ships its handler's import closure and nothing else: no fakes, no CLI, no local
stack. The lists are exact on purpose: a module that starts or stops shipping is a decision
a reviewer should see in the diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundle import asset_excludes, bundle_files, import_closure
from tests.infra.helpers import REPO, Assembly, function_by_handler

SHARED = [
    "shared/__init__.py",
    "shared/contract.py",
    "shared/dynamodb.py",
    "shared/history.py",
    "shared/items.py",
    "shared/keys.py",
    "shared/names.py",
    "shared/placings.py",
    "shared/ports.py",
    "shared/races.py",
    "shared/ranking.py",
    "shared/retry.py",
    "shared/scoring.py",
    "shared/settings.py",
    "shared/standings.py",
    "shared/warm.py",
]
"""What every function needs of ``shared/`` (the DynamoDB adapter brings most of it)."""


def _function(name: str, *modules: str, shared: tuple[str, ...] = ()) -> list[str]:
    own = [f"functions/{name}/{m}" for m in ("__init__.py", *modules)]
    return ["functions/__init__.py", *sorted(own), *sorted([*SHARED, *shared])]


EXPECTED: dict[str, list[str]] = {
    "stream_processor": _function(
        "stream_processor",
        "adapters.py",
        "batch.py",
        "cards.py",
        "config.py",
        "handler.py",
        "logic.py",
        shared=("shared/counting.py", "shared/race_store.py"),
    ),
    "race_closer": _function(
        "race_closer",
        "adapters.py",
        "config.py",
        "handler.py",
        "logic.py",
        # the race book's and the history's DynamoDB adapters, the archive's race card
        shared=("shared/archive.py", "shared/history_store.py", "shared/race_store.py"),
    ),
    "leaderboard_api": _function(
        "leaderboard_api",
        "adapters.py",
        "config.py",
        "handler.py",
        "history.py",
        "logic.py",
        "models.py",
        "organiser.py",
        "static/index.html",
        # the organiser's routes write through the race book; histories and records are read
        # through the history store; the live board and the rider lookup read (and build) the
        # live ranking; each route's Cache-Control comes from shared/routes.py
        shared=(
            "shared/history_store.py",
            "shared/live_store.py",
            "shared/race_store.py",
            "shared/routes.py",
        ),
    ),
}
NEVER_SHIPPED = (
    "shared/memory.py",
    "functions/leaderboard_api/memory.py",
    "shared/cli.py",
    "shared/tables.py",
)
"""The in-memory twins, the CLI's argument types and the tables' CreateTable form."""


def _asset_files(dev: Assembly, name: str) -> tuple[Path, list[str]]:
    _, fn = function_by_handler(dev, f"functions.{name}.handler.handler")
    root = dev.outdir / f"asset.{fn['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    return root, sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.synth
def test_each_function_asset_holds_exactly_its_import_closure(dev: Assembly, name: str) -> None:
    _, files = _asset_files(dev, name)
    assert files == EXPECTED[name]
    assert not set(files) & set(NEVER_SHIPPED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.synth
def test_each_handler_imports_from_its_asset_alone(dev: Assembly, name: str) -> None:
    """The repository is taken off ``sys.path``: a module the closure missed fails here."""
    root, _ = _asset_files(dev, name)
    probe = (
        "import importlib, sys\n"
        f"sys.path = [p for p in sys.path if p not in ('', {str(REPO)!r})]\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"module = importlib.import_module('functions.{name}.handler')\n"
        "assert callable(module.handler)\n"
        "print(module.__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(root / "functions" / name / "handler.py")


def test_the_closure_follows_relative_lazy_and_from_imports(tmp_path: Path) -> None:
    files = {
        "functions/__init__.py": "",
        "functions/f/__init__.py": "",
        "functions/f/handler.py": "from . import logic\nfrom shared import a\n",
        "functions/f/logic.py": "def go():\n    from shared.b import thing\n    return thing\n",
        "functions/f/unused.py": "",
        "functions/g/handler.py": "",
        "shared/__init__.py": "",
        "shared/a.py": "import json\nimport shared.c\n",
        "shared/b.py": "thing = 1\n",
        "shared/c.py": "",
        "shared/fake.py": "",
        "local/x.py": "",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    closure = import_closure("functions.f.handler", tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in closure) == [
        "functions/__init__.py",
        "functions/f/__init__.py",
        "functions/f/handler.py",
        "functions/f/logic.py",
        "shared/__init__.py",
        "shared/a.py",
        "shared/b.py",
        "shared/c.py",
    ]


def test_the_excludes_reinclude_every_folder_on_the_way() -> None:
    excludes = asset_excludes("leaderboard_api")
    assert excludes[:2] == ["*", ".*"]
    assert "!functions/leaderboard_api/static" in excludes
    assert all(f"!{path}" in excludes for path in bundle_files("leaderboard_api"))
