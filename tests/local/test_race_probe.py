"""The visibility probe of ``local.race``: what it times, and what it must not."""

from __future__ import annotations

from local.race import Prober, RaceSpec


def page(**last_seconds: int) -> dict[str, object]:
    return {"entries": [{"riderId": r, "lastSecond": s} for r, s in last_seconds.items()]}


def prober() -> Prober:
    return Prober("http://127.0.0.1:9", RaceSpec(race_id="r", duration=10), start_s=1000.0)


def test_each_second_a_rider_advances_is_timed_from_its_publication() -> None:
    p = prober()
    p.observe(page(ann=2), seen_at=1003.0)
    p.observe(page(ann=4), seen_at=1005.5)

    assert p.latencies == [2.5, 1.5]  # seconds 3 and 4, published at 1003 and 1004


def test_a_rider_back_on_the_page_is_not_timed_for_seconds_seen_while_off_it() -> None:
    p = prober()
    p.observe(page(ann=2, bob=2), seen_at=1003.0)
    p.observe(page(ann=3), seen_at=1004.0)  # bob dropped out of the top
    p.observe(page(ann=9, bob=9), seen_at=1010.0)  # his seconds 3-9 were visible meanwhile

    # ann's second 3 at 1004; her seconds 4-9 at 1010; nothing of bob's
    assert p.latencies == [1.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
