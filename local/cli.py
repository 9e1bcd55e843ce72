"""The `breakaway` command: one CLI for the project.

Each capability registers its own subcommands: a module listed in ``COMMAND_MODULES`` exposes
``register(subparsers)``, which adds its subparsers and sets ``func`` (``(args) -> int``) on each.
Modules are imported only when the CLI runs, so one broken optional dependency never hides
the rest of the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shared.cli import CliError

COMMAND_MODULES: tuple[str, ...] = (
    "simulator.cli",
    "simulator.race_cli",
    "simulator.audit_cli",
    "local.commands",
    "local.demo",
    "infra.capacity.command",
)
"""Modules that register subcommands, in the order they appear in ``--help``."""


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="breakaway",
        description="Breakaway: a serverless streaming race leaderboard (local stack, "
        "simulator, capacity model).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except CliError as exc:
        print(f"breakaway {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    # Run as `python -m local.cli`, this file is `__main__`; subcommands raise `local.cli.CliError`,
    # a different class from this module's copy, so dispatch through the imported module.
    from local.cli import main as _main

    sys.exit(_main())
