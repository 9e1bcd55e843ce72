"""Each role holds the actions its code uses, on the resources it uses them on, and nothing else
(issue 16, item 12): the exact DynamoDB actions of each function, the Firehose role's S3 actions.

Where the lists come from (docs/decisions.md, "Each function is granted the DynamoDB actions it
calls"):

* DynamoDB authorizes a transaction's ``Put``/``Update`` with ``dynamodb:PutItem``/``UpdateItem``
  on the item's table ("Using IAM with DynamoDB transactions", DynamoDB Developer Guide); a
  ``Query`` naming an index is authorized on ``table/<table>/index/<index>``.
* The stream processor (``shared/dynamodb.py``, ``shared/race_store.py``): ``BatchGetItem``
  (standings not in its cache, and race records), ``Query`` on the table (a race's entries, when
  they changed), ``PutItem`` (one per rider; ``Put`` in a transaction for new and finishing
  riders and in the local stack's transaction mode), ``UpdateItem`` (the race record's counters;
  ``Update`` in those transactions). No index query: ranking is the API's and the closer's.
* The race closer (``shared/race_store.py``, ``functions/race_closer/adapters.py``): ``GetItem``
  (the race record), ``Query`` on the table, no index (the entries, the stored placings),
  ``BatchGetItem`` (the standings, 100 a request), ``UpdateItem`` (the race's state) and
  ``BatchWriteItem`` (the placings pages and the riders' results, 25 a request; it holds no
  ``DeleteItem``); from ``shared/history_store.py``, ``GetItem`` (a class's records) and
  ``PutItem`` (each personal best claimed, a class's records saved, both conditional);
  Powertools' idempotency layer calls ``GetItem``, ``PutItem``, ``UpdateItem`` and
  ``DeleteItem`` on its table (``persistence/dynamodb.py``; the Powertools idempotency
  documentation lists the same four).
* The leaderboard API (``functions/leaderboard_api/adapters.py``, ``shared/live_store.py``,
  ``shared/race_store.py`` for the organiser's routes, ``shared/history_store.py`` for riders'
  histories and records): ``GetItem`` and ``BatchGetItem`` on the table, ``Query`` on the table
  (a race's record and live head; its entries, for a build; a page of a rider's history) and
  on the recent-races index; ``PutItem`` (a new race, and entries put in transactions),
  ``UpdateItem`` (the race record; the live head and its build lease), ``BatchWriteItem`` (a
  live ranking build's chunks, 25 a request) and ``ConditionCheckItem`` (a disqualification's
  check of the race, in a transaction). The closer and the API are the roles that may
  batch-write the table; neither may delete.
* Firehose's S3 destination: ``s3:AbortMultipartUpload``, ``s3:GetBucketLocation``,
  ``s3:GetObject``, ``s3:ListBucket``, ``s3:ListBucketMultipartUploads``, ``s3:PutObject``
  ("Grant Firehose access to an Amazon S3 destination", Amazon Data Firehose Developer Guide),
  and writing its error log. No ``s3:DeleteObject*``: Firehose never deletes what it delivered.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared import keys
from tests.infra.helpers import (
    Assembly,
    function_by_handler,
    function_grants,
    import_of,
    logical_id_of,
    role_grants,
)

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

PROCESSOR = "functions.stream_processor.handler.handler"
CLOSER = "functions.race_closer.handler.handler"
API = "functions.leaderboard_api.handler.handler"


def _role_grants(dev: Assembly, role_id: str) -> dict[str, list[str]]:
    """Each action the role holds -> the resources it holds it on, sorted."""
    return {action: sorted(rs) for action, rs in role_grants(dev, role_id).items()}


def _function_grants(dev: Assembly, handler: str) -> dict[str, list[str]]:
    return {action: sorted(rs) for action, rs in function_grants(dev, handler).items()}


def _table_arn(dev: Assembly, contains: str) -> str:
    """How a Data stack table's ARN renders once imported into the App stack."""
    (lid,) = [lid for lid in dev.resources("Data", "AWS::DynamoDB::Table") if contains in lid]
    return import_of(dev, lid, "Arn")


def _dynamodb(grants: dict[str, list[str]]) -> dict[str, list[str]]:
    return {a: rs for a, rs in grants.items() if a.startswith("dynamodb:")}


def test_processor_holds_exactly_the_dynamodb_actions_it_calls(dev: Assembly) -> None:
    standings = _table_arn(dev, "Standings")
    assert _dynamodb(_function_grants(dev, PROCESSOR)) == {
        "dynamodb:BatchGetItem": [standings],
        "dynamodb:Query": [standings],
        "dynamodb:PutItem": [standings],
        "dynamodb:UpdateItem": [standings],
    }


def test_closer_holds_exactly_the_dynamodb_actions_it_and_powertools_call(
    dev: Assembly,
) -> None:
    standings = _table_arn(dev, "Standings")
    idempotency = _table_arn(dev, "Idempotency")
    assert _dynamodb(_function_grants(dev, CLOSER)) == {
        "dynamodb:GetItem": sorted([standings, idempotency]),
        "dynamodb:Query": [standings],
        "dynamodb:BatchGetItem": [standings],
        "dynamodb:UpdateItem": sorted([standings, idempotency]),
        "dynamodb:BatchWriteItem": [standings],
        "dynamodb:PutItem": sorted([standings, idempotency]),
        "dynamodb:DeleteItem": [idempotency],
    }


def test_api_holds_exactly_the_dynamodb_actions_it_calls(dev: Assembly) -> None:
    standings = _table_arn(dev, "Standings")
    assert _dynamodb(_function_grants(dev, API)) == {
        "dynamodb:BatchGetItem": [standings],
        "dynamodb:BatchWriteItem": [standings],
        "dynamodb:ConditionCheckItem": [standings],
        "dynamodb:GetItem": [standings],
        "dynamodb:PutItem": [standings],
        "dynamodb:UpdateItem": [standings],
        "dynamodb:Query": sorted([standings, f"{standings}/index/{keys.INDEX_RECENT}"]),
    }


def test_no_role_may_scan_or_delete_standings_and_only_the_closer_and_api_batch_write(
    dev: Assembly,
) -> None:
    standings = _table_arn(dev, "Standings")
    writers = {
        logical_id_of(function_by_handler(dev, fn)[1]["Properties"]["Role"]) for fn in (CLOSER, API)
    }
    for role_id in dev.resources("App", "AWS::IAM::Role"):
        for action, resources in _role_grants(dev, role_id).items():
            forbidden = ["dynamodb:Scan", "dynamodb:DeleteItem"]
            if role_id not in writers:
                forbidden.append("dynamodb:BatchWriteItem")
            if action in forbidden:
                assert not [r for r in resources if r.startswith(standings)], (role_id, action)
            assert "/index/*" not in " ".join(resources), (role_id, action)


def _firehose_destination_role(dev: Assembly) -> str:
    stream = dev.one("App", "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    return logical_id_of(stream["ExtendedS3DestinationConfiguration"]["RoleARN"])


def _archive_bucket_arn(dev: Assembly) -> str:
    (lid,) = [lid for lid in dev.resources("Data", "AWS::S3::Bucket") if "Archive" in lid]
    for output in dev.template("Data")["Outputs"].values():
        if output["Value"] == {"Fn::GetAtt": [lid, "Arn"]}:
            return "${Import:" + str(output["Export"]["Name"]) + "}"
    raise AssertionError(f"{lid}.Arn is not exported")


def test_firehose_may_write_the_archive_but_never_delete_from_it(dev: Assembly) -> None:
    bucket = _archive_bucket_arn(dev)
    grants = _role_grants(dev, _firehose_destination_role(dev))
    (log_group,) = [
        lid for lid in dev.resources("App", "AWS::Logs::LogGroup") if "DeliveryErrors" in lid
    ]
    assert grants == {
        "s3:GetBucketLocation": [bucket],
        "s3:ListBucket": [bucket],
        "s3:ListBucketMultipartUploads": [bucket],
        "s3:AbortMultipartUpload": [bucket + "/*"],
        "s3:GetObject": [bucket + "/*"],
        "s3:PutObject": [bucket + "/*"],
        "logs:CreateLogStream": ["${" + log_group + ".Arn}"],
        "logs:PutLogEvents": ["${" + log_group + ".Arn}"],
    }


def test_firehose_is_created_after_its_destination_policy(dev: Assembly) -> None:
    """Firehose starts delivering as soon as the stream exists: its role's policy must exist
    first, or the first deliveries fail and are retried into the error prefix."""
    role_id = _firehose_destination_role(dev)
    stream: dict[str, Any] = dev.one("App", "AWS::KinesisFirehose::DeliveryStream")
    policies = [
        lid
        for lid, p in dev.resources("App", "AWS::IAM::Policy").items()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    assert policies
    assert set(policies) <= set(stream.get("DependsOn", []))
