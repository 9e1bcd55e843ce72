"""The viewers' CloudFront distribution and web ACL (issue 18): behaviours per public read with
cache keys of their documented query parameters only, Origin Shield, TTLs that follow the API's
``Cache-Control``, GET/HEAD/OPTIONS only (the organiser uses the API's own URL), the web ACL on
in prod (a us-east-1 stack read across regions) and off in dev, the outputs; and the viewer-
request function's logic, run with node."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.components.cdn import viewer_request_code
from infra.config import ConfigError, load_config
from infra.stacks import EdgeStack
from shared.routes import READS
from tests.infra.helpers import Assembly, cdk_context, joined

pytestmark = pytest.mark.xdist_group("synth")

BEHAVIOURS = {
    "/races/*/riders/*": [],
    "/riders/*/results": ["cursor", "limit"],
    "/classes/*/records": ["durationS", "limit"],
    "/races/*/leaderboard": ["classId", "cursor", "limit"],
    "/races/*/results": ["classId", "cursor", "limit"],
    "/races/*": [],
    "/races": ["cursor", "limit", "status"],
    "/openapi.json": [],
    "/swagger": ["format"],
}
"""Path pattern -> the cache key's query allowlist, written out from the API's documentation."""
ERROR_CODES = [400, 403, 404, 405, 414, 500, 501, 502, 503, 504]


def distribution(assembly: Assembly) -> dict[str, Any]:
    config: dict[str, Any] = assembly.one("App", "AWS::CloudFront::Distribution")["Properties"][
        "DistributionConfig"
    ]
    return config


def policy(assembly: Assembly, behaviour: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = assembly.template("App")["Resources"][
        behaviour["CachePolicyId"]["Ref"]
    ]["Properties"]["CachePolicyConfig"]
    return found


def allowlist(assembly: Assembly, behaviour: dict[str, Any]) -> list[str]:
    query = policy(assembly, behaviour)["ParametersInCacheKeyAndForwardedToOrigin"][
        "QueryStringsConfig"
    ]
    if query["QueryStringBehavior"] == "none":
        return []
    assert query["QueryStringBehavior"] == "whitelist"
    return list(query["QueryStrings"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_api_is_the_origin_behind_origin_shield(
    env: str, dev: Assembly, prod: Assembly
) -> None:
    assembly = {"dev": dev, "prod": prod}[env]
    (origin,) = distribution(assembly)["Origins"]

    assert origin["OriginShield"] == {"Enabled": True, "OriginShieldRegion": {"Ref": "AWS::Region"}}
    assert origin["CustomOriginConfig"] == {
        "OriginProtocolPolicy": "https-only",
        "OriginSSLProtocols": ["TLSv1.2"],
    }
    api_url = assembly.template("App")["Outputs"]["ApiUrl"]["Value"]
    assert origin["DomainName"] == {"Fn::Select": [2, {"Fn::Split": ["/", api_url]}]}
    assert origin["OriginPath"] == {
        "Fn::Join": ["", ["/", {"Fn::Select": [3, {"Fn::Split": ["/", api_url]}]}]]
    }


def test_one_behaviour_per_public_read_most_specific_first(dev: Assembly) -> None:
    behaviours = distribution(dev)["CacheBehaviors"]
    patterns = [b["PathPattern"] for b in behaviours]

    assert {p: allowlist(dev, b) for p, b in zip(patterns, behaviours, strict=True)} == BEHAVIOURS
    assert patterns.index("/races/*/riders/*") < patterns.index("/races/*/results")
    assert patterns.index("/races/*/leaderboard") < patterns.index("/races/*")
    assert patterns.index("/races/*/results") < patterns.index("/races/*")
    assert allowlist(dev, distribution(dev)["DefaultCacheBehavior"]) == []  # the page


def test_every_behaviour_caches_gets_only_compressed_and_over_https(dev: Assembly) -> None:
    config = distribution(dev)
    for behaviour in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert behaviour["AllowedMethods"] == ["GET", "HEAD", "OPTIONS"]  # no POST: organisers
        assert behaviour["CachedMethods"] == ["GET", "HEAD"]
        assert behaviour["Compress"] is True
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert "OriginRequestPolicyId" not in behaviour  # nothing forwarded but the cache key
        keyed = policy(dev, behaviour)
        assert (keyed["MinTTL"], keyed["DefaultTTL"], keyed["MaxTTL"]) == (0, 0, 86_400)
        forwarded = keyed["ParametersInCacheKeyAndForwardedToOrigin"]
        assert forwarded["HeadersConfig"] == {"HeaderBehavior": "none"}
        assert forwarded["CookiesConfig"] == {"CookieBehavior": "none"}
        assert forwarded["EnableAcceptEncodingGzip"] is True
        assert forwarded["EnableAcceptEncodingBrotli"] is True


def test_routes_with_the_same_parameters_share_a_cache_policy(dev: Assembly) -> None:
    """An account holds at most 20 custom cache policies: 6 per environment (one per distinct
    query allowlist), not 10."""
    by_pattern = {b["PathPattern"]: b["CachePolicyId"] for b in distribution(dev)["CacheBehaviors"]}

    assert len(dev.resources("App", "AWS::CloudFront::CachePolicy")) == 6
    assert by_pattern["/races/*/leaderboard"] == by_pattern["/races/*/results"]


def test_the_normaliser_runs_where_a_route_has_parameters(dev: Assembly) -> None:
    (function_id,) = dev.resources("App", "AWS::CloudFront::Function")
    function = dev.template("App")["Resources"][function_id]["Properties"]
    associated = {
        b["PathPattern"]: b.get("FunctionAssociations", [])
        for b in distribution(dev)["CacheBehaviors"]
    }

    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["FunctionCode"] == viewer_request_code(READS.values())
    assert {p for p, a in associated.items() if a} == {p for p, q in BEHAVIOURS.items() if q}
    for found in associated.values():
        assert found in (
            [],
            [
                {
                    "EventType": "viewer-request",
                    "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]},
                }
            ],
        )
    assert "FunctionAssociations" not in distribution(dev)["DefaultCacheBehavior"]


def test_errors_from_the_origin_are_held_a_second(dev: Assembly) -> None:
    assert distribution(dev)["CustomErrorResponses"] == [
        {"ErrorCode": code, "ErrorCachingMinTTL": 1} for code in ERROR_CODES
    ]


def test_prod_distribution_uses_the_us_east_1_web_acl(prod: Assembly) -> None:
    assert distribution(prod)["WebACLId"] == {
        "Fn::GetStackOutput": {
            "StackName": "Breakaway-Prod-Edge",
            "OutputName": "WebAclArn",
            "Region": "us-east-1",
        }
    }
    artifacts = prod.manifest()["artifacts"]
    assert artifacts["Breakaway-Prod-Edge"]["environment"] == "aws://unknown-account/us-east-1"
    assert "Breakaway-Prod-Edge" in artifacts["Breakaway-Prod-App"]["dependencies"]
    acl_id, acl = next(iter(prod.resources("Edge", "AWS::WAFv2::WebACL").items()))
    assert prod.template("Edge")["Outputs"]["WebAclArn"]["Value"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    props = acl["Properties"]
    assert (props["Scope"], props["DefaultAction"]) == ("CLOUDFRONT", {"Allow": {}})
    (rule,) = props["Rules"]
    assert rule["Statement"] == {
        "RateBasedStatement": {"AggregateKeyType": "IP", "Limit": 3000, "EvaluationWindowSec": 60}
    }
    assert rule["Action"] == {
        "Block": {
            "CustomResponse": {
                "ResponseCode": 429,
                "ResponseHeaders": [{"Name": "Retry-After", "Value": "60"}],
            }
        }
    }


def test_dev_has_no_web_acl_by_default(dev: Assembly) -> None:
    assert "WebACLId" not in distribution(dev)
    assert not any(name.endswith("-Edge") for name in dev.stacks)


def test_the_web_acl_is_a_switch_with_its_limit_in_config() -> None:
    """Dev with ``cdn.waf_enabled`` on: the edge stack alone, synthesized in-process."""
    environments = cdk_context("dev")["breakaway:environments"]
    cdn = {"waf_enabled": True, "waf_rate_limit": 600, "waf_evaluation_window_seconds": 300}
    config = load_config("dev", {"dev": {"cdn": cdn}})
    assert load_config("dev", environments).cdn.waf_enabled is False
    assert load_config("prod", environments).cdn.waf_enabled is True

    template = Template.from_stack(EdgeStack(App(), config=config))

    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "CLOUDFRONT",
            "Rules": [
                {
                    "Statement": {
                        "RateBasedStatement": {
                            "AggregateKeyType": "IP",
                            "Limit": 600,
                            "EvaluationWindowSec": 300,
                        }
                    }
                }
            ],
        },
    )


@pytest.mark.parametrize(
    ("cdn", "message"),
    [
        ({"waf_rate_limit": 9}, "cdn.waf_rate_limit must be >= 10"),
        ({"waf_evaluation_window_seconds": 30}, "cdn.waf_evaluation_window_seconds must be one"),
        ({"price_class": "cheap"}, "cdn.price_class must be one of"),
    ],
)
def test_cdn_config_out_of_range_is_refused(cdn: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("dev", {"dev": {"cdn": cdn}})


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_viewer_url_is_an_output_and_the_api_url_stays(
    env: str, dev: Assembly, prod: Assembly
) -> None:
    assembly = {"dev": dev, "prod": prod}[env]
    outputs = assembly.template("App")["Outputs"]
    (distribution_id,) = assembly.resources("App", "AWS::CloudFront::Distribution")

    assert joined(outputs["ViewerUrl"]["Value"]) == f"https://${{{distribution_id}.DomainName}}/"
    assert joined(outputs["ApiUrl"]["Value"]).startswith("https://${LeaderboardApi")


# --- the viewer-request function, run with node --------------------------------------------
NODE = shutil.which("node")


def normalise(requests: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each (uri, querystring object as CloudFront passes it) through the function's handler:
    the query string it sends on."""
    events = [{"request": {"uri": uri, "querystring": qs}} for uri, qs in requests]
    script = (
        viewer_request_code(READS.values())
        + "\nconst events = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        + "\nprocess.stdout.write(JSON.stringify(events.map((e) => handler(e).querystring)));"
    )
    done = subprocess.run(
        [str(NODE), "-e", script],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: list[str] = json.loads(done.stdout)
    return result


def qs(**values: str | list[str]) -> dict[str, Any]:
    return {
        k: {"value": v[0], "multiValue": [{"value": x} for x in v]}
        if isinstance(v, list)
        else {"value": v}
        for k, v in values.items()
    }


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_function_sorts_and_keeps_only_documented_parameters() -> None:
    board = "/races/race-1/leaderboard"
    assert normalise(
        [
            (board, qs(limit="10", classId="3")),
            (board, qs(classId="3", limit="10")),
            (board, qs(utm_source="x", cursor="abc", classId="3", limit="10")),
            (board, qs(limit=["5", "10"])),
            ("/races", qs(status="running", cursor="c", limit="2", classId="3")),
            ("/races/race-1", qs(limit="10")),
            ("/races/race-1/riders/r-1", qs(classId="1")),
            ("/races/race-1/results", qs(limit="1", classId="2")),
            ("/swagger", qs(format="json", x="1")),
            ("/no/such/route", qs(limit="1")),
            ("/races/race-1/extra/leaderboard", qs(limit="1")),
            (board, {}),
        ]
    ) == [
        "classId=3&limit=10",
        "classId=3&limit=10",
        "classId=3&cursor=abc&limit=10",
        "limit=5&limit=10",
        "cursor=c&limit=2&status=running",
        "",
        "",
        "classId=2&limit=1",
        "format=json",
        "",
        "",
        "",
    ]


def test_cloudfront_answers_the_api_s_cors_itself(dev: Assembly) -> None:
    """``Origin`` is not forwarded (not in the cache key), so the edge adds the CORS headers
    for the origins ``api.cors_origin`` allows (``*`` by default)."""
    (policy_id, found) = next(
        iter(dev.resources("App", "AWS::CloudFront::ResponseHeadersPolicy").items())
    )
    cors = found["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    config = distribution(dev)

    assert cors == {
        "AccessControlAllowCredentials": False,
        "AccessControlAllowHeaders": {
            "Items": [
                "Content-Type",
                "X-Amz-Date",
                "Authorization",
                "X-Api-Key",
                "X-Amz-Security-Token",
                "X-Amz-User-Agent",
            ]
        },
        "AccessControlAllowMethods": {"Items": ["GET", "HEAD", "OPTIONS"]},
        "AccessControlAllowOrigins": {"Items": ["*"]},
        "AccessControlMaxAgeSec": 300,
        "OriginOverride": True,
    }
    for behaviour in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": policy_id}
