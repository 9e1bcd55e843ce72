"""The leaderboard API's routes: declared once for API Gateway (infra), the local gateway and
the tests. The handler (``functions/leaderboard_api``) serves exactly these; a test checks
that its OpenAPI document lists the same paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Route:
    path: str
    query: tuple[str, ...] = ()

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(p[1:-1].rstrip("+") for p in self.path.split("/") if p.startswith("{"))


API_ROUTES: Final = (
    Route("/"),
    Route("/openapi.json"),
    Route("/swagger", ("format",)),
    Route("/races", ("limit", "cursor")),
    Route("/races/{raceId}"),
    Route("/races/{raceId}/leaderboard", ("classId", "limit", "cursor")),
    Route("/races/{raceId}/riders/{riderId}"),
)
"""The API's GET routes, declared so that API Gateway validates their parameters; any other
path goes to the handler too (``{proxy+}``) so that it answers a JSON 404, not a 403."""

RESOURCE_TEMPLATES: Final = tuple(r.path for r in API_ROUTES if r.path != "/")
"""The REST API's resources besides ``/`` and ``/{proxy+}``: API Gateway names the matched one
in an event's ``resource``, with its ``pathParameters``."""
