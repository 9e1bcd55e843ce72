"""The counting rules' two forms agree: the per-rider gate the processor checks each reading
against admits exactly the readings ``refusal`` lets count (shared/counting.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract import Telemetry
from shared.counting import NO_READING, Refusal, refusal, rider_gate
from shared.races import EnteredRider, Entry, Race, card

START = 1_800_000_000_000


def a_race(duration: int, grace: int, state: str) -> Race:
    return Race(
        race_id="r1",
        name="R",
        starts_at=START,
        duration_s=duration,
        grace_s=grace,
        closes_at=START + 1000 * (duration + grace),
        state=state,  # type: ignore[arg-type]
    )


def reading(rider: str, second: int, device: str | None) -> Telemetry:
    return Telemetry(
        v=2,
        event_id=f"e-{rider}-{second}",
        race_id="r1",
        rider_id=rider,
        second=second,
        cadence=90,
        resistance=40,
        device_timestamp=0,
        event="update",
        device_id=device,
    )


ENTRIES = [
    EnteredRider(Entry(rider_id="ana", name="Ana", class_id=1, device_id="bike-1")),
    EnteredRider(Entry(rider_id="bo", name="Bo", class_id=2)),
]
DEVICES = st.sampled_from([None, "bike-1", "bike-2"])


@settings(max_examples=2_000, deadline=None)
@given(
    duration=st.integers(1, 120),
    grace=st.integers(0, 30),
    state=st.sampled_from(["open", "closing", "closed"]),
    exists=st.booleans(),
    rider=st.sampled_from(["ana", "bo", "cy"]),
    second=st.integers(0, 200),
    device=DEVICES,
    now_offset_ms=st.integers(-20_000, 200_000),
    slack=st.integers(0, 10),
)
def test_the_gate_admits_exactly_what_refusal_lets_count(
    duration: int,
    grace: int,
    state: str,
    exists: bool,
    rider: str,
    second: int,
    device: str | None,
    now_offset_ms: int,
    slack: int,
) -> None:
    race = card(a_race(duration, grace, state), ENTRIES) if exists else None
    now = START + now_offset_ms
    r = reading(rider, second, device)
    assert rider_gate(race, rider, now, slack).admits(r) == (refusal(r, race, now, slack) is None)


def test_a_gate_for_what_no_reading_can_pass() -> None:
    race = card(a_race(60, 30, "open"), ENTRIES)
    assert rider_gate(None, "ana", START, 5) is NO_READING
    assert rider_gate(race, "cy", START, 5) is NO_READING
    assert rider_gate(race, "ana", START + 90_000, 5) is NO_READING  # closesAt passed


def test_the_gate_s_last_second_is_the_race_clock_and_slack_within_the_race() -> None:
    race = card(a_race(60, 30, "open"), ENTRIES)
    assert rider_gate(race, "bo", START + 10_999, 5).last_second == 15
    assert rider_gate(race, "bo", START + 58_000, 5).last_second == 59
    assert rider_gate(race, "ana", START, 5).device == "bike-1"
    r = reading("ana", 3, "bike-2")
    assert refusal(r, race, START, 5) == (
        Refusal.WRONG_DEVICE,
        "wrong device: ana rides on bike-1, the reading came from bike-2",
    )
