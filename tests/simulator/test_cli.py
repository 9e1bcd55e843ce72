"""`breakaway simulate`: the happy paths (the race created and entered through the API first,
or an existing one read), and every user-fixable error as one clear line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.cli import main
from shared.contract import parse_reading
from shared.counting import Refusal
from shared.names import LOCAL_ENDPOINTS_FILE
from simulator.fleet import PRODUCER_ID, local_device_ids
from simulator.model import RaceConfig, riders_of
from simulator.standin import StandinServer
from simulator.truth import load_ground_truth
from tests.simulator.fake_api import FakeState

Api = tuple[str, FakeState]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_endpoints(
    root: Path,
    *,
    kinesis_url: str,
    stream: str = "standin-stream",
    mqtt_port: int = 1,
    api_url: str = "http://127.0.0.1:1",
) -> Path:
    path = root / LOCAL_ENDPOINTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "aws_endpoint_url": kinesis_url,
                "region": "us-east-1",
                "mqtt_host": "127.0.0.1",
                "mqtt_port": mqtt_port,
                "api_url": api_url,
                "stream_name": stream,
                "archive_bucket": "breakaway-archive",
            }
        )
    )
    return path


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 2) -> str:
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_simulate_to_the_local_stack_writes_truth_and_one_summary(
    in_tmp: Path, standin: StandinServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=api[0])
    argv = ["simulate", "--riders", "50", "--duration", "20", "--seed", "3"]
    assert main([*argv, "--time-compression", "0", "--start-ms", "1000000"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1  # not a terminal: no progress, just the summary
    produced = len(standin.received)
    assert lines[0].startswith(f"race race-3: 50 riders, {produced} readings produced, ")
    assert f"{produced} acknowledged, 0 retried, 0 throttled, 0 failed" in lines[0]
    truth = load_ground_truth(in_tmp / ".breakaway" / "truth" / "race-3.json")
    assert len(truth.riders) == 50
    assert sum(t.seconds for t in truth.riders.values()) == produced
    # PutRecords: the simulator is one trusted producer, named in every reading and entry
    assert {parse_reading(data).device_id for _, data in standin.received} == {PRODUCER_ID}
    assert {key for key, _ in standin.received} == {r.rider_id for r in riders_of(CONFIG_3)}


CONFIG_3 = RaceConfig("race-3", riders=50, duration=20, seed=3)


def test_simulate_creates_its_race_and_enters_its_riders_before_it_rides(
    in_tmp: Path, standin: StandinServer, api: Api
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    argv = ["simulate", "--riders", "50", "--duration", "20", "--seed", "3", "--grace", "7"]
    past = int(time.time() * 1000) - 20_000  # every second already due: sent at once
    assert main([*argv, "--time-compression", "1", "--start-ms", str(past)]) == 0
    create, enter = state.requests
    assert (create.method, create.path, enter.path) == ("POST", "/races", "/races/race-3/entries")
    assert create.body == {
        "raceId": "race-3",
        "name": "Simulated race race-3",
        "startsAt": past,  # in real time, the race starts when its second 0 is sent
        "durationS": 20,
        "graceS": 7,
    }
    truth = load_ground_truth(in_tmp / ".breakaway" / "truth" / "race-3.json")
    assert enter.body["entries"] == [
        {"riderId": rid, "name": t.name, "classId": t.class_id, "deviceId": PRODUCER_ID}
        for rid, t in sorted(truth.riders.items())
    ]


def test_simulate_in_fast_motion_starts_its_race_early_so_that_it_closes_after_the_ride(
    in_tmp: Path, standin: StandinServer, api: Api
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    start = int(time.time() * 1000) - 40_000  # its second 0 is past: all sent at once
    argv = ["simulate", "--riders", "5", "--duration", "40", "--time-compression", "4"]
    assert main([*argv, "--start-ms", str(start)]) == 0
    assert state.requests[0].body["startsAt"] == start - 30_000


def test_an_existing_race_is_ridden_as_scheduled_and_not_created_again(
    in_tmp: Path, standin: StandinServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    state.races["gp"] = {
        "raceId": "gp",
        "startsAt": 1_000_000,
        "durationS": 12,
        "status": "closing",
    }
    argv = ["simulate", "--race-id", "gp", "--riders", "4", "--time-compression", "0"]
    assert main([*argv, "--existing-race"]) == 0
    assert [(r.method, r.path) for r in state.requests] == [("GET", "/races/gp")]
    assert "race gp: 4 riders, 48 readings produced" in capsys.readouterr().out
    stamps = {parse_reading(data).device_timestamp for _, data in standin.received}
    assert min(stamps), max(stamps) == (1_000_000, 1_011_000)
    assert error_of(capsys, [*argv, "--existing-race", "--duration", "5"]) == (
        "breakaway simulate: an --existing-race has its schedule: leave out --start-ms and "
        "--duration"
    )
    assert error_of(capsys, ["simulate", "--race-id", "nope", "--existing-race"]) == (
        "breakaway simulate: could not read race nope: the API answered 404: no race nope"
    )


def test_a_race_that_exists_is_not_ridden_over(
    in_tmp: Path, standin: StandinServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    state.races["race-1"] = {"raceId": "race-1"}
    assert error_of(capsys, ["simulate", "--time-compression", "0"]) == (
        "breakaway simulate: could not create race race-1: race race-1 exists (ride it with "
        "--existing-race, or choose another --race-id)"
    )
    assert standin.received == []


def test_without_the_api_nothing_is_ridden(
    in_tmp: Path, standin: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=f"http://127.0.0.1:{port}/")
    err = error_of(capsys, ["simulate", "--time-compression", "0"])
    assert err.startswith(
        f"breakaway simulate: could not create race race-1: cannot reach http://127.0.0.1:{port} ("
    )
    assert standin.received == []


def test_cheats_are_sent_and_tallied_in_the_truth(
    in_tmp: Path, standin: StandinServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    argv = ["simulate", "--riders", "30", "--duration", "40", "--time-compression", "0"]
    argv += ["--past-duration", "2", "--wrong-device", "3", "--unknown-race", "1"]
    argv += ["--unentered", "2", "--no-shows", "2", "--ground-truth", "t.json"]
    assert main(argv) == 0
    truth = load_ground_truth(in_tmp / "t.json")
    assert truth.dead_letters == {
        Refusal.SECOND_OUT_OF_RANGE: 2,
        Refusal.WRONG_DEVICE: 3,
        Refusal.UNKNOWN_RACE: 1,
        Refusal.NOT_ENTERED: 2,
    }
    assert sum(1 for t in truth.riders.values() if t.seconds == 0) == 2
    counted = sum(t.seconds for t in truth.riders.values())
    assert len(standin.received) == counted + 8
    assert ", 8 of them to be refused)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--spoof-device", "1"], "a spoofed deviceId is an MQTT cheat"),
        (["--no-shows", "5", "--riders", "5", "--future", "1"], "5 riders cannot hold 5 no-shows"),
    ],
)
def test_cheats_the_race_cannot_hold_are_refused_before_the_race_is_made(
    in_tmp: Path,
    standin: StandinServer,
    api: Api,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=url)
    assert message in error_of(capsys, ["simulate", *argv])
    assert state.requests == []


def test_simulate_sends_each_second_when_its_device_timestamp_falls_due(
    in_tmp: Path, standin: StandinServer, api: Api
) -> None:
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=api[0])
    start = time.time() + 1.5
    argv = ["simulate", "--riders", "5", "--duration", "2", "--start-ms", str(int(start * 1000))]
    assert main(argv) == 0
    # second 1 (the last) is due at start + 1 s: a run paced from its own start ends at +1 s
    assert time.time() >= start + 1.0
    assert len(standin.received) == 10


def test_simulate_with_fault_injection_counts_the_resends(
    in_tmp: Path, standin: StandinServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    write_endpoints(in_tmp, kinesis_url=standin.url, api_url=api[0])
    truth = in_tmp / "t.json"
    argv = ["simulate", "--riders", "30", "--duration", "20", "--time-compression", "0"]
    argv += ["--duplicate-fraction", "0.1", "--reorder-window", "40", "--ground-truth", str(truth)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    produced = sum(t.seconds for t in load_ground_truth(truth).riders.values())
    dupes = len(standin.received) - produced
    assert dupes > 0
    assert f"{produced + dupes} sent ({dupes} resent by fault injection)" in out


def test_simulate_over_mqtt_to_the_local_broker(
    in_tmp: Path, broker_port: int, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = api
    write_endpoints(in_tmp, kinesis_url="http://127.0.0.1:1", mqtt_port=broker_port, api_url=url)
    argv = ["simulate", "--transport", "mqtt", "--riders", "20", "--duration", "10"]
    argv += ["--connections", "3"]
    assert main([*argv, "--time-compression", "0", "--max-publish-rate", "0"]) == 0
    out = capsys.readouterr().out
    assert " 0 failed" in out
    assert "race race-1: 20 riders, 200 readings produced, 200 sent" in out
    assert "200 acknowledged" in out
    devices = local_device_ids("race-1", 3)
    assert devices == ("race-1-d000", "race-1-d001", "race-1-d002")
    entered = state.requests[1].body["entries"]
    assert [e["deviceId"] for e in entered] == [devices[i % 3] for i in range(20)]


def test_missing_endpoints_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert error_of(capsys, ["simulate"]) == (
        "breakaway simulate: .breakaway/endpoints.json not found: start the local stack "
        "first (`breakaway up`), or use --target aws"
    )


def test_unreachable_local_endpoint(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    write_endpoints(in_tmp, kinesis_url=url)
    assert error_of(capsys, ["simulate"]) == (
        f"breakaway simulate: cannot reach the local stack's Kinesis at {url}: "
        "start it with `breakaway up`"
    )


def test_unreachable_broker(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    write_endpoints(in_tmp, kinesis_url="http://127.0.0.1:1", mqtt_port=port)
    err = error_of(capsys, ["simulate", "--transport", "mqtt"])
    assert err.startswith(
        f"breakaway simulate: cannot connect to the MQTT broker at 127.0.0.1:{port} ("
    )
    assert err.endswith(
        "is it running and is the address (and for IoT Core the certificate) right?"
    )


def test_missing_stream(
    in_tmp: Path, standin: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_endpoints(in_tmp, kinesis_url=standin.url, stream="nope")
    assert error_of(capsys, ["simulate"]) == (
        "breakaway simulate: stream 'nope' does not exist: deploy the stack (or run "
        "`breakaway up`), or pass the right --stream-name"
    )


NO_CREDENTIALS = (
    "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or use --target local"
)


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--target", "aws"],
        ["simulate", "--target", "aws", "--stream-name", "telemetry"],
        ["provision"],
    ],
)
def test_no_aws_credentials(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    err = error_of(capsys, argv)
    assert err == f"breakaway {argv[0]}: {NO_CREDENTIALS}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "2"], "--rate 2.0 must be above 0 and at most 1 (Hz per rider)"),
        (["--classes", "7"], "--classes 7 must be 1-6"),
        (["--duration", "90000"], "--duration must be at most 86400 seconds"),
    ],
)
def test_bad_option_values(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert error_of(capsys, ["simulate", *argv]) == f"breakaway simulate: {message}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--riders", "0"], "argument --riders: 0: input should be greater than or equal to 1"),
        (
            ["--duplicate-fraction", "1.5"],
            "argument --duplicate-fraction: 1.5: input should be less than or equal to 1",
        ),
        (["--race-id", "bad id"], "argument --race-id: 'bad id' must be 1-64 of A-Z a-z 0-9 _ -"),
        (
            ["--transport", "carrier-pigeon"],
            "argument --transport: invalid choice: 'carrier-pigeon'",
        ),
        (
            ["--time-compression", "nan"],
            "argument --time-compression: nan: input should be a finite number",
        ),
        (
            ["--riders", "ten"],
            "argument --riders: ten: input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            ["--time-compression", "-1"],
            "argument --time-compression: -1: input should be greater than or equal to 0",
        ),
    ],
)
def test_bad_options_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"breakaway simulate: error: {message}")


def test_as_a_real_process_the_error_is_one_line_and_status_2(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "breakaway"), "simulate"],  # the console script
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "breakaway simulate: .breakaway/endpoints.json not found: start the local stack "
        "first (`breakaway up`), or use --target aws"
    ]


MQTT_TO_AWS = ["simulate", "--target", "aws", "--transport", "mqtt", "--mqtt-endpoint", "x.invalid"]


def test_mqtt_to_aws_without_provisioned_credentials(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert error_of(capsys, MQTT_TO_AWS) == (
        "breakaway simulate: no IoT credentials in .breakaway/iot/dev: run `breakaway provision` "
        "first (or pass --credentials)"
    )
    assert error_of(capsys, [*MQTT_TO_AWS, "--env", "prod"]) == (
        "breakaway simulate: no IoT credentials in .breakaway/iot/prod: run `breakaway provision` "
        "first (or pass --credentials)"
    )


def damaged_things(folder: Path, count: int) -> None:
    """A ``things.json`` of ``count`` things whose certificate files hold no certificate."""
    things = []
    for i in range(count):
        (folder / f"sim-{i}").mkdir(parents=True)
        (folder / f"sim-{i}" / "certificate.pem.crt").write_text("not a certificate")
        (folder / f"sim-{i}" / "private.pem.key").write_text("not a key")
        things.append(
            {
                "name": f"sim-{i}",
                "certificateArn": f"arn:aws:iot:us-east-1:123456789012:cert/abc{i}",
                "certificateId": f"abc{i}",
                "cert": "certificate.pem.crt",
                "key": "private.pem.key",
            }
        )
    (folder / "things.json").write_text(json.dumps({"policy": "p", "things": things}))


def test_mqtt_to_aws_with_a_damaged_certificate(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = in_tmp / "creds"
    damaged_things(folder, 1)
    err = error_of(capsys, [*MQTT_TO_AWS, "--credentials", str(folder), "--connections", "1"])
    assert err.startswith(f"breakaway simulate: cannot use the certificate of sim-0 in {folder} (")
    assert err.endswith("): run `breakaway provision` again")


def test_mqtt_to_aws_needs_a_thing_per_connection(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = in_tmp / "creds"
    damaged_things(folder, 2)
    # 1,000 riders at 1 Hz: 12 connections at 90% of IoT Core's 100 publishes/s each
    assert error_of(capsys, [*MQTT_TO_AWS, "--credentials", str(folder), "--riders", "1000"]) == (
        f"breakaway simulate: 12 MQTT connections need 12 provisioned things, {folder} has 2: "
        "run `breakaway provision --count 12`"
    )


class PublishedError(Exception):
    """Raised by the stand-in transport: what the real one would have been built with."""


@pytest.mark.parametrize(
    ("where", "rule"),
    [
        (["--target", "aws"], "breakaway_dev_telemetry_to_kinesis"),
        (["--target", "aws", "--env", "prod"], "breakaway_prod_telemetry_to_kinesis"),
        (["--target", "local"], "breakaway_local_telemetry_to_kinesis"),
    ],
)
def test_basic_ingest_publishes_to_the_target_environment_s_rule(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, where: list[str], rule: str
) -> None:
    """Basic Ingest topics name the rule (``$aws/rules/<rule>/...``), and each environment's
    rule has its own name: the simulator must publish to the one it targets."""
    import simulator.transports.mqtt as mqtt

    def transport(connections: object, **options: object) -> None:
        raise PublishedError(options["basic_ingest_rule"])

    damaged_things(in_tmp / "creds", 1)
    monkeypatch.setattr(mqtt, "mtls_connection", lambda *a: object())
    monkeypatch.setattr(mqtt, "MqttTransport", transport)
    argv = [*MQTT_TO_AWS[:1], *where, "--transport", "mqtt", "--mqtt-endpoint", "127.0.0.1"]
    argv += ["--mqtt-port", "1", "--connections", "1", "--credentials", str(in_tmp / "creds")]
    with pytest.raises(PublishedError) as built:
        main([*argv, "--basic-ingest"])
    assert built.value.args == (rule,)
    with pytest.raises(PublishedError) as built:
        main([*argv, "--no-basic-ingest"])
    assert built.value.args == (None,)
    # by default: Basic Ingest in AWS (no messaging charge), the plain topic locally
    with pytest.raises(PublishedError) as built:
        main(argv)
    assert built.value.args == ((rule,) if "aws" in where else (None,))


def test_env_is_for_a_deployed_target(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert error_of(capsys, ["simulate", "--env", "prod"]) == (
        "breakaway simulate: --env picks a deployed environment: use it with --target aws"
    )
    with pytest.raises(SystemExit):
        main(["simulate", "--target", "aws", "--env", "Prod"])
    assert "'Prod' must be lowercase letters and digits" in capsys.readouterr().err


@pytest.fixture(scope="module")
def device_policy_broker() -> Iterator[int]:
    """The local stack's own broker (aedes), which closes the connection of a client that
    publishes on another client's device topic, as IoT Core's device policy makes it."""
    from local import procs

    port = procs.free_port()
    proc = procs.start_module("local.aws.iot_broker", ["--port", str(port), "--broker", "aedes"])
    try:
        procs.wait_for_port(port, proc=proc)
        yield port
    finally:
        procs.stop_process(proc)


@pytest.mark.parametrize("basic_ingest", [False, True])
def test_every_device_publishes_on_its_own_topic_even_when_cheating(
    in_tmp: Path,
    device_policy_broker: int,
    api: Api,
    capsys: pytest.CaptureFixture[str],
    basic_ingest: bool,
) -> None:
    url, _ = api
    write_endpoints(
        in_tmp, kinesis_url="http://127.0.0.1:1", mqtt_port=device_policy_broker, api_url=url
    )
    argv = ["simulate", "--transport", "mqtt", "--riders", "12", "--duration", "10"]
    argv += ["--connections", "3", "--time-compression", "0", "--max-publish-rate", "0"]
    argv += ["--wrong-device", "2", "--spoof-device", "2", "--unentered", "1"]
    argv += ["--basic-ingest"] if basic_ingest else []
    assert main(argv) == 0
    out = capsys.readouterr().out
    # nothing refused by the broker: no connection closed, no publish retried
    assert ", 0 retried, 0 throttled, 0 failed," in out
    assert "121 sent (0 resent by fault injection, 3 of them to be refused)" in out
