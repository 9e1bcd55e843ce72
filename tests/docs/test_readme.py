"""Every command in README.md works without AWS, so the README cannot rot.

The commands are the lines of the README's shell code blocks and every inline code span that
starts with a program name. Each is exercised as far as it can be without an account:

* ``make <target> [VAR=value]``: ``make --dry-run`` succeeds, every variable is one the
  Makefile reads, and what the recipe would run is checked in turn: a ``breakaway`` line as
  below (``make demo``), ``-c env=<name>`` loaded from cdk.json, ``pytest`` being this suite
  (``make test``);
* ``breakaway ...``: parsed by the real CLI parser; ``capacity`` runs; ``simulate`` builds its
  race (all it checks before sending); ``provision`` and ``deprovision`` need AWS and are
  parsed only; the local-stack commands are mapped to the end-to-end tests that run the same
  code (``demo`` and ``simulate --target local``: a race through ``local.race.run_race``);
* ``curl "${API_URL}..."``: served by the local API gateway and the real handler over moto,
  seeded with the race the README simulates: status 200 and the route's JSON shape;
* ``aws <service> <operation> --option ...``: the service, the operation and each option are in
  botocore's model of the API (which the AWS CLI is generated from), the required ones given.

A command of any other kind fails the test, naming it.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import math
import re
import shlex
import subprocess
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
from botocore import xform_name
from moto import mock_aws

import local.demo
import local.race
from functions.leaderboard_api import handler as api
from functions.leaderboard_api.logic import DEFAULT_LIMIT
from infra.config import CONTEXT_KEY, BreakawayConfig, ConfigError, load_config
from local import cli
from local.aws.api_gateway import LocalApiGateway, match_resource
from shared.contract import CLASS_IDS
from shared.history import Best, ClassRecords, RaceRef, RiderResult
from shared.history_store import DynamoHistoryStore
from shared.limits import CONNECTION_HEADROOM
from shared.placings import Placings, Tally, compute_placings
from shared.races import EnteredRider, Entry, Race
from shared.tables import create_tables
from simulator.cli import _race_config
from simulator.model import RaceConfig, riders_of
from tests.leaderboard_api.helpers import (
    ENVIRONMENT,
    IDEMPOTENCY,
    REGION,
    RESOURCES,
    SCHEDULE_GROUP,
    STANDINGS,
    Clock,
    Db,
    standing,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "console"})
PROGRAMS = frozenset(
    {
        "make", "breakaway", ".venv/bin/breakaway", "curl", "cdk", "npx", "npm", "node",
        "pytest", ".venv/bin/pytest", "python", "python3", ".venv/bin/python", "uv", "pip",
        "aws", "docker", "git", "sudo", "apt-get",
    }
)  # fmt: skip
"""First words that make an inline code span a command (a program's name alone is a name)."""
BREAKAWAY = frozenset({"breakaway", ".venv/bin/breakaway"})
API_URL = ("${API_URL}", "$API_URL")
STAGE = BreakawayConfig().api.stage_name
END_TO_END_RACE = (
    "tests/local/test_stack.py::"
    "test_standings_equal_the_ground_truth_despite_resends_and_reordering[{transport}]"
)
"""Runs ``local.race.run_race`` (``breakaway simulate`` into the local stack, every standing
read back through the API against the ground truth), as ``breakaway demo`` does."""
RACE_COMMANDS = {
    action: f"tests/simulator/test_race_cli.py::{test}"
    for action, test in (
        ("create", "test_create_schedules_the_race_and_shows_it"),
        ("enter", "test_riders_are_entered_from_json_csv_and_options"),
        ("list", "test_list_shows_the_races_of_a_status"),
        ("close", "test_close_and_disqualify_say_what_they_did"),
        ("disqualify", "test_close_and_disqualify_say_what_they_did"),
        ("results", "test_results_show_every_page_overall_or_in_a_class"),
    )
}
"""``breakaway race`` needs a running API: each action is mapped to the test that runs it against
one on 127.0.0.1."""
AUDIT = {
    "local": "tests/archive/test_queries.py::test_the_audit_on_the_local_archive_is_exact",
    "aws": "tests/archive/test_athena.py::test_the_audit_through_athena_is_exact",
}
"""``breakaway audit`` needs a closed race and its archive: the test running its code on each."""
RIDER_COMMANDS = {
    "history": "tests/simulator/test_rider_cli.py::test_rider_history_shows_the_races_newest_first"
}
"""``breakaway rider``, likewise: run against the real handler behind the local gateway."""
UP_AND_DOWN = "tests/local/test_cli.py::test_up_serves_and_stops_cleanly_leaving_no_process[{how}]"
SEEDED_RIDERS = 60
"""Riders of the README's race put in the table: more than any page the README asks for."""

ApiUrl = Callable[[], str]
"""Starts the API for the README's curl commands on first use; gives its ``ApiUrl``."""


@dataclass(frozen=True)
class Command:
    text: str
    argv: tuple[str, ...]
    line: int

    def __str__(self) -> str:
        return f"README command `{self.text}` (line {self.line})"


# --- finding the commands ----------------------------------------------------------------------
FENCE = re.compile(r"\s*(```+|~~~+)\s*([\w+-]*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
COMMENT = re.compile(r"(?:^|\s+)#.*$")


def split(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text, comments=True))
    except ValueError:  # unbalanced quotes: exercising the command will say what is wrong
        return tuple(text.split())


def commands_in(markdown: str) -> list[Command]:
    """The lines of shell code blocks, and inline code spans whose first word is a program."""
    found: list[Command] = []
    fence: str | None = None
    language = ""
    pending, start = "", 0
    for number, line in enumerate(markdown.splitlines(), 1):
        marker = FENCE.match(line)
        if fence is None:
            if marker:
                fence, language = marker[1], marker[2].lower()
                continue
            for span in INLINE.findall(line):
                words = span.split()
                if len(words) > 1 and words[0] in PROGRAMS:
                    found.append(Command(span, split(span), number))
            continue
        if marker and not marker[2] and marker[1][0] == fence[0] and len(marker[1]) >= len(fence):
            fence = None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if not pending:
            start = number
        joined = pending + line
        if joined.rstrip().endswith("\\"):
            pending = joined.rstrip()[:-1] + " "
            continue
        pending = ""
        argv = split(joined)
        if argv:
            found.append(Command(" ".join(COMMENT.sub("", joined).split()), argv, start))
    return found


README_COMMANDS = commands_in(README.read_text())
PROSE = " ".join(README.read_text().split())
"""The README with its line breaks undone, for phrases that wrap."""


# --- exercising them -------------------------------------------------------------------------
def exercise(command: Command, api_url: ApiUrl) -> str:
    """Check ``command`` without AWS and say how; an AssertionError names the command."""
    program = command.argv[0] if command.argv else ""
    if program == "make":
        return check_make(command)
    if program in BREAKAWAY:
        return check_breakaway(command, command.argv[1:])
    if program == "curl":
        return check_curl(command, api_url)
    if program == "aws":
        return check_aws(command)
    raise AssertionError(
        f"{command}: tests/docs/test_readme.py does not know how to exercise `{program}` "
        "without AWS: teach it, or leave the command out"
    )


VARIABLE = re.compile(r"([A-Za-z_]\w*)=(.*)")


def check_make(command: Command) -> str:
    args = command.argv[1:]
    makefile = (ROOT / "Makefile").read_text()
    for word in args:
        assignment = VARIABLE.fullmatch(word)
        if assignment:
            name = assignment[1]
            assert f"$({name})" in makefile, f"{command}: the Makefile reads no variable {name}"
        else:
            assert not word.startswith("-"), f"{command}: make's own options are not exercised"
    dry = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dry.returncode == 0, f"{command}: `make --dry-run` fails: {dry.stderr.strip()}"
    done = [f"make --dry-run {shlex.join(args)}"]
    for line in dry.stdout.splitlines():
        words = split(line)
        if "breakaway" in words:
            done.append(check_breakaway(command, words[words.index("breakaway") + 1 :]))
        if "pytest" in words:
            done.append(this_suite())
        for name in re.findall(r"(?:^|\s)-c env=(\S+)", line):
            done.append(check_environment(command, name))
    return "; ".join(done)


def this_suite() -> str:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    testpaths = options["ini_options"]["testpaths"]
    here = Path(__file__).resolve().relative_to(ROOT)
    assert any(here.is_relative_to(path) for path in testpaths), (here, testpaths)
    return f"runs pytest over {', '.join(testpaths)}: the suite this test is part of"


def check_environment(command: Command, name: str) -> str:
    environments = json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]
    try:
        load_config(name, environments)
    except ConfigError as exc:
        raise AssertionError(f"{command}: {exc}") from None
    return f"cdk.json environment {name!r} loads"


def parse(command: Command, args: Sequence[str]) -> argparse.Namespace | None:
    """The real CLI parser's reading of ``args``; None for ``--help`` (printed, exit 0)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli.build_parser().parse_args(list(args))
    except SystemExit as exc:
        if exc.code == 0 and "usage: breakaway" in out.getvalue():
            return None
        error = err.getvalue().strip().splitlines()[-1:]  # argparse's "breakaway: error: ..."
        raise AssertionError(f"{command}: the CLI refuses it: {' '.join(error)}") from None


def check_breakaway(command: Command, args: Sequence[str]) -> str:
    ns = parse(command, args)
    if ns is None:
        return "help: printed, exit status 0"
    name = ns.command
    if name == "capacity":
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(list(args))
        assert status == 0, f"{command}: exit status {status}: {err.getvalue().strip()}"
        return "capacity: run, exit status 0"
    if name == "simulate":
        try:
            race = _race_config(ns)
        except cli.CliError as exc:
            raise AssertionError(f"{command}: {exc}") from None
        if ns.target == "local":
            return mapped(command, END_TO_END_RACE.format(transport=ns.transport))
        return f"simulate: race {race.race_id} of {race.riders} riders built; sending needs AWS"
    if name in ("provision", "deprovision"):
        return f"{name}: parsed; it needs AWS"
    if name == "race":
        return mapped(command, RACE_COMMANDS[ns.race_command])
    if name == "rider":
        return mapped(command, RIDER_COMMANDS[ns.rider_command])
    if name == "demo":
        runs_race = "run_race" in local.demo.run_demo.__code__.co_names
        assert runs_race, f"{command}: breakaway demo no longer runs run_race"
        assert vars(local.demo)["run_race"] is local.race.run_race, command
        return mapped(command, END_TO_END_RACE.format(transport=ns.transport))
    if name == "audit":
        return mapped(command, AUDIT[ns.target])
    if name in ("up", "down"):
        return mapped(command, UP_AND_DOWN.format(how="SIGINT" if name == "up" else "down"))
    raise AssertionError(
        f"{command}: tests/docs/test_readme.py does not know how to exercise "
        f"`breakaway {name}` without AWS: teach it, or leave the command out"
    )


def mapped(command: Command, node: str) -> str:
    """``node`` (``path::function[parameter]``) exists: the test running this command's code."""
    path, _, test = node.partition("::")
    function, _, parameter = test.partition("[")
    tree = ast.parse((ROOT / path).read_text())
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
    assert found, f"{command}: {node} is gone; map the command to the test that now runs it"
    values = {
        n.value
        for decorator in found[0].decorator_list
        for n in ast.walk(decorator)
        if isinstance(n, ast.Constant)
    }
    assert not parameter or parameter.rstrip("]") in values, f"{command}: {node} has no such case"
    return f"exercised end to end by {node}"


def check_curl(command: Command, api_url: ApiUrl) -> str:
    args = command.argv[1:]
    only = f'{command}: only `curl "${{API_URL}}<path>"` is exercised'
    assert len(args) == 1, only
    assert args[0].startswith(API_URL), only
    rest = args[0].removeprefix(API_URL[0]).removeprefix(API_URL[1])
    assert not rest.startswith("/"), (
        f"{command}: `ApiUrl` ends in `/`, so this asks for `//{rest.lstrip('/')}`; write "
        f'`curl "${{API_URL}}{rest.lstrip("/")}"`'
    )
    parts = urlsplit("/" + rest)
    resource, params = match_resource(parts.path, RESOURCES)
    shape = SHAPES.get(resource)
    assert shape is not None, f"{command}: {parts.path} is not a route with a known answer"
    status, body = get(api_url() + rest)
    assert status == 200, f"{command}: {status} {body}"
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    shape(command, body, params or {}, query)
    return f"GET {parts.path}: 200 with the shape of {resource}"


def get(url: str) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# --- what each route answers --------------------------------------------------------------------
RACE_KEYS = {
    "raceId", "name", "status", "startsAt", "durationS", "graceS", "closesAt", "entrants",
    "riders", "finished", "lastReadingAt", "classes",
}  # fmt: skip
ENTRY_KEYS = {"rank", "riderId", "name", "classId", "points", "seconds", "lastSecond", "finished"}
BOARD_KEYS = {"raceId", "classId", "asOf", "entries", "nextCursor"}
RIDER_KEYS = {
    "raceId", "riderId", "name", "classId", "points", "seconds", "lastSecond", "rank",
    "classRank", "riders", "classRiders", "finished", "asOf",
}  # fmt: skip
Shape = Callable[[Command, Any, dict[str, str], dict[str, str]], None]


def expect(command: Command, ok: bool, what: str, body: Any) -> None:
    assert ok, f"{command}: expected {what}, got {json.dumps(body)[:400]}"


def races_shape(command: Command, body: Any, _: dict[str, str], __: dict[str, str]) -> None:
    expect(command, set(body) == {"races", "nextCursor"}, "races and nextCursor", body)
    races = body["races"]
    expect(command, bool(races) and all(set(r) == RACE_KEYS for r in races), "races", body)


def race_shape(command: Command, body: Any, params: dict[str, str], _: dict[str, str]) -> None:
    expect(command, set(body) == RACE_KEYS, f"the keys {sorted(RACE_KEYS)}", body)
    expect(command, body["raceId"] == params["raceId"], "the race asked for", body)


def board_shape(command: Command, body: Any, params: dict[str, str], query: dict[str, str]) -> None:
    expect(command, set(body) == BOARD_KEYS, f"the keys {sorted(BOARD_KEYS)}", body)
    expect(command, body["raceId"] == params["raceId"], "the race asked for", body)
    entries = body["entries"]
    limit = int(query.get("limit", DEFAULT_LIMIT))
    expect(command, len(entries) == limit, f"{limit} entries", body)
    expect(command, all(set(e) == ENTRY_KEYS for e in entries), "leaderboard entries", body)
    ranks = [e["rank"] for e in entries]
    expect(command, ranks == sorted(ranks) and ranks[0] == 1, "ranks from 1 up", body)
    if "classId" in query:
        class_id = int(query["classId"])
        in_class = body["classId"] == class_id and {e["classId"] for e in entries} == {class_id}
        expect(command, in_class, f"class {class_id} only", body)


RESULT_KEYS = {
    "rank", "riderId", "name", "classId", "points", "seconds", "outcome", "personalBest", "record",
}  # fmt: skip
HISTORY_KEYS = {
    "race", "name", "classId", "rankOverall", "rankClass", "points", "seconds", "personalBest",
    "record",
}  # fmt: skip
RECORD_KEYS = {"rank", "riderId", "name", "points", "seconds", "race", "holder"}
RACE_REF_KEYS = {"raceId", "name", "startsAt", "durationS"}


def results_shape(
    command: Command, body: Any, params: dict[str, str], query: dict[str, str]
) -> None:
    expect(
        command, set(body) == BOARD_KEYS - {"asOf"}, "raceId, classId, entries, nextCursor", body
    )
    expect(command, body["raceId"] == params["raceId"], "the race asked for", body)
    entries = body["entries"]
    limit = int(query.get("limit", DEFAULT_LIMIT))
    expect(command, len(entries) == limit, f"{limit} placings", body)
    expect(command, all(set(e) == RESULT_KEYS for e in entries), "placings", body)
    expect(command, entries[0]["rank"] == 1, "the winner first", body)


def rider_shape(command: Command, body: Any, params: dict[str, str], _: dict[str, str]) -> None:
    expect(command, set(body) == RIDER_KEYS, f"the keys {sorted(RIDER_KEYS)}", body)
    asked = (body["raceId"], body["riderId"]) == (params["raceId"], params["riderId"])
    expect(command, asked, "the rider asked for", body)


def history_shape(
    command: Command, body: Any, params: dict[str, str], query: dict[str, str]
) -> None:
    expect(command, set(body) == {"riderId", "results", "nextCursor"}, "a history page", body)
    expect(command, body["riderId"] == params["riderId"], "the rider asked for", body)
    results = body["results"]
    limit = int(query.get("limit", "20"))
    expect(command, 0 < len(results) <= limit, f"1 to {limit} races", body)
    expect(command, all(set(r) == HISTORY_KEYS for r in results), "history items", body)
    expect(command, all(set(r["race"]) == RACE_REF_KEYS for r in results), "their races", body)


def records_shape(
    command: Command, body: Any, params: dict[str, str], query: dict[str, str]
) -> None:
    expect(command, set(body) == {"classId", "durationS", "records"}, "class records", body)
    asked = (body["classId"], body["durationS"]) == (
        int(params["classId"]),
        int(query["durationS"]),
    )
    expect(command, asked, "the class and race length asked for", body)
    rows = body["records"]
    expect(command, len(rows) > 0 and all(set(r) == RECORD_KEYS for r in rows), "rows", body)
    expect(command, (rows[0]["rank"], rows[0]["holder"]) == (1, True), "the holder first", body)


SHAPES: dict[str, Shape] = {
    "/races": races_shape,
    "/races/{raceId}": race_shape,
    "/races/{raceId}/leaderboard": board_shape,
    "/races/{raceId}/riders/{riderId}": rider_shape,
    "/races/{raceId}/results": results_shape,
    "/riders/{riderId}/results": history_shape,
    "/classes/{classId}/records": records_shape,
}


# --- the README's race, served --------------------------------------------------------------------
def readme_race(commands: Sequence[Command] = README_COMMANDS) -> RaceConfig:
    """The race of the README's first ``breakaway simulate`` line."""
    for command in commands:
        if command.argv[0] in BREAKAWAY and command.argv[1:2] == ("simulate",):
            ns = parse(command, command.argv[1:])
            assert ns is not None
            return _race_config(ns)
    raise AssertionError("README.md simulates no race for its curl commands to read")


def seed_history(store: DynamoHistoryStore, race: Race, placings: Placings) -> None:
    """The README race's results in its riders' histories and the class records, as its close
    stores them (the closer's own tests hold how it weighs them)."""
    ref = RaceRef(race.race_id, race.name, race.starts_at, race.duration_s)
    ranked = [p for p in placings.overall if p.outcome == "ranked"]
    store.put_results(
        [
            RiderResult(p.rider_id, p.name, ref, p.class_id, p.rank_overall, p.rank_class,
                        p.points, p.seconds, True, p.rank_class == 1)
            for p in ranked
        ]
    )  # fmt: skip
    for class_id in CLASS_IDS:
        bests = [
            Best(p.rider_id, p.name, class_id, p.points, p.seconds, ref)
            for p in ranked
            if p.class_id == class_id
        ]
        if bests:
            assert store.save_records(ClassRecords(class_id, race.duration_s).merged(bests))


@pytest.fixture(scope="module")
def readme_api() -> Iterator[str]:
    """The API over moto (the API tests' tables) holding the README's race: its first riders
    and every rider the README names. One for the module: the curl commands only read."""
    race = readme_race()
    named = set(re.findall(r"rider-\d{5}", PROSE))
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for variable, value in ENVIRONMENT.items():
            env.setenv(variable, value)
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client, STANDINGS, IDEMPOTENCY)
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
        db = Db(client, scheduler, Clock())
        seeded = [
            standing(r.rider_id, 100 * (race.riders - r.index), r.class_id, race=race.race_id)
            for r in riders_of(race)
            if r.index < SEEDED_RIDERS or r.rider_id in named
        ]
        record = db.put_race(race.race_id, seeded, duration_s=race.duration)
        entered = [
            EnteredRider(Entry(rider_id=s.rider_id, name=s.name, class_id=s.class_id))
            for s in seeded
        ]
        tallies = {s.rider_id: Tally(s.points, s.seconds) for s in seeded}
        placings = compute_placings(entered, tallies)
        db.close(race.race_id, placings)  # the results are served
        seed_history(DynamoHistoryStore(client, STANDINGS), record, placings)
        api.install(None)
        try:
            with LocalApiGateway(api.handler, stage=STAGE, resources=RESOURCES) as gateway:
                yield gateway.url
        finally:
            api.install(None)


def check_aws(command: Command) -> str:
    """The operation and its options exist in the API; the command is not run."""
    service, operation = [*command.argv[1:3], "", ""][:2]
    session = botocore.session.get_session()
    assert service in session.get_available_services(), f"{command}: no AWS service {service!r}"
    model = session.get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"{command}: {service} has no operation {operation!r}"
    shape = model.operation_model(operations[operation]).input_shape
    members = dict(shape.members) if shape else {}
    options = {xform_name(name, "-"): name for name in members}
    given: set[str] = set()
    for word in command.argv[3:]:
        if not word.startswith("--"):
            continue
        option = word[2:]
        flag = option.removeprefix("no-")  # --no-<boolean> gives it as false
        if flag in options and members[options[flag]].type_name == "boolean":
            option = flag
        assert option in options, f"{command}: {service} {operation} has no option --{option}"
        given.add(options[option])
    missing = sorted(set(shape.required_members if shape else ()) - given)
    assert not missing, f"{command}: {service} {operation} needs {', '.join(missing)}"
    return f"aws {service} {operation}: the operation and its options are in the API's model"


def served(request: pytest.FixtureRequest) -> ApiUrl:
    return lambda: str(request.getfixturevalue("readme_api"))


# --- the README ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", README_COMMANDS, ids=lambda c: f"L{c.line} {c.text}")
def test_readme_command_works_without_aws(command: Command, request: pytest.FixtureRequest) -> None:
    exercise(command, served(request))


def test_readme_has_commands_of_every_kind() -> None:
    texts = {c.text for c in README_COMMANDS}
    assert {"make demo", "make test", "make demo TRANSPORT=kinesis"} <= texts
    assert {"make", ".venv/bin/breakaway", "curl"} <= {c.argv[0] for c in README_COMMANDS}


def test_make_demo_and_make_test_are_mapped_to_the_tests_running_them() -> None:
    how = {c.text: exercise(c, served_nowhere) for c in commands_in(SAMPLE_MAKE)}

    assert how["make demo"].endswith(END_TO_END_RACE.format(transport="mqtt"))
    assert how["make demo TRANSPORT=kinesis"].endswith(END_TO_END_RACE.format(transport="kinesis"))
    assert how["make test"].endswith("runs pytest over tests: the suite this test is part of")
    assert how["make deploy ENV=prod"].endswith("cdk.json environment 'prod' loads")


SAMPLE_MAKE = """```sh
make demo
make demo TRANSPORT=kinesis
make test
make deploy ENV=prod
```"""


def served_nowhere() -> str:
    raise AssertionError("no API for this command")


def test_readme_costs_are_what_the_capacity_command_prints() -> None:
    runs = [c for c in README_COMMANDS if c.argv[0] in BREAKAWAY and c.argv[1:2] == ("capacity",)]
    assert len(runs) == 2
    environments = json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]
    dev, prod = (load_config(name, environments).api for name in ("dev", "prod"))
    throttle = f"({dev.throttling_rate_limit} requests/s; prod {prod.throttling_rate_limit:,})"
    assert f"dev stage throttle {throttle}" in PROSE
    hit: dict[int, bool] = {}
    for command in runs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main([*command.argv[1:], "--json"]) == 0
        d = json.loads(out.getvalue())
        cost = d["cost"]["per_hour_usd"]
        row = (
            f"| {d['scenario']['riders']:,} | {d['scenario']['viewers']:,} "
            f"| ${d['cost']['race_hour_usd']:,.2f} | ${cost['cloudfront']:,.2f} "
            f"| ${cost['iot']:,.2f} | ${cost['dynamodb']:,.2f} "
            f"| {d['api']['requests_per_s']:g} |"
        )
        assert row in PROSE, f"{command}: README.md should have the row {row}"
        assert d["api"]["requests_per_s"] < dev.throttling_rate_limit, command
        assert f"stream alone costs ${d['kinesis']['idle_monthly_usd']:,.2f} a month" in PROSE
        first = d["first_limit"]
        hit[d["scenario"]["riders"]] = first["utilization"] >= 1
        if first["utilization"] >= 1:  # a cold stream: the lift the README gives
            assert first["service"] == "Kinesis", command
            assert f"takes {first['limit']:,.0f} records/s" in PROSE
            shards = re.search(r"stream\.shard_count=\d+", first["lift"])
            assert shards is not None
            assert f"`{shards.group()}`" in PROSE
    assert hit == {1_000: False, 10_000: True}


def test_readme_provisions_a_thing_for_every_mqtt_connection() -> None:
    def breakaway(name: str) -> list[argparse.Namespace]:
        found = [c for c in README_COMMANDS if c.argv[0] in BREAKAWAY and c.argv[1:2] == (name,)]
        return [ns for c in found if (ns := parse(c, c.argv[1:])) is not None]

    (provision,) = breakaway("provision")
    mqtt = [ns for ns in breakaway("simulate") if ns.transport == "mqtt" and ns.target == "aws"]
    assert mqtt
    for ns in mqtt:
        race = _race_config(ns)
        # As simulator.cli sizes the pool: each connection at 90% of its publish limit.
        per_connection = ns.max_publish_rate * CONNECTION_HEADROOM
        needed = ns.connections or math.ceil(race.riders / race.period / per_connection)
        assert provision.count >= needed
        assert f"take {needed} connections at {per_connection:g} publishes/s" in PROSE


def test_readme_names_riders_of_the_race_it_simulates() -> None:
    race = readme_race()
    ids = {r.rider_id for r in riders_of(race)}
    assert set(re.findall(r"rider-\d{5}", PROSE)) <= ids
    assert f"rides `{race.race_id}` (seed {race.seed})" in PROSE


# --- the checks themselves fail on what does not exist ------------------------------------------
def test_extractor_finds_shell_lines_and_inline_commands() -> None:
    sample = """# Title
Run `make demo` or `make demo TRANSPORT=kinesis`; the CLI is `breakaway`, see `infra/config.py`.

```mermaid
flowchart LR
    a -- "make fake" --> b
```

```sh
make deploy ENV=prod   # a comment with `make fake`
.venv/bin/breakaway simulate --riders 10 \\
    --duration 5
curl "${API_URL}races"  # the races

# only a comment
```

````text
make fake
````
"""
    found = [(c.text, c.argv, c.line) for c in commands_in(sample)]

    assert found == [
        ("make demo", ("make", "demo"), 2),
        ("make demo TRANSPORT=kinesis", ("make", "demo", "TRANSPORT=kinesis"), 2),
        ("make deploy ENV=prod", ("make", "deploy", "ENV=prod"), 10),
        (
            ".venv/bin/breakaway simulate --riders 10 --duration 5",
            (".venv/bin/breakaway", "simulate", "--riders", "10", "--duration", "5"),
            11,
        ),
        ('curl "${API_URL}races"', ("curl", "${API_URL}races"), 13),
    ]


BOGUS = [
    "make nosuchtarget",
    "make demo TRANSPOT=kinesis",
    "make demo TRANSPORT=carrier-pigeon",
    "make deploy ENV=staging",
    "make -k test",
    ".venv/bin/breakaway frobnicate",
    ".venv/bin/breakaway simulate --target aws --no-such-flag",
    ".venv/bin/breakaway simulate --target aws --rate 2",
    ".venv/bin/breakaway capacity --riders 0",
    "npm run everything",
    'curl -X POST "${API_URL}races"',
    'curl "https://example.com/races"',
    'curl "$API_URL/races"',
    'curl "${API_URL}nosuch"',
    'curl "${API_URL}openapi.json"',
    'curl "${API_URL}races/race-1/leaderboard?limit=0"',
    'curl "${API_URL}races/race-9/leaderboard?limit=10"',
    'curl "${API_URL}races/race-1/riders/rider-01000"',
    'curl "${API_URL}races/race-1/leaderboard?classId=3&limit=20"',
    "aws cloudformation update-termination-protection --no-enable-termination-protection",
    "aws cloudformation update-termination-protections --stack-name Breakaway-Prod-Data",
    "aws cloudformations describe-stacks",
    "aws cloudformation describe-stacks --stack Breakaway-Prod-Data",
]


@pytest.mark.parametrize("text", BOGUS)
def test_a_command_that_does_not_work_fails_naming_it(
    text: str, request: pytest.FixtureRequest
) -> None:
    (command,) = commands_in(f"```sh\n{text}\n```")

    with pytest.raises(AssertionError) as failure:
        exercise(command, served(request))

    assert f"README command `{text}` (line 2)" in str(failure.value)


def test_an_edited_readme_fails_on_every_edited_command(request: pytest.FixtureRequest) -> None:
    text = README.read_text()
    for old, new in [
        ("make deploy ENV=prod", "make deploy ENV=production"),
        ("--transport kinesis --riders 1000", "--transport pigeon --riders 1000"),
        ("races/race-1/riders/rider-00042", "races/race-1/rider/rider-00042"),
        ("make test-fast", "make test-quick"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    before = {c.text for c in README_COMMANDS}
    edited = [c for c in commands_in(text) if c.text not in before]

    assert {c.text for c in edited} == {
        "make deploy ENV=production",
        ".venv/bin/breakaway simulate --target aws --transport pigeon --riders 1000 --duration 300 "
        "--race-id race-2",
        'curl "${API_URL}races/race-1/rider/rider-00042"',
        "make test-quick",
    }
    for command in edited:
        with pytest.raises(AssertionError, match=re.escape(command.text)):
            exercise(command, served(request))
