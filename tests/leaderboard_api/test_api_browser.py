"""The live page in a real browser: Debian's headless Chromium, driven by Playwright.

The API handler runs behind local/aws/api_gateway.py with a stage (``/test/``), as behind API
Gateway, against moto with seeded races; the page is loaded *without* the trailing slash, so its
relative URLs must cope with the stage prefix. The tests assert the rows shown, change the
stored standings and assert the page follows within its one-second refresh, movers marked; and
that the page shows each race's status, a countdown to its start or its end, and a closed
race's final placings. The API and the browser share one fixed clock (``helpers.NOW``;
Playwright's clock in the page), so every countdown is exact.

The page is served with its Content-Security-Policy (inline script and style pinned by hash)
and Chromium enforces it: the test listens for ``securitypolicyviolation`` events from before
the page's first script and asserts there are none, and a second test serves the page with a
policy that does not match its script, to show that the listener would see a violation.

The screenshot goes to the test's tmp_path; with ``UPDATE_DOCS_SCREENSHOT=1`` it is also
written to docs/leaderboard.png (the one committed to the repository).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.leaderboard_api import handler as api
from local.aws.api_gateway import LocalApiGateway
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.placings import Placing, Placings, Tally, compute_placings
from shared.races import EnteredRider, Entry
from tests.leaderboard_api.helpers import NOW, STANDINGS, Db, standing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "leaderboard.png"
WAIT_MS = 10_000

pytestmark = pytest.mark.browser

RIDERS = [
    standing("ana", 123_456, 1, name="Ana Alvarez", seconds=412, last_second=411),
    standing("bo", 120_001, 2, name="Bo Berg", seconds=410, last_second=411),
    standing("cy", 120_001, 1, name="Cy Chen", seconds=409, last_second=411),
    standing("di", 99_999, 3, name="Di Dunn", seconds=405, last_second=410),
    standing("ed", 87_650, 2, name="Ed Eze", seconds=398, last_second=411),
]

WATCH_CSP_JS = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});"""
"""Installed before any script of the page runs (Playwright's init scripts are not subject to the
page's policy)."""

ROWS_JS = """() => [...document.querySelectorAll('#rows tr')].map(tr => ({
    rider: tr.dataset.riderId,
    cls: tr.className,
    cells: [...tr.querySelectorAll('td')].map(td => td.textContent.trim()),
}))"""


MINUTE = 60_000


@pytest.fixture
def gateway(db: Db) -> Iterator[LocalApiGateway]:
    db.put_race("race-1", RIDERS, starts_at=NOW - 5 * MINUTE, name="Morning Ride")
    with LocalApiGateway(api.handler, stage="test") as gw:
        yield gw


def at_now(page: object) -> None:
    """The page's clock stands at the API's (timers still run)."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.clock.set_fixed_time(datetime.fromtimestamp(NOW / 1000, UTC))


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 960, "height": 480},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_page_shows_the_leaderboard_and_follows_changes(
    gateway: LocalApiGateway, db: Db, browser_page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(browser_page, Page)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.add_init_script(WATCH_CSP_JS)
    at_now(page)

    url = gateway.url.rstrip("/") + "?race=race-1"  # /test?race=race-1: no trailing slash
    response = page.goto(url)
    assert response is not None
    assert response.headers["content-security-policy"] == api.PAGE_CSP  # enforced, not report-only
    assert "'unsafe-inline'" not in api.PAGE_CSP
    expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT_MS)

    rows = page.evaluate(ROWS_JS)
    assert [r["cells"] for r in rows] == [
        ["1", "", "Ana Alvarez", "1", "1234.56", "412"],
        ["2", "", "Bo Berg", "2", "1200.01", "410"],
        ["2", "", "Cy Chen", "1", "1200.01", "409"],
        ["4", "", "Di Dunn", "3", "999.99", "405"],
        ["5", "", "Ed Eze", "2", "876.50", "398"],
    ]
    assert page.locator("#race").input_value() == "race-1"
    assert "race-1 · overall" in page.locator("#status").inner_text()
    assert phase(page) == ["Morning Ride", "running", "ends in 55:00"]

    # Di overtakes everyone: the next refresh (every second) shows it, movers marked (the API
    # builds its live ranking again: a reading came, and a second passed on its clock).
    db.put_standings([replace(RIDERS[3], points=130_000, seconds=406, version=2)])
    db.clock.now += 1_000
    db.reading("race-1", db.clock.now)
    expect(page.locator("#rows tr").first).to_have_attribute("data-rider-id", "di", timeout=WAIT_MS)

    rows = page.evaluate(ROWS_JS)
    assert [(r["rider"], r["cls"], r["cells"][0], r["cells"][1]) for r in rows] == [
        ("di", "up", "1", "▲3"),
        ("ana", "down", "2", "▼1"),
        ("bo", "down", "3", "▼1"),
        ("cy", "down", "3", "▼1"),
        ("ed", "", "5", ""),
    ]
    assert rows[0]["cells"][4:] == ["1300.00", "406"]
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # The class picker: class 2 only, ranked within the class.
    page.select_option("#class", "2")
    expect(page.locator("#rows tr")).to_have_count(2, timeout=WAIT_MS)
    rows = page.evaluate(ROWS_JS)
    assert [r["cells"][0:3] + r["cells"][4:5] for r in rows] == [
        ["1", "", "Bo Berg", "1200.01"],
        ["2", "", "Ed Eze", "876.50"],
    ]
    assert page.url.endswith("/test?race=race-1&limit=10&class=2")
    assert errors == []
    assert page.evaluate("window.__cspViolations") == []
    assert [e for e in console_errors if "Content Security Policy" in e] == []


def phase(page: object) -> list[str]:
    """The race line: name, status, countdown (as written, before the style's upper case)."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    ids = ("race-name", "race-status", "countdown")
    return [page.locator(f"#{i}").text_content() or "" for i in ids]


ENTRANTS = [
    EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id)) for s in RIDERS
]
FAY = EnteredRider(Entry(rider_id="fay", name="Fay Fox", class_id=4))
GUS = EnteredRider(Entry(rider_id="gus", name="Gus Gray", class_id=2), disqualified=True)
TALLIES = {s.rider_id: Tally(s.points, s.seconds) for s in RIDERS} | {"gus": Tally(200_000, 420)}
"""Fay never started (DNS); Gus scored most, and was disqualified (DSQ)."""


@pytest.fixture
def season(gateway: LocalApiGateway, db: Db) -> LocalApiGateway:
    """Morning Ride running (started 5 minutes ago), a warm-up running since 10 minutes ago,
    an evening sprint starting in 65 s, and the club championship closed."""
    db.put_race("warm", starts_at=NOW - 10 * MINUTE, name="Warm-up")
    db.put_race("sched", starts_at=NOW + 65_000, duration_s=1_200, name="Evening Sprint")
    db.put_race("done", starts_at=NOW - 120 * MINUTE, duration_s=1_800, name="Club Champs")
    db.close("done", compute_placings([*ENTRANTS, FAY, GUS], TALLIES))
    return gateway


def test_page_shows_status_countdown_and_final_placings(
    season: LocalApiGateway, browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(browser_page, Page)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    at_now(page)

    page.goto(season.url)  # no race asked for: the running race that started last
    expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT_MS)
    assert page.locator("#race").input_value() == "race-1"
    assert phase(page) == ["Morning Ride", "running", "ends in 55:00"]
    assert page.locator("#race option").all_inner_texts() == [
        "Evening Sprint (scheduled)",
        "Morning Ride (running)",
        "Warm-up (running)",
        "Club Champs (closed)",
    ]

    # A scheduled race: the countdown to its start, ticking with the clock; nobody rides yet.
    page.select_option("#race", "sched")
    expect(page.locator("#race-status")).to_have_text("scheduled", timeout=WAIT_MS)
    assert phase(page) == ["Evening Sprint", "scheduled", "starts in 1:05"]
    expect(page.locator("#empty")).to_be_visible(timeout=WAIT_MS)
    assert page.locator("#rows tr").count() == 0
    page.clock.set_fixed_time(datetime.fromtimestamp((NOW + 6_000) / 1000, UTC))
    expect(page.locator("#countdown")).to_have_text("starts in 0:59", timeout=WAIT_MS)

    # A closed race: its final placings, ranked riders first, then DNS and DSQ.
    page.select_option("#race", "done")
    expect(page.locator("#rows tr")).to_have_count(7, timeout=WAIT_MS)
    assert phase(page) == ["Club Champs", "closed", "final placings"]
    assert [r["cells"] for r in page.evaluate(ROWS_JS)] == [
        ["1", "", "Ana Alvarez", "1", "1234.56", "412"],
        ["2", "", "Bo Berg", "2", "1200.01", "410"],
        ["2", "", "Cy Chen", "1", "1200.01", "409"],
        ["4", "", "Di Dunn", "3", "999.99", "405"],
        ["5", "", "Ed Eze", "2", "876.50", "398"],
        ["DNS", "", "Fay Fox", "4", "0.00", "0"],
        ["DSQ", "", "Gus Gray", "2", "2000.00", "420"],
    ]
    assert page.locator("#status").inner_text() == "done · overall · final"

    # Its placings in a class: ranks within the class.
    page.select_option("#class", "2")
    expect(page.locator("#rows tr")).to_have_count(3, timeout=WAIT_MS)
    assert [r["cells"][:3] for r in page.evaluate(ROWS_JS)] == [
        ["1", "", "Bo Berg"],
        ["2", "", "Ed Eze"],
        ["DSQ", "", "Gus Gray"],
    ]
    assert page.locator("#status").inner_text() == "done · class 2 · final"
    assert errors == []


def test_a_policy_that_does_not_match_the_script_is_seen(
    gateway: LocalApiGateway, browser_page: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: with a script hash that is not the page's, Chromium refuses to run the
    script, the listener records it and no row is rendered. So the empty list above means
    the policy was enforced and the page's script matched it."""
    from playwright.sync_api import Page

    assert isinstance(browser_page, Page)
    page = browser_page
    wrong = "'sha256-" + "A" * 43 + "='"
    monkeypatch.setattr(
        api, "PAGE_CSP", re.sub(r"script-src [^;]+", f"script-src {wrong}", api.PAGE_CSP)
    )
    page.add_init_script(WATCH_CSP_JS)

    page.goto(gateway.url.rstrip("/") + "?race=race-1")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate("window.__cspViolations.length") and time.monotonic() < deadline:
        page.wait_for_timeout(50)

    assert page.evaluate("window.__cspViolations") == ["script-src-elem blocked inline"]
    assert page.evaluate("document.querySelectorAll('#rows tr').length") == 0
    assert page.locator("#status").inner_text() == "loading…"  # the script never ran


# --- riders' histories and class records ---------------------------------------------------------
CHAMPS = RaceRef("done", "Club Champs", NOW - 120 * MINUTE, 1_800)
"""2026-11-22 17:05 UTC."""
OPENER = RaceRef("opener", "Season Opener", NOW - 40 * 24 * 60 * MINUTE, 1_800)
"""2026-10-13 19:05 UTC."""


def flag(rows: tuple[Placing, ...]) -> tuple[Placing, ...]:
    """Ana set a personal best and the class 1 record in Club Champs; Cy a personal best."""
    return tuple(
        replace(p, personal_best=p.rider_id in {"ana", "cy"}, record=p.rider_id == "ana")
        for p in rows
    )


def past(rider: str, race: RaceRef, points: int, ranks: tuple[int, int], pb: bool) -> RiderResult:
    return RiderResult(
        rider, "Ana Alvarez", race, 1, ranks[0], ranks[1], points, 400, pb, race is CHAMPS and pb
    )


@pytest.fixture
def archive(gateway: LocalApiGateway, db: Db) -> LocalApiGateway:
    """Club Champs closed, its placings flagged; Ana's two closed races; the class 1 records
    of 1,800 s races (Ana holds it, Cy second); Bo's 25 closed races (two pages)."""
    db.put_race("done", starts_at=CHAMPS.starts_at, duration_s=1_800, name="Club Champs")
    placings = compute_placings([*ENTRANTS, FAY, GUS], TALLIES)
    flagged = Placings(flag(placings.overall), {c: flag(p) for c, p in placings.by_class.items()})
    db.close("done", flagged)
    store = DynamoHistoryStore(db.client, STANDINGS)
    store.put_results(
        [past("ana", OPENER, 110_000, (3, 2), True), past("ana", CHAMPS, 123_456, (1, 1), True)]
    )
    store.put_results(
        [
            RiderResult(
                "bo", "Bo Berg", RaceRef(f"r{i:02d}", f"Round {i}", OPENER.starts_at + i * MINUTE,
                600), 2, 2, 1, 50_000 + i, 590, False, False,
            )
            for i in range(25)
        ]
    )  # fmt: skip
    records = ClassRecords(1, 1_800).merged(
        [
            Best("ana", "Ana Alvarez", 1, 123_456, 412, CHAMPS),
            Best("cy", "Cy Chen", 1, 120_001, 409, CHAMPS),
        ]
    )
    assert store.save_records(records)
    return gateway


RECORD_ROWS_JS = """() => [...document.querySelectorAll('#record-rows tr')].map(
    tr => [...tr.querySelectorAll('td')].map(td => td.textContent.trim()))"""
HISTORY_ROWS_JS = """() => [...document.querySelectorAll('#history-rows tr')].map(
    tr => [...tr.querySelectorAll('td')].map(td => td.textContent.trim()))"""


def test_page_marks_bests_shows_class_records_and_links_riders_to_their_history(
    archive: LocalApiGateway, browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(browser_page, Page)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(WATCH_CSP_JS)
    at_now(page)

    # A closed race: what each result set is marked; overall, the records ask for a class.
    page.goto(archive.url.rstrip("/") + "?race=done")
    expect(page.locator("#rows tr")).to_have_count(7, timeout=WAIT_MS)
    assert [r["cells"][:3] for r in page.evaluate(ROWS_JS)] == [
        ["1", "PB, record", "Ana Alvarez"],
        ["2", "", "Bo Berg"],
        ["2", "PB", "Cy Chen"],
        ["4", "", "Di Dunn"],
        ["5", "", "Ed Eze"],
        ["DNS", "", "Fay Fox"],
        ["DSQ", "", "Gus Gray"],
    ]
    expect(page.locator("#records-note")).to_have_text("Choose a class to see its records.")
    links = page.locator("#rows a")
    assert [links.nth(i).get_attribute("href") for i in range(3)] == [
        "?rider=ana",
        "?rider=bo",
        "?rider=cy",
    ]

    # A class nobody set a result in over races of this length: no records yet.
    page.select_option("#class", "4")
    expect(page.locator("#records-note")).to_have_text(
        "No results in this class over races of this length yet.", timeout=WAIT_MS
    )
    assert page.locator("#records-note").is_visible()
    assert page.locator("#records-title").text_content() == "Class 4 records · 1800 s races"
    assert page.locator("#record-rows tr").count() == 0

    # Class 1: its records over races of this race's length, the holder marked.
    page.select_option("#class", "1")
    expect(page.locator("#record-rows tr")).to_have_count(2, timeout=WAIT_MS)
    assert page.locator("#records-title").text_content() == "Class 1 records · 1800 s races"
    assert page.evaluate(RECORD_ROWS_JS) == [
        ["1", "Ana Alvarez", "1234.56", "412", "Club Champs", "2026-11-22 17:05", "record"],
        ["2", "Cy Chen", "1200.01", "409", "Club Champs", "2026-11-22 17:05", ""],
    ]
    assert page.locator("#records-note").is_hidden()

    # A rider's name links to their history: newest race first, what each set.
    page.locator("#record-rows a", has_text="Ana Alvarez").click()
    expect(page.locator("#history-rows tr")).to_have_count(2, timeout=WAIT_MS)
    assert page.url.endswith("/test?rider=ana")
    assert page.locator("#rider-title").text_content() == "Ana Alvarez · closed races"
    assert page.evaluate(HISTORY_ROWS_JS) == [
        ["2026-11-22 17:05", "Club Champs", "1800 s", "1", "1", "1", "1234.56", "400",
         "PB, record"],
        ["2026-10-13 19:05", "Season Opener", "1800 s", "1", "3", "2", "1100.00", "400", "PB"],
    ]  # fmt: skip
    assert page.locator("#status").inner_text() == "ana · 2 races"
    assert page.locator("#more").is_hidden()
    assert page.locator("#live").is_hidden()

    # A long history comes a page at a time.
    page.goto(archive.url.rstrip("/") + "?rider=bo")
    expect(page.locator("#history-rows tr")).to_have_count(20, timeout=WAIT_MS)
    assert page.evaluate(HISTORY_ROWS_JS)[0][:3] == ["2026-10-13 19:29", "Round 24", "600 s"]
    page.click("#more")
    expect(page.locator("#history-rows tr")).to_have_count(25, timeout=WAIT_MS)
    assert page.evaluate(HISTORY_ROWS_JS)[-1][:2] == ["2026-10-13 19:05", "Round 0"]
    assert page.locator("#more").is_hidden()
    assert page.locator("#status").inner_text() == "bo · 25 races"

    # An id that never rode a closed race; and back to the live board.
    page.goto(archive.url.rstrip("/") + "?rider=zed")
    expect(page.locator("#history-note")).to_have_text("No closed races yet.", timeout=WAIT_MS)
    assert page.locator("#rider-title").text_content() == "zed · closed races"
    page.click("#back")
    expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT_MS)
    assert errors == []
    assert page.evaluate("window.__cspViolations") == []
