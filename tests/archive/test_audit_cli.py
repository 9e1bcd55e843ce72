"""``breakaway audit``'s own parts: which keys of the local archive it copies, that it copies
exactly those from S3, and what it says when a race has no card in the archive."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.cli import CliError
from simulator.archive import DuckArchive, mirror
from simulator.audit_cli import archive_prefixes, run
from tests.archive.helpers import (
    DAY_BEFORE,
    NEXT_DAY,
    START_DAY,
    STARTS_AT,
    stored_placings,
    write_archive,
)


def test_the_days_a_race_spans_and_its_cards_day_are_copied() -> None:
    assert archive_prefixes(["2025-12-31", "2026-01-02", "2026-01-01"]) == [
        "telemetry/day=2025-12-31/",
        "telemetry/day=2026-01-01/",
        "telemetry/day=2026-01-02/",
        "entries/day=2026-01-01/",
    ]


@mock_aws
def test_mirror_copies_exactly_the_objects_under_the_prefixes(tmp_path: Path) -> None:
    source = tmp_path / "bucket"
    write_archive(source)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="archive")
    keys = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.gz"))
    for key in keys:
        s3.put_object(Bucket="archive", Key=key, Body=(source / key).read_bytes())
    copy = tmp_path / "copy"
    copied = mirror(s3, "archive", archive_prefixes([START_DAY, NEXT_DAY, START_DAY]), copy)
    got = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*.gz"))
    assert got == [k for k in keys if not k.startswith(f"telemetry/day={DAY_BEFORE}/")]
    assert copied == len(got) == len(keys) - 1


def test_a_race_without_a_card_in_the_archive_is_not_audited(tmp_path: Path) -> None:
    write_archive(tmp_path)
    with pytest.raises(CliError, match=r"^race other: no card in the archive \(entries/day="):
        run(DuckArchive(tmp_path), "other", STARTS_AT, (DAY_BEFORE, NEXT_DAY), stored_placings())
