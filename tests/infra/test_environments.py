"""The production environment differs from dev where it must, and only there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.helpers import Assembly

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def stateful(assembly: Assembly) -> dict[str, dict[str, Any]]:
    kinds = (
        "AWS::Kinesis::Stream",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
    )
    return {
        lid: r for lid, r in assembly.template("Data")["Resources"].items() if r["Type"] in kinds
    }


def test_stack_names(dev: Assembly, prod: Assembly) -> None:
    assert sorted(dev.stacks) == ["Breakaway-Dev-App", "Breakaway-Dev-Data"]
    assert sorted(prod.stacks) == ["Breakaway-Prod-App", "Breakaway-Prod-Data"]


def test_prod_stream_is_provisioned_with_longer_retention(dev: Assembly, prod: Assembly) -> None:
    stream = prod.one("Data", "AWS::Kinesis::Stream")["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["ShardCount"] == 4
    assert stream["RetentionPeriodHours"] == 168
    assert dev.one("Data", "AWS::Kinesis::Stream")["Properties"]["RetentionPeriodHours"] == 24


def test_prod_retains_data_and_protects_tables(dev: Assembly, prod: Assembly) -> None:
    prod_resources = stateful(prod)
    dev_resources = stateful(dev)
    assert sorted(prod_resources) == sorted(dev_resources)
    assert len(prod_resources) == 9  # stream, 2 tables, 3 buckets, 3 queues
    for lid, resource in prod_resources.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (
            "Retain",
            "Retain",
        ), lid
        assert dev_resources[lid]["DeletionPolicy"] == "Delete", lid
    for table in prod.resources("Data", "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
    for table in dev.resources("Data", "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is False
    # Dev empties its buckets on destroy; prod never deletes objects.
    assert len(dev.resources("Data", "Custom::S3AutoDeleteObjects")) == 3
    assert prod.resources("Data", "Custom::S3AutoDeleteObjects") == {}


def test_prod_data_stack_has_termination_protection(dev: Assembly, prod: Assembly) -> None:
    def protected(assembly: Assembly) -> dict[str, bool]:
        return {
            name: bool(art["properties"].get("terminationProtection", False))
            for name, art in assembly.manifest()["artifacts"].items()
            if art["type"] == "aws:cloudformation:stack"
        }

    assert protected(prod) == {"Breakaway-Prod-Data": True, "Breakaway-Prod-App": False}
    assert protected(dev) == {"Breakaway-Dev-Data": False, "Breakaway-Dev-App": False}


def kinesis_event_source(assembly: Assembly) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r["Properties"]
        for r in assembly.resources("App", "AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" in r["Properties"]  # the SQS mapping has none
    ]
    (esm,) = found
    return esm


def test_prod_scales_processing_and_api(dev: Assembly, prod: Assembly) -> None:
    prod_esm = kinesis_event_source(prod)
    dev_esm = kinesis_event_source(dev)
    assert (dev_esm["ParallelizationFactor"], prod_esm["ParallelizationFactor"]) == (2, 4)
    ignored = {
        "ParallelizationFactor",
        "DestinationConfig",
        "EventSourceArn",
        "FunctionName",
        "Tags",
    }
    assert {k: v for k, v in prod_esm.items() if k not in ignored} == {
        k: v for k, v in dev_esm.items() if k not in ignored
    }
    settings = prod.one("App", "AWS::ApiGateway::Stage")["Properties"]["MethodSettings"][0]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (1000, 2000)


def test_prod_keeps_logs_longer(prod: Assembly) -> None:
    retention = sorted(
        g["Properties"]["RetentionInDays"]
        for g in prod.resources("App", "AWS::Logs::LogGroup").values()
    )
    assert retention == [90] * 6  # three functions, API access, Firehose, IoT errors


def test_prod_archive_is_kept_two_years(prod: Assembly) -> None:
    buckets = prod.resources("Data", "AWS::S3::Bucket")
    (archive,) = [b for lid, b in buckets.items() if lid.startswith("Archive")]
    (rule,) = archive["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 730
