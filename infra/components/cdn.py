"""The viewers' CloudFront distribution in front of the leaderboard API and its page, and the
web ACL that limits each client (docs/decisions.md, "Viewers through CloudFront").

Every public read (``shared.routes``) gets a cache behaviour on its path whose cache key is
the route's documented query parameters and nothing else (no header, no cookie); how long an
answer is kept is the API's ``Cache-Control`` (the routes declare it), within TTLs of 0 s to a
day. A viewer-request CloudFront Function keeps only those parameters, sorted, because
CloudFront's cache key follows the order the viewer sent them in. Origin Shield puts one
regional cache in front of the API, so each object reaches it about once per its age however
many edge locations ask. The distribution allows GET, HEAD and OPTIONS only: the organiser's
routes (POST, SigV4-signed) are served from the API's own URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from functions.leaderboard_api.config import CORS_MAX_AGE_S
from infra.config import BreakawayConfig, CdnConfig
from infra.nag import acknowledge
from shared.routes import ERROR_MAX_AGE_S, READS, Route

VIEWER_REQUEST_TEMPLATE: Final = Path(__file__).with_name("viewer_request.js")
ROUTES_PLACEHOLDER: Final = "__ROUTES__"
MAX_TTL_S: Final = max(86_400, *(r.max_age_s or 0 for r in READS.values()))
"""At least a day, and never shorter than the longest age a route declares."""
CACHED_ERRORS: Final = (400, 403, 404, 405, 414, 500, 501, 502, 503, 504)
"""The origin errors CloudFront may cache, and holds 10 s unless told: held a second instead
(the API's own errors say ``max-age=1``; API Gateway's, e.g. a 504, say nothing)."""
RATE_RULE: Final = "PerClientRate"


def path_pattern(route: Route) -> str:
    """CloudFront's path pattern of a route: each ``{param}`` a ``*``."""
    return re.sub(r"\{[^}]+\}", "*", route.path)


def uri_regex(route: Route) -> str:
    """A regular expression matching exactly the route's paths (one segment per parameter)."""
    return "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route.path)) + "$"


def by_specificity(routes: Iterable[Route]) -> list[Route]:
    """Most segments first: ``/races/*`` would also match ``/races/x/leaderboard``, and
    CloudFront takes the first behaviour that matches."""
    return sorted(routes, key=lambda r: -r.path.count("/"))


def viewer_request_code(routes: Iterable[Route]) -> str:
    """The function's source: the template with each route's path and documented parameters."""
    table = [[uri_regex(r), sorted(r.query)] for r in by_specificity(routes)]
    template = VIEWER_REQUEST_TEMPLATE.read_text(encoding="utf-8")
    return template.replace(ROUTES_PLACEHOLDER, json.dumps(table, separators=(",", ":")))


class ViewerCdn(Construct):
    """The distribution: one cache behaviour per public read, the page as the default."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BreakawayConfig,
        api: apigw.RestApi,
        web_acl_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        cdn = config.cdn
        self.origin = origins.RestApiOrigin(
            api,
            origin_shield_enabled=True,
            origin_shield_region=cdn.origin_shield_region or Stack.of(self).region,
        )
        self.function = cloudfront.Function(
            self,
            "QueryNormaliser",
            comment="Keeps a route's documented query parameters, sorted",
            code=cloudfront.FunctionCode.from_inline(viewer_request_code(READS.values())),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )
        self.cors = self._cors(config)
        self._policies: dict[tuple[str, ...], cloudfront.CachePolicy] = {}
        routes = by_specificity(r for r in READS.values() if r.path != "/")
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"Breakaway viewers ({config.env_name})",
            default_behavior=self._behavior(READS["/"]),
            additional_behaviors={path_pattern(r): self._behavior(r) for r in routes},
            error_responses=[
                cloudfront.ErrorResponse(http_status=code, ttl=Duration.seconds(ERROR_MAX_AGE_S))
                for code in CACHED_ERRORS
            ],
            price_class=cloudfront.PriceClass[cdn.price_class],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            web_acl_id=web_acl_arn,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}/"
        self._acknowledge(web_acl_arn is not None)

    def _behavior(self, route: Route) -> cloudfront.BehaviorOptions:
        return cloudfront.BehaviorOptions(
            origin=self.origin,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
            cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            compress=True,
            cache_policy=self._policy(route.query),
            response_headers_policy=self.cors,
            function_associations=[
                cloudfront.FunctionAssociation(
                    function=self.function, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                )
            ]
            if route.query
            else None,
        )

    def _cors(self, config: BreakawayConfig) -> cloudfront.ResponseHeadersPolicy:
        """The API's CORS answered by CloudFront itself: the ``Origin`` header is neither in the
        cache key nor forwarded (the API, seeing none, adds no CORS header), so the edge adds
        them from the viewer's request, for the origins the API allows (``api.cors_origin``)."""
        return cloudfront.ResponseHeadersPolicy(
            self,
            "Cors",
            comment="The API's CORS for the public reads",
            cors_behavior=cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_credentials=False,
                access_control_allow_headers=apigw.Cors.DEFAULT_HEADERS,
                access_control_allow_methods=["GET", "HEAD", "OPTIONS"],
                access_control_allow_origins=config.api.cors_origins,
                access_control_max_age=Duration.seconds(CORS_MAX_AGE_S),
                origin_override=True,
            ),
        )

    def _policy(self, query: tuple[str, ...]) -> cloudfront.CachePolicy:
        """One policy per documented parameter set (routes with the same set share it: an
        account may hold only 20 custom cache policies). Default TTL 0: an answer the API did
        not label is not kept."""
        key = tuple(sorted(query))
        if key not in self._policies:
            self._policies[key] = cloudfront.CachePolicy(
                self,
                "Keys" + "".join(p[:1].upper() + p[1:] for p in key) if key else "KeysNone",
                comment="Cache key: " + (", ".join(key) or "the path only"),
                min_ttl=Duration.seconds(0),
                default_ttl=Duration.seconds(0),
                max_ttl=Duration.seconds(MAX_TTL_S),
                query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list(*key)
                if key
                else cloudfront.CacheQueryStringBehavior.none(),
                header_behavior=cloudfront.CacheHeaderBehavior.none(),
                cookie_behavior=cloudfront.CacheCookieBehavior.none(),
                enable_accept_encoding_gzip=True,
                enable_accept_encoding_brotli=True,
            )
        return self._policies[key]

    def _acknowledge(self, with_web_acl: bool) -> None:
        reasons = {
            "AwsSolutions-CFR1": "No geo restriction: races are watched from anywhere; the "
            "reads are public by design.",
            "AwsSolutions-CFR3": "No CloudFront access logs: standard logging needs an "
            "ACL-enabled bucket, and every request that reaches the API is in its access log; "
            "CloudFront's own metrics count hits, misses and errors.",
            "AwsSolutions-CFR4": "The distribution uses CloudFront's default certificate "
            "(*.cloudfront.net), whose minimum TLS version cannot be set; a custom domain with "
            "its own certificate would set TLSv1.2_2021.",
        }
        if not with_web_acl:
            reasons["AwsSolutions-CFR2"] = (
                "The web ACL is a per-environment switch (cdk.json cdn.waf_enabled): on in prod; "
                "off here, where the API stage's throttling bounds what a client can cost."
            )
        for rule, reason in reasons.items():
            acknowledge(self.distribution, rule, reason)


class RateLimitAcl(Construct):
    """A CloudFront-scoped web ACL (it must live in us-east-1) whose one rule answers 429 to an
    IP address past ``waf_rate_limit`` requests in ``waf_evaluation_window_seconds``."""

    def __init__(self, scope: Construct, construct_id: str, *, env_name: str, cdn: CdnConfig):
        super().__init__(scope, construct_id)
        metric = f"breakaway-{env_name}-viewers"
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            scope="CLOUDFRONT",
            description=f"Breakaway viewers, {env_name}: request rate per client IP",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(metric),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name=RATE_RULE,
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=429,
                                response_headers=[
                                    wafv2.CfnWebACL.CustomHTTPHeaderProperty(
                                        name="Retry-After",
                                        value=str(cdn.waf_evaluation_window_seconds),
                                    )
                                ],
                            )
                        )
                    ),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=cdn.waf_rate_limit,
                            evaluation_window_sec=cdn.waf_evaluation_window_seconds,
                        )
                    ),
                    visibility_config=_visibility(f"{metric}-rate"),
                )
            ],
        )
        self.arn = self.acl.attr_arn


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )
