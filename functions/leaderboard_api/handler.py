"""Leaderboard API (Lambda entry point: ``handler``), behind API Gateway's REST proxy integration.

Thin: Powertools' REST resolver validates the request against the route signatures, each route
calls one function of :mod:`functions.leaderboard_api.logic` and returns a response model.
Errors become a JSON ``{"message": ...}`` that says what is wrong: 400 (malformed cursor), 404
(unknown race, rider or route), 422 (a parameter out of range), 503 + ``Retry-After`` when
DynamoDB throttles. Settings come from :mod:`functions.leaderboard_api.config`, validated at
cold start.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path as FilePath
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.leaderboard_api import logic
from functions.leaderboard_api.adapters import DynamoLeaderboardReader
from functions.leaderboard_api.config import SECURITY_HEADERS, ApiSettings, CorsSettings
from functions.leaderboard_api.logic import LEADERBOARD_MAX_AGE_S
from functions.leaderboard_api.models import Error, Leaderboard, Race, Races, Rider
from shared import names
from shared.contract import ID_PATTERN, NUM_CLASSES
from shared.dynamodb import DEFAULT_CLIENT_CONFIG
from shared.ports import TransientError
from shared.warm import Warm

PAGE_FILE = FilePath(__file__).with_name("static") / "index.html"
PAGE_HTML = PAGE_FILE.read_text(encoding="utf-8")
LEADERBOARD_CACHE_CONTROL = f"max-age={LEADERBOARD_MAX_AGE_S}"
RETRY_AFTER_SECONDS = "1"

logger = Logger(service=names.POWERTOOLS_SERVICE_API)
tracer = Tracer(service=names.POWERTOOLS_SERVICE_API)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.POWERTOOLS_SERVICE_API)


def inline_hashes(html: str, tag: str) -> list[str]:
    """The CSP source of each inline ``<tag>`` element: the SHA-256 of its text as written
    (UTF-8), which is what a browser hashes. Only bare tags: ``<script src=...>`` is not inline,
    and the page has none."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    ]


def page_policy(html: str) -> str:
    """The live page's Content-Security-Policy: nothing but its own inline script and style,
    pinned by hash (no ``'unsafe-inline'``), fetches to its own origin (the API), icons from
    it; no base, no form target, no framing."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(inline_hashes(html, "script")) or "'none'"),
            "style-src " + (" ".join(inline_hashes(html, "style")) or "'none'"),
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


PAGE_CSP = page_policy(PAGE_HTML)
"""Computed once, at import, from the file served: an edit to the page changes its hashes."""


def cors_config(settings: CorsSettings) -> CORSConfig | None:
    origins = settings.cors_origins
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], max_age=300)


app = APIGatewayRestResolver(enable_validation=True, cors=cors_config(CorsSettings.from_env()))
app.configure_openapi(
    title="Breakaway leaderboard API",
    version="1.0.0",
    description="Live standings of indoor bike races. Points are hundredths of an output unit.",
)
app.enable_swagger(path="/swagger", title="Breakaway leaderboard API", version="1.0.0")


def _fresh_pages() -> logic.PageCache[logic.LeaderboardPage]:
    return logic.PageCache(LEADERBOARD_MAX_AGE_S)


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    reader: logic.LeaderboardReader
    pages: logic.PageCache[logic.LeaderboardPage] = field(default_factory=_fresh_pages)
    """Leaderboard pages of the last second: as fresh as the Cache-Control header promises."""


def build_runtime(settings: ApiSettings, session: boto3.session.Session | None = None) -> Runtime:
    """Wire the reader the settings name (the client honours AWS_ENDPOINT_URL: the local stack)."""
    session = session or boto3.session.Session()
    client = session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG)
    return Runtime(DynamoLeaderboardReader(client, settings.standings_table))


def cold_start() -> Runtime:
    """The runtime, built from the environment (validated) on the first invocation."""
    return build_runtime(ApiSettings.from_env())


warm: Warm[Runtime] = Warm(cold_start)
install = warm.install
"""Use a runtime for the next invocations (tests, benchmarks, the local stack)."""
runtime = warm.get
"""The warm runtime (built on the first invocation)."""


ERRORS: dict[int, OpenAPIResponse] = {
    code: {"description": text, "content": {"application/json": {"model": Error}}}
    for code, text in (
        (400, "malformed cursor"),
        (404, "unknown race, rider or route"),
        (422, "a parameter is missing, malformed or out of range"),
        (503, "storage is throttling: retry after a second"),
    )
}
ERRORS[503]["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}


def responses(model: type[Any], text: str, cached: bool = False) -> dict[int, OpenAPIResponse]:
    ok: OpenAPIResponse = {"description": text, "content": {"application/json": {"model": model}}}
    if cached:
        ok["headers"] = {
            "Cache-Control": {
                "description": LEADERBOARD_CACHE_CONTROL,
                "schema": {"type": "string"},
            }
        }
    return {200: ok, **ERRORS}


RaceId = Annotated[str, Path(pattern=ID_PATTERN, description="race id")]
RiderId = Annotated[str, Path(pattern=ID_PATTERN, description="rider id")]
Limit = Annotated[int, Query(ge=1, le=logic.MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=logic.MAX_CURSOR_CHARS, description="nextCursor of a page"),
]


def _json(status: int, body: Any, **headers: str) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, body, headers=headers)


@app.get("/races", responses=responses(Races, "races"), summary="Recent races, newest first")
def list_races(limit: Limit = logic.DEFAULT_RACES_LIMIT, cursor: Cursor = None) -> Races:
    return Races.of(logic.recent_races(runtime().reader, limit, cursor))


@app.get("/races/<raceId>", responses=responses(Race, "the race"), summary="Race summary")
def get_race(raceId: RaceId) -> Race:  # noqa: N803 (the wire name)
    return Race.of(logic.race(runtime().reader, raceId))


@app.get(
    "/races/<raceId>/leaderboard",
    responses=responses(Leaderboard, "a page of the leaderboard", cached=True),
    summary="Ranked riders, a page",
)
def get_leaderboard(
    raceId: RaceId,  # noqa: N803
    classId: Annotated[  # noqa: N803
        int | None, Query(ge=1, le=NUM_CLASSES, description="absent: overall")
    ] = None,
    limit: Limit = logic.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response[Leaderboard]:
    rt = runtime()
    page = rt.pages.get_or_load(
        (raceId, classId, limit, cursor),
        lambda: logic.leaderboard(rt.reader, raceId, classId, limit, cursor),
    )
    body = Leaderboard.of(page)
    metrics.add_metric(
        name="LeaderboardEntriesServed", unit=MetricUnit.Count, value=len(page.entries)
    )
    return Response(
        HTTPStatus.OK,
        content_types.APPLICATION_JSON,
        body,
        headers={"Cache-Control": LEADERBOARD_CACHE_CONTROL},
    )


@app.get(
    "/races/<raceId>/riders/<riderId>",
    responses=responses(Rider, "the rider"),
    summary="A rider and its rank",
)
def get_rider(raceId: RaceId, riderId: RiderId) -> Rider:  # noqa: N803
    return Rider.of(logic.rider(runtime().reader, raceId, riderId))


@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[str]:
    ctx = app.current_event.request_context
    stage_prefix = f"/{ctx.stage}"
    base = stage_prefix if ctx.stage != "$default" and ctx.path.startswith(stage_prefix) else ""
    spec = app.get_openapi_json_schema(servers=[Server(url=base or "/")])
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, spec)


@app.get("/", include_in_schema=False)
def page() -> Response[str]:
    return Response(
        HTTPStatus.OK,
        "text/html; charset=utf-8",
        PAGE_HTML,
        headers={"Content-Security-Policy": PAGE_CSP},
    )


# --- errors ------------------------------------------------------------------------------------
@app.exception_handler(  # type: ignore[untyped-decorator]
    logic.NotFoundError
)
def not_found(exc: logic.NotFoundError) -> Response[Any]:
    return _json(HTTPStatus.NOT_FOUND, {"message": str(exc)})


@app.exception_handler(  # type: ignore[untyped-decorator]
    logic.BadRequestError
)
def bad_request(exc: logic.BadRequestError) -> Response[Any]:
    return _json(HTTPStatus.BAD_REQUEST, {"message": str(exc)})


@app.exception_handler(  # type: ignore[untyped-decorator]
    RequestValidationError
)
def invalid(exc: RequestValidationError) -> Response[Any]:
    return _json(HTTPStatus.UNPROCESSABLE_ENTITY, {"message": describe_validation(exc.errors())})


@app.exception_handler(  # type: ignore[untyped-decorator]
    TransientError
)
def throttled(exc: TransientError) -> Response[Any]:
    logger.warning("storage throttled", extra={"error": str(exc)})
    body = {"message": "the leaderboard is busy, retry in a second"}
    return _json(HTTPStatus.SERVICE_UNAVAILABLE, body, **{"Retry-After": RETRY_AFTER_SECONDS})


@app.exception_handler(  # type: ignore[untyped-decorator]
    Exception
)
def unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unexpected error")
    return _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "internal error"})


@app.not_found
def no_route(_: Exception) -> Response[Any]:
    event = app.current_event
    return _json(HTTPStatus.NOT_FOUND, {"message": f"no route {event.http_method} {event.path}"})


def describe_validation(errors: Any) -> str:
    """``limit: Input should be less than or equal to 100`` for each error, joined by ``; ``."""
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def with_security_headers(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` with SECURITY_HEADERS added where it has none of its own: every answer,
    whichever route, error handler or not-found produced it."""
    multi = response.get("multiValueHeaders")
    if multi is not None:  # the REST proxy format Powertools answers in
        present = {name.lower() for name in multi}
        multi.update({k: [v] for k, v in SECURITY_HEADERS.items() if k.lower() not in present})
        return response
    single = response.setdefault("headers", {})
    present = {name.lower() for name in single}
    single.update({k: v for k, v in SECURITY_HEADERS.items() if k.lower() not in present})
    return response


# --- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime()  # a cold start fails here, naming the setting that is missing or wrong
    response: dict[str, Any] = with_security_headers(app.resolve(event, context))
    status = int(response.get("statusCode", 500))
    metrics.add_metric(name=f"Responses{status // 100}xx", unit=MetricUnit.Count, value=1)
    return response
