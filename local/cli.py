"""The `breakaway` command: one CLI for the project (subcommands are added per capability)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("breakaway: no subcommands yet")
