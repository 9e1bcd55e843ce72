"""The leaderboard API's construct, synthesized on its own: the organiser's routes are
IAM-authorised and the reads public; the function holds exactly the table actions its code
calls (reads, the live ranking's builds, and the organiser's writes), never a scan or a delete.

Where the actions come from: ``functions/leaderboard_api/adapters.py`` (GetItem, BatchGetItem,
Query on the races index), ``shared/live_store.py`` (Query on the table, BatchGetItem,
BatchWriteItem of a build's chunks, UpdateItem of the live head) and ``shared/race_store.py``
(PutItem for a race; TransactWriteItems of ``Put`` entries and the race record's ``Update``,
authorized as PutItem and UpdateItem; UpdateItem for an early close; a disqualification's
``ConditionCheck``, authorized as ``dynamodb:ConditionCheckItem`` ("Using IAM with DynamoDB
transactions", DynamoDB Developer Guide)).
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest

from shared import keys
from shared.routes import API_ROUTES

pytestmark = [pytest.mark.synth]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from aws_cdk import App, Stack
    from aws_cdk import aws_dynamodb as dynamodb

    from infra.components.leaderboard_api import LeaderboardApi
    from infra.config import BreakawayConfig

    app = App(outdir=tempfile.mkdtemp(prefix="api-synth-"))
    stack = Stack(app, "ApiOnly")
    table = dynamodb.Table.from_table_name(stack, "Standings", "standings")
    LeaderboardApi(stack, "Api", config=BreakawayConfig(), standings=table)
    found: dict[str, Any] = app.synth().get_stack_by_name("ApiOnly").template
    return found


def _methods(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, HTTP method) -> the method's properties."""
    resources = template["Resources"]

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:
            return "/"
        props = resources[ref["Ref"]]["Properties"]
        return path(props["ParentId"]).rstrip("/") + "/" + str(props["PathPart"])

    return {
        (path(r["Properties"]["ResourceId"]), r["Properties"]["HttpMethod"]): r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method"
    }


def test_the_organisers_routes_need_a_sigv4_signature_and_the_reads_none(
    template: dict[str, Any],
) -> None:
    methods = _methods(template)
    authorization = {
        key: props["AuthorizationType"] for key, props in methods.items() if key[1] != "OPTIONS"
    }

    assert authorization == {
        ("/", "GET"): "NONE",
        ("/openapi.json", "GET"): "NONE",
        ("/swagger", "GET"): "NONE",
        ("/races", "GET"): "NONE",
        ("/races/{raceId}", "GET"): "NONE",
        ("/races/{raceId}/leaderboard", "GET"): "NONE",
        ("/races/{raceId}/riders/{riderId}", "GET"): "NONE",
        ("/races/{raceId}/results", "GET"): "NONE",
        ("/riders/{riderId}/results", "GET"): "NONE",
        ("/classes/{classId}/records", "GET"): "NONE",
        ("/{proxy+}", "GET"): "NONE",
        ("/races", "POST"): "AWS_IAM",
        ("/races/{raceId}/entries", "POST"): "AWS_IAM",
        ("/races/{raceId}/close", "POST"): "AWS_IAM",
        ("/races/{raceId}/entries/{riderId}/disqualify", "POST"): "AWS_IAM",
    }
    assert {(r.path, r.method) for r in API_ROUTES if r.organiser} == {
        key for key, auth in authorization.items() if auth == "AWS_IAM"
    }
    # The preflight of every resource answers without credentials, as a browser sends it.
    assert {p["AuthorizationType"] for (_, m), p in methods.items() if m == "OPTIONS"} == {"NONE"}


def test_the_organisers_routes_validate_their_path_and_reach_the_function(
    template: dict[str, Any],
) -> None:
    methods = _methods(template)

    assert methods[("/races", "POST")].get("RequestParameters") is None
    assert methods[("/races/{raceId}/close", "POST")]["RequestParameters"] == {
        "method.request.path.raceId": True
    }
    assert methods[("/races/{raceId}/entries/{riderId}/disqualify", "POST")][
        "RequestParameters"
    ] == {"method.request.path.raceId": True, "method.request.path.riderId": True}
    assert methods[("/races", "GET")]["RequestParameters"] == {
        "method.request.querystring.status": False,
        "method.request.querystring.limit": False,
        "method.request.querystring.cursor": False,
    }
    for (_, verb), props in methods.items():
        if verb != "OPTIONS":
            assert props["Integration"]["Type"] == "AWS_PROXY"


def _function_grants(template: dict[str, Any]) -> dict[str, list[str]]:
    """Each DynamoDB action the API function's role holds -> the resources, rendered."""
    resources = template["Resources"]
    (function,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == "functions.leaderboard_api.handler.handler"
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    grants: dict[str, set[str]] = {}
    for r in resources.values():
        if r["Type"] != "AWS::IAM::Policy" or {"Ref": role} not in r["Properties"]["Roles"]:
            continue
        for statement in r["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            targets = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for target in [targets] if not isinstance(targets, list) else targets:
                    grants.setdefault(action, set()).add(_render(target))
    return {a: sorted(rs) for a, rs in grants.items() if a.startswith("dynamodb:")}


def _render(value: Any) -> str:
    """A resource as text: pseudo parameters and attributes as ``${...}``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    (parts,) = value["Fn::Join"][1:]
    return "".join(_render(p) for p in parts)


def test_the_function_holds_exactly_the_table_actions_it_calls(template: dict[str, Any]) -> None:
    table = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/standings"

    assert _function_grants(template) == {
        "dynamodb:BatchGetItem": [table],
        "dynamodb:BatchWriteItem": [table],
        "dynamodb:ConditionCheckItem": [table],
        "dynamodb:GetItem": [table],
        "dynamodb:PutItem": [table],
        "dynamodb:UpdateItem": [table],
        # the table: a race's record and live head, its entries; a rider's history
        "dynamodb:Query": sorted([table, f"{table}/index/{keys.INDEX_RECENT}"]),
    }


def test_every_resource_has_the_preflight(template: dict[str, Any]) -> None:
    preflights = sorted(path for path, verb in _methods(template) if verb == "OPTIONS")

    assert preflights == [
        "/",
        "/classes",
        "/classes/{classId}",
        "/classes/{classId}/records",
        "/openapi.json",
        "/races",
        "/races/{raceId}",
        "/races/{raceId}/close",
        "/races/{raceId}/entries",
        "/races/{raceId}/entries/{riderId}",
        "/races/{raceId}/entries/{riderId}/disqualify",
        "/races/{raceId}/leaderboard",
        "/races/{raceId}/results",
        "/races/{raceId}/riders",
        "/races/{raceId}/riders/{riderId}",
        "/riders",
        "/riders/{riderId}",
        "/riders/{riderId}/results",
        "/swagger",
        "/{proxy+}",
    ]
