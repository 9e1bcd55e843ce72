"""The leaderboard API's configuration: read from the environment and validated.

Two moments, two models. The CORS origins are read when the handler module loads, because the
resolver declares its routes with them; the rest at the first invocation (the cold start), so
that importing the handler needs no environment (the tests, the local stack, the benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from shared import names
from shared.settings import ConfigError, settings_from_env

__all__ = ["SECURITY_HEADERS", "ApiSettings", "ConfigError", "CorsSettings"]

WHAT = "leaderboard API"

SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""On every response of the API, JSON and HTML, the handler's and API Gateway's own (its gateway
responses, infra/components/leaderboard_api.py): no content-type sniffing, no framing (the
live page's policy also says ``frame-ancestors 'none'``; this is for browsers without CSP), no
referrer to wherever a link leads."""


class CorsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    cors_origin: str = ""
    """One origin, ``*``, or a comma-separated list; unset or empty: no CORS headers."""

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origin.split(",") if o.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CorsSettings:
        return settings_from_env(cls, {"cors_origin": names.ENV_CORS_ORIGIN}, WHAT, env)


class ApiSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    standings_table: Annotated[str, Field(min_length=3, max_length=255)]
    """The table the API reads (boto3 finds the region and AWS_ENDPOINT_URL itself)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        return settings_from_env(cls, {"standings_table": names.ENV_STANDINGS_TABLE}, WHAT, env)
