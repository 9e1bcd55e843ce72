"""`breakaway provision` / `deprovision` against moto's IoT (and CloudFormation outputs)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.cli import main
from shared.names import OUTPUT_API_URL, OUTPUT_IOT_POLICY, OUTPUT_STREAM_NAME, stack_name
from simulator.provision import (
    CERT_FILE,
    KEY_FILE,
    MANIFEST,
    deprovision,
    load_things,
    policy_targets,
    provision,
)
from simulator.targets import TargetError, stack_outputs
from tests.simulator.conftest import POLICY_DOC
from tests.simulator.fake_api import FakeState


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_provision_creates_things_certificates_and_owner_only_files(
    iot: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    things = provision(iot, "sim-policy", folder, 2, "sim")
    assert [t.name for t in things] == ["sim-0", "sim-1"]
    assert mode(folder) == 0o700
    assert mode(folder / MANIFEST) == 0o600
    for t in things:
        assert mode(t.cert_path.parent) == 0o700
        assert mode(t.cert_path) == 0o600
        assert mode(t.key_path) == 0o600
        assert t.cert_path.name == CERT_FILE
        assert t.key_path.name == KEY_FILE
        assert t.cert_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert "PRIVATE KEY" in t.key_path.read_text()
        assert iot.list_thing_principals(thingName=t.name)["principals"] == [t.certificate_arn]
        policies = iot.list_attached_policies(target=t.certificate_arn)["policies"]
        assert [p["policyName"] for p in policies] == ["sim-policy"]
        cert = iot.describe_certificate(certificateId=t.certificate_id)["certificateDescription"]
        assert cert["status"] == "ACTIVE"
    assert load_things(folder) == ("sim-policy", things)


def test_provision_refuses_to_overwrite_existing_credentials(iot: Any, tmp_path: Path) -> None:
    provision(iot, "sim-policy", tmp_path, 1, "sim")
    with pytest.raises(TargetError, match="already exists: run `breakaway deprovision` first"):
        provision(iot, "sim-policy", tmp_path, 1, "sim")


def test_provision_with_an_unknown_policy_is_one_clear_error(iot: Any, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"AWS refused to provision IoT things \(Resource"):
        provision(iot, "no-such-policy", tmp_path / "x", 1, "sim")
    assert iot.list_things()["things"] == []


def test_deprovision_removes_everything(iot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "iot"
    provision(iot, "sim-policy", folder, 3, "sim")
    assert deprovision(iot, folder) == ["sim-0", "sim-1", "sim-2"]
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
    assert not folder.exists()
    with pytest.raises(TargetError, match=r"no IoT credentials in .*: run `breakaway provision`"):
        deprovision(iot, folder)


def template(policy: str, stream: str, api_url: str | None = None) -> str:
    outputs = {OUTPUT_IOT_POLICY: {"Value": policy}, OUTPUT_STREAM_NAME: {"Value": stream}}
    if api_url is not None:
        outputs[OUTPUT_API_URL] = {"Value": api_url}
    return json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs})


def deploy(env: str, policy: str, stream: str, api_url: str | None = None) -> None:
    """The two stacks of ``env``, as far as the CLI reads them: their outputs."""
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(
        StackName=stack_name(env, "Data"), TemplateBody=template(policy, stream, api_url)
    )


def test_each_environment_reads_its_own_stacks(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    iot.create_policy(policyName="prod-policy", policyDocument=POLICY_DOC)
    deploy("prod", "prod-policy", "prod-stream")
    deploy("dev", "sim-policy", "telemetry-stream")
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="Breakaway-Other", TemplateBody=template("other", "other"))
    session = boto3.Session(region_name="us-east-1")
    assert stack_outputs(session, "dev")[OUTPUT_IOT_POLICY] == "sim-policy"
    assert stack_outputs(session, "prod")[OUTPUT_STREAM_NAME] == "prod-stream"
    assert stack_outputs(session, "qa") == {}

    folder = tmp_path / "creds"
    for env, policy in (("dev", "sim-policy"), ("prod", "prod-policy")):
        argv = ["--env", env, "--dir", str(folder / env), "--region", "us-east-1"]
        assert main(["provision", "--count", "2", "--prefix", env, *argv]) == 0
        assert capsys.readouterr().out == (
            f"provisioned 2 thing(s) with policy {policy}; credentials in {folder / env}\n"
        )
        assert len(policy_targets(iot, policy)) == 2
    assert main(["deprovision", "--env", "dev", "--dir", str(folder / "dev")]) == 0
    assert len(iot.list_things()["things"]) == 2  # prod's
    assert not (folder / "dev").exists()


def test_provision_writes_to_the_environment_s_own_folder(
    iot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    deploy("dev", "sim-policy", "telemetry-stream")
    assert main(["provision", "--region", "us-east-1"]) == 0
    assert capsys.readouterr().out.endswith("credentials in .breakaway/iot/dev\n")
    assert load_things(Path(".breakaway/iot/dev"))[0] == "sim-policy"


def test_cli_without_a_deployed_stack_says_what_to_do(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy("dev", "sim-policy", "telemetry-stream")
    argv = ["provision", "--dir", str(tmp_path / "c"), "--region", "us-east-1", "--env", "prod"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "breakaway provision: the prod environment has no deployed stack with the output "
        f"'{OUTPUT_IOT_POLICY}' (Breakaway-Prod-Data or Breakaway-Prod-App): deploy it "
        "(`make deploy ENV=prod`) or pass --policy\n"
    )


def test_teardown_from_any_state(
    iot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``make destroy`` runs first: with nothing provisioned and no stack it does nothing;
    with things in the environment's folder and a stray certificate elsewhere it leaves the
    device policy attached to nothing, so that the stack delete can remove it."""
    monkeypatch.chdir(tmp_path)
    teardown = ["deprovision", "--teardown", "--region", "us-east-1"]
    assert main(teardown) == 0
    assert capsys.readouterr().out == (
        "no things to remove: .breakaway/iot/dev/things.json does not exist\n"
        "detached the dev device policy from 0 more certificate(s)\n"
    )

    deploy("dev", "sim-policy", "telemetry-stream")
    assert main(["provision", "--count", "2", "--region", "us-east-1"]) == 0
    stray = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName="sim-policy", target=stray)
    capsys.readouterr()
    assert main(teardown) == 0
    assert capsys.readouterr().out == (
        "removed 2 thing(s) and their certificates; deleted .breakaway/iot/dev\n"
        f"detached the dev device policy from 1 more certificate(s) (they remain): {stray}\n"
    )
    assert policy_targets(iot, "sim-policy") == []
    iot.delete_policy(policyName="sim-policy")
    assert main(teardown) == 0  # and again, the policy gone too


def test_deprovision_without_teardown_still_wants_the_folder(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deprovision", "--dir", str(tmp_path / "none"), "--region", "us-east-1"]) == 2
    assert "no IoT credentials in" in capsys.readouterr().err


def test_simulate_to_aws_finds_the_stream_and_the_api_in_the_stack_outputs(
    iot: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    api: tuple[str, FakeState],
) -> None:
    monkeypatch.chdir(tmp_path)
    url, state = api
    deploy("dev", "sim-policy", "telemetry-stream", url)
    deploy("prod", "sim-policy", "prod-stream", url)
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="telemetry-stream", ShardCount=1)
    argv = ["simulate", "--target", "aws", "--riders", "10", "--duration", "5"]
    # moto's in-memory shard is not safe for concurrent puts: one call at a time
    assert main([*argv, "--time-compression", "0", "--max-in-flight", "1"]) == 0
    assert "50 readings produced, 50 sent (0 resent by fault injection), 50 acknowledged" in (
        capsys.readouterr().out
    )
    shard = kinesis.list_shards(StreamName="telemetry-stream")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(
        StreamName="telemetry-stream", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 50
    # the race was created and its riders entered, each request signed for execute-api
    assert [r.path for r in state.requests] == ["/races", "/races/race-1/entries"]
    for r in state.requests:
        assert r.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
        assert "/us-east-1/execute-api/aws4_request, " in r.headers["authorization"]
        assert "x-amz-security-token" in r.headers
    # --env prod reads prod's stack: its stream, which is not there.
    assert main([*argv, "--env", "prod"]) == 2
    assert "'prod-stream'" in capsys.readouterr().err


def test_simulate_to_aws_without_the_stack_says_what_to_do(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--target", "aws"]) == 2
    assert capsys.readouterr().err == (
        "breakaway simulate: the dev environment has no deployed stack with the output "
        f"'{OUTPUT_STREAM_NAME}' (Breakaway-Dev-Data or Breakaway-Dev-App): deploy it "
        "(`make deploy ENV=dev`) or pass --stream-name\n"
    )
