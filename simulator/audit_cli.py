"""`breakaway audit --race RACE_ID`: a closed race's placings recomputed from the archive and
compared, rider by rider, with the placings the closer stored.

The stored placings come from the API (``GET /races/{id}/results``, overall and per class);
the race's card and its records from the archive, by the named queries' own SQL
(:mod:`shared.archive_sql`): locally with DuckDB over the local stack's archive bucket, with
``--target aws`` through Athena in the environment's workgroup. The counting is
:mod:`shared.audit` (the processor's rules). Prints ``exact``, or each difference and exits 1.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from shared.archive import card_from_lines, day_of, day_range
from shared.archive_sql import RACE_CARD, RACE_DELIVERIES, Query
from shared.audit import AuditResult, audit
from shared.cli import CliError, id_argument
from shared.contract import CLASS_IDS
from shared.names import DEFAULT_ENV, athena_workgroup_name, glue_database_name
from shared.placings import OVERALL, class_scope
from simulator.race_cli import _add_target_arguments, call

DIFFERENCES_EXIT = 1


class Archive(Protocol):
    def query(self, query: Query, parameters: Sequence[object] = ()) -> list[dict[str, Any]]: ...


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="recompute a closed race's placings from the archive and compare them",
        description="Recount a closed race from the archive (the processor's own rules) and "
        "compare the placings, overall and per class, rider by rider, with the stored ones. "
        "Prints 'exact' or each difference (exit status 1).",
    )
    parser.add_argument("--race", type=id_argument, required=True, metavar="RACE_ID")
    _add_target_arguments(parser.add_argument_group("where"))
    parser.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    race = call(args, lambda api: api.race(args.race))
    if race.get("status") != "closed":
        raise CliError(f"race {args.race} is {race.get('status')}: only a closed race is audited")
    stored = call(args, lambda api: stored_placings(api, args.race))
    first, last = day_range(int(race["startsAt"]), int(race["closesAt"]))
    with tempfile.TemporaryDirectory(prefix="breakaway-audit-") as workdir:
        archive = open_archive(args, [first, last, day_of(int(race["startsAt"]))], Path(workdir))
        result = run(archive, args.race, int(race["startsAt"]), (first, last), stored)
    report(result)
    return 0 if result.exact else DIFFERENCES_EXIT


def stored_placings(api: Any, race_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored placing, by scope (``ALL``, ``C1``..``C6``)."""
    stored = {OVERALL: api.results(race_id)}
    for class_id in CLASS_IDS:
        stored[class_scope(class_id)] = api.results(race_id, class_id)
    return stored


def run(
    archive: Archive,
    race_id: str,
    starts_at: int,
    days: tuple[str, str],
    stored: Mapping[str, Sequence[Mapping[str, Any]]],
) -> AuditResult:
    """The audit of one race on an archive (DuckDB or Athena)."""
    race_card = card_from_lines(archive.query(RACE_CARD, [day_of(starts_at), race_id]))
    if race_card is None:
        raise CliError(
            f"race {race_id}: no card in the archive (entries/day={day_of(starts_at)}/): the "
            "closer archives it when it closes the race"
        )
    rows = archive.query(RACE_DELIVERIES, [*days, race_id])
    return audit(race_card, rows, stored)


def open_archive(args: argparse.Namespace, days: Sequence[str], workdir: Path) -> Archive:
    """DuckDB over a copy of these days of the local archive, or Athena."""
    from simulator.archive import AthenaArchive, DuckArchive, mirror
    from simulator.targets import TargetError, load_local_endpoints

    if args.target == "aws":
        import boto3

        env = args.env or DEFAULT_ENV
        client = boto3.client("athena", region_name=args.region)
        return AthenaArchive(client, athena_workgroup_name(env), glue_database_name(env))
    try:
        endpoints = load_local_endpoints(args.endpoints_file)
    except TargetError as exc:
        raise CliError(str(exc)) from None
    if not endpoints.archive_bucket:
        raise CliError(f"{args.endpoints_file} names no archive bucket: restart the local stack")
    s3 = local_s3(endpoints.aws_endpoint_url, endpoints.region)
    mirror(s3, endpoints.archive_bucket, archive_prefixes(days), workdir)
    return DuckArchive(workdir)


def archive_prefixes(days: Sequence[str]) -> list[str]:
    """The telemetry of every day from the first to the last, and the card's day."""
    from datetime import date, timedelta

    from shared.names import archive_entries_prefix, archive_prefix

    first, last, card_day = (date.fromisoformat(d) for d in days)
    span = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [archive_prefix(d.isoformat()) for d in span] + [
        archive_entries_prefix(card_day.isoformat())
    ]


def local_s3(endpoint_url: str, region: str) -> Any:
    import boto3

    from simulator.targets import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )


def report(result: AuditResult) -> None:
    counted = result.recount
    refused = ", ".join(f"{r.value} {n}" for r, n in sorted(counted.refused.items(), key=str))
    print(
        f"race {result.race_id}: {counted.records} records in the archive, {counted.counted} "
        f"seconds counted, {counted.duplicates} copies, refused: {refused or 'none'}; "
        f"{result.placings_compared} placings compared"
    )
    if result.exact:
        print("exact")
        return
    for difference in result.differences:
        print(difference)
