"""Races as the organiser runs them: the status every reader derives, the early close, and the
request models' rules (shared/races.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.contract import describe
from shared.races import Entries, NewRace, Race, RaceStatus

START = 1_800_000_000_000


def race(**changes: object) -> Race:
    request = NewRace.model_validate(
        {"raceId": "r1", "name": "Club Sprint", "startsAt": START, "durationS": 600, "graceS": 30}
    )
    made = Race.new(request, created_at=START - 60_000)
    return Race(**{**{f: getattr(made, f) for f in made.__slots__}, **changes})  # type: ignore[arg-type]


def test_closes_at_is_the_start_plus_duration_and_grace() -> None:
    r = race()
    assert r.closes_at == START + 630_000
    assert r.ends_at == START + 600_000
    assert r.close_due_at == START + 635_000


@pytest.mark.parametrize(
    ("now", "state", "status"),
    [
        (START - 1, "open", RaceStatus.SCHEDULED),
        (START, "open", RaceStatus.RUNNING),
        (START + 629_999, "open", RaceStatus.RUNNING),
        (START + 630_000, "open", RaceStatus.CLOSING),
        (START + 10, "closing", RaceStatus.CLOSING),
        (START + 700_000, "closed", RaceStatus.CLOSED),
        (START - 5, "closed", RaceStatus.CLOSED),
    ],
)
def test_status_is_derived_from_the_clock_and_the_closer_s_state(
    now: int, state: str, status: RaceStatus
) -> None:
    assert race(state=state).status(now) is status


def test_readings_are_accepted_until_closes_at_while_open() -> None:
    assert race().accepts_readings(START + 629_999)
    assert not race().accepts_readings(START + 630_000)
    assert not race(state="closing").accepts_readings(START)


def test_an_early_close_is_grace_from_now_unless_the_scheduled_close_is_sooner() -> None:
    assert race().closed_early(START + 100_000).closes_at == START + 130_000
    assert race().closed_early(START + 610_000).closes_at == START + 630_000


def test_entries_name_each_rider_once_and_at_most_a_thousand() -> None:
    one = {"riderId": "ana", "name": "Ana", "classId": 1}
    with pytest.raises(ValidationError) as twice:
        Entries.model_validate({"entries": [one, one]})
    assert "entries: rider ana is given twice" in describe(twice.value)
    with pytest.raises(ValidationError) as many:
        Entries.model_validate({"entries": [{**one, "riderId": f"r{i}"} for i in range(1001)]})
    assert describe(many.value).startswith("entries: List should have at most 1000 items")


def test_an_entry_s_name_must_be_printable() -> None:
    with pytest.raises(ValidationError) as caught:
        Entries.model_validate(
            {"entries": [{"riderId": "ana", "name": "Ana\tAlvarez", "classId": 1}]}
        )
    assert describe(caught.value) == (
        "entries.0.name: must contain only printable characters (got 'Ana\\tAlvarez')"
    )
