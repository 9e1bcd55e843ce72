"""`breakaway rider history` and the records `breakaway race results` shows, against the real
API: the handler behind the local API gateway (127.0.0.1, a free port) on moto, a closed race's
placings flagged and the history and records stored as the closer stores them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from functions.leaderboard_api import handler as handler_module
from local.aws.api_gateway import LocalApiGateway
from local.cli import main
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.placings import Placing, Placings, Tally, compute_placings
from shared.races import EnteredRider, Entry
from tests.leaderboard_api.helpers import STANDINGS, STARTS, Db, clock, db
from tests.simulator.test_race_cli import table_rows

__all__ = ["clock", "db"]

HOUR = 3_600_000
GP = RaceRef("gp", "Spring GP", STARTS - 2 * HOUR, 1_800)
EARLIER = RaceRef("crit", "Club Crit", STARTS - 30 * 24 * HOUR, 1_800)
FIELD = [
    EnteredRider(Entry(rider_id="ana", name="Ana", class_id=2)),
    EnteredRider(Entry(rider_id="bo", name="Bo", class_id=2)),
    EnteredRider(Entry(rider_id="cy", name="Cy", class_id=3)),
]
TALLIES = {"ana": Tally(180_000, 1_795), "bo": Tally(150_000, 1_790), "cy": Tally(90_000, 1_700)}


def flag(rows: tuple[Placing, ...]) -> tuple[Placing, ...]:
    """Ana set a personal best and the class 2 record; Cy a personal best."""
    return tuple(
        replace(p, personal_best=p.rider_id in {"ana", "cy"}, record=p.rider_id == "ana")
        for p in rows
    )


def result(
    rider: str, race: RaceRef, points: int, ranks: tuple[int, int], **flags: bool
) -> RiderResult:
    return RiderResult(
        rider, rider.title(), race, 2, ranks[0], ranks[1], points, 1_795,
        flags.get("pb", False), flags.get("record", False),
    )  # fmt: skip


@pytest.fixture
def api_url(db: Db) -> Iterator[str]:
    db.put_race("gp", starts_at=GP.starts_at, duration_s=GP.duration_s, name=GP.name)
    placings = compute_placings(FIELD, TALLIES)
    db.close(
        "gp", Placings(flag(placings.overall), {c: flag(p) for c, p in placings.by_class.items()})
    )
    store = DynamoHistoryStore(db.client, STANDINGS)
    store.put_results(
        [
            result("ana", EARLIER, 160_000, (2, 2), pb=True),
            result("ana", GP, 180_000, (1, 1), pb=True, record=True),
        ]
    )
    class_2 = ClassRecords(2, 1_800).merged(
        [Best("ana", "Ana", 2, 180_000, 1_795, GP), Best("bo", "Bo", 2, 150_000, 1_790, GP)]
    )
    assert store.save_records(class_2)
    with LocalApiGateway(handler_module.handler) as gateway:
        yield gateway.url


def test_rider_history_shows_the_races_newest_first(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rider", "history", "ana", "--api-url", api_url]) == 0

    out = capsys.readouterr().out
    assert "rider ana: closed races, newest first" in out
    assert table_rows(out) == [
        ["starts (UTC)", "race", "name", "duration s", "class", "rank", "class rank", "points",
         "seconds", "marks"],
        ["2026-11-22 17:00:00Z", "gp", "Spring GP", "1800", "2", "1", "1", "180,000", "1795",
         "PB, record"],
        ["2026-10-23 19:00:00Z", "crit", "Club Crit", "1800", "2", "2", "2", "160,000", "1795",
         "PB"],
    ]  # fmt: skip


def test_rider_history_stops_at_the_limit(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rider", "history", "ana", "--limit", "1", "--api-url", api_url]) == 0

    assert [r[1] for r in table_rows(capsys.readouterr().out)] == ["race", "gp"]


def test_a_rider_with_no_closed_race_is_said(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rider", "history", "zed", "--api-url", api_url]) == 0

    assert capsys.readouterr().out.endswith("rider zed has no closed race\n")


def test_a_bad_rider_id_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["rider", "history", "ana!", "--api-url", "http://127.0.0.1:1"])
    assert exit_.value.code == 2
    assert "RIDER_ID" in capsys.readouterr().err


def test_race_results_mark_bests_and_show_the_class_records(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["race", "results", "gp", "--api-url", api_url]) == 0

    out = capsys.readouterr().out
    assert "class 2 records, 1800 s races" in out
    assert out.endswith("class 3: no records in 1800 s races yet\n")
    assert table_rows(out) == [
        ["rank", "rider", "name", "class", "points", "seconds", "outcome", "marks"],
        ["1", "ana", "Ana", "2", "180,000", "1795", "ranked", "PB, record"],
        ["2", "bo", "Bo", "2", "150,000", "1790", "ranked", ""],
        ["3", "cy", "Cy", "3", "90,000", "1700", "ranked", "PB"],
        ["rank", "rider", "name", "points", "seconds", "race", "set (UTC)", "holder"],
        ["1", "ana", "Ana", "180,000", "1795", "Spring GP", "2026-11-22 17:00:00Z", "record"],
        ["2", "bo", "Bo", "150,000", "1790", "Spring GP", "2026-11-22 17:00:00Z", ""],
    ]
