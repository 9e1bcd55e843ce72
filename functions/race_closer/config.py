"""The race closer's configuration: read from the environment and validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared import names
from shared.settings import ConfigError, settings_from_env

__all__ = [
    "ANNOUNCE_KEY_PREFIX",
    "DEFAULT_IDEMPOTENCY_TTL_SECONDS",
    "WORKERS",
    "CloserSettings",
    "ConfigError",
]

WORKERS: Final = 16
"""Riders are announced (an idempotency record, a publish and the record's completion) and
standings read this many requests at a time: they wait on the network, not the CPU."""
ANNOUNCE_KEY_PREFIX: Final = "race-closer-announce"
"""The idempotency records' key prefix, fixed (Powertools' default is the function's qualified
name, which a refactor, or the local stack's per-environment module copies, would change)."""

DEFAULT_IDEMPOTENCY_TTL_SECONDS: Final = 16 * 24 * 3600
"""When nothing says otherwise: the deployed stacks set ``IDEMPOTENCY_TTL_SECONDS`` from their
config (``BreakawayConfig.idempotency_ttl_seconds``: longer than any way a close can come
back)."""


class CloserSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    standings_table: Annotated[str, Field(min_length=3, max_length=255)]
    idempotency_table: Annotated[str, Field(min_length=3, max_length=255)]
    notify_target: Literal["iot", "log", "none"] = "log"
    iot_data_endpoint: str | None = None
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    archive_bucket: str | None = None
    """Where the closed race's card is archived (``shared.archive``); unset: not archived."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CloserSettings:
        variables = {
            "standings_table": names.ENV_STANDINGS_TABLE,
            "idempotency_table": names.ENV_IDEMPOTENCY_TABLE,
            "notify_target": names.ENV_NOTIFY_TARGET,
            "iot_data_endpoint": names.ENV_IOT_DATA_ENDPOINT,
            "idempotency_ttl_seconds": names.ENV_IDEMPOTENCY_TTL_SECONDS,
            "archive_bucket": names.ENV_ARCHIVE_BUCKET,
        }
        return settings_from_env(cls, variables, "race closer", env)
