"""The `breakaway` command: one CLI for the project.

Each capability registers its own subcommands: a module listed in ``COMMAND_MODULES`` exposes
``register(subparsers)``, which adds its subparsers and sets ``func`` (``(args) -> int``) on each.
Modules are imported only when the CLI runs, so one broken optional dependency never hides
the rest of the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

COMMAND_MODULES: tuple[str, ...] = (
    "simulator.cli",
    "local.commands",
    "local.demo",
    "infra.capacity",
)
"""Modules that register subcommands, in the order they appear in ``--help``."""


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 2, no traceback."""


N = TypeVar("N", int, float)


def bounded(
    convert: Callable[[str], N],
    low: N | None = None,
    high: N | None = None,
    *,
    noun: str,
    out_of_range: str,
) -> Callable[[str], N]:
    """An argparse ``type=``: ``convert`` the text, refuse it outside [low, high].

    Messages read ``'x' is not <noun>`` and ``<text> <out_of_range>``; a float must be finite.
    """

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if (
            (isinstance(value, float) and not math.isfinite(value))
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"{text} {out_of_range}")
        return value

    return parse


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
