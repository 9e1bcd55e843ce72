"""The leaderboard API's routes: declared once for API Gateway (infra), the local gateway and
the tests. The handler (``functions/leaderboard_api``) serves exactly these; a test checks
that its OpenAPI document lists the same operations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Method = Literal["GET", "POST"]


@dataclass(frozen=True)
class Route:
    path: str
    query: tuple[str, ...] = ()
    method: Method = "GET"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(p[1:-1].rstrip("+") for p in self.path.split("/") if p.startswith("{"))

    @property
    def organiser(self) -> bool:
        """An organiser's route: it changes a race, so API Gateway admits only requests signed
        with AWS credentials (SigV4, IAM authorization); the reads are public."""
        return self.method != "GET"


API_ROUTES: Final = (
    Route("/"),
    Route("/openapi.json"),
    Route("/swagger", ("format",)),
    Route("/races", ("status", "limit", "cursor")),
    Route("/races/{raceId}"),
    Route("/races/{raceId}/leaderboard", ("classId", "limit", "cursor")),
    Route("/races/{raceId}/riders/{riderId}"),
    Route("/races/{raceId}/results", ("classId", "limit", "cursor")),
    Route("/riders/{riderId}/results", ("limit", "cursor")),
    Route("/classes/{classId}/records", ("durationS", "limit")),
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
