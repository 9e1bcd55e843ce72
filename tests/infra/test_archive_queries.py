"""The archive's queries in the templates: the entries table and its projection, the Athena
workgroup per environment with its results bucket, every query of shared/archive_sql.py as a
named query (the same text), and the closer's one grant on the archive."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components.athena import ENGINE_VERSION
from shared import names
from shared.archive_sql import QUERIES
from tests.infra.helpers import Assembly, Synths, function_grants, joined, logical_id_of

CLOSER = "functions.race_closer.handler.handler"


def table(assembly: Assembly, name: str) -> dict[str, Any]:
    (found,) = [
        t["Properties"]
        for t in assembly.resources("App", "AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == name
    ]
    return found


def results_bucket(dev: Assembly) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (lid, b)
        for lid, b in dev.resources("Data", "AWS::S3::Bucket").items()
        if "QueryResults" in lid
    ]
    return found


def test_the_entries_table_projects_the_day_of_the_races_start(dev: Assembly) -> None:
    entries = table(dev, names.GLUE_ENTRIES_TABLE)["TableInput"]
    params = entries["Parameters"]
    assert {k: v for k, v in params.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.day.type": "date",
        "projection.day.format": "yyyy-MM-dd",
        "projection.day.range": "2025-01-01,NOW",
        "projection.day.interval": "1",
        "projection.day.interval.unit": "DAYS",
    }
    assert joined(params["storage.location.template"]).endswith("/entries/day=${day}/")
    assert [k["Name"] for k in entries["PartitionKeys"]] == ["day"]
    assert [(c["Name"], c["Type"]) for c in entries["StorageDescriptor"]["Columns"]] == [
        ("raceid", "string"),
        ("racename", "string"),
        ("startsat", "bigint"),
        ("durations", "bigint"),
        ("graces", "bigint"),
        ("closesat", "bigint"),
        ("riderid", "string"),
        ("name", "string"),
        ("classid", "bigint"),
        ("deviceid", "string"),
        ("disqualified", "boolean"),
    ]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_environment_has_its_workgroup_enforcing_encrypted_results(
    env: str, synths: Synths
) -> None:
    assembly: Assembly = getattr(synths, env)
    (workgroup_id, workgroup) = next(
        iter(assembly.resources("App", "AWS::Athena::WorkGroup").items())
    )
    props = workgroup["Properties"]
    assert props["Name"] == names.athena_workgroup_name(env) == f"breakaway-{env}-archive"
    config = props["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"] == {"SelectedEngineVersion": ENGINE_VERSION}
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_S3"
    }
    location = joined(config["ResultConfiguration"]["OutputLocation"])
    assert location.startswith("s3://${Import:")
    assert location.endswith("/results/")
    output = assembly.template("App")["Outputs"][names.OUTPUT_ATHENA_WORKGROUP]
    assert output["Value"] == {"Ref": workgroup_id}


def test_the_results_bucket_is_private_encrypted_tls_only_and_expires_results(
    dev: Assembly,
) -> None:
    lid, bucket = results_bucket(dev)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["LifecycleConfiguration"]["Rules"] == [
        {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "ExpirationInDays": 7,
            "Status": "Enabled",
        }
    ]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "athena-results/"
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.resources("Data", "AWS::S3::BucketPolicy").values()
        if logical_id_of(p["Properties"]["Bucket"]) == lid
    ]
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [
            {"Fn::GetAtt": [lid, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [lid, "Arn"]}, "/*"]]},
        ],
    } in policy


def test_every_archive_query_is_a_named_query_with_the_same_text(dev: Assembly) -> None:
    (workgroup_id,) = dev.resources("App", "AWS::Athena::WorkGroup")
    (database_id,) = dev.resources("App", "AWS::Glue::Database")
    named = [q["Properties"] for q in dev.resources("App", "AWS::Athena::NamedQuery").values()]
    assert sorted((q["Name"], q["QueryString"], q["Description"]) for q in named) == sorted(
        (q.name, q.sql, q.answers) for q in QUERIES
    )
    assert all(q["WorkGroup"] == {"Ref": workgroup_id} for q in named)
    assert all(q["Database"] == {"Ref": database_id} for q in named)
    assert "readings_view" in {q["Name"] for q in named}


def test_the_closer_may_only_put_cards_into_the_archive(dev: Assembly) -> None:
    grants = function_grants(dev, CLOSER)
    s3 = {a: rs for a, rs in grants.items() if a.startswith("s3:")}
    assert list(s3) == ["s3:PutObject"]
    (resource,) = s3["s3:PutObject"]
    assert resource.startswith("${Import:")
    assert resource.endswith("/entries/*")
    archive = next(
        lid for lid in dev.resources("Data", "AWS::S3::Bucket") if lid.startswith("Archive")
    )
    exports = {
        o["Export"]["Name"]: o["Value"]
        for o in dev.template("Data")["Outputs"].values()
        if "Export" in o
    }
    assert exports[resource.removeprefix("${Import:").removesuffix("}/entries/*")] == {
        "Fn::GetAtt": [archive, "Arn"]
    }
    _, closer = next(
        (lid, f)
        for lid, f in dev.resources("App", "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == CLOSER
    )
    variables = closer["Properties"]["Environment"]["Variables"]
    assert logical_id_of(exported(dev, variables[names.ENV_ARCHIVE_BUCKET])) == archive


def exported(dev: Assembly, value: Any) -> Any:
    from tests.infra.helpers import exported as resolve

    return resolve(dev, value)
