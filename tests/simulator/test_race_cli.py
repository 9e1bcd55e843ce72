"""`breakaway race`: each organiser command against a fake API (what it sends, what it shows),
entries from files and options, and the API's refusals as one line with its message."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.cli import main
from simulator.race_cli import starts_at
from tests.simulator.fake_api import FakeState
from tests.simulator.test_provision import deploy

Api = tuple[str, FakeState]
GP = {
    "raceId": "gp",
    "name": "Spring GP",
    "status": "scheduled",
    "startsAt": 1_900_000_000_000,
    "durationS": 1800,
    "graceS": 30,
    "closesAt": 1_900_001_830_000,
    "entrants": 0,
}


def race(api: Api, *args: str) -> list[str]:
    return ["race", *args, "--api-url", api[0]]


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err.strip()


def test_create_schedules_the_race_and_shows_it(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["create", "gp", "--name", "Spring GP", "--starts-at", "2030-03-17T17:46:40Z"]
    assert main(race(api, *argv, "--duration", "1800")) == 0
    (req,) = api[1].requests
    assert (req.method, req.path, req.body) == (
        "POST",
        "/races",
        {
            "raceId": "gp",
            "name": "Spring GP",
            "startsAt": 1_900_000_000_000,
            "durationS": 1800,
            "graceS": 30,
        },
    )
    out = capsys.readouterr().out
    assert "race gp created" in out
    row = next(line for line in out.splitlines() if "Spring GP" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == [
        "gp",
        "Spring GP",
        "scheduled",
        "2030-03-17 17:46:40Z",
        "1800",
        "30",
        "2030-03-17 18:17:10Z",
        "0",
    ]


def test_when_a_race_starts_can_be_said_three_ways() -> None:
    assert starts_at("1900000000000") == 1_900_000_000_000
    assert starts_at("+90", now=lambda: 1000.0) == 1_090_000
    assert starts_at("+5m", now=lambda: 1000.0) == 1_300_000
    assert starts_at("+1h", now=lambda: 0.0) == 3_600_000
    assert starts_at("2030-03-17T18:46:40+01:00") == 1_900_000_000_000
    moment = datetime(2030, 3, 17, 17, 46, 40, tzinfo=UTC).isoformat()
    assert starts_at(moment) == 1_900_000_000_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--starts-at", "2030-03-17T17:46:40"], "needs a time zone"),
        (["--starts-at", "tomorrow"], "is not epoch milliseconds, +seconds or an ISO 8601"),
        (["--duration", "0"], "argument --duration: 0: input should be greater than or equal to 1"),
        (["--grace", "3601"], "argument --grace: 3601: input should be less than or equal to 3600"),
    ],
)
def test_a_race_that_cannot_be_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = {"--starts-at": "+60", "--duration": "60", "--grace": "30"}
    base[argv[0]] = argv[1]
    flat = [x for kv in base.items() for x in kv]
    with pytest.raises(SystemExit) as exc:
        main(["race", "create", "gp", "--name", "GP", *flat])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_the_api_s_refusal_is_one_line_with_its_message(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP)
    argv = race(api, "create", "gp", "--name", "GP", "--starts-at", "+60", "--duration", "60")
    assert error_of(capsys, argv) == "breakaway race: race gp exists (HTTP 409)"
    assert error_of(capsys, race(api, "close", "nope")) == "breakaway race: no race nope (HTTP 404)"
    assert error_of(capsys, race(api, "results", "gp")) == (
        "breakaway race: race gp is not closed: its results are not final (HTTP 409)"
    )


def test_riders_are_entered_from_json_csv_and_options(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP)
    listed = tmp_path / "riders.json"
    listed.write_text(json.dumps([{"riderId": "ann", "name": "Ann", "classId": 1}]))
    wrapped = tmp_path / "more.json"
    wrapped.write_text(
        json.dumps(
            {"entries": [{"riderId": "bo", "name": "Bo", "classId": 2, "deviceId": "hub-1"}]}
        )
    )
    table = tmp_path / "riders.csv"
    table.write_text('riderId,name,classId,deviceId\ncy,Cy,3,\ndi,"Di, Jr.",4,hub-2\n')
    assert main(race(api, "enter", "gp", "--file", str(listed))) == 0
    assert main(race(api, "enter", "gp", "--file", str(wrapped))) == 0
    assert main(race(api, "enter", "gp", "--file", str(table), "--rider", 'ed,"Ed, Sr.",6')) == 0
    assert main(race(api, "enter", "gp", "--rider", "ann,Ann B.,1,hub-3")) == 0
    bodies = [r.body["entries"] for r in api[1].requests]
    assert bodies == [
        [{"riderId": "ann", "name": "Ann", "classId": 1}],
        [{"riderId": "bo", "name": "Bo", "classId": 2, "deviceId": "hub-1"}],
        [
            {"riderId": "cy", "name": "Cy", "classId": 3},
            {"riderId": "di", "name": "Di, Jr.", "classId": 4, "deviceId": "hub-2"},
            {"riderId": "ed", "name": "Ed, Sr.", "classId": 6},
        ],
        [{"riderId": "ann", "name": "Ann B.", "classId": 1, "deviceId": "hub-3"}],
    ]
    assert capsys.readouterr().out.splitlines() == [
        "race gp: 1 entered, 0 updated",
        "race gp: 1 entered, 0 updated",
        "race gp: 3 entered, 0 updated",
        "race gp: 0 entered, 1 updated",
    ]


def test_a_big_field_goes_a_thousand_entries_a_request(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP)
    field = tmp_path / "field.csv"
    field.write_text(
        "riderId,name,classId\n" + "".join(f"r{i},Rider {i},{1 + i % 6}\n" for i in range(2345))
    )
    assert main(race(api, "enter", "gp", "--file", str(field))) == 0
    assert [len(r.body["entries"]) for r in api[1].requests] == [1000, 1000, 345]
    assert capsys.readouterr().out == "race gp: 2345 entered, 0 updated\n"


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("riderId,name\nann,Ann\n", [], "the header lacks classId"),
        (
            "riderId,name,classId\nann,Ann,seven\n",
            [],
            "riders.csv:2: classId: Input should be a valid",
        ),
        (
            "riderId,name,classId\nann,Ann,7\n",
            [],
            "riders.csv:2: classId: Input should be less than",
        ),
        ("riderId,name,classId\nann,Ann,1\n", ["--rider", "ann,Ann,2"], "rider ann is given twice"),
        ("riderId,name,classId\nbad id,Ann,1\n", [], "riders.csv:2: riderId: String should match"),
        (None, ["--rider", "ann,Ann"], "--rider 'ann,Ann': give ID,NAME,CLASS[,DEVICE]"),
        (None, [], "no entries: give --file and/or --rider"),
    ],
)
def test_entries_the_api_would_refuse_are_named_before_sending(
    api: Api,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    options: list[str],
    message: str,
) -> None:
    api[1].races["gp"] = dict(GP)
    argv = race(api, "enter", "gp", *options)
    if content is not None:
        (tmp_path / "riders.csv").write_text(content)
        argv += ["--file", str(tmp_path / "riders.csv")]
    assert message in error_of(capsys, argv)
    assert api[1].requests == []


def test_a_json_file_that_is_not_entries_is_named(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"riders": []}')
    assert error_of(capsys, race(api, "enter", "gp", "--file", str(bad))) == (
        f'breakaway race: {bad}: expected a list of entries, or {{"entries": [...]}}'
    )
    bad.write_text("[{")
    assert error_of(capsys, race(api, "enter", "gp", "--file", str(bad))).startswith(
        f"breakaway race: {bad}: not JSON ("
    )
    missing = tmp_path / "missing.json"
    assert error_of(capsys, race(api, "enter", "gp", "--file", str(missing))) == (
        f"breakaway race: {missing}: No such file or directory"
    )


def test_close_and_disqualify_say_what_they_did(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP)
    api[1].entries["gp"] = {"ann": {"riderId": "ann"}}
    assert main(race(api, "close", "gp")) == 0
    assert main(race(api, "disqualify", "gp", "ann")) == 0
    assert capsys.readouterr().out.splitlines() == [
        "race gp closes at 2030-03-17 18:17:10Z",
        "rider ann disqualified in race gp",
    ]
    assert error_of(capsys, race(api, "disqualify", "gp", "bo")) == (
        "breakaway race: rider bo is not entered in race gp (HTTP 404)"
    )


def table_rows(out: str) -> list[list[str]]:
    """A rich table's header and rows (rich draws the header's bars heavy: ┃)."""
    return [
        [c.strip() for c in line.replace("┃", "│").strip()[1:-1].split("│")]
        for line in out.splitlines()
        if line.startswith(("│", "┃"))
    ]


def test_list_shows_the_races_of_a_status(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api[1].races["gp"] = dict(GP)
    api[1].races["old"] = dict(GP, raceId="old", name="Old", status="closed", entrants=12)
    assert main(race(api, "list", "--status", "closed", "--limit", "5")) == 0
    assert api[1].requests[-1].query == {"status": "closed", "limit": "5"}
    rows = table_rows(capsys.readouterr().out)
    assert [r[:3] for r in rows] == [["race", "name", "status"], ["old", "Old", "closed"]]
    assert rows[1][-1] == "12"


def results(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        ranked = i < n - 1
        out.append(
            {
                "rank": i + 1 if ranked else None,
                "riderId": f"r{i:03d}",
                "name": f"Rider {i}",
                "classId": 1 + i % 2,
                "points": 1_234_567 - i if ranked else 0,
                "seconds": 1800 if ranked else 0,
                "outcome": "ranked" if ranked else "DNS",
            }
        )
    return out


def test_results_show_every_page_overall_or_in_a_class(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP, status="closed")
    api[1].results["gp"] = results(130)
    assert main(race(api, "results", "gp")) == 0
    out = capsys.readouterr().out
    assert "race gp: final placings, overall" in out
    assert out.endswith(
        "class 1: no records in 1800 s races yet\nclass 2: no records in 1800 s races yet\n"
    )
    rows = table_rows(out)
    assert rows[0] == ["rank", "rider", "name", "class", "points", "seconds", "outcome", "marks"]
    assert rows[1] == ["1", "r000", "Rider 0", "1", "1,234,567", "1800", "ranked", ""]
    assert rows[-1] == ["-", "r129", "Rider 129", "2", "0", "0", "DNS", ""]
    assert len(rows) == 131
    assert main(race(api, "results", "gp", "--class", "2")) == 0
    rows = table_rows(capsys.readouterr().out)
    assert {r[3] for r in rows[1:]} == {"2"}
    assert len(rows) == 66
    assert [(r.path, r.query) for r in api[1].requests[-3:]] == [
        ("/races/gp/results", {"classId": "2", "limit": "100"}),
        ("/races/gp", {}),
        ("/classes/2/records", {"durationS": "1800", "limit": "10"}),
    ]


def test_the_local_stack_is_found_through_its_endpoints_file(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(
        json.dumps(
            {
                "aws_endpoint_url": "http://127.0.0.1:1",
                "region": "us-east-1",
                "mqtt_host": "127.0.0.1",
                "mqtt_port": 1,
                "stream_name": "s",
                "api_url": api[0],
            }
        )
    )
    api[1].races["gp"] = dict(GP)
    assert main(["race", "list", "--endpoints-file", str(endpoints)]) == 0
    assert "authorization" not in api[1].requests[0].headers
    assert error_of(capsys, ["race", "list", "--endpoints-file", str(tmp_path / "no.json")]) == (
        f"breakaway race: {tmp_path / 'no.json'} not found: start the local stack first "
        "(`breakaway up`), or use --target aws"
    )


def test_nothing_listening_is_said_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = error_of(capsys, ["race", "list", "--api-url", f"http://127.0.0.1:{port}"])
    assert err.startswith(f"breakaway race: cannot reach http://127.0.0.1:{port} (")
    assert err.endswith("is the local stack up? (`breakaway up`)")


def test_a_deployed_environment_s_organiser_routes_are_signed(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api[1].races["gp"] = dict(GP)
    with mock_aws():
        deploy("prod", "p", "s", api[0])
        assert main(["race", "close", "gp", "--target", "aws", "--env", "prod"]) == 0
        assert error_of(capsys, ["race", "close", "gp", "--target", "aws"]) == (
            "breakaway race: the dev environment has no deployed stack with the output 'ApiUrl' "
            "(Breakaway-Dev-Data or Breakaway-Dev-App): deploy it (`make deploy ENV=dev`) or "
            "pass --api-url"
        )
    (req,) = api[1].requests
    assert req.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request, SignedHeaders=" in req.headers["authorization"]
    assert error_of(capsys, ["race", "list", "--env", "prod"]) == (
        "breakaway race: --env picks a deployed environment: use it with --target aws"
    )
