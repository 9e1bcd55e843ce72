"""Cheating readings, held to the counting rules themselves.

A race is ridden through a recording transport on a fake clock, with the race record the CLI
creates for it (``startsAt`` from :func:`simulator.cli.race_starts_at`). Every reading sent is
put through what the ingest path does (over MQTT the rule writes the topic's device over the
payload's) and then through ``shared.counting.refusal`` at the moment it was sent: the refusals
must be exactly the truth's tally of dead letters, every other reading must pass, and the
readings that pass (less those after a rider's final second, which the merge drops) must score
exactly the truth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from shared.contract import Telemetry, parse_reading
from shared.counting import Refusal, refusal
from shared.races import DEFAULT_FUTURE_SLACK_S, NewRace, Race, RaceCard, card
from shared.scoring import ground_truth
from simulator.cli import race_starts_at
from simulator.faults import FUTURE_LEAD_S, Cheater, Cheats, unknown_race_id
from simulator.fleet import PRODUCER_ID, Fleet
from simulator.model import RaceConfig, rider, riders_of
from simulator.runner import RunOptions, Summary, simulate
from simulator.transports.base import Outgoing
from simulator.transports.memory import MemoryTransport

GRACE_S = 30
MQTT_DEVICES = ("hub-0", "hub-1", "hub-2")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class TimedTransport(MemoryTransport):
    """Keeps each item with the clock reading when it was sent."""

    def __init__(self, clock: Clock, devices: tuple[str, ...], in_payload: bool) -> None:
        super().__init__(devices, device_in_payload=in_payload)
        self.clock = clock
        self.sent: list[tuple[Outgoing, float]] = []

    def send(self, items: list[Outgoing]) -> None:
        super().send(items)
        self.sent += [(item, self.clock()) for item in items]


@dataclass
class Ride:
    summary: Summary
    transport: TimedTransport
    race_card: RaceCard
    fleet: Fleet

    def ingested(self, item: Outgoing) -> Telemetry:
        """The reading as the processor gets it: over MQTT the rule sets the topic's device."""
        reading = parse_reading(item.payload)
        if not self.fleet.in_payload:
            reading = reading.model_copy(update={"device_id": item.device_id})
        return reading

    def judged(self) -> list[tuple[Telemetry, Refusal | None]]:
        out = []
        for item, at in self.transport.sent:
            reading = self.ingested(item)
            # an unknown race has no card; the others are this race's
            race_card = self.race_card if reading.race_id == self.race_card.race.race_id else None
            found = refusal(reading, race_card, round(at * 1000), DEFAULT_FUTURE_SLACK_S)
            out.append((reading, None if found is None else found[0]))
        return out


CONFIG = RaceConfig("race-cheat", riders=60, duration=60, seed=11, start_ms=1_800_000_000_000)
ALL = Cheats(
    future=3,
    past_duration=2,
    wrong_device=4,
    spoof_device=3,
    unknown_race=2,
    unentered=2,
    after_final=3,
)


def ride(
    cheats: Cheats,
    *,
    mqtt: bool = True,
    compression: float = 1.0,
    no_shows: int = 0,
    config: RaceConfig = CONFIG,
) -> Ride:
    clock = Clock(config.start_ms / 1000)
    fleet = Fleet(MQTT_DEVICES) if mqtt else Fleet((PRODUCER_ID,), in_payload=True)
    transport = TimedTransport(clock, fleet.devices, fleet.in_payload)
    starts_at = race_starts_at(config.start_ms, config.duration, compression)
    options = RunOptions(
        time_compression=compression,
        start_at=config.start_ms / 1000,
        race_start_at=starts_at / 1000,
        cheats=cheats,
        no_shows=no_shows,
    )
    summary = simulate(config, transport, options, clock=clock, sleep=clock.sleep)
    new = NewRace(
        race_id=config.race_id,
        name="Cheats",
        starts_at=starts_at,
        duration_s=config.duration,
        grace_s=GRACE_S,
    )
    race = Race.new(new, created_at=starts_at)
    return Ride(summary, transport, card(race, summary.truth.entries()), fleet)


def check_against_the_rules(r: Ride) -> Counter[Refusal]:
    judged = r.judged()
    refused = Counter(reason for _, reason in judged if reason is not None)
    assert dict(refused) | after_final(r) == r.summary.truth.dead_letters
    counted = [reading for reading, reason in judged if reason is None]
    finals = {rid: t.last_second for rid, t in r.summary.truth.riders.items()}
    kept = [x for x in counted if x.second <= finals[x.rider_id]]
    scored = {rid: (s.points, s.seconds) for (_, rid), s in ground_truth(kept).items()}
    truth = {rid: (t.points, t.seconds) for rid, t in r.summary.truth.riders.items() if t.seconds}
    assert scored == truth
    return refused


def after_final(r: Ride) -> dict[Refusal, int]:
    """The readings the rules pass and the merge drops: past their rider's final second."""
    finals = {rid: t.last_second for rid, t in r.summary.truth.riders.items()}
    n = sum(
        1
        for reading, reason in r.judged()
        if reason is None and reading.second > finals.get(reading.rider_id, reading.second)
    )
    return {Refusal.AFTER_FINAL: n} if n else {}


@pytest.mark.parametrize("mqtt", [True, False], ids=["mqtt", "putrecords"])
def test_every_cheat_is_refused_for_its_reason_and_the_rest_is_the_truth(mqtt: bool) -> None:
    cheats = ALL if mqtt else Cheats(**(vars(ALL) | {"spoof_device": 0}))
    r = ride(cheats, mqtt=mqtt, no_shows=2)
    refused = check_against_the_rules(r)
    assert refused == {
        Refusal.FROM_THE_FUTURE: 3,
        Refusal.SECOND_OUT_OF_RANGE: 2,
        Refusal.WRONG_DEVICE: 4,
        Refusal.UNKNOWN_RACE: 2,
        Refusal.NOT_ENTERED: 2,
    }
    assert after_final(r) == {Refusal.AFTER_FINAL: 3}
    assert r.summary.truth.spoofed_counted == (3 if mqtt else 0)
    assert "16 of them to be refused" in r.summary.line()


def test_a_fair_race_is_all_counted() -> None:
    r = ride(Cheats())
    assert check_against_the_rules(r) == Counter()
    assert r.summary.truth.dead_letters == {}
    assert len(r.transport.sent) == r.summary.produced


def test_spoofed_readings_name_another_device_and_count_when_published_by_their_own() -> None:
    r = ride(Cheats(spoof_device=3))
    spoofed = [(item, parse_reading(item.payload)) for item, _ in r.transport.sent]
    spoofed = [(item, x) for item, x in spoofed if x.device_id is not None]
    assert len(spoofed) == 3
    for item, reading in spoofed:
        index = int(reading.rider_id.removeprefix("rider-"))
        assert item.device_id == r.fleet.device_of(index)  # published on its own topic
        assert reading.device_id == r.fleet.other_device(index) != item.device_id
    check_against_the_rules(r)
    # had the payload's deviceId been believed, each would be a wrong-device dead letter
    believed = [
        refusal(x, r.race_card, CONFIG.start_ms + 60_000, DEFAULT_FUTURE_SLACK_S)
        for _, x in spoofed
    ]
    assert [b[0] if b else None for b in believed] == [Refusal.WRONG_DEVICE] * 3


def test_wrong_device_readings_replace_the_rider_s_own_and_leave_the_second_out() -> None:
    r = ride(Cheats(wrong_device=4))
    full = ride(Cheats())
    missing = {
        rid: full.summary.truth.riders[rid].seconds - t.seconds
        for rid, t in r.summary.truth.riders.items()
        if t.seconds != full.summary.truth.riders[rid].seconds
    }
    assert sorted(missing.values()) == [1, 1, 1, 1]
    sent = [x for x, reason in r.judged() if reason is Refusal.WRONG_DEVICE]
    assert sorted(x.rider_id for x in sent) == sorted(missing)


def test_future_readings_are_sent_ahead_of_the_race_clock_then_the_real_ones() -> None:
    r = ride(Cheats(future=2))
    future = [
        (item, at)
        for item, at in r.transport.sent
        if parse_reading(item.payload).event_id.endswith("-future")
    ]
    assert len(future) == 2
    for item, at in future:
        x = parse_reading(item.payload)
        clock = at - r.race_card.race.starts_at / 1000
        assert x.second == int(clock) + FUTURE_LEAD_S
        assert (x.cadence, x.resistance) == (200, 100)
    # the rider's own reading of that second still goes out, at its time, and counts
    x = parse_reading(future[0][0].payload)
    own = [
        at
        for item, at in r.transport.sent
        if (y := parse_reading(item.payload)).rider_id == x.rider_id
        and y.second == x.second
        and not y.event_id.endswith("-future")
    ]
    assert own == [CONFIG.start_ms / 1000 + x.second]
    check_against_the_rules(r)


def test_under_time_compression_the_race_starts_early_and_nothing_fair_is_from_the_future() -> None:
    assert race_starts_at(1_000_000, 60, 1) == 1_000_000
    assert race_starts_at(1_000_000, 60, 0.5) == 1_000_000
    assert race_starts_at(1_000_000, 60, 4) == 1_000_000 - 45_000
    assert race_starts_at(1_000_000, 60, 0) == 1_000_000 - 60_000
    assert race_starts_at(10_000, 60, 0) == 0
    r = ride(Cheats(past_duration=1, unentered=1), compression=4)
    assert check_against_the_rules(r) == {Refusal.SECOND_OUT_OF_RANGE: 1, Refusal.NOT_ENTERED: 1}
    # the race clock ends with the ride: it closes graceS after the last second is sent
    last_sent = max(at for _, at in r.transport.sent)
    assert r.race_card.race.ends_at / 1000 == pytest.approx(CONFIG.start_ms / 1000 + 59 / 4, abs=1)
    assert last_sent < r.race_card.race.closes_at / 1000


def test_no_room_ahead_for_a_future_reading_is_said_not_left_out() -> None:
    with pytest.raises(ValueError, match=r"^cheating readings never sent") as caught:
        ride(Cheats(future=2), compression=0)  # every second is past at the start
    assert str(caught.value) == (
        "cheating readings never sent, the race left no room for them: 2 --future (a reading "
        "from the future needs the race clock plus 20 s inside the race: a longer race, or "
        "less time compression)"
    )


def test_readings_after_a_final_need_riders_who_stop_early() -> None:
    config = RaceConfig("race-cheat", riders=2, duration=10, seed=1)
    with pytest.raises(ValueError, match=r"^5 readings after a rider's final need riders who"):
        Cheater(config, Fleet(MQTT_DEVICES), Cheats(after_final=5))


def test_the_choice_of_cheating_riders_is_the_seed_s() -> None:
    fleet = Fleet(MQTT_DEVICES)
    a = Cheater(CONFIG, fleet, ALL, no_shows=3)
    b = Cheater(CONFIG, fleet, ALL, no_shows=3)
    assert a.no_shows == b.no_shows
    assert [x.payload for x in a.at_end()] == [x.payload for x in b.at_end()]
    other = Cheater(RaceConfig("race-cheat", riders=60, duration=60, seed=12), fleet, ALL, 3)
    assert other.no_shows != a.no_shows


def test_the_unknown_race_and_unentered_riders_are_named_as_such() -> None:
    assert unknown_race_id("race-cheat") == "race-cheat-unknown"
    assert unknown_race_id("x" * 64) == "x" * 56 + "-unknown"
    r = ride(Cheats(unknown_race=1, unentered=2))
    judged = r.judged()
    assert sorted(
        (x.race_id, x.rider_id) for x, reason in judged if reason is Refusal.NOT_ENTERED
    ) == [("race-cheat", "rider-00060"), ("race-cheat", "rider-00061")]
    (unknown,) = [x for x, reason in judged if reason is Refusal.UNKNOWN_RACE]
    assert unknown.race_id == "race-cheat-unknown"


def test_after_final_readings_go_out_last_from_riders_who_stopped_early() -> None:
    r = ride(Cheats(after_final=3))
    stoppers = {x.rider_id for x in riders_of(CONFIG) if x.last_second < CONFIG.duration - 1}
    tail = [parse_reading(item.payload) for item, _ in r.transport.sent[-3:]]
    assert all(x.rider_id in stoppers for x in tail)
    for x in tail:
        index = int(x.rider_id.removeprefix("rider-"))
        assert x.second > rider(CONFIG, index).last_second
    check_against_the_rules(r)


@pytest.mark.parametrize(
    ("fleet", "cheats", "no_shows", "message"),
    [
        (Fleet(("one",)), Cheats(wrong_device=1), 0, "at least two connections"),
        (Fleet(), Cheats(wrong_device=1), 0, "riders entered with devices"),
        (Fleet((PRODUCER_ID,), True), Cheats(spoof_device=1), 0, "an MQTT cheat"),
        (Fleet(MQTT_DEVICES), Cheats(wrong_device=30, spoof_device=30), 1, "cannot hold"),
        (Fleet(MQTT_DEVICES), Cheats(future=1), 60, "cannot hold"),
    ],
)
def test_cheats_the_race_cannot_hold_are_refused(
    fleet: Fleet, cheats: Cheats, no_shows: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Cheater(CONFIG, fleet, cheats, no_shows)
