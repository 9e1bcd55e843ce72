"""`breakaway race`: the organiser's commands, against the local stack or a deployed one; and
`breakaway rider history`, a rider's closed races.

``create``, ``enter``, ``close``, ``disqualify``, ``list`` and ``results`` call the organiser's
API (:mod:`simulator.organiser`): the local stack's (no credentials) or, with ``--target aws``,
an environment's, each request signed with the caller's AWS credentials. What the API answers
is shown as a table; what it refuses is one line with the API's own message, exit status 2.
``results`` marks the personal bests and records the race set, and shows the class records
for races of its length (the classes placed, or the one asked for).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field, ValidationError

from shared.cli import POSITIVE_INT, CliError, arg_type, env_argument, id_argument
from shared.contract import MAX_RACE_SECONDS, NUM_CLASSES, Name, describe
from shared.names import DEFAULT_ENV, LOCAL_ENDPOINTS_FILE
from shared.races import DEFAULT_GRACE_S, MAX_GRACE_S, RACE_STATUSES, Entry, NewRace
from simulator.organiser import ApiError, ApiUnreachableError, Organiser

T = TypeVar("T")
ENTRY_COLUMNS: Final = ("riderId", "name", "classId", "deviceId")
"""An entries file's fields (CSV header, JSON keys); ``deviceId`` may be left out."""
DURATION_S = arg_type(Annotated[int, Field(ge=1, le=MAX_RACE_SECONDS)])
GRACE_S = arg_type(Annotated[int, Field(ge=0, le=MAX_GRACE_S)])
CLASS_ID = arg_type(Annotated[int, Field(ge=1, le=NUM_CLASSES)])
_name = arg_type(Name)
HISTORY_LIMIT = arg_type(Annotated[int, Field(ge=1, le=1_000)])
RECORDS_SHOWN: Final = 10
"""Rows of each class's records ``race results`` shows."""
_RELATIVE = re.compile(r"^\+(\d+)([smh]?)$")
_UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600}


def starts_at(text: str, now: Callable[[], float] = time.time) -> int:
    """``--starts-at``: epoch milliseconds, ``+N`` (seconds; ``+5m``, ``+1h``) from now, or an
    ISO 8601 time with its zone (``2026-12-01T18:00:00Z``)."""
    if text.isdigit():
        return int(text)
    relative = _RELATIVE.match(text)
    if relative:
        return round(now() * 1000) + 1000 * int(relative.group(1)) * _UNIT_S[relative.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not epoch milliseconds, +seconds or an ISO 8601 time"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (e.g. Z or +01:00)")
    return round(when.timestamp() * 1000)


# --- the commands --------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    target = argparse.ArgumentParser(add_help=False)
    _add_target_arguments(target.add_argument_group("where"))
    race = subparsers.add_parser(
        "race",
        help="organise races: create, enter riders, close, disqualify, list, results",
        description="The organiser's commands, against the local stack or (--target aws) a "
        "deployed environment, whose organiser routes are signed with your AWS credentials.",
    )
    commands = race.add_subparsers(dest="race_command", metavar="COMMAND")
    commands.required = True
    _register_create(commands, target)
    _register_enter(commands, target)
    close = commands.add_parser(
        "close", parents=[target], help="close a race: graceS from now, or at its close if sooner"
    )
    close.add_argument("race_id", type=id_argument, metavar="RACE_ID")
    close.set_defaults(func=run_close)
    dsq = commands.add_parser(
        "disqualify", parents=[target], help="disqualify an entered rider (listed as DSQ)"
    )
    dsq.add_argument("race_id", type=id_argument, metavar="RACE_ID")
    dsq.add_argument("rider_id", type=id_argument, metavar="RIDER_ID")
    dsq.set_defaults(func=run_disqualify)
    listing = commands.add_parser("list", parents=[target], help="races, newest first")
    listing.add_argument("--status", choices=RACE_STATUSES, help="only races in this status")
    listing.add_argument("--limit", type=POSITIVE_INT, help="at most this many (the API's page)")
    listing.set_defaults(func=run_list)
    results = commands.add_parser(
        "results", parents=[target], help="a closed race's final placings"
    )
    results.add_argument("race_id", type=id_argument, metavar="RACE_ID")
    results.add_argument("--class", dest="class_id", type=CLASS_ID, help="one class (1-6)")
    results.set_defaults(func=run_results)
    _register_rider(subparsers, target)


def _register_rider(subparsers: Any, target: argparse.ArgumentParser) -> None:
    rider = subparsers.add_parser(
        "rider",
        help="a rider's closed races: placings, personal bests, records",
        description="A rider's history, from the API's public reads (the local stack, or "
        "--target aws a deployed environment).",
    )
    commands = rider.add_subparsers(dest="rider_command", metavar="COMMAND")
    commands.required = True
    history = commands.add_parser(
        "history", parents=[target], help="the rider's closed races, newest first"
    )
    history.add_argument("rider_id", type=id_argument, metavar="RIDER_ID")
    history.add_argument(
        "--limit", type=HISTORY_LIMIT, default=20, help="at most this many races (default 20)"
    )
    history.set_defaults(func=run_rider_history)


def _add_target_arguments(where: Any) -> None:
    where.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="the local stack (its endpoints file) or a deployed environment (default local)",
    )
    where.add_argument(
        "--env", type=env_argument, help=f"the deployed environment (default {DEFAULT_ENV})"
    )
    where.add_argument(
        "--endpoints-file",
        type=Path,
        default=Path(LOCAL_ENDPOINTS_FILE),
        help=f"the local stack's endpoints (default {LOCAL_ENDPOINTS_FILE})",
    )
    where.add_argument("--region", help="AWS region (default: the AWS configuration)")
    where.add_argument("--api-url", help="the API's URL (default: endpoints file / ApiUrl)")


def _register_create(commands: Any, target: argparse.ArgumentParser) -> None:
    create = commands.add_parser("create", parents=[target], help="schedule a race")
    create.add_argument("race_id", type=id_argument, metavar="RACE_ID")
    create.add_argument("--name", type=_name, required=True, help="the race's name")
    create.add_argument(
        "--starts-at",
        type=starts_at,
        required=True,
        metavar="WHEN",
        help="epoch ms, +seconds from now (+90, +5m, +1h) or ISO 8601 with a zone",
    )
    create.add_argument(
        "--duration", type=DURATION_S, required=True, help=f"race seconds, 1-{MAX_RACE_SECONDS}"
    )
    create.add_argument(
        "--grace",
        type=GRACE_S,
        default=DEFAULT_GRACE_S,
        help=f"seconds late readings still count after the end, 0-{MAX_GRACE_S} "
        f"(default {DEFAULT_GRACE_S})",
    )
    create.set_defaults(func=run_create)


def _register_enter(commands: Any, target: argparse.ArgumentParser) -> None:
    enter = commands.add_parser(
        "enter",
        parents=[target],
        help="enter riders (or change entries before the start)",
        description="Enter riders from a file and/or --rider options. A JSON file holds a list "
        f'of entries (or {{"entries": [...]}}) with the keys {", ".join(ENTRY_COLUMNS)}; a CSV '
        "file has those as its header. deviceId, when given, is the only device whose readings "
        "count for the rider.",
    )
    enter.add_argument("race_id", type=id_argument, metavar="RACE_ID")
    enter.add_argument("--file", type=Path, help="entries, .json or .csv")
    enter.add_argument(
        "--rider",
        action="append",
        default=[],
        metavar="ID,NAME,CLASS[,DEVICE]",
        help="one entry (repeatable); quote a name with a comma as CSV does",
    )
    enter.set_defaults(func=run_enter)


def organiser(args: argparse.Namespace) -> Organiser:
    from simulator.targets import TargetError, organiser_for

    if args.env and args.target == "local":
        raise CliError("--env picks a deployed environment: use it with --target aws")
    try:
        return organiser_for(
            args.target,
            env=args.env or DEFAULT_ENV,
            endpoints_file=args.endpoints_file,
            region=args.region,
            api_url=args.api_url,
        )
    except TargetError as exc:
        raise CliError(str(exc)) from None


def call(args: argparse.Namespace, request: Callable[[Organiser], T]) -> T:
    """One call of the API; what it refuses, or no answer, as one line (CliError)."""
    api = organiser(args)
    try:
        return request(api)
    except ApiError as exc:
        raise CliError(f"{exc.message} (HTTP {exc.status})") from None
    except ApiUnreachableError as exc:
        hint = ": is the local stack up? (`breakaway up`)" if args.target == "local" else ""
        raise CliError(f"{exc}{hint}") from None


def run_create(args: argparse.Namespace) -> int:
    new = NewRace(
        race_id=args.race_id,
        name=args.name,
        starts_at=args.starts_at,
        duration_s=args.duration,
        grace_s=args.grace,
    )
    race = call(args, lambda api: api.create_race(new))
    show_races([race], title=f"race {args.race_id} created")
    return 0


def run_enter(args: argparse.Namespace) -> int:
    entries = read_entries(args.file, args.rider)
    counts = call(args, lambda api: api.enter(args.race_id, entries))
    print(f"race {args.race_id}: {counts['added']} entered, {counts['updated']} updated")
    return 0


def run_close(args: argparse.Namespace) -> int:
    race = call(args, lambda api: api.close(args.race_id))
    closes = f" at {_time(race['closesAt'])}" if "closesAt" in race else ""
    print(f"race {args.race_id} closes{closes}")
    return 0


def run_disqualify(args: argparse.Namespace) -> int:
    call(args, lambda api: api.disqualify(args.race_id, args.rider_id))
    print(f"rider {args.rider_id} disqualified in race {args.race_id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    page = call(args, lambda api: api.races(args.status, args.limit))
    show_races(page["races"], title="races" + (f" ({args.status})" if args.status else ""))
    return 0


def run_results(args: argparse.Namespace) -> int:
    entries = call(args, lambda api: api.results(args.race_id, args.class_id))
    scope = f"class {args.class_id}" if args.class_id else "overall"
    show_results(entries, title=f"race {args.race_id}: final placings, {scope}")
    placed = {e["classId"] for e in entries if e.get("rank") is not None}
    classes = [args.class_id] if args.class_id else sorted(placed)
    if classes:
        duration = int(call(args, lambda api: api.race(args.race_id))["durationS"])
        for c in classes:
            rows = class_records(args, c, duration)
            if rows:
                show_records(rows, title=f"class {c} records, {duration} s races")
            else:
                print(f"class {c}: no records in {duration} s races yet")
    return 0


def class_records(args: argparse.Namespace, class_id: int, duration_s: int) -> list[dict[str, Any]]:
    return call(args, lambda api: api.records(class_id, duration_s, RECORDS_SHOWN))


def run_rider_history(args: argparse.Namespace) -> int:
    results = call(args, lambda api: api.rider_results(args.rider_id, args.limit))
    show_history(results, title=f"rider {args.rider_id}: closed races, newest first")
    if not results:
        print(f"rider {args.rider_id} has no closed race")
    return 0


# --- entries -------------------------------------------------------------------------------------
def read_entries(path: Path | None, riders: Sequence[str]) -> list[Entry]:
    """The entries of the file and the ``--rider`` options, each validated as the API does."""
    raw: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        raw += _file_entries(path)
    for text in riders:
        values = next(csv.reader([text]))
        if not 3 <= len(values) <= len(ENTRY_COLUMNS):
            raise CliError(f"--rider {text!r}: give ID,NAME,CLASS[,DEVICE]")
        raw.append((f"--rider {text!r}", _typed(dict(zip(ENTRY_COLUMNS, values, strict=False)))))
    if not raw:
        raise CliError("no entries: give --file and/or --rider")
    entries: list[Entry] = []
    seen: set[str] = set()
    for where, fields in raw:
        try:
            entry = Entry.model_validate(fields)
        except ValidationError as exc:
            raise CliError(f"{where}: {describe(exc)}") from None
        if entry.rider_id in seen:
            raise CliError(f"{where}: rider {entry.rider_id} is given twice")
        seen.add(entry.rider_id)
        entries.append(entry)
    return entries


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    """Text fields as an entry's types: the class a number, an empty device none."""
    out = {k: v for k, v in fields.items() if v not in ("", None)}
    if isinstance(out.get("classId"), str) and out["classId"].strip().isdigit():
        out["classId"] = int(out["classId"])
    return out


def _file_entries(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = set(ENTRY_COLUMNS[:3]) - set(reader.fieldnames or ())
        if missing:
            raise CliError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        return [(f"{path}:{n + 2}", _typed(dict(row))) for n, row in enumerate(reader)]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path}: not JSON ({exc})") from None
    listed = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
        raise CliError(f'{path}: expected a list of entries, or {{"entries": [...]}}')
    return [(f"{path}: entry {n + 1}", e) for n, e in enumerate(listed)]


# --- output --------------------------------------------------------------------------------------
def _time(epoch_ms: Any) -> str:
    if not isinstance(epoch_ms, int):
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(title: str, columns: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, right in columns:
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=200).print(table)


def show_races(races: Sequence[dict[str, Any]], title: str) -> None:
    columns = [
        ("race", False),
        ("name", False),
        ("status", False),
        ("starts (UTC)", False),
        ("duration s", True),
        ("grace s", True),
        ("closes (UTC)", False),
        ("entrants", True),
    ]
    rows = [
        [
            str(r.get("raceId", "")),
            str(r.get("name", "")),
            str(r.get("status", "")),
            _time(r.get("startsAt")),
            str(r.get("durationS", "")),
            str(r.get("graceS", "")),
            _time(r.get("closesAt")),
            str(r.get("entrants", "")),
        ]
        for r in races
    ]
    _table(title, columns, rows)


def show_results(entries: Sequence[dict[str, Any]], title: str) -> None:
    columns = [
        ("rank", True),
        ("rider", False),
        ("name", False),
        ("class", True),
        ("points", True),
        ("seconds", True),
        ("outcome", False),
        ("marks", False),
    ]
    rows = [
        [
            "-" if e.get("rank") is None else str(e["rank"]),
            str(e["riderId"]),
            str(e["name"]),
            str(e["classId"]),
            f"{e['points']:,}",
            str(e["seconds"]),
            str(e["outcome"]),
            marks(e),
        ]
        for e in entries
    ]
    _table(title, columns, rows)


def marks(row: dict[str, Any]) -> str:
    """``PB`` (a personal best), ``record`` (holds the class record), both, or nothing."""
    return ", ".join(
        text for key, text in (("personalBest", "PB"), ("record", "record")) if row.get(key)
    )


def show_history(results: Sequence[dict[str, Any]], title: str) -> None:
    columns = [
        ("starts (UTC)", False),
        ("race", False),
        ("name", False),
        ("duration s", True),
        ("class", True),
        ("rank", True),
        ("class rank", True),
        ("points", True),
        ("seconds", True),
        ("marks", False),
    ]
    rows = [
        [
            _time(r["race"]["startsAt"]),
            str(r["race"]["raceId"]),
            str(r["race"]["name"]),
            str(r["race"]["durationS"]),
            str(r["classId"]),
            str(r["rankOverall"]),
            str(r["rankClass"]),
            f"{r['points']:,}",
            str(r["seconds"]),
            marks(r),
        ]
        for r in results
    ]
    _table(title, columns, rows)


def show_records(records: Sequence[dict[str, Any]], title: str) -> None:
    columns = [
        ("rank", True),
        ("rider", False),
        ("name", False),
        ("points", True),
        ("seconds", True),
        ("race", False),
        ("set (UTC)", False),
        ("holder", False),
    ]
    rows = [
        [
            str(r["rank"]),
            str(r["riderId"]),
            str(r["name"]),
            f"{r['points']:,}",
            str(r["seconds"]),
            str(r["race"]["name"]),
            _time(r["race"]["startsAt"]),
            "record" if r["holder"] else "",
        ]
        for r in records
    ]
    _table(title, columns, rows)
