"""The leaderboard API's routes: declared once for API Gateway (infra), the local gateway and
the tests. The handler (``functions/leaderboard_api``) serves exactly these; a test checks
that its OpenAPI document lists the same operations.

Each route also says how long its answer may be cached (``max_age_s``): the handler sends it
as ``Cache-Control`` and the CloudFront distribution (``infra/components/cdn.py``) keys each
route's cache on its documented query parameters only, so this table is the one source of
both (docs/decisions.md, "Viewers through CloudFront")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Method = Literal["GET", "POST"]

LIVE_MAX_AGE_S: Final = 1
"""What moves while a race runs (a leaderboard page, a race, a rider's rank): as fresh as the
one-second batching window that feeds it."""
LISTING_MAX_AGE_S: Final = 5
"""The race list: a race appears or changes status a few times a day, seconds late is fine."""
CLOSED_MAX_AGE_S: Final = 86_400
"""A closed race's placings never change: a day (and no longer, so that a fix still shows)."""
HISTORY_MAX_AGE_S: Final = 60
"""A rider's history and a class's records change only when a race closes, but that is when
people look: a minute, not a day (for the history and records routes)."""
STATIC_MAX_AGE_S: Final = 300
"""The live page and the API's description: they change only with a deploy."""
ERROR_MAX_AGE_S: Final = 1
"""An error to a read (an unknown or still-running race, a throttled store): a second, so that
a race created or closed a moment later shows at once, while a thousand viewers asking for it
still reach the API once a second, not a thousand times."""
NO_STORE: Final = "no-store"
"""The organiser's answers: never cached (CloudFront caches only GET and HEAD anyway)."""


def max_age(seconds: int) -> str:
    """``Cache-Control`` for an answer that may be reused for ``seconds``."""
    return f"max-age={seconds}"


@dataclass(frozen=True)
class Route:
    path: str
    query: tuple[str, ...] = ()
    method: Method = "GET"
    max_age_s: int | None = None
    """How long a successful answer may be cached (``Cache-Control: max-age``); ``None``: never
    (``no-store``, the organiser's routes)."""

    @property
    def cache_control(self) -> str:
        """The ``Cache-Control`` of a successful answer."""
        return NO_STORE if self.max_age_s is None else max_age(self.max_age_s)

    @property
    def error_cache_control(self) -> str:
        """The ``Cache-Control`` of an error: a read's for a second, the organiser's never."""
        return NO_STORE if self.organiser else max_age(ERROR_MAX_AGE_S)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(p[1:-1].rstrip("+") for p in self.path.split("/") if p.startswith("{"))

    @property
    def organiser(self) -> bool:
        """An organiser's route: it changes a race, so API Gateway admits only requests signed
        with AWS credentials (SigV4, IAM authorization); the reads are public."""
        return self.method != "GET"


API_ROUTES: Final = (
    Route("/", max_age_s=STATIC_MAX_AGE_S),
    Route("/openapi.json", max_age_s=STATIC_MAX_AGE_S),
    Route("/swagger", ("format",), max_age_s=STATIC_MAX_AGE_S),
    Route("/races", ("status", "limit", "cursor"), max_age_s=LISTING_MAX_AGE_S),
    Route("/races/{raceId}", max_age_s=LIVE_MAX_AGE_S),
    Route("/races/{raceId}/leaderboard", ("classId", "limit", "cursor"), max_age_s=LIVE_MAX_AGE_S),
    Route("/races/{raceId}/riders/{riderId}", max_age_s=LIVE_MAX_AGE_S),
    Route("/races/{raceId}/results", ("classId", "limit", "cursor"), max_age_s=CLOSED_MAX_AGE_S),
    Route("/riders/{riderId}/results", ("limit", "cursor"), max_age_s=HISTORY_MAX_AGE_S),
    Route("/classes/{classId}/records", ("durationS", "limit"), max_age_s=HISTORY_MAX_AGE_S),
    Route("/races", method="POST"),
    Route("/races/{raceId}/entries", method="POST"),
    Route("/races/{raceId}/close", method="POST"),
    Route("/races/{raceId}/entries/{riderId}/disqualify", method="POST"),
)
"""The API's routes, declared so that API Gateway validates their parameters and authorizes the
organiser's; any other path goes to the handler too (``GET /{proxy+}``) so that it answers a
JSON 404, not a 403."""

RESOURCE_TEMPLATES: Final = tuple(dict.fromkeys(r.path for r in API_ROUTES if r.path != "/"))
"""The REST API's resources besides ``/`` and ``/{proxy+}``: API Gateway names the matched one
in an event's ``resource``, with its ``pathParameters``."""


def route_for(method: str, resource: str) -> Route | None:
    """The declared route API Gateway matched (its ``httpMethod`` and ``resource``), if any: a
    path no route declares reaches the handler through ``/{proxy+}``."""
    return _BY_KEY.get((method, resource))


_BY_KEY: Final[dict[tuple[str, str], Route]] = {(r.method, r.path): r for r in API_ROUTES}

READS: Final = {r.path: r for r in API_ROUTES if not r.organiser}
"""The public reads by path: what the distribution caches."""
