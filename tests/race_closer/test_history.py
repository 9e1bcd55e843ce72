"""What a close leaves beyond the race (in-memory stores): several races closed with the same
riders, and each ranked rider's history, personal bests and the class records (per race length)
exact, ties for a record included; a close delivered twice, or retried after failing at any
step of the weighing, ends as a clean one; another close in between is what a retry sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pytest

from functions.race_closer.logic import (
    RECORD_ATTEMPTS,
    CloseOutcome,
    CloseStatus,
    RaceCloser,
    race_ref,
    weigh,
)
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.memory import InMemoryHistoryStore, InMemoryRaceStore
from shared.placings import OVERALL, Placing, Tally, compute_placings
from shared.ports import TransientError
from shared.races import EnteredRider, Entry, NewRace, Race

HOUR: Final = 3_600_000
T0: Final = 1_763_800_000_000
RIDERS: Final = {
    "ann": 1, "cat": 1, "dan": 1, "hal": 1,  # class 1
    "bob": 2, "eve": 2,  # class 2
    "fay": 3,  # class 3, never rides
}  # fmt: skip


@dataclass(frozen=True)
class Ridden:
    """A race as ridden: its length, when it starts, each rider's points (seconds: a tenth),
    who is disqualified; riders without points did not start."""

    race_id: str
    hour: int
    duration_s: int
    points: Mapping[str, int]
    disqualified: tuple[str, ...] = ()
    riders: tuple[str, ...] = tuple(RIDERS)

    def race(self) -> Race:
        request = NewRace(
            race_id=self.race_id,
            name=self.race_id.title(),
            starts_at=T0 + self.hour * HOUR,
            duration_s=self.duration_s,
        )
        return Race.new(request, created_at=T0 - HOUR)

    def ref(self) -> RaceRef:
        return race_ref(self.race())

    def tallies(self) -> dict[str, Tally]:
        return {r: Tally(p, p // 10 + 1) for r, p in self.points.items()}


A: Final = Ridden("a", 0, 300, {"ann": 900, "bob": 900, "cat": 700, "dan": 700, "eve": 500,
                               "hal": 1_000}, disqualified=("hal",))  # fmt: skip
"""The first race: everyone's first result. hal (DSQ) and fay (DNS) get none."""
B: Final = Ridden("b", 1, 300, {"ann": 900, "bob": 1_000, "cat": 950, "dan": 600, "eve": 1_000,
                               "hal": 2_000}, disqualified=("hal",))  # fmt: skip
"""ann equals her best (no PB); cat beats ann's class 1 record; bob and eve tie for a new class 2
record in one race: they hold it together. hal is disqualified again."""
C: Final = Ridden("c", 2, 300, {"ann": 950, "bob": 1_000, "cat": 950, "dan": 100, "eve": 999})
"""ann beats her best and equals cat's record (set earlier: cat keeps it); bob equals his best
and the record (neither); hal is not disqualified but did not ride (DNS)."""
D: Final = Ridden("d", 3, 600, {"ann": 500, "bob": 400}, riders=("ann", "bob"))
"""Another race length: first results there, records of their own, whatever the points."""
RACES: Final = (A, B, C, D)


@dataclass
class Reader:
    """The closer's reads: each race's standings by race id, stored placings from the book."""

    book: InMemoryRaceStore
    standings: dict[str, dict[str, Tally]] = field(default_factory=dict)

    def tallies(self, race_id: str, rider_ids: Sequence[str]) -> dict[str, Tally]:
        held = self.standings[race_id]
        return {r: held[r] for r in rider_ids if r in held}

    def stored_placings(self, race_id: str) -> list[Placing]:
        return list(self.book.placings[race_id].scope(OVERALL))


@dataclass
class World:
    book: InMemoryRaceStore
    history: InMemoryHistoryStore
    reader: Reader
    announced: dict[tuple[str, str], Placing]
    closer: RaceCloser

    def add(self, ridden: Ridden) -> None:
        race = ridden.race()
        self.book.create_race(race)
        entries = [Entry(rider_id=r, name=r.title(), class_id=RIDERS[r]) for r in ridden.riders]
        self.book.enter(race.race_id, entries, now=race.starts_at - 1)
        for rider in ridden.disqualified:
            self.book.disqualify(race.race_id, rider)
        self.reader.standings[race.race_id] = ridden.tallies()

    def flags(self, race_id: str) -> dict[str, str]:
        """Each placed rider's flags as announced: ``P`` personal best, ``R`` record."""
        return {
            rider: "P" * p.personal_best + "R" * p.record
            for (race, rider), p in sorted(self.announced.items())
            if race == race_id
        }


def world(history: InMemoryHistoryStore | None = None) -> World:
    book = InMemoryRaceStore()
    history = history if history is not None else InMemoryHistoryStore()
    reader = Reader(book)
    announced: dict[tuple[str, str], Placing] = {}

    def announce(race_id: str, placing: Placing) -> None:
        announced.setdefault((race_id, placing.rider_id), placing)

    closer = RaceCloser(
        book,
        reader,
        announce,
        history=history,
        clock=lambda: T0 + 100 * HOUR,
        sleep=lambda _: None,
    )
    return World(book, history, reader, announced, closer)


def closed_all(w: World, races: Iterable[Ridden] = RACES) -> World:
    for ridden in races:
        w.add(ridden)
        assert w.closer.close(ridden.race_id).status is CloseStatus.CLOSED
    return w


# --- what several races leave ---------------------------------------------------------------
def test_each_race_flags_personal_bests_and_records_as_it_closes() -> None:
    w = closed_all(world())
    assert w.flags("a") == {"ann": "PR", "bob": "PR", "cat": "P", "dan": "P", "eve": "P",
                            "fay": "", "hal": ""}  # fmt: skip
    assert w.flags("b") == {"ann": "", "bob": "PR", "cat": "PR", "dan": "", "eve": "PR",
                            "fay": "", "hal": ""}  # fmt: skip
    assert w.flags("c") == {"ann": "P", "bob": "", "cat": "", "dan": "", "eve": "",
                            "fay": "", "hal": ""}  # fmt: skip
    assert w.flags("d") == {"ann": "PR", "bob": "PR"}
    # the stored placings (what GET /races/{id}/results shows) carry the same flags
    for ridden in RACES:
        stored = w.book.placings[ridden.race_id]
        assert list(stored.overall) == [w.announced[(ridden.race_id, p.rider_id)]
                                        for p in stored.overall]  # fmt: skip
        for rows in stored.by_class.values():
            for p in rows:
                announced = w.announced[(ridden.race_id, p.rider_id)]
                assert (p.personal_best, p.record) == (announced.personal_best, announced.record)


def _best(rider: str, points: int, ridden: Ridden) -> Best:
    return Best(rider, rider.title(), RIDERS[rider], points, points // 10 + 1, ridden.ref())


def test_the_personal_bests_are_each_riders_best_per_class_and_length() -> None:
    w = closed_all(world())
    assert w.history.bests == {
        ("ann", 1, 300): _best("ann", 950, C),
        ("cat", 1, 300): _best("cat", 950, B),
        ("dan", 1, 300): _best("dan", 700, A),
        ("bob", 2, 300): _best("bob", 1_000, B),
        ("eve", 2, 300): _best("eve", 1_000, B),
        ("ann", 1, 600): _best("ann", 500, D),
        ("bob", 2, 600): _best("bob", 400, D),
    }


def test_the_class_records_keep_each_riders_best_and_name_the_holders() -> None:
    w = closed_all(world())
    records = w.history.stored_records
    assert set(records) == {(1, 300), (2, 300), (1, 600), (2, 600)}
    class_1 = records[(1, 300)]
    assert class_1.rows == (
        _best("cat", 950, B), _best("ann", 950, C), _best("dan", 700, A),
    )  # fmt: skip
    assert class_1.holders() == (_best("cat", 950, B),)  # set first; ann equalled it later
    class_2 = records[(2, 300)]
    assert class_2.rows == (_best("bob", 1_000, B), _best("eve", 1_000, B))
    assert class_2.holders() == class_2.rows  # tied in one race: held together
    assert records[(1, 600)].rows == (_best("ann", 500, D),)
    assert records[(2, 600)].rows == (_best("bob", 400, D),)
    # a saved both classes' records, b both again, c class 1 only (ann's row; class 2's rows
    # did not change: nothing written), d the 600 s records of each class once
    assert [records[k].version for k in sorted(records)] == [3, 1, 2, 1]


def _result(rider: str, ridden: Ridden, flags: str, overall: int, in_class: int) -> RiderResult:
    points = ridden.points[rider]
    return RiderResult(
        rider, rider.title(), ridden.ref(), RIDERS[rider], overall, in_class, points,
        points // 10 + 1, "P" in flags, "R" in flags,
    )  # fmt: skip


def test_each_ranked_riders_history_is_exact_newest_first() -> None:
    w = closed_all(world())

    def history(rider: str) -> list[RiderResult]:
        return w.history.rider_results(rider, 10)[0]

    assert history("ann") == [
        _result("ann", D, "PR", 1, 1),
        _result("ann", C, "P", 3, 1),
        _result("ann", B, "", 4, 2),
        _result("ann", A, "PR", 1, 1),
    ]
    assert history("eve") == [
        _result("eve", C, "", 2, 2),
        _result("eve", B, "PR", 1, 1),
        _result("eve", A, "P", 5, 2),
    ]
    assert history("dan") == [
        _result("dan", C, "", 5, 3),
        _result("dan", B, "", 5, 3),
        _result("dan", A, "P", 3, 2),
    ]
    # only ranked riders have a history: hal was disqualified twice, then did not start; fay
    # never started
    assert set(w.history.results) == {"ann", "bob", "cat", "dan", "eve"}
    assert {r: len(results) for r, results in w.history.results.items()} == {
        "ann": 4, "bob": 4, "cat": 3, "dan": 3, "eve": 3,
    }  # fmt: skip


# --- running again ---------------------------------------------------------------------------
def state(w: World) -> tuple[object, ...]:
    h = w.history
    return (h.bests, h.stored_records, h.results, w.book.placings, w.announced)


def test_a_close_delivered_twice_weighs_nothing_the_second_time() -> None:
    w = closed_all(world())
    before, calls = state(w), dict(w.history.calls)
    for ridden in RACES:
        again = w.closer.close(ridden.race_id)
        assert again.status is CloseStatus.CLOSED_BEFORE
    assert state(w) == before
    assert w.history.calls == calls
    # the flags announced the second time come from the stored placings
    assert w.flags("b")["eve"] == "PR"


@pytest.mark.parametrize("method", ["claim_personal_best", "records", "save_records",
                                    "put_results"])  # fmt: skip
@pytest.mark.parametrize("failing_race", ["a", "b", "c"])
def test_a_close_failing_at_a_weighing_step_and_retried_ends_as_a_clean_one(
    method: str, failing_race: str
) -> None:
    clean = closed_all(world())
    w = world()
    for ridden in RACES:
        w.add(ridden)
        if ridden.race_id == failing_race:
            w.history.fail_next[method] = 1
            with pytest.raises(TransientError, match=f"{method}: injected failure"):
                w.closer.close(ridden.race_id)
            assert w.book.races[ridden.race_id].state == "closing"
            assert not [k for k in w.announced if k[0] == ridden.race_id]
        assert w.closer.close(ridden.race_id).status is CloseStatus.CLOSED
    assert state(w) == state(clean)


@pytest.mark.parametrize("method", ["store_placings", "mark_closed"])
def test_a_close_failing_after_weighing_weighs_again_to_the_same_end(method: str) -> None:
    clean = closed_all(world())
    w = world()
    for ridden in RACES:
        w.add(ridden)
        if ridden.race_id == "b":
            real = getattr(w.book, method)

            def fail(*_: object, real: object = real, **__: object) -> None:
                setattr(w.book, method, real)
                raise TransientError(f"{method}: injected")

            setattr(w.book, method, fail)
            with pytest.raises(TransientError):
                w.closer.close("b")
        w.closer.close(ridden.race_id)
    assert state(w) == state(clean)


def test_a_retry_after_another_race_improved_the_best_flags_it_as_no_longer_best() -> None:
    """The closer's docstring's case: race b weighed (cat's and bob's personal bests and
    records among them) and failed before keeping its results; race c2, closed in between,
    beat them; b's retry leaves c2's bests alone and flags b's results against them."""
    w = world()
    closed_all(w, [A])
    w.add(B)
    w.history.fail_next["put_results"] = 1
    with pytest.raises(TransientError):
        w.closer.close("b")
    assert w.history.bests[("cat", 1, 300)] == _best("cat", 950, B)  # claimed, not announced
    faster = Ridden("c2", 2, 300, {"cat": 990, "bob": 1_001})
    closed_all(w, [faster])
    assert w.flags("c2") == {"ann": "", "bob": "PR", "cat": "PR", "dan": "", "eve": "",
                             "fay": "", "hal": ""}  # fmt: skip
    assert w.closer.close("b").status is CloseStatus.CLOSED
    assert w.flags("b") == {"ann": "", "bob": "", "cat": "", "dan": "", "eve": "P",
                            "fay": "", "hal": ""}  # fmt: skip
    assert w.history.bests[("cat", 1, 300)] == _best("cat", 990, faster)  # never lowered
    assert w.history.bests[("bob", 2, 300)] == _best("bob", 1_001, faster)
    # eve's 1,000 in b is still her best (b's own claim, made again), but no longer the
    # record: bob's 1,001 in c2 holds it
    assert [b.rider_id for b in w.history.stored_records[(2, 300)].holders()] == ["bob"]


def test_a_close_delivered_twice_announces_the_flags_it_stored() -> None:
    w = closed_all(world(), [A])
    first = dict(w.announced)
    w.announced.clear()
    assert w.closer.close("a") == CloseOutcome("a", CloseStatus.CLOSED_BEFORE, 7, 7)
    assert w.announced == first


# --- a class's records under concurrent closes ---------------------------------------------
class Racing(InMemoryHistoryStore):
    """Another close of the class saves its records just before each of the first ``times``
    saves of this one."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def save_records(self, records: ClassRecords) -> bool:
        if self.times:
            self.times -= 1
            key = (records.class_id, records.duration_s)
            stored = self.stored_records.get(key, ClassRecords(*key))
            other = RaceRef(f"other-{self.times}", "Other", T0 - HOUR, records.duration_s)
            rival = Best(f"zed{self.times}", "Zed", records.class_id, 5 + self.times, 1, other)
            self.stored_records[key] = stored.merged([rival])
        return super().save_records(records)


def test_records_saved_by_another_close_first_are_read_and_merged_again() -> None:
    history = Racing(times=RECORD_ATTEMPTS - 1)
    race = A.race()
    placings = compute_placings(
        [EnteredRider(Entry(rider_id=r, name=r.title(), class_id=1)) for r in ("ann", "cat")],
        {"ann": Tally(900, 91), "cat": Tally(700, 71)},
    )
    flagged = weigh(race, placings, history)
    records = history.stored_records[(1, 300)]
    assert [b.rider_id for b in records.rows] == ["ann", "cat", "zed3", "zed2", "zed1", "zed0"]
    assert records.version == RECORD_ATTEMPTS  # 4 saved by the others, then this one
    assert history.calls["records"] == history.calls["save_records"] == RECORD_ATTEMPTS
    assert [(p.rider_id, p.personal_best, p.record) for p in flagged.overall] == [
        ("ann", True, True), ("cat", True, False),
    ]  # fmt: skip


def test_records_lost_to_other_closes_every_time_are_a_transient_error() -> None:
    history = Racing(times=RECORD_ATTEMPTS)
    placings = compute_placings(
        [EnteredRider(Entry(rider_id="ann", name="Ann", class_id=1))], {"ann": Tally(900, 91)}
    )
    with pytest.raises(TransientError, match=f"records of class 1, 300 s: {RECORD_ATTEMPTS} saves"):
        weigh(A.race(), placings, history)
    assert "put_results" not in history.calls  # nothing kept in the history yet: a retry does


def test_the_personal_bests_are_claimed_through_the_mapper() -> None:
    mapped: list[list[str]] = []

    def claim_map(fn: object, bests: Sequence[Best]) -> list[bool]:
        mapped.append([b.rider_id for b in bests])
        return [fn(b) for b in bests]  # type: ignore[operator]

    placings = compute_placings(
        [EnteredRider(Entry(rider_id=r, name=r, class_id=1)) for r in ("ann", "bob", "cat")],
        {"ann": Tally(900, 91), "bob": Tally(0, 0), "cat": Tally(0, 3)},
    )
    weigh(A.race(), placings, InMemoryHistoryStore(), claim_map)
    assert mapped == [["ann", "cat"]]  # bob did not start: not weighed
