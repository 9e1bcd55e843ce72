"""The closer archives each closed race's card: once the placings are stored, before the race
is marked closed, the same object however often the close runs; the S3 adapter puts it and
turns a refusal into a retry."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.race_closer.adapters import S3ArchiveWriter
from shared.archive import ArchiveObject, card_from_lines, card_object
from shared.ports import TransientError
from tests.archive.helpers import race_card
from tests.race_closer.conftest import RACE_ID
from tests.race_closer.test_logic import setup


@dataclass
class Writer:
    """Keeps what was put, by key; fails the first ``failing`` puts."""

    failing: int = 0
    puts: list[ArchiveObject] = field(default_factory=list)

    def put(self, obj: ArchiveObject) -> None:
        if self.failing:
            self.failing -= 1
            raise TransientError("archive: injected")
        self.puts.append(obj)


def lines(obj: ArchiveObject) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(obj.body).splitlines()]


def test_closing_a_race_archives_its_card() -> None:
    s = setup()
    s.closer.archive = writer = Writer()
    s.closer.close(RACE_ID)
    (obj,) = writer.puts
    assert obj.key == "entries/day=2025-11-22/race-1.json.gz"
    assert [(e["riderId"], e["classId"], e["deviceId"], e["disqualified"]) for e in lines(obj)] == [
        ("ann", 1, None, False),
        ("bob", 2, "bike-7", False),
        ("cat", 1, None, False),
        ("dan", 1, None, False),
        ("eve", 2, None, False),
        ("fay", 3, None, False),
        ("gus", 2, None, False),
        ("hal", 1, None, True),
    ]
    assert lines(obj)[0] == {
        "raceId": RACE_ID,
        "raceName": "Evening Crit",
        "startsAt": 1_763_800_000_000,
        "durationS": 300,
        "graceS": 30,
        "closesAt": 1_763_800_330_000,
        "riderId": "ann",
        "name": "Ann",
        "classId": 1,
        "deviceId": None,
        "disqualified": False,
    }


def test_a_failed_archive_write_leaves_the_race_closing_and_a_retry_writes_the_same_card() -> None:
    clean, retried = setup(), setup()
    clean.closer.archive = clean_writer = Writer()
    retried.closer.archive = writer = Writer(failing=1)
    clean.closer.close(RACE_ID)
    with pytest.raises(TransientError):
        retried.closer.close(RACE_ID)
    race = retried.book.get_race(RACE_ID)
    assert race is not None
    assert race.state == "closing"  # not closed: the retry comes back to archive it
    retried.closer.close(RACE_ID)
    retried.closer.close(RACE_ID)  # a duplicate close of the closed race writes nothing
    assert [o.key for o in writer.puts] == [o.key for o in clean_writer.puts]
    assert writer.puts[0].body == clean_writer.puts[0].body  # byte for byte


def test_the_card_reads_back_as_the_card() -> None:
    obj = card_object(race_card())
    assert card_from_lines(lines(obj)) == race_card()
    assert card_object(race_card()) == obj  # same card, same bytes


@mock_aws
def test_the_s3_adapter_puts_the_object_and_a_refusal_is_transient() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="archive")
    obj = card_object(race_card())
    S3ArchiveWriter(s3, "archive").put(obj)
    assert s3.get_object(Bucket="archive", Key=obj.key)["Body"].read() == obj.body
    with pytest.raises(TransientError, match=r"^archive entries/day=2025-11-26/crit-1.json.gz: "):
        S3ArchiveWriter(s3, "no-such-bucket").put(obj)
