"""Leaderboard API (Lambda entry point: ``handler``), behind API Gateway's REST proxy integration.

Thin: Powertools' REST resolver validates the request against the route signatures (path,
query and the organiser's JSON bodies), each route calls one function of
:mod:`functions.leaderboard_api.logic` (reads) or :mod:`functions.leaderboard_api.organiser`
(the organiser's writes) and returns a response model. The organiser's routes (POST) are
IAM-authorised by API Gateway; the handler logs who called them. Errors become a JSON
``{"message": ...}`` that says what is wrong: 400 (malformed cursor), 404 (unknown race, rider
or route), 409 (the race's state forbids it), 422 (a parameter or field out of range), 503 +
``Retry-After`` when DynamoDB or Scheduler throttles. Settings come from
:mod:`functions.leaderboard_api.config`, validated at cold start.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
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

from functions.leaderboard_api import history as past
from functions.leaderboard_api import logic, organiser
from functions.leaderboard_api.adapters import (
    SCHEDULER_CLIENT_CONFIG,
    CloseTarget,
    DynamoLeaderboardReader,
    EventBridgeCloseScheduler,
)
from functions.leaderboard_api.config import (
    CORS_MAX_AGE_S,
    SECURITY_HEADERS,
    ApiSettings,
    CorsSettings,
)
from functions.leaderboard_api.models import (
    ClassRecords,
    Disqualified,
    EntriesApplied,
    Error,
    Leaderboard,
    Race,
    Races,
    Results,
    Rider,
    RiderHistory,
)
from shared import names
from shared.contract import ID_PATTERN, MAX_RACE_SECONDS, NUM_CLASSES
from shared.dynamodb import DEFAULT_CLIENT_CONFIG
from shared.history import HISTORY_PAGE_MAX, RECORDS_KEPT
from shared.history_store import DynamoHistoryStore
from shared.live_store import DynamoLiveStore
from shared.ports import HistoryBook, RaceBook, TransientError
from shared.race_store import DynamoRaceStore, now_ms
from shared.races import Entries, NewRace, RaceConflictError, RaceNotFoundError, RaceStatus
from shared.routes import ERROR_MAX_AGE_S, NO_STORE, READS, max_age, route_for
from shared.warm import Warm

PAGE_FILE = FilePath(__file__).with_name("static") / "index.html"
PAGE_HTML = PAGE_FILE.read_text(encoding="utf-8")
LEADERBOARD_CACHE_CONTROL = READS["/races/{raceId}/leaderboard"].cache_control
RESULTS_CACHE_CONTROL = READS["/races/{raceId}/results"].cache_control
HISTORY_CACHE_CONTROL = READS["/riders/{riderId}/results"].cache_control
RECORDS_CACHE_CONTROL = READS["/classes/{classId}/records"].cache_control
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
    return CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], max_age=CORS_MAX_AGE_S)


app = APIGatewayRestResolver(enable_validation=True, cors=cors_config(CorsSettings.from_env()))
app.configure_openapi(
    title="Breakaway leaderboard API",
    version="1.0.0",
    description="Live standings and final placings of indoor bike races, and the organiser's "
    "routes that schedule them (POST: IAM-authorised, requests signed with AWS Signature "
    "Version 4; the local stack needs none). Points are hundredths of an output unit.",
)
ORGANISER: dict[str, Any] = {"x-amazon-apigateway-auth": {"type": "AWS_IAM"}}
"""API Gateway's own OpenAPI extension for a method it authorizes with IAM (SigV4): what the
deployed API does (infra/components/leaderboard_api.py), stated without making the handler,
which never sees an unsigned request in AWS, claim to check a header itself."""
app.enable_swagger(path="/swagger", title="Breakaway leaderboard API", version="1.0.0")


@dataclass
class Runtime:
    """Everything one execution environment keeps warm between invocations."""

    reader: logic.LeaderboardReader
    book: RaceBook
    scheduler: organiser.CloseScheduler
    history: HistoryBook
    """Riders' histories and the class records (the closer writes them)."""
    live: logic.LiveSnapshots
    """The live ranking the board and the rider lookup read (and build, once a second)."""
    clock: Callable[[], int] = now_ms
    """Epoch milliseconds: a race's status and the organiser's rules are judged by it."""


def build_runtime(settings: ApiSettings, session: boto3.session.Session | None = None) -> Runtime:
    """Wire the adapters the settings name (the clients honour AWS_ENDPOINT_URL: the local
    stack)."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb", config=DEFAULT_CLIENT_CONFIG)
    scheduler = session.client("scheduler", config=SCHEDULER_CLIENT_CONFIG)
    target = CloseTarget(
        group=settings.schedule_group,
        closer_arn=settings.closer_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.schedule_dlq_arn,
    )
    return Runtime(
        reader=DynamoLeaderboardReader(dynamodb, settings.standings_table),
        book=DynamoRaceStore(dynamodb, settings.standings_table),
        scheduler=EventBridgeCloseScheduler(scheduler, target),
        history=DynamoHistoryStore(dynamodb, settings.standings_table),
        live=logic.BuildCache(DynamoLiveStore(dynamodb, settings.standings_table)),
    )


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
        (409, "the race's state forbids it (the message says which)"),
        (422, "a parameter or field is missing, malformed or out of range"),
        (503, "storage or the scheduler is throttling: retry after a second"),
    )
}
ERRORS[503]["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}
READ_ERRORS = (400, 404, 422, 503)
ORGANISER_ERRORS = (404, 409, 422, 503)


def responses(
    model: type[Any],
    text: str,
    *,
    status: int = 200,
    cache_control: str | None = None,
    errors: tuple[int, ...] = READ_ERRORS,
) -> dict[int, OpenAPIResponse]:
    ok: OpenAPIResponse = {"description": text, "content": {"application/json": {"model": model}}}
    if cache_control:
        ok["headers"] = {
            "Cache-Control": {"description": cache_control, "schema": {"type": "string"}}
        }
    return {status: ok, **{code: ERRORS[code] for code in errors}}


RaceId = Annotated[str, Path(pattern=ID_PATTERN, description="race id")]
RiderId = Annotated[str, Path(pattern=ID_PATTERN, description="rider id")]
ClassId = Annotated[int | None, Query(ge=1, le=NUM_CLASSES, description="absent: overall")]
Limit = Annotated[int, Query(ge=1, le=logic.MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=logic.MAX_CURSOR_CHARS, description="nextCursor of a page"),
]


def _json(status: int, body: Any, **headers: str) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, body, headers=headers)


# --- public reads ------------------------------------------------------------------------------
@app.get("/races", responses=responses(Races, "races"), summary="Races, newest start first")
def list_races(
    status: Annotated[RaceStatus | None, Query(description="absent: every race")] = None,
    limit: Limit = logic.DEFAULT_RACES_LIMIT,
    cursor: Cursor = None,
) -> Races:
    rt = runtime()
    now = rt.clock()
    return Races.of(logic.races(rt.reader, now, status, limit, cursor), now)


@app.get("/races/<raceId>", responses=responses(Race, "the race"), summary="A race")
def get_race(raceId: RaceId) -> Race:  # noqa: N803 (the wire name)
    rt = runtime()
    return Race.of(logic.race(rt.reader, raceId), rt.clock())


@app.get(
    "/races/<raceId>/leaderboard",
    responses=responses(
        Leaderboard, "a page of the leaderboard", cache_control=LEADERBOARD_CACHE_CONTROL
    ),
    summary="Ranked riders, a page",
)
def get_leaderboard(
    raceId: RaceId,  # noqa: N803
    classId: ClassId = None,  # noqa: N803
    limit: Limit = logic.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response[Leaderboard]:
    rt = runtime()
    page = logic.leaderboard(rt.live, raceId, classId, limit, cursor, now=rt.clock())
    body = Leaderboard.of(page)
    metrics.add_metric(
        name="LeaderboardEntriesServed", unit=MetricUnit.Count, value=len(page.entries)
    )
    return _json(HTTPStatus.OK, body)


@app.get(
    "/races/<raceId>/riders/<riderId>",
    responses=responses(Rider, "the rider"),
    summary="A rider and its rank",
)
def get_rider(raceId: RaceId, riderId: RiderId) -> Rider:  # noqa: N803
    rt = runtime()
    return Rider.of(logic.rider(rt.live, raceId, riderId, now=rt.clock()))


@app.get(
    "/races/<raceId>/results",
    responses=responses(
        Results,
        "a page of the final placings",
        cache_control=RESULTS_CACHE_CONTROL,
        errors=(400, 404, 409, 422, 503),
    ),
    summary="A closed race's final placings, a page",
)
def get_results(
    raceId: RaceId,  # noqa: N803
    classId: ClassId = None,  # noqa: N803
    limit: Limit = logic.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response[Results]:
    rt = runtime()
    page = logic.results(
        rt.reader, rt.book, rt.clock(), raceId, class_id=classId, limit=limit, cursor=cursor
    )
    return _json(HTTPStatus.OK, Results.of(page))


# --- riders' histories and class records --------------------------------------------------------
HistoryLimit = Annotated[int, Query(ge=1, le=HISTORY_PAGE_MAX, description="page size")]
RecordsLimit = Annotated[int, Query(ge=1, le=RECORDS_KEPT, description="rows")]
RecordsClass = Annotated[int, Path(ge=1, le=NUM_CLASSES, description="class id")]
DurationS = Annotated[
    int, Query(ge=1, le=MAX_RACE_SECONDS, description="race length: records are kept per length")
]


@app.get(
    "/riders/<riderId>/results",
    responses=responses(
        RiderHistory,
        "a page of the rider's closed races (none: empty)",
        cache_control=HISTORY_CACHE_CONTROL,
    ),
    summary="A rider's closed races, newest first, a page",
)
def get_rider_history(
    riderId: RiderId,  # noqa: N803
    limit: HistoryLimit = past.DEFAULT_HISTORY_LIMIT,
    cursor: Cursor = None,
) -> RiderHistory:
    return RiderHistory.of(past.rider_history(runtime().history, riderId, limit, cursor))


@app.get(
    "/classes/<classId>/records",
    responses=responses(
        ClassRecords, "the records", cache_control=RECORDS_CACHE_CONTROL, errors=(404, 422, 503)
    ),
    summary="The best results ever in a class, over races of one length",
)
def get_class_records(
    classId: RecordsClass,  # noqa: N803
    durationS: DurationS,  # noqa: N803
    limit: RecordsLimit = past.DEFAULT_RECORDS_LIMIT,
) -> ClassRecords:
    return ClassRecords.of(past.class_records(runtime().history, classId, durationS, limit))


# --- the organiser's routes (IAM-authorised by API Gateway) ------------------------------------
def audit(action: str, race_id: str) -> None:
    """Who changed a race: the caller API Gateway authenticated (none in the local stack)."""
    identity = app.current_event.request_context.identity
    logger.info(action, extra={"raceId": race_id, "caller": identity.user_arn})


@app.post(
    "/races",
    status_code=HTTPStatus.CREATED,
    responses=responses(Race, "the race", status=201, errors=(409, 422, 503)),
    summary="Schedule a race (organiser)",
    openapi_extensions=ORGANISER,
)
def create_race(race: NewRace) -> Race:
    rt = runtime()
    now = rt.clock()
    audit("create race", race.race_id)
    return Race.of(organiser.create_race(rt.book, rt.scheduler, race, now), now)


@app.post(
    "/races/<raceId>/entries",
    responses=responses(EntriesApplied, "entries added and changed", errors=ORGANISER_ERRORS),
    summary="Enter riders, at most 1,000 a request (organiser)",
    openapi_extensions=ORGANISER,
)
def enter_riders(raceId: RaceId, entries: Entries) -> EntriesApplied:  # noqa: N803
    rt = runtime()
    audit("enter riders", raceId)
    added, updated = organiser.enter(rt.book, raceId, entries.entries, rt.clock())
    return EntriesApplied(added=added, updated=updated)


@app.post(
    "/races/<raceId>/close",
    status_code=HTTPStatus.ACCEPTED,
    responses=responses(Race, "the race, closing", status=202, errors=ORGANISER_ERRORS),
    summary="Close a race graceS from now, or at its scheduled close if sooner (organiser)",
    openapi_extensions=ORGANISER,
)
def close_race(raceId: RaceId) -> Race:  # noqa: N803
    rt = runtime()
    now = rt.clock()
    audit("close race", raceId)
    return Race.of(organiser.close(rt.book, rt.scheduler, raceId, now), now)


@app.post(
    "/races/<raceId>/entries/<riderId>/disqualify",
    responses=responses(Disqualified, "the rider is disqualified", errors=ORGANISER_ERRORS),
    summary="Disqualify an entered rider (organiser)",
    openapi_extensions=ORGANISER,
)
def disqualify_rider(raceId: RaceId, riderId: RiderId) -> Disqualified:  # noqa: N803
    rt = runtime()
    audit("disqualify rider", raceId)
    organiser.disqualify(rt.book, raceId, riderId, rt.clock())
    return Disqualified(race_id=raceId, rider_id=riderId, disqualified=True)


# --- the spec, the page ------------------------------------------------------------------------
@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[str]:
    """The server is the document's own location (``./``, a relative URL as OpenAPI allows):
    the same document is served from the API's URL (under its stage path), from the
    distribution (no stage path: CloudFront's origin path adds it) and locally."""
    spec = app.get_openapi_json_schema(servers=[Server(url="./")])
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
    RaceNotFoundError
)
def not_found(exc: RaceNotFoundError) -> Response[Any]:
    return _json(HTTPStatus.NOT_FOUND, {"message": str(exc)})


@app.exception_handler(  # type: ignore[untyped-decorator]
    RaceConflictError
)
def conflict(exc: RaceConflictError) -> Response[Any]:
    return _json(HTTPStatus.CONFLICT, {"message": str(exc)})


@app.exception_handler(  # type: ignore[untyped-decorator]
    logic.BadRequestError
)
def bad_request(exc: logic.BadRequestError) -> Response[Any]:
    return _json(HTTPStatus.BAD_REQUEST, {"message": str(exc)})


@app.exception_handler(  # type: ignore[untyped-decorator]
    organiser.UnprocessableError
)
def unprocessable(exc: organiser.UnprocessableError) -> Response[Any]:
    return _json(HTTPStatus.UNPROCESSABLE_ENTITY, {"message": str(exc)})


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
    body = {"message": "the API is busy, retry in a second"}
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
    return "; ".join(_describe_error(e) for e in errors if not _echo(e)) or "invalid request"


def _echo(error: Any) -> bool:
    """A sequence too short only because some of its items failed (each reported): pydantic
    counts the items that passed."""
    given = error.get("input")
    minimum = (error.get("ctx") or {}).get("min_length", 0)
    return (
        error.get("type") == "too_short"
        and isinstance(given, list | tuple)
        and len(given) >= minimum
    )


def _describe_error(error: Any) -> str:
    """One error, named by its field (``entries.3.classId``): a body that is not JSON is the
    body's, and a model's own check (a rider given twice) names its field in its message."""
    loc = [str(p) for p in error.get("loc", ())]
    kind = error.get("type")
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return f"body: not valid JSON ({ctx.get('error', 'malformed')})"
    where = ".".join(p for p in loc if p not in ("query", "path", "body"))
    if kind == "value_error" and not where:
        return str(ctx.get("error", error.get("msg", "invalid")))
    return f"{where or (loc[0] if loc else 'request')}: {error.get('msg', 'invalid')}"


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


def cache_control(event: dict[str, Any], status: int) -> str:
    """What ``shared.routes`` declares for the route API Gateway matched: its own age when it
    succeeds, the error age when it fails; a path no route declares is a 404 (``/{proxy+}``)."""
    method = event.get("httpMethod") or ""
    route = route_for(method, event.get("resource") or "")
    if route is None:
        return max_age(ERROR_MAX_AGE_S) if method in ("GET", "HEAD") else NO_STORE
    return route.cache_control if status < HTTPStatus.BAD_REQUEST else route.error_cache_control


def with_cache_control(response: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """``response`` with the ``Cache-Control`` of its route and status (one place decides it for
    every route, error handler and not-found; CloudFront caches by it)."""
    value = cache_control(event, int(response.get("statusCode", 500)))
    multi = response.get("multiValueHeaders")
    if multi is not None:
        for name in [n for n in multi if n.lower() == "cache-control"]:
            del multi[name]
        multi["Cache-Control"] = [value]
        return response
    single = response.setdefault("headers", {})
    for name in [n for n in single if n.lower() == "cache-control"]:
        del single[name]
    single["Cache-Control"] = value
    return response


# --- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime()  # a cold start fails here, naming the setting that is missing or wrong
    response: dict[str, Any] = with_cache_control(
        with_security_headers(app.resolve(event, context)), event
    )
    status = int(response.get("statusCode", 500))
    metrics.add_metric(name=f"Responses{status // 100}xx", unit=MetricUnit.Count, value=1)
    return response
