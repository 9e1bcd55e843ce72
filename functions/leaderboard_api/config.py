"""The leaderboard API's configuration: read from the environment and validated.

Two moments, two models. The CORS origins are read when the handler module loads, because the
resolver declares its routes with them; the rest (the table, and where a race's close is
scheduled) at the first invocation (the cold start), so that importing the handler needs no
environment (the tests, the local stack, the benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from shared import names
from shared.settings import ConfigError, settings_from_env

__all__ = ["CORS_MAX_AGE_S", "SECURITY_HEADERS", "ApiSettings", "ConfigError", "CorsSettings"]

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


CORS_MAX_AGE_S: Final = 300
"""How long a browser may keep a preflight's answer (the API's and the distribution's CORS)."""


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


LAMBDA_ARN: Final = (
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:[A-Za-z0-9_$-]{1,128})?$"
)
ROLE_ARN: Final = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
QUEUE_ARN: Final = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$"
SCHEDULE_GROUP: Final = r"^[0-9A-Za-z_.-]{1,64}$"


class ApiSettings(BaseModel):
    """Everything the API needs, the organiser's routes included: a function that could serve
    the reads but not schedule a race's close fails at cold start, not at the first race."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    standings_table: Annotated[str, Field(min_length=3, max_length=255)]
    """The table the API reads and the organiser's routes write (boto3 finds the region and
    AWS_ENDPOINT_URL itself)."""
    schedule_group: Annotated[str, Field(pattern=SCHEDULE_GROUP)]
    """The EventBridge Scheduler group of the races' one-time close schedules."""
    closer_arn: Annotated[str, Field(pattern=LAMBDA_ARN)]
    """The race closer: each schedule's target."""
    scheduler_role_arn: Annotated[str, Field(pattern=ROLE_ARN)]
    """The role EventBridge Scheduler assumes to invoke the closer."""
    schedule_dlq_arn: Annotated[str, Field(pattern=QUEUE_ARN)]
    """Where Scheduler puts a close it could not deliver after its retries."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        variables = {
            "standings_table": names.ENV_STANDINGS_TABLE,
            "schedule_group": names.ENV_SCHEDULE_GROUP,
            "closer_arn": names.ENV_CLOSER_ARN,
            "scheduler_role_arn": names.ENV_SCHEDULER_ROLE_ARN,
            "schedule_dlq_arn": names.ENV_SCHEDULE_DLQ_ARN,
        }
        return settings_from_env(cls, variables, WHAT, env)
