"""`breakaway provision` / `deprovision` against moto's IoT (and CloudFormation outputs)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cli import main
from shared.names import OUTPUT_IOT_POLICY, OUTPUT_STREAM_NAME, STACK_PREFIX
from simulator.provision import CERT_FILE, KEY_FILE, MANIFEST, deprovision, load_things, provision
from simulator.targets import TargetError, stack_outputs

POLICY_DOC = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


@pytest.fixture
def iot() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("iot", region_name="us-east-1")
        client.create_policy(policyName="sim-policy", policyDocument=POLICY_DOC)
        yield client


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


STACK_TEMPLATE = json.dumps(
    {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            OUTPUT_IOT_POLICY: {"Value": "sim-policy"},
            OUTPUT_STREAM_NAME: {"Value": "telemetry-stream"},
        },
    }
)


def test_cli_finds_the_policy_in_the_stack_outputs(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName=f"{STACK_PREFIX}-Dev-Ingest", TemplateBody=STACK_TEMPLATE)
    cfn.create_stack(StackName="Other", TemplateBody=STACK_TEMPLATE.replace("sim-", "other-"))
    outputs = stack_outputs(boto3.Session(region_name="us-east-1"))
    assert outputs[OUTPUT_IOT_POLICY] == "sim-policy"
    assert outputs[OUTPUT_STREAM_NAME] == "telemetry-stream"

    folder = tmp_path / "creds"
    argv = ["--dir", str(folder), "--region", "us-east-1"]
    assert main(["provision", "--count", "2", *argv]) == 0
    assert capsys.readouterr().out == (
        f"provisioned 2 thing(s) with policy sim-policy; credentials in {folder}\n"
    )
    assert len(iot.list_things()["things"]) == 2
    assert main(["deprovision", *argv]) == 0
    assert iot.list_things()["things"] == []
    assert not folder.exists()


def test_cli_without_a_deployed_stack_says_what_to_do(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provision", "--dir", str(tmp_path / "c"), "--region", "us-east-1"]) == 2
    assert capsys.readouterr().err == (
        f"breakaway provision: no deployed {STACK_PREFIX} stack has the output "
        f"'{OUTPUT_IOT_POLICY}': deploy the app (`cdk deploy --all`) or pass --policy\n"
    )


def test_simulate_to_aws_finds_the_stream_in_the_stack_outputs(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName=f"{STACK_PREFIX}-Dev-Ingest", TemplateBody=STACK_TEMPLATE)
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


def test_simulate_to_aws_without_the_stack_says_what_to_do(
    iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--target", "aws"]) == 2
    assert capsys.readouterr().err == (
        f"breakaway simulate: no deployed {STACK_PREFIX} stack has the output "
        f"'{OUTPUT_STREAM_NAME}': deploy the app (`cdk deploy --all`) or pass --stream-name\n"
    )
